//! Starting a real `sse hub` for the integration tests.

#![allow(dead_code)] // Each test crate uses its own part of this module.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

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
        let mut command = Command::new(env!("CARGO_BIN_EXE_sse"));
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
