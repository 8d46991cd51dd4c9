//! Runs the real `sse listen` against scripted HTTP servers on 127.0.0.1:
//! each test's server answers connection `n` with a script and records every
//! request it received. Every run of the binary is bounded in time: the child
//! is killed after a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::http::{free_port, header};
use common::run::{RUN_LIMIT, assert_help_lists, run_with_input, run_with_stdout_closed, sse};

/// A request as the server saw it.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// The value of the header field `name` (any case).
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Reads one request head and its `Content-Length` body.
fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let len = header(&headers, "content-length").map_or(0, |v| v.parse().unwrap_or(0));
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// What the server does with connection `n`: write these pieces (with a
/// pause before each), then close.
type Script = Vec<(Duration, Vec<u8>)>;

const STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";

/// A 200 event-stream response with this body, then close.
fn stream(body: &str) -> Script {
    vec![(Duration::ZERO, format!("{STREAM_HEAD}{body}").into_bytes())]
}

/// A complete, body-less response with this status line and headers.
fn status(line: &str, headers: &str) -> Script {
    vec![(
        Duration::ZERO,
        format!("HTTP/1.1 {line}\r\n{headers}Content-Length: 0\r\n\r\n").into_bytes(),
    )]
}

/// A scripted server: connection `n` gets `scripts[n]` (the last script
/// repeats). Requests are recorded in order.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Starts the server on a free loopback port.
    fn start(scripts: Vec<Script>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let script = scripts[n.min(scripts.len() - 1)].clone();
                let recorded = Arc::clone(&recorded);
                thread::spawn(move || {
                    let Some(request) = read_request(&stream) else {
                        return;
                    };
                    recorded.lock().unwrap().push(request);
                    for (pause, bytes) in script {
                        thread::sleep(pause);
                        if stream.write_all(&bytes).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Server { url, requests }
    }

    /// Every request received so far, in order.
    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// What a run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Each line of stdout, parsed as JSON.
    fn lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }

    /// Exit code `code`, with stderr free of panics.
    fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
    }
}

/// Runs `sse listen ARGS` with `stdin` as input, within [`RUN_LIMIT`].
fn listen(args: &[&str], stdin: &[u8]) -> Run {
    let out = run_with_input(sse(&["listen"]).args(args), stdin, RUN_LIMIT);
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn prints_events_as_json_lines() {
    let server = Server::start(vec![stream(
        "id: 1\nevent: greeting\ndata: hello\ndata: world\n\n: comment\ndata: two\n\n",
    )]);
    let run = listen(&["--no-reconnect", &server.url], b"");
    run.assert_exit(0);
    assert_eq!(
        run.stdout,
        "{\"type\":\"greeting\",\"data\":\"hello\\nworld\",\"id\":\"1\"}\n\
         {\"type\":\"message\",\"data\":\"two\",\"id\":\"1\"}\n"
    );
    let requests = server.requests();
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/events");
    assert_eq!(requests[0].header("accept"), Some("text/event-stream"));
    assert_eq!(requests[0].header("last-event-id"), None);
}

#[test]
fn pretty_output() {
    let server = Server::start(vec![stream(
        "id: 7\nevent: up\ndata: a\ndata: b\n\ndata: c\n\n",
    )]);
    let run = listen(&["--pretty", "--no-reconnect", &server.url], b"");
    run.assert_exit(0);
    assert_eq!(run.stdout, "[up] id=7\n  a\n  b\n\n[message] id=7\n  c\n\n");
}

#[test]
fn reconnects_with_last_event_id_after_a_dropped_connection() {
    let server = Server::start(vec![
        stream("retry: 10\nid: 42\ndata: first\n\n"),
        stream("data: second\n\n"),
    ]);
    let run = listen(&["--max-events", "2", &server.url], b"");
    run.assert_exit(0);
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert_eq!(lines[0]["data"], "first");
    assert_eq!(lines[1]["data"], "second");
    assert_eq!(lines[1]["id"], "42");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("last-event-id"), None);
    assert_eq!(requests[1].header("last-event-id"), Some("42"));
    // One notice line for the one reconnect.
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("reconnecting in 10ms"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_content_exits_zero() {
    let server = Server::start(vec![status("204 No Content", "")]);
    let run = listen(&[&server.url], b"");
    run.assert_exit(0);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn server_error_is_fatal_with_one_sentence() {
    let server = Server::start(vec![status("500 Internal Server Error", "")]);
    let run = listen(&[&server.url], b"");
    run.assert_exit(1);
    assert_eq!(
        run.stderr,
        "sse listen: error: the server answered 500 Internal Server Error; not retrying\n"
    );
    assert_eq!(server.requests().len(), 1, "no retry");
}

#[test]
fn wrong_content_type_is_fatal() {
    let server = Server::start(vec![vec![(
        Duration::ZERO,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
    )]]);
    let run = listen(&[&server.url], b"");
    run.assert_exit(1);
    // The reason, then what the server said.
    assert_eq!(
        run.stderr,
        "sse listen: error: the server sent Content-Type text/html, not text/event-stream; \
         not retrying\nhello\n"
    );
}

#[test]
fn max_events_exits_while_the_stream_is_open() {
    // The stream stays open long after its five events.
    let mut script = stream("data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: 5\n\n");
    script.push((Duration::from_secs(30), b"data: late\n\n".to_vec()));
    let server = Server::start(vec![script]);
    let start = Instant::now();
    let run = listen(&["--max-events", "3", &server.url], b"");
    run.assert_exit(0);
    assert!(start.elapsed() < Duration::from_secs(10));
    let data: Vec<_> = run.lines().iter().map(|l| l["data"].clone()).collect();
    assert_eq!(data, ["1", "2", "3"]);
}

#[test]
fn headers_and_last_event_id_are_sent() {
    let server = Server::start(vec![status("204 No Content", "")]);
    let run = listen(
        &[
            "--header",
            "X-Token: secret value",
            "-H",
            "Authorization:Bearer abc",
            "--last-event-id",
            "99",
            &server.url,
        ],
        b"",
    );
    run.assert_exit(0);
    let request = &server.requests()[0];
    assert_eq!(request.header("x-token"), Some("secret value"));
    assert_eq!(request.header("authorization"), Some("Bearer abc"));
    assert_eq!(request.header("last-event-id"), Some("99"));
}

#[test]
fn post_with_a_body() {
    let server = Server::start(vec![stream("data: ok\n\n")]);
    let run = listen(
        &[
            "--method",
            "POST",
            "--body",
            r#"{"topic":"a"}"#,
            "--header",
            "Content-Type: application/json",
            "--no-reconnect",
            &server.url,
        ],
        b"",
    );
    run.assert_exit(0);
    assert_eq!(run.lines()[0]["data"], "ok");
    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.body, br#"{"topic":"a"}"#);
    assert_eq!(request.header("content-type"), Some("application/json"));
}

#[test]
fn body_from_stdin_implies_post() {
    let server = Server::start(vec![status("204 No Content", "")]);
    let run = listen(&["--body", "-", &server.url], b"from stdin\n");
    run.assert_exit(0);
    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.body, b"from stdin\n");
}

#[test]
fn timeout_reconnects_from_an_idle_server() {
    // The first connection sends its head and a retry, then nothing for
    // 30 s; the second delivers an event.
    let mut idle = stream("retry: 10\n\n");
    idle.push((Duration::from_secs(30), b"data: too late\n\n".to_vec()));
    let server = Server::start(vec![idle, stream("id: 5\ndata: after\n\n")]);
    let start = Instant::now();
    let run = listen(
        &["--timeout", "300ms", "--max-events", "1", &server.url],
        b"",
    );
    run.assert_exit(0);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(run.lines()[0]["data"], "after");
    assert_eq!(server.requests().len(), 2);
    assert!(run.stderr.contains("idle timeout"), "{}", run.stderr);
}

#[test]
fn no_reconnect_exits_after_the_first_stream() {
    let server = Server::start(vec![stream("retry: 10\ndata: one\n\n")]);
    let run = listen(&["--no-reconnect", &server.url], b"");
    run.assert_exit(0);
    assert_eq!(run.lines().len(), 1);
    assert_eq!(run.stderr, "");
    // Give a wrong second connection time to show up.
    thread::sleep(Duration::from_millis(100));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn refused_connection_with_no_reconnect_is_an_error() {
    // A port that was just free: nothing listens there.
    let port = free_port();
    let run = listen(
        &["--no-reconnect", &format!("http://127.0.0.1:{port}/")],
        b"",
    );
    run.assert_exit(1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("sse listen: error: "));
    assert!(run.stderr.contains("--no-reconnect"), "{}", run.stderr);
}

#[test]
fn user_mistakes_are_one_line_errors() {
    for args in [
        &["--header", "no colon", "http://127.0.0.1:1/"][..],
        &["--timeout", "5 parsecs", "http://127.0.0.1:1/"],
        &["--max-events", "0", "http://127.0.0.1:1/"],
        &["not a url"],
        // Without TLS support https is refused up front; with it (feature
        // `rustls`, in any feature combination), nothing listens on port 1
        // and --no-reconnect makes that final.
        &["--no-reconnect", "https://127.0.0.1:1/"],
        &["--method", "BAD METHOD", "http://127.0.0.1:1/"],
    ] {
        let run = listen(args, b"");
        assert!(
            matches!(run.code, Some(1 | 2)),
            "{args:?}: {:?} {}",
            run.code,
            run.stderr
        );
        assert!(run.stderr.contains("error"), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn help_documents_every_flag() {
    assert_help_lists(
        &["listen", "--help"],
        &[
            "--pretty",
            "--last-event-id",
            "--header",
            "--max-events",
            "--timeout",
            "--method",
            "--body",
            "--no-reconnect",
        ],
    );
    assert_help_lists(&["--help"], &["listen"]);
}

#[test]
fn closed_stdout_exits_quietly() {
    let mut script = stream("data: 1\n\n");
    for _ in 0..50 {
        script.push((Duration::from_millis(10), b"data: more\n\n".to_vec()));
    }
    let server = Server::start(vec![script]);
    // The reader goes away at once (like `| head -0`).
    let out = run_with_stdout_closed(&mut sse(&["listen", &server.url]), b"", RUN_LIMIT);
    let (status, stderr) = (out.status, String::from_utf8_lossy(&out.stderr));
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(stderr, "");
}
