//! `scripts/stack.sh`: it starts NATS, Redis, the simulator and the monitor, the simulated
//! day's notes and SMS arrive, and SIGINT stops every process it started.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

/// Stops the stack (SIGTERM, trapped like SIGINT) if the test ends early.
struct StopOnDrop(u32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
    }
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn the_stack_shows_the_day_and_sigint_stops_everything() {
    let (monitor, sim) = binaries();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut stack = Command::new("bash")
        .arg(root.join("scripts/stack.sh"))
        .current_dir(&root)
        .env("MONITOR_BIN", &monitor)
        .env("SIM_BIN", &sim)
        .env("INTERVAL", "1")
        .env("TIME_SCALE", "0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = StopOnDrop(stack.id());
    let stdout = stack.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    // The ports it printed, then the day's notes and SMS as they arrive.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ports = Vec::new();
    let (mut notes, mut sms) = (0, 0);
    while notes < 5 || sms < 5 {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the stack shows notes and SMS within a minute");
        for word in line.split_whitespace() {
            let port = word.rsplit(':').next().unwrap().trim_end_matches('/');
            if word.contains("127.0.0.1:")
                && let Ok(port) = port.parse::<u16>()
                && !ports.contains(&port)
            {
                ports.push(port);
            }
        }
        notes += usize::from(line.contains("  NOTE  on ticket"));
        sms += usize::from(line.contains("  SMS   to +"));
    }
    assert_eq!(ports.len(), 4, "monitor, simulator, NATS, Redis: {ports:?}");
    assert!(ports.iter().all(|port| listening(*port)));

    let pid = stack.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the stack did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while ports.iter().any(|port| listening(*port)) {
        assert!(
            Instant::now() < deadline,
            "a process of the stack still listens: {ports:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
