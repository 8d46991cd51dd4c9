//! `sse publish` against a real `sse hub` on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Hub(Child, String);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hub(args: &[&str]) -> Hub {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sse"))
        .args(["hub", "--listen", "127.0.0.1:0"])
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let addr = line.split("listening on http://").nth(1).unwrap();
    let addr = addr.split_whitespace().next().unwrap().to_owned();
    std::thread::spawn(move || for _ in lines {});
    Hub(child, addr)
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
    let hub = hub(&[]);
    let url = format!("http://{}", hub.1);
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
    let text = history(&hub.1);
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
    let hub = hub(&["--jwt-key", "secret"]);
    let url = format!("http://{}", hub.1);
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
