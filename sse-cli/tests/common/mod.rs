//! Starting a real `sse hub` for the integration tests, and running the
//! other programs they drive (within a time limit).

#![allow(dead_code)] // Each test crate uses its own part of this module.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A running `sse hub` process; killed when dropped.
pub struct HubProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub first_line: String,
    /// Every line the hub logged so far (stderr is drained for the hub's
    /// whole life: a full pipe would block its logging).
    pub log: Arc<Mutex<Vec<String>>>,
}

impl HubProcess {
    /// Starts `sse hub ARGS` with `--listen 127.0.0.1:0` (unless the
    /// arguments or `env` choose an address) and these environment
    /// variables; no other `SSE_HUB_*` variable of the test's environment
    /// leaks in. The address is read from the first log line.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> HubProcess {
        HubProcess::start_wrapped(&[], args, env)
    }

    /// [`HubProcess::start`], run by `wrapper` (a program and its
    /// arguments, given the hub's command line after them; for example
    /// `prlimit --nofile=64:64 --`).
    pub fn start_wrapped(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> HubProcess {
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(env!("CARGO_BIN_EXE_sse"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_sse")),
        };
        command.arg("hub").args(args);
        let listen_given =
            args.contains(&"--listen") || env.iter().any(|(k, _)| *k == "SSE_HUB_LISTEN");
        if !listen_given {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        for (name, _) in std::env::vars() {
            if name.starts_with("SSE_HUB_") {
                command.env_remove(name);
            }
        }
        command.env_remove("RUST_LOG");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sse hub");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line.clone());
                    log.lock().unwrap().push(line);
                }
            });
        }
        let first_line = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("the hub printed no log line within 15 s (status {status:?})");
            }
        };
        let addr = first_line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| {
                let text: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !matches!(c, '/' | ',' | ')'))
                    .collect();
                text.parse().ok()
            });
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the first log line does not give the address: {first_line:?}");
        };
        HubProcess {
            child,
            addr,
            first_line,
            log,
        }
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Runs `command` to its end, within `limit` (killed and failed after
/// that); its exit status and its stdout and stderr together.
pub fn run_bounded(command: &mut Command, limit: Duration) -> (ExitStatus, String) {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
        String::from_utf8_lossy(&stderr.join().unwrap_or_default())
    );
    match status {
        Some(status) => (status, output),
        None => panic!("{shown} did not finish within {limit:?}; its output:\n{output}"),
    }
}

/// The longest installing a client's packages (`npm ci`, `pip`) may take.
pub const INSTALL_LIMIT: Duration = Duration::from_secs(240);

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
