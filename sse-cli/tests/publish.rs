//! `sse publish` against a real `sse hub` on 127.0.0.1.

mod common;

use common::WAIT;
use common::hub::Hub;
use common::run::{RUN_LIMIT, run_with_input, sse};

/// Runs `sse publish ARGS` with `stdin` as input: its exit code, stdout
/// and stderr.
fn publish(args: &[&str], stdin: &str) -> (i32, String, String) {
    let out = run_with_input(sse(&["publish"]).args(args), stdin.as_bytes(), RUN_LIMIT);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn publishes_every_field_and_prints_the_id() {
    let hub = Hub::start(&[]);
    let url = hub.url();
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
    // The hub's whole history, as event-stream text.
    let mut history = hub.subscribe("topic=*&lastEventID=earliest", &[]);
    history.wait_text(WAIT, |t| t.contains("data: from stdin\n\n"));
    let text = history.text();
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
    let hub = Hub::start(&["--jwt-key", "secret"]);
    let url = hub.url();
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
