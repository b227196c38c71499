//! Runs the browser-side suite (`tests/browser/run.sh`: the JS client, the React adapter and
//! the pages in headless Chromium) against the binary this `cargo test` built, so that
//! `cargo test --workspace` is the one command that runs every test.

use std::path::Path;
use std::process::Command;

#[test]
fn js_client_react_adapter_and_pages_pass_in_node_and_chromium() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/run.sh");
    let output = Command::new("bash")
        .arg(&script)
        .env("TASKLANE_BIN", env!("CARGO_BIN_EXE_task-http"))
        .output()
        .expect("bash runs tests/browser/run.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The node summary ("ℹ pass N", "ℹ fail N") is the interesting part when this passes, too.
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("ℹ "))
        .collect();
    println!("{}", summary.join("\n"));
    assert!(
        output.status.success(),
        "tests/browser/run.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
