//! The chat page in a real browser: `tests/browser/chat.mjs` drives
//! headless Chromium (Debian's `/usr/bin/chromium`, or `$CHROMIUM`) with
//! playwright-core against a hub started here. Two pages chat; then their
//! connections are cut while messages are published, and each page must
//! show every missed message exactly once after it reconnects.
//!
//! Needs Node.js, `npm ci` in `tests/browser` (done here when
//! `node_modules` is missing) and Chromium; a missing piece fails the test
//! with what to install.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Hub(Child);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the hub on a free port; returns it and its address.
fn start_hub(args: &[&str]) -> (Hub, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sse"))
        .args(["hub", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("SSE_HUB_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the hub");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let line = lines
        .next()
        .expect("a first log line")
        .expect("read stderr");
    let addr = line
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in the first log line: {line}"))
        .to_owned();
    // Keep draining the log so the hub never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Hub(child), addr)
}

#[test]
fn the_chat_page_works_in_chromium_and_catches_up_after_a_cut() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium}: install Debian's `chromium` package (or set CHROMIUM)"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "Node.js not found: install `nodejs` to run the browser test"
    );
    if !dir.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }

    let (_hub, addr) = start_hub(&["--retry", "300", "--heartbeat", "1s"]);
    let started = Instant::now();
    let output = Command::new("node")
        .arg("chat.mjs")
        .current_dir(&dir)
        .env("HUB_URL", format!("http://{addr}"))
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the browser test failed:\n{log}");
    assert!(log.contains("exactly once"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(90));
}
