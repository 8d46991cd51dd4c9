//! The hub against real third-party SSE clients, used the way a user of
//! the hub would use them. Each test starts its own hub on a free loopback
//! port and drives one client:
//!
//! - Node.js's `eventsource` package (a WHATWG-compliant `EventSource`),
//!   through `tests/clients/eventsource.mjs`: live events with their ids,
//!   types and exact data (multi-line, non-ASCII, a named event), then a cut
//!   connection while events are published, after which the client must
//!   reconnect by itself with `Last-Event-ID` and get each missed event
//!   exactly once, in order.
//! - Python's `sseclient-py` over a `requests` stream, through
//!   `tests/clients/sseclient_check.py`, in a virtual environment created
//!   under Cargo's target directory (and reused) with the pinned packages of
//!   `tests/clients/requirements.txt`: live events, then a new stream with
//!   a `Last-Event-ID` header that must bring exactly the events after it.
//! - `curl -sN`, plain and with `--compressed` gzip: a published event must
//!   be readable while the stream is still open (each event is flushed, also
//!   through gzip).
//!
//! Needs `node` and `npm` (`npm ci` runs in `tests/clients` when its
//! `node_modules` is missing), `python3` with its `venv` module, network
//! access to PyPI for the first run, and `curl`. A missing tool fails the
//! test with what to install; nothing is skipped. Every wait is bounded.

use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::WAIT;
use common::hub::Hub;
use common::run::{INSTALL_LIMIT, npm_ci, require, run_bounded, run_client};

/// The bound on a whole client script.
const SCRIPT_LIMIT: Duration = Duration::from_secs(45);

/// The directory of the client scripts.
fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

// ---------------------------------------------------------------------------
// Node.js: the `eventsource` package
// ---------------------------------------------------------------------------

#[test]
fn eventsource_for_node_gets_live_events_and_catches_up_after_a_cut() {
    require("node", "Node.js (Debian: `apt-get install nodejs npm`)");
    let dir = clients_dir();
    npm_ci(&dir, "eventsource");

    let hub = Hub::for_clients();
    run_client(
        Command::new("node")
            .arg("eventsource.mjs")
            .current_dir(&dir),
        &hub,
        SCRIPT_LIMIT,
        "ok: every missed event arrived exactly once, in order",
    );
}

// ---------------------------------------------------------------------------
// Python: sseclient-py
// ---------------------------------------------------------------------------

/// The interpreter of a virtual environment.
fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin/python")
}

/// A virtual environment with the packages of `requirements.txt`, under
/// Cargo's target directory: reused when it was made from the same
/// requirements, else made afresh (in a scratch directory first, so that a
/// half-made one is never used).
fn sseclient_venv() -> PathBuf {
    let requirements = clients_dir().join("requirements.txt");
    let wanted = fs::read_to_string(&requirements).expect("read tests/clients/requirements.txt");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join("sseclient-venv");
    let stamp = "sse-requirements.txt";
    let ready = |venv: &Path| {
        venv_python(venv).exists()
            && fs::read_to_string(venv.join(stamp)).is_ok_and(|had| had == wanted)
    };
    if ready(&venv) {
        return venv;
    }

    require(
        "python3",
        "Python 3 (Debian: `apt-get install python3 python3-venv`)",
    );
    let scratch = root.join(format!("sseclient-venv.{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    let (status, output) = run_bounded(
        Command::new("python3").args(["-m", "venv"]).arg(&scratch),
        INSTALL_LIMIT,
    );
    assert!(
        status.success(),
        "`python3 -m venv` failed: install Python's venv module \
         (Debian: `apt-get install python3-venv`):\n{output}"
    );
    let (status, output) = run_bounded(
        Command::new(venv_python(&scratch))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(&requirements),
        INSTALL_LIMIT,
    );
    assert!(
        status.success(),
        "pip could not install {} (is PyPI reachable?):\n{output}",
        requirements.display()
    );
    fs::write(scratch.join(stamp), &wanted).expect("stamp the venv");
    let _ = fs::remove_dir_all(&venv);
    if fs::rename(&scratch, &venv).is_err() {
        // Another test process made it meanwhile.
        let _ = fs::remove_dir_all(&scratch);
        assert!(ready(&venv), "cannot set up {}", venv.display());
    }
    venv
}

#[test]
fn sseclient_py_gets_events_and_resumes_after_last_event_id() {
    let venv = sseclient_venv();
    let hub = Hub::for_clients();
    run_client(
        Command::new(venv_python(&venv))
            .arg("sseclient_check.py")
            .current_dir(clients_dir())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        &hub,
        SCRIPT_LIMIT,
        "ok: resumed after Last-Event-ID with exactly the events after it",
    );
}

// ---------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------

/// A running `curl` whose output (response head and body) is read as it
/// comes; killed when dropped.
struct Curl {
    child: Child,
    chunks: Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Curl {
    /// `curl -sN -D - EXTRA URL`: the response head goes to stdout too.
    fn start(extra: &[&str], url: &str) -> Curl {
        require("curl", "curl (Debian: `apt-get install curl`)");
        let mut child = Command::new("curl")
            .args(["-sN", "-D", "-"])
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run curl");
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, chunks) = mpsc::channel();
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match stdout.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(chunk[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
        Curl {
            child,
            chunks,
            seen: Vec::new(),
        }
    }

    /// Everything curl printed so far.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Reads until `done` holds for the output so far, within `limit`.
    fn wait_until(&mut self, what: &str, limit: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.text()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.seen.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "curl: no {what} within {limit:?}; output so far:\n{}",
                        self.text()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "curl ended ({:?}) before {what}; its output:\n{}",
                    self.child.try_wait(),
                    self.text()
                ),
            }
        }
    }

    /// The response head (once read), lower-cased.
    fn head(&self) -> String {
        let text = self.text();
        let end = text.find("\r\n\r\n").expect("a response head");
        text[..end].to_ascii_lowercase()
    }

    /// Waits for the stream to start: the head, then the `retry:` line the
    /// hub writes first (the hubs here run with `--retry 300`).
    fn wait_stream_start(&mut self) {
        self.wait_until("stream start", WAIT, |t| {
            t.split_once("\r\n\r\n")
                .is_some_and(|(_, body)| body.starts_with("retry: 300\n"))
        });
        let head = self.head();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: text/event-stream"),
            "{head}"
        );
    }

    /// The body's event with this id, as its (field, value) lines sorted
    /// by field (stably: data lines keep their order), without comments
    /// and `retry`; waits for its blank line.
    fn wait_event(&mut self, id: &str) -> Vec<(String, String)> {
        let wanted = format!("id: {id}");
        let find = |text: &str| -> Option<Vec<(String, String)>> {
            let (_, body) = text.split_once("\r\n\r\n")?;
            let complete = &body[..body.rfind("\n\n")? + 1];
            complete
                .split("\n\n")
                .find(|block| block.lines().any(|l| l == wanted))
                .map(|block| {
                    block
                        .lines()
                        .filter(|l| !l.is_empty() && !l.starts_with(':'))
                        .map(|l| {
                            let (field, value) = l.split_once(':').unwrap_or((l, ""));
                            let value = value.strip_prefix(' ').unwrap_or(value);
                            (field.to_owned(), value.to_owned())
                        })
                        .filter(|(field, _)| field != "retry")
                        .collect::<Vec<_>>()
                })
                .map(|mut lines| {
                    lines.sort_by(|a, b| a.0.cmp(&b.0));
                    lines
                })
        };
        self.wait_until(&format!("event {id}"), WAIT, |t| find(t).is_some());
        find(&self.text()).expect("the event")
    }

    /// Fails unless curl is still running (the stream is open).
    fn assert_running(&mut self) {
        assert_eq!(
            self.child.try_wait().expect("curl's status"),
            None,
            "curl ended: the hub closed the stream; output:\n{}",
            self.text()
        );
    }
}

impl Drop for Curl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Owned `(field, value)` lines, to compare with [`Curl::wait_event`].
fn fields(lines: &[(&str, &str)]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}

#[test]
fn curl_reads_a_published_event_from_an_open_stream() {
    let hub = Hub::for_clients();
    let topic = "https://example.com/clients/curl";
    let url = format!(
        "{}/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fclients%2Fcurl",
        hub.url()
    );
    let mut curl = Curl::start(&[], &url);
    curl.wait_stream_start();
    assert!(!curl.head().contains("content-encoding"), "{}", curl.head());

    let id = hub.publish_ok(&[
        ("topic", topic),
        ("type", "greeting"),
        ("id", "curl-1"),
        ("data", "line one\nline two ✓"),
    ]);
    assert_eq!(id, "curl-1");
    assert_eq!(
        curl.wait_event("curl-1"),
        fields(&[
            ("data", "line one"),
            ("data", "line two ✓"),
            ("event", "greeting"),
            ("id", "curl-1"),
        ])
    );
    curl.assert_running();
}

#[test]
fn curl_with_gzip_reads_each_event_while_the_stream_is_open() {
    let hub = Hub::for_clients();
    let url = format!("{}/.well-known/mercure?topic=gz", hub.url());
    let mut curl = Curl::start(&["--compressed", "-H", "Accept-Encoding: gzip"], &url);
    curl.wait_stream_start();
    assert!(
        curl.head().contains("\r\ncontent-encoding: gzip"),
        "the hub did not compress the stream:\n{}",
        curl.head()
    );

    // Each event is readable, decompressed, before the next is published
    // and while the stream stays open.
    for n in 1..=3 {
        let data = format!("compressed event {n} {}", "abc".repeat(n * 20));
        let id = hub.publish_ok(&[("topic", "gz"), ("data", &data)]);
        let started = Instant::now();
        let event = curl.wait_event(&id);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "event {n} took {:?} to come through gzip",
            started.elapsed()
        );
        assert_eq!(event, fields(&[("data", &data), ("id", &id)]));
        curl.assert_running();
    }
    // Heartbeats come through gzip too.
    let heartbeats = |t: &str| t.lines().filter(|l| *l == ":").count();
    let before = heartbeats(&curl.text());
    curl.wait_until("heartbeat", Duration::from_secs(3), |t| {
        heartbeats(t) > before
    });
    curl.assert_running();
}
