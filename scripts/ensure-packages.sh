#!/usr/bin/env bash
# Sourced by the other scripts: installs the Debian packages given as arguments when their
# command is missing (`nats-server`, `redis-server`, `chromium`, `chromium-driver`, ...), and
# puts /usr/sbin on PATH (Debian installs nats-server there).

ensure_packages() {
    local missing=() package command
    for package in "$@"; do
        case "$package" in
            chromium-driver) command=chromedriver ;;
            redis-tools) command=redis-cli ;;
            *) command=$package ;;
        esac
        command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || [ -x "/usr/bin/$command" ] \
            || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing ${missing[*]} from Debian packages"
        local sudo_cmd=""
        [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
        $sudo_cmd apt-get update -qq
        $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
    export PATH="$PATH:/usr/sbin:/usr/local/sbin"
}
