//! Bad scenario files exit 2 naming the line and the reason.

use std::process::Command;

#[test]
fn a_bad_scenario_exits_2_with_its_line_and_reason() {
    let dir = std::env::temp_dir().join(format!("sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[[dispatch]]\nvendor = \"LIT\"\nnumber = \"D1\"\nticket = \"1\"\nstatus = \"finished\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_dispatch-sim"))
        .args(["--nats", "nats://127.0.0.1:1", "--scenario"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml:5: unknown status \"finished\""),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}
