//! `scripts/stack.sh`: it starts NATS, Redis, the simulator and the monitor, checking each;
//! the simulated day's notes and SMS arrive, then its summary; SIGINT stops every process it
//! started and leaves no folder behind. A part that dies at start fails the script with that
//! part's log lines, and a relative `SCENARIO` is read from the caller's directory.
//!
//! The script is started through `perl` with SIGINT's default disposition restored: a
//! non-interactive shell starts its background jobs with SIGINT ignored, a process inherits
//! that, and bash cannot trap a signal ignored at its start — so without this the test fails
//! whenever `cargo test` runs as a background job.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Restores SIGINT's default disposition, then runs its arguments.
const SIGINT_DEFAULT: &str = "$SIG{INT} = 'DEFAULT'; exec @ARGV or die \"cannot run $ARGV[0]: $!\"";

fn binaries() -> (PathBuf, PathBuf) {
    let sim = PathBuf::from(env!("CARGO_BIN_EXE_dispatch-sim"));
    let monitor = sim.with_file_name("dispatch-monitor");
    assert!(
        monitor.exists(),
        "{} is missing: run the workspace's tests (`cargo test --workspace`), which build it",
        monitor.display()
    );
    (monitor, sim)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stack-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The stack script, run from `cwd` with its temporary folders under `tmp`.
fn stack_command(cwd: &Path, tmp: &Path) -> Command {
    let (monitor, sim) = binaries();
    let mut command = Command::new("perl");
    command
        .args(["-e", SIGINT_DEFAULT, "bash"])
        .arg(repo_root().join("scripts/stack.sh"))
        .current_dir(cwd)
        .env("TMPDIR", tmp)
        .env("MONITOR_BIN", monitor)
        .env("SIM_BIN", sim)
        .env("INTERVAL", "1")
        .env("TIME_SCALE", "0.1");
    command
}

/// Stops the stack (SIGTERM, trapped like SIGINT) if the test ends early, and waits for the
/// script to end (a zombie or gone), so that it can stop every part while its output is open.
struct StopOnDrop(u32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0));
            let running = stat.is_ok_and(|stat| {
                let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
                !state.starts_with('Z')
            });
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The lines of a child's standard output, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// The ports of `127.0.0.1:PORT` words in a line.
fn ports_in(line: &str) -> Vec<u16> {
    line.split_whitespace()
        .filter(|word| word.contains("127.0.0.1:"))
        .filter_map(|word| word.rsplit(':').next()?.trim_end_matches('/').parse().ok())
        .collect()
}

/// Sends SIGINT and waits for the script to end.
fn interrupt(stack: &mut Child) {
    let pid = stack.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    while stack.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the stack did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `dispatch-stack.*` folders left in `tmp`.
fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("dispatch-stack."))
        .collect()
}

#[test]
fn the_stack_shows_the_day_and_sigint_stops_everything() {
    let tmp = scratch("day");
    let mut stack = stack_command(&repo_root(), &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = StopOnDrop(stack.id());
    let lines = lines_of(&mut stack);

    // The ports it printed, the day's notes and SMS as they arrive, then the day's summary.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut ports = Vec::new();
    let mut banner = String::new();
    let (mut notes, mut sms, mut over) = (0, 0, false);
    while notes < 5 || sms < 5 || !over {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the stack shows notes, SMS and the day's end within two minutes");
        if banner.len() < 2000 {
            banner.push_str(&line);
            banner.push('\n');
        }
        for port in ports_in(&line) {
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        notes += usize::from(line.contains("  NOTE  on ticket"));
        sms += usize::from(line.contains("  SMS   to +"));
        over |= line.starts_with("dispatch-sim: the simulated day is over:")
            && line.contains("SMS delivered")
            && line.contains("notes");
    }
    assert!(banner.contains("the stack is up"), "{banner}");
    assert!(
        banner.contains("/docs") && banner.contains("/api/v1"),
        "{banner}"
    );
    assert_eq!(ports.len(), 4, "monitor, simulator, NATS, Redis: {ports:?}");
    assert!(ports.iter().all(|port| listening(*port)));

    interrupt(&mut stack);
    assert_eq!(stack.wait().unwrap().code(), Some(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    while ports.iter().any(|port| listening(*port)) {
        assert!(
            Instant::now() < deadline,
            "a process of the stack still listens: {ports:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
    std::fs::remove_dir_all(tmp).unwrap();
}

#[test]
fn a_part_that_dies_at_start_fails_the_stack_with_its_log_lines() {
    let tmp = scratch("bad-setting");
    let mut stack = stack_command(&repo_root(), &tmp)
        .env("MONITOR_QUIET_HOURS", "25:00-08:00")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = StopOnDrop(stack.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = stack.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the stack did not give up");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    stack
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    stack
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains("the stack is up"), "{stdout}");
    assert!(
        stderr.contains("monitor stopped at start")
            && stderr.contains("| dispatch-monitor: invalid setting MONITOR_QUIET_HOURS"),
        "the monitor's log lines: {stderr}"
    );
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
    std::fs::remove_dir_all(tmp).unwrap();
}

#[test]
fn a_relative_scenario_is_read_from_the_callers_directory() {
    let tmp = scratch("scenario");
    let caller = tmp.join("caller");
    std::fs::create_dir_all(&caller).unwrap();
    let scenario =
        std::fs::read_to_string(repo_root().join("crates/bridge-sim/scenarios/example.toml"))
            .unwrap()
            .replace(
                "name = \"one dispatch, a late tech and a flaky SMS gateway\"",
                "name = \"read from the caller's directory\"",
            );
    std::fs::write(caller.join("my-day.toml"), scenario).unwrap();
    let mut stack = stack_command(&caller, &tmp)
        .env("SCENARIO", "my-day.toml")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = StopOnDrop(stack.id());
    let lines = lines_of(&mut stack);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the simulator names the caller's scenario within a minute");
        if line.starts_with("dispatch-sim: read from the caller's directory") {
            break;
        }
    }
    interrupt(&mut stack);
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
    std::fs::remove_dir_all(tmp).unwrap();
}
