#!/usr/bin/env python3
"""Checks docker/docker-compose*.yml without a compose tool: each parses, and keeps what a
first run needs. The project image is built by one service only and reused by the others
without a pull; no service publishes a port a server on the host already uses (NATS 4222,
Redis 6379); the simulator's health check asks the port it listens on; monitors get at least
40 s to stop (the grace period is 30 s); every `depends_on` names a service. Run by
scripts/container-test.sh."""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "dispatch-monitor:local"
HOST_PORTS_IN_USE = {"4222", "6379"}


def seconds(duration):
    match = re.fullmatch(r"(\d+)s", str(duration))
    return int(match.group(1)) if match else 0


def depends_on(service):
    targets = service.get("depends_on", [])
    return list(targets.keys()) if isinstance(targets, dict) else list(targets)


def check_service(name, service, services):
    errors = []
    for port in service.get("ports", []):
        host = str(port).split(":")[0] if ":" in str(port) else str(port)
        if host in HOST_PORTS_IN_USE:
            errors.append(f"{name} publishes host port {host}, which a server on the host uses")
    for target in depends_on(service):
        if target not in services:
            errors.append(f"{name} depends on {target}, which is not a service")
    if service.get("image") != IMAGE:
        return errors
    if "build" not in service and service.get("pull_policy") != "never":
        errors.append(f"{name} reuses {IMAGE} but may pull it: set pull_policy: never")
    if service.get("entrypoint") == ["dispatch-sim"]:
        http = " ".join(service.get("command", []))
        port = re.search(r"--http \S*:(\d+)", http)
        test = " ".join(service.get("healthcheck", {}).get("test", []))
        if not port or f":{port.group(1)}/" not in test:
            errors.append(f"{name} listens on {http!r} but its health check is {test!r}")
    elif seconds(service.get("stop_grace_period")) < 40:
        errors.append(f"{name} runs the monitor with stop_grace_period under 40s")
    return errors


def check_file(path):
    services = yaml.safe_load(path.read_text())["services"]
    builders = [name for name, service in services.items() if "build" in service]
    errors = []
    if len(builders) != 1:
        errors.append(f"{len(builders)} services build the image ({builders}): build it once")
    for name, service in services.items():
        errors += check_service(name, service, services)
    return [f"{path.relative_to(ROOT)}: {error}" for error in errors]


def check_readme():
    readme = (ROOT / "docker" / "README.md").read_text()
    errors = []
    if "docker stop -t 40" not in readme:
        errors.append("docker/README.md does not show `docker stop -t 40`")
    if "depends_on" not in readme:
        errors.append("docker/README.md does not say to drop sim from the monitor's depends_on")
    return errors


def main():
    errors = check_readme()
    files = sorted((ROOT / "docker").glob("docker-compose*.yml"))
    for path in files:
        errors += check_file(path)
    for error in errors:
        print(error, file=sys.stderr)
    if not errors:
        print(f"ok: {', '.join(p.name for p in files)} and docker/README.md")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
