//! Running the `sse` binary and the other programs the tests drive, each
//! within a time limit.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::hub::Hub;

/// The longest one run of the `sse` binary (other than a hub) may take.
pub const RUN_LIMIT: Duration = Duration::from_secs(20);
/// The longest installing a client's packages (`npm ci`, `pip`) may take.
pub const INSTALL_LIMIT: Duration = Duration::from_secs(240);

/// `sse ARGS`, to run. Proxy and certificate settings of the environment
/// the tests run in are left out: each test sets its own.
pub fn sse(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sse"));
    command.args(args);
    for name in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        command.env_remove(name);
    }
    command
}

/// Fails the test unless `program --version` runs.
pub fn require(program: &str, what_to_install: &str) {
    let ran = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        ran.is_ok_and(|s| s.success()),
        "`{program}` not found or not working: install {what_to_install} to run this test"
    );
}

/// Collects everything `reader` yields, on a thread.
fn drain(mut reader: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = reader.read_to_end(&mut all);
        all
    })
}

/// Waits for `child` to exit within `limit`; kills it and gives `None`
/// after that.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}

/// Runs `command` to its end within `limit` (killed and failed after
/// that), with `input` on its stdin (none when empty); its exit status and
/// what it wrote. With `keep_stdout` false, its stdout is a pipe closed
/// before it starts writing.
fn run(command: &mut Command, input: &[u8], keep_stdout: bool, limit: Duration) -> Output {
    let shown = format!("{command:?}");
    let stdin = if input.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    };
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // Written from a thread, so that a large output cannot deadlock;
        // the program may exit before it has read everything.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let stdout = child.stdout.take().expect("stdout");
    let stdout = keep_stdout.then(|| drain(stdout));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child, limit);
    let output = Output {
        status: status.unwrap_or_default(),
        stdout: stdout
            .map(|s| s.join().unwrap_or_default())
            .unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if status.is_none() {
        panic!(
            "{shown} did not finish within {limit:?}; its output:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Runs `command` to its end within `limit` (killed and failed after
/// that), with `input` on its stdin; its exit status, stdout and stderr.
pub fn run_with_input(command: &mut Command, input: &[u8], limit: Duration) -> Output {
    run(command, input, true, limit)
}

/// Runs `command` like [`run_with_input`], with its stdout closed at once
/// (as by `| head -0`).
pub fn run_with_stdout_closed(command: &mut Command, input: &[u8], limit: Duration) -> Output {
    run(command, input, false, limit)
}

/// Runs `command` to its end within `limit` (killed and failed after
/// that), with nothing on its stdin; its exit status, and its stdout and
/// stderr together.
pub fn run_bounded(command: &mut Command, limit: Duration) -> (ExitStatus, String) {
    let output = run_with_input(command, b"", limit);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, text)
}

/// Runs `sse ARGS` (asking for help) and fails unless it succeeds and
/// its stdout names every one of `flags`.
pub fn assert_help_lists(args: &[&str], flags: &[&str]) {
    let output = run_with_input(&mut sse(args), b"", RUN_LIMIT);
    assert!(output.status.success(), "sse {args:?}: {output:?}");
    let help = String::from_utf8(output.stdout).expect("the help is UTF-8");
    for flag in flags {
        assert!(help.contains(flag), "sse {args:?} lacks {flag}:\n{help}");
    }
}

/// Runs a client `command` against `hub` (whose URL it gets in
/// `HUB_URL`) within `limit`; fails, showing the hub's log, unless it
/// succeeds in time and its output says `expected`.
pub fn run_client(command: &mut Command, hub: &Hub, limit: Duration, expected: &str) {
    let started = Instant::now();
    let (status, output) = run_bounded(command.env("HUB_URL", hub.url()), limit);
    assert!(
        status.success(),
        "{command:?} failed ({status}):\n{output}\nhub log:\n{}",
        hub.log_text()
    );
    assert!(output.contains(expected), "{output}");
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
}

/// Runs `npm ci` in `dir` unless `node_modules/{package}` is there.
pub fn npm_ci(dir: &Path, package: &str) {
    if dir
        .join("node_modules")
        .join(package)
        .join("package.json")
        .exists()
    {
        return;
    }
    require("npm", "npm (Debian: `apt-get install npm`)");
    let (status, output) = run_bounded(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir),
        INSTALL_LIMIT,
    );
    assert!(
        status.success(),
        "`npm ci` failed in {}:\n{output}",
        dir.display()
    );
}

/// Runs `curl -sS ARGS` (within [`RUN_LIMIT`]), which must succeed: its
/// output.
pub fn curl(args: &[&str]) -> String {
    let out = run_with_input(Command::new("curl").arg("-sS").args(args), b"", RUN_LIMIT);
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `curl -sS -w " %{http_version}" ARGS`, which must succeed: its
/// output, ending with a space and the HTTP version it spoke.
pub fn curl_with_version(args: &[&str]) -> String {
    let mut all = vec!["-w", " %{http_version}"];
    all.extend_from_slice(args);
    curl(&all)
}
