//! A real `sse hub` process on a free loopback port, and the requests the
//! tests make to it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::WAIT;
use super::http::{Conn, HUB_PATH, Resp, exchange, form, metric, request, with_form_type};
use super::stream::Stream;

/// A running `sse hub` process; killed when dropped.
pub struct Hub {
    /// The process.
    pub child: Child,
    /// The address it listens on, as its first log line gives it.
    pub addr: SocketAddr,
    /// Its first log line.
    pub first_line: String,
    /// Every line it logged so far (stderr is drained for the hub's whole
    /// life: a full pipe would block its logging).
    log: Arc<Mutex<Vec<String>>>,
}

impl Hub {
    /// Starts `sse hub ARGS --listen 127.0.0.1:0`.
    pub fn start(args: &[&str]) -> Hub {
        Hub::start_env(args, &[])
    }

    /// A hub as the client scripts and the `curl` checks expect it: every
    /// stream starts with `retry: 300`, and idle ones get a heartbeat
    /// every second.
    pub fn for_clients() -> Hub {
        Hub::start(&["--retry", "300", "--heartbeat", "1s"])
    }

    /// Starts `sse hub ARGS` with these environment variables; no other
    /// `SSE_HUB_*` variable of the test's environment leaks in. It listens
    /// on `127.0.0.1:0` unless the arguments or `env` choose an address.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Hub {
        Hub::start_wrapped(&[], args, env)
    }

    /// [`Hub::start_env`], run by `wrapper` (a program and its arguments,
    /// given the hub's command line after them; for example `prlimit
    /// --nofile=64:64 --`). The address is read from the first log line.
    pub fn start_wrapped(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Hub {
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
        let first_line = match rx.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("the hub printed no log line within {WAIT:?} (status {status:?})");
            }
        };
        let addr = first_line
            .split("listening on http://")
            .nth(1)
            .or_else(|| first_line.split("listening on https://").nth(1))
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
        Hub {
            child,
            addr,
            first_line,
            log,
        }
    }

    /// The hub's base URL, `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until the hub has logged a line containing `text`; that line.
    pub fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the hub never logged {text:?}:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (`-TERM`, `-INT`, ...) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Waits up to `timeout` for the process to exit; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// A new connection to the hub.
    pub fn connect(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// Sends a raw request on a new connection and reads the response.
    pub fn raw(&self, request: &[u8]) -> Resp {
        exchange(self.addr, request)
    }

    /// `GET target` with these header fields.
    pub fn get(&self, target: &str, headers: &[(&str, &str)]) -> Resp {
        self.raw(&request("GET", target, headers, b""))
    }

    /// `OPTIONS target` (a CORS preflight) with these header fields.
    pub fn options(&self, target: &str, headers: &[(&str, &str)]) -> Resp {
        self.raw(&request("OPTIONS", target, headers, b""))
    }

    /// `POST` of this (already encoded) form body to the hub's path.
    pub fn post(&self, body: &[u8], headers: &[(&str, &str)]) -> Resp {
        self.post_to(HUB_PATH, body, headers)
    }

    /// `POST` of this (already encoded) form body to `target`.
    pub fn post_to(&self, target: &str, body: &[u8], headers: &[(&str, &str)]) -> Resp {
        self.raw(&request("POST", target, &with_form_type(headers), body))
    }

    /// Publishes a form built from `fields`.
    pub fn publish(&self, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Resp {
        self.post(form(fields).as_bytes(), headers)
    }

    /// Publishes and expects 200; the id.
    pub fn publish_ok(&self, fields: &[(&str, &str)]) -> String {
        let resp = self.publish(fields, &[]);
        assert_eq!(resp.status, 200, "publish {fields:?}: {}", resp.text());
        resp.text()
    }

    /// Publishes `data` to `topic` and checks that `stream` receives it as
    /// its next event; the event's id.
    #[track_caller]
    pub fn assert_delivers(&self, stream: &mut Stream, topic: &str, data: &str) -> String {
        let id = self.publish_ok(&[("topic", topic), ("data", data)]);
        let event = stream.event();
        assert_eq!((event.id(), event.data()), (id.as_str(), data));
        id
    }

    /// Opens an event stream (`query` is the query string); panics unless
    /// the answer is 200.
    pub fn subscribe(&self, query: &str, headers: &[(&str, &str)]) -> Stream {
        match self.open(query, headers) {
            Ok(stream) => stream,
            Err(resp) => panic!("subscribe {query}: status {} {}", resp.status, resp.text()),
        }
    }

    /// Opens an event stream: the stream on 200, the whole response else.
    pub fn open(&self, query: &str, headers: &[(&str, &str)]) -> Result<Stream, Resp> {
        let target = format!("{HUB_PATH}?{query}");
        Stream::open(self.addr, &request("GET", &target, headers, b""))
    }

    /// Subscribes until the hub takes the subscription, within [`WAIT`]
    /// (it frees a closed connection's place asynchronously); meanwhile
    /// every refusal must have one of the `refusals` statuses.
    pub fn subscribe_eventually(&self, query: &str, refusals: &[u16]) -> Stream {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.open(query, &[]) {
                Ok(stream) => return stream,
                Err(resp) if Instant::now() < deadline => {
                    assert!(
                        refusals.contains(&resp.status),
                        "refused with {}: {}",
                        resp.status,
                        resp.text()
                    );
                    thread::sleep(Duration::from_millis(20));
                }
                Err(resp) => panic!("still {} {} after {WAIT:?}", resp.status, resp.text()),
            }
        }
    }

    /// The `/metrics` page.
    pub fn metrics(&self) -> String {
        let resp = self.get("/metrics", &[]);
        assert_eq!(resp.status, 200);
        resp.text()
    }

    /// The value of the sample `name` of `/metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        metric(&self.metrics(), name)
    }

    /// Waits until the sample `name` of `/metrics` satisfies `done`.
    pub fn wait_for_metric(&self, name: &str, done: impl Fn(u64) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.metric(name);
            if done(value) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} stays at {value} for {WAIT:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails unless `/healthz` answers 200 `ok`.
    pub fn assert_healthy(&self) {
        let resp = self.get("/healthz", &[]);
        assert_eq!(resp.status, 200, "the hub stopped answering /healthz");
        assert_eq!(resp.text().trim(), "ok");
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
