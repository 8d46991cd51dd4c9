//! `examples/llm_stream.rs`, built and run against a loopback stand-in for
//! an OpenAI-style chat-completions endpoint that checks the bearer token.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The token the stand-in accepts.
const KEY: &str = "sk-test-good";

/// What it streams for a good token: the text, in pieces, the end marker,
/// and an event after it that must not be printed.
const COMPLETION: &str = "\
data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n\
: keep-alive\n\n\
data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\", wor\"}}]}\n\n\
data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ld \\u00e9\\n!\"}}]}\n\n\
data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n\
data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"after the end\"}}]}\n\n";

/// The error an OpenAI-style API sends with a 401.
const UNAUTHORIZED: &str = r#"{"error":{"message":"Incorrect API key provided: sk-bad.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;

/// A request as the stand-in read it.
struct Recorded {
    head: String,
    body: Vec<u8>,
}

/// Starts the stand-in for `connections` requests; returns its address and
/// the requests it gets. A good token gets [`COMPLETION`] on a connection
/// that then stays open (the example must stop at `[DONE]` by itself), a
/// bad one a 401 with [`UNAUTHORIZED`].
fn stand_in(connections: usize) -> (SocketAddr, mpsc::Receiver<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((socket, _)) = listener.accept() else {
                return;
            };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = answer(socket, &tx);
            });
        }
    });
    (addr, rx)
}

fn answer(mut socket: TcpStream, tx: &mpsc::Sender<Recorded>) -> std::io::Result<()> {
    socket.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = socket.read(&mut piece)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf.split_off(head_end + 4);
    while body.len() < length {
        let n = socket.read(&mut piece)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&piece[..n]);
    }
    let authorized = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .any(|(n, v)| {
            n.trim().eq_ignore_ascii_case("authorization") && v.trim() == format!("Bearer {KEY}")
        });
    let _ = tx.send(Recorded { head, body });
    if authorized {
        socket.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        )?;
        write!(socket, "{:x}\r\n{COMPLETION}\r\n", COMPLETION.len())?;
        // The stream stays open: only the example can end it.
    } else {
        write!(
            socket,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{UNAUTHORIZED}",
            UNAUTHORIZED.len()
        )?;
    }
    // Until the client hangs up.
    while socket.read(&mut piece)? > 0 {}
    Ok(())
}

/// Variables cargo sets for the processes it runs (besides `CARGO_PKG_*`).
const CARGO_RUN_ENV: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// The example, built once through the cargo running the tests, with the
/// features this test was built with (so the library is not built again;
/// a feature missing from the list only costs a build).
fn example() -> &'static PathBuf {
    static EXAMPLE: OnceLock<PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        let features: Vec<&str> = [
            ("codec", cfg!(feature = "codec")),
            ("tracing", cfg!(feature = "tracing")),
            ("rustls", cfg!(feature = "rustls")),
            ("webpki-roots", cfg!(feature = "webpki-roots")),
            ("gzip", cfg!(feature = "gzip")),
            ("json", cfg!(feature = "json")),
            ("hyper", cfg!(feature = "hyper")),
            ("axum", cfg!(feature = "axum")),
            ("reqwest", true),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        let mut cargo = Command::new(env!("CARGO"));
        // What cargo sets for the test process is not the build's
        // environment (build scripts that watch such a variable would
        // run again, and their dependents be rebuilt).
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_") || CARGO_RUN_ENV.contains(&&*name) {
                cargo.env_remove(&*name);
            }
        }
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "--message-format=json"])
            .args([
                "--package",
                env!("CARGO_PKG_NAME"),
                "--example",
                "llm_stream",
            ])
            .args(["--no-default-features", "--features", &features.join(",")]);
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let output = cargo.stderr(Stdio::inherit()).output().unwrap();
        assert!(output.status.success(), "building the example failed");
        // The executable named in the artifact message of the example.
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "llm_stream")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the example's executable")
    })
}

/// Runs the example against `addr` with `key`, for at most 60 s.
fn run(addr: SocketAddr, key: &str, prompt: &str) -> Output {
    let mut child = Command::new(example())
        .arg(format!("http://{addr}/v1/chat/completions"))
        .arg(prompt)
        .env("OPENAI_API_KEY", key)
        .env("OPENAI_MODEL", "test-model")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the example did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_good_token_prints_the_streamed_text_and_exits_0() {
    let (addr, requests) = stand_in(1);
    let output = run(addr, KEY, "Say hello");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "Hello, world \u{e9}\n!\n"
    );

    let request = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        request
            .head
            .starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "model": "test-model",
            "stream": true,
            "messages": [{"role": "user", "content": "Say hello"}],
        })
    );
}

#[test]
fn a_bad_token_prints_the_apis_message_and_fails() {
    let (addr, requests) = stand_in(1);
    let output = run(addr, "sk-bad", "Say hello");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{:?}", output.status);
    assert_eq!(
        stderr.trim_end(),
        "Incorrect API key provided: sk-bad.",
        "stderr: {stderr}"
    );
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
    let request = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(request.head.contains("Bearer sk-bad"), "{}", request.head);
}
