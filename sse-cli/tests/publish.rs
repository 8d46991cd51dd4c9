//! `sse publish` against a real `sse hub` on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

mod common;

use common::HubProcess;
use std::time::Duration;

fn hub(args: &[&str]) -> (HubProcess, String) {
    let process = HubProcess::start(args, &[]);
    let addr = process.addr.to_string();
    (process, addr)
}

fn publish(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sse"))
        .arg("publish")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The hub's whole history, as raw event-stream text.
fn history(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.write_all(b"GET /.well-known/mercure?topic=*&lastEventID=earliest HTTP/1.0\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn publishes_every_field_and_prints_the_id() {
    let (_hub, addr) = hub(&[]);
    let url = format!("http://{addr}");
    let (code, id, err) = publish(
        &[
            &url,
            "--topic",
            "a",
            "--topic",
            "b",
            "--data",
            "two\nlines",
            "--type",
            "note",
            "--retry",
            "1500",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let id = id.trim();
    assert!(!id.is_empty());
    let (code, own, _) = publish(
        &[
            &format!("{url}/.well-known/mercure"),
            "-t",
            "a",
            "-d",
            "-",
            "--id",
            "mine-1",
        ],
        "from stdin",
    );
    assert_eq!((code, own.trim()), (0, "mine-1"));
    let text = history(&addr);
    assert!(
        text.contains(&format!(
            "retry: 1500\nid: {id}\nevent: note\ndata: two\ndata: lines\n\n"
        )),
        "{text}"
    );
    assert!(text.contains("id: mine-1\ndata: from stdin\n\n"), "{text}");
}

#[test]
fn a_refusal_is_reported_with_the_status() {
    let (_hub, addr) = hub(&["--jwt-key", "secret"]);
    let url = format!("http://{addr}");
    let (code, out, err) = publish(&[&url, "--topic", "a", "--data", "x"], "");
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("(401)"), "{err}");
    let (code, _, err) = publish(
        &[&url, "--topic", "a", "--id", "#x", "--token", "x.y.z"],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("refused"), "{err}");
    let (code, _, err) = publish(&["http://127.0.0.1:1", "--topic", "a"], "");
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the hub"), "{err}");
}
