//! A network namespace joined to this one by a veth pair, for partition tests: a process run
//! in it reaches servers in the root namespace only over the veth, so `iptables` rules in the
//! namespace cut it off from one server while it still reaches the others.
//!
//! Needs root (`ip netns`, `iptables`). [`NetNs::create`] probes every step and says why it
//! cannot be used, so that a test can skip. Everything is removed when the value is dropped,
//! also when the test fails: the namespace with its rules, and the veth pair with it.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where `ip` and `iptables` are looked for.
const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// A network namespace with a veth pair in a private /30: one end in the root namespace, one
/// in the namespace, each with its address.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    root_link: String,
    root_address: Ipv4Addr,
    ns_address: Ipv4Addr,
}

impl NetNs {
    /// Creates the namespace, its veth pair and addresses, and checks that `iptables` works
    /// in it. The error says why not (not root, no `ip` or `iptables`, not allowed here).
    pub fn create() -> Result<Self, String> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let (root_address, ns_address) = free_subnet(pid as usize * 16 + n)?;
        let netns = Self {
            name: format!("dmpart-{pid}-{n}"),
            root_link: format!("dmp{}n{n}r", pid % 100_000),
            root_address,
            ns_address,
        };
        netns.set_up()?;
        Ok(netns)
    }

    fn set_up(&self) -> Result<(), String> {
        let ns_link = format!("{}s", self.root_link.trim_end_matches('r'));
        let root = format!("{}/30", self.root_address);
        let inside = format!("{}/30", self.ns_address);
        ip(&["netns", "add", &self.name])?;
        ip(&[
            "link",
            "add",
            &self.root_link,
            "type",
            "veth",
            "peer",
            "name",
            &ns_link,
        ])?;
        ip(&["link", "set", &ns_link, "netns", &self.name])?;
        ip(&["addr", "add", &root, "dev", &self.root_link])?;
        ip(&["link", "set", &self.root_link, "up"])?;
        self.exec_ip(&["addr", "add", &inside, "dev", &ns_link])?;
        self.exec_ip(&["link", "set", &ns_link, "up"])?;
        self.exec_ip(&["link", "set", "lo", "up"])?;
        // The probe: a rule that matches nothing, added and removed.
        self.iptables("-A", &["OUTPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"])?;
        self.iptables("-D", &["OUTPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"])
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address of the veth end in the root namespace: servers that the namespace must
    /// reach listen on it.
    pub fn root_address(&self) -> Ipv4Addr {
        self.root_address
    }

    /// The address of the veth end in the namespace.
    pub fn ns_address(&self) -> Ipv4Addr {
        self.ns_address
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`). The environment is
    /// cleared: the caller sets what the program needs.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut command = Command::new(system_binary("ip"));
        command
            .args(["netns", "exec", &self.name])
            .arg(program)
            .env_clear();
        command
    }

    /// Drops every TCP packet between the namespace and `port` in the root namespace, both
    /// ways, established connections included.
    pub fn cut(&self, port: u16) -> Result<(), String> {
        for (verb, rule) in self.rules(port) {
            self.iptables(verb, &rule)?;
        }
        Ok(())
    }

    /// Removes the rules [`cut`](Self::cut) added for `port`.
    pub fn heal(&self, port: u16) -> Result<(), String> {
        for (_, rule) in self.rules(port) {
            self.iptables("-D", &rule)?;
        }
        Ok(())
    }

    fn rules(&self, port: u16) -> [(&'static str, Vec<String>); 2] {
        let port = port.to_string();
        let to = self.root_address.to_string();
        let rule = |chain: &str, address: &str, direction: &str| {
            [
                chain, "-p", "tcp", address, &to, direction, &port, "-j", "DROP",
            ]
            .map(str::to_owned)
            .to_vec()
        };
        [
            ("-I", rule("OUTPUT", "-d", "--dport")),
            ("-I", rule("INPUT", "-s", "--sport")),
        ]
    }

    fn iptables(&self, verb: &str, rule: &[impl AsRef<str>]) -> Result<(), String> {
        let iptables = system_binary("iptables").display().to_string();
        let mut args = vec!["netns", "exec", &self.name, &iptables, "-w", verb];
        args.extend(rule.iter().map(AsRef::as_ref));
        ip(&args)
    }

    fn exec_ip(&self, args: &[&str]) -> Result<(), String> {
        let ip_path = system_binary("ip").display().to_string();
        let mut all = vec!["netns", "exec", &self.name, &ip_path];
        all.extend(args);
        ip(&all)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace destroys its rules and its veth end, and so the pair.
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["link", "del", &self.root_link]);
    }
}

/// A /30 in 10.213.0.0/16 whose two addresses no interface here has: `(root, namespace)`.
fn free_subnet(seed: usize) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let output = Command::new(system_binary("ip"))
        .args(["-4", "-o", "addr"])
        .output()
        .map_err(|error| format!("cannot run ip: {error}"))?;
    let taken = String::from_utf8_lossy(&output.stdout).into_owned();
    (0..64)
        .map(|attempt| (seed * 7 + attempt) % 16_384)
        .map(|slot| {
            let third = (slot / 64) as u8;
            let fourth = (slot % 64 * 4) as u8;
            (
                Ipv4Addr::new(10, 213, third, fourth + 1),
                Ipv4Addr::new(10, 213, third, fourth + 2),
            )
        })
        .find(|(root, ns)| {
            !taken.contains(&format!(" {root}/")) && !taken.contains(&format!(" {ns}/"))
        })
        .ok_or_else(|| "no free /30 in 10.213.0.0/16".to_owned())
}

/// Runs `ip ARGS`; its standard error on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new(system_binary("ip"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run ip: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The path of a system tool, or its bare name when it is in none of the usual folders.
fn system_binary(name: &str) -> PathBuf {
    SYSTEM_DIRS
        .iter()
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}
