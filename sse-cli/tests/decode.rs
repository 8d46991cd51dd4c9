//! Runs the real `sse` binary: `sse decode` on the sample stream, on edge
//! cases, and on every shared conformance vector
//! (`sse-proto/tests/vectors/parse-vectors.json`).

use std::process::Output;

use base64::Engine as _;
use serde_json::Value;

mod common;

use common::run::{RUN_LIMIT, assert_help_lists, run_with_input, run_with_stdout_closed, sse};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/sample.sse");
const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../sse-proto/tests/vectors/parse-vectors.json"
);

/// Runs `sse decode ARGS` with `input` on stdin.
fn decode(args: &[&str], input: &[u8]) -> Output {
    run_with_input(sse(&["decode"]).args(args), input, RUN_LIMIT)
}

/// Runs `sse decode <args>`, requires success and an empty stderr, and
/// returns stdout.
fn decode_ok(args: &[&str], input: &[u8]) -> String {
    let output = decode(args, input);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sse decode {args:?} failed: {stderr}"
    );
    assert!(stderr.is_empty(), "unexpected stderr: {stderr}");
    String::from_utf8(output.stdout).expect("the output is UTF-8")
}

/// The sample stream's bytes.
fn sample() -> Vec<u8> {
    std::fs::read(SAMPLE).unwrap()
}

const SAMPLE_EVENTS: &str = r#"{"type":"greeting","data":"hello, world","id":"1"}
{"type":"message","data":"line 1\nline 2\nline 3 (the space after the colon is optional)","id":"1"}
{"type":"update","data":"{\"price\": 10}","id":"42"}
{"type":"message","data":"no id field here\n leading space kept","id":"42"}
"#;

#[test]
fn sample_events() {
    assert_eq!(decode_ok(&[], &sample()), SAMPLE_EVENTS);
}

#[test]
fn sample_all() {
    let expected = format!(
        "{{\"retry\":5000}}\n{SAMPLE_EVENTS}{{\"eof\":true,\"last_event_id\":\"42\",\"retry\":5000}}\n"
    );
    assert_eq!(decode_ok(&["--all"], &sample()), expected);
}

#[test]
fn sample_has_crlf_lines_a_comment_and_a_retry() {
    let sample = String::from_utf8(sample()).unwrap();
    assert!(sample.contains("\r\n\r\n"));
    assert!(sample.contains("\n: "));
    assert!(sample.contains("retry: "));
}

#[test]
fn output_does_not_depend_on_chunk_size() {
    let input = sample();
    let whole = decode_ok(&["--all"], &input);
    for size in ["1", "2", "3", "7", "64", "100000"] {
        assert_eq!(
            decode_ok(&["--all", "--chunk-size", size], &input),
            whole,
            "--chunk-size {size}"
        );
    }
}

#[test]
fn eof_line_without_retry_or_events() {
    assert_eq!(
        decode_ok(&["--all"], b""),
        "{\"eof\":true,\"last_event_id\":\"\",\"retry\":null}\n"
    );
    assert_eq!(decode_ok(&[], b""), "");
    // An id set by a block that dispatches nothing still becomes the last
    // event ID; the unterminated last block is discarded.
    assert_eq!(
        decode_ok(&["--all"], b"id: 7\n\ndata: cut"),
        "{\"eof\":true,\"last_event_id\":\"7\",\"retry\":null}\n"
    );
}

#[test]
fn retry_lines_in_stream_order() {
    let out = decode_ok(
        &["--all"],
        b"retry: 1\ndata: a\n\nretry: x\nretry: 20\nretry: 30\n\ndata: b\n\n",
    );
    assert_eq!(
        out,
        concat!(
            "{\"retry\":1}\n",
            "{\"type\":\"message\",\"data\":\"a\",\"id\":\"\"}\n",
            "{\"retry\":20}\n",
            "{\"retry\":30}\n",
            "{\"type\":\"message\",\"data\":\"b\",\"id\":\"\"}\n",
            "{\"eof\":true,\"last_event_id\":\"\",\"retry\":30}\n",
        )
    );
    // Without --all, only events.
    assert_eq!(
        decode_ok(&[], b"retry: 1\ndata: a\n\n"),
        "{\"type\":\"message\",\"data\":\"a\",\"id\":\"\"}\n"
    );
}

#[test]
fn u64_max_retry_is_exact() {
    let out = decode_ok(
        &["--all"],
        b"retry: 18446744073709551615\nretry: 18446744073709551616\n",
    );
    assert_eq!(
        out,
        concat!(
            "{\"retry\":18446744073709551615}\n",
            "{\"eof\":true,\"last_event_id\":\"\",\"retry\":18446744073709551615}\n",
        )
    );
    let eof: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(eof["retry"].as_u64(), Some(u64::MAX));
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let out = decode_ok(
        &[],
        b"event: \xff\ndata: a\xc3\x28b\xf0\x9f\x92\ndata: \xe2\x82\xac\n\n",
    );
    assert_eq!(
        out,
        "{\"type\":\"\u{FFFD}\",\"data\":\"a\u{FFFD}(b\u{FFFD}\\n\u{20AC}\",\"id\":\"\"}\n"
    );
}

#[test]
fn control_characters_are_escaped() {
    let out = decode_ok(&[], b"data: a\0b\x01\t\"\\\x7f\n\n");
    assert_eq!(
        out,
        // DEL is escaped too (as C1 controls are): a terminal shows the
        // line as it is.
        "{\"type\":\"message\",\"data\":\"a\\u0000b\\u0001\\t\\\"\\\\\\u007f\",\"id\":\"\"}\n"
    );
    let event: Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(event["data"], "a\0b\u{1}\t\"\\\u{7f}");
}

/// Checks a run stopped by a limit: exit code 1, the events before the
/// error on stdout (`events`, as JSON lines), and one line on stderr that
/// names each of `says`.
fn assert_limit_error(output: Output, events: &str, says: &[&str]) {
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), events);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for said in says {
        assert!(stderr.contains(said), "{stderr}");
    }
}

#[test]
fn line_limit_error_comes_after_earlier_events() {
    let input = b"data: short\n\ndata: this line is too long\n\ndata: later\n\n";
    for chunk in ["1", "65536"] {
        assert_limit_error(
            decode(&["--max-line-len", "16", "--chunk-size", chunk], input),
            "{\"type\":\"message\",\"data\":\"short\",\"id\":\"\"}\n",
            &["16-byte limit", "--max-line-len"],
        );
    }
}

#[test]
fn event_size_error() {
    assert_limit_error(
        decode(
            &["--all", "--max-event-size", "4"],
            b"data: ab\ndata: c\n\ndata: abc\ndata: d\n\n",
        ),
        "{\"type\":\"message\",\"data\":\"ab\\nc\",\"id\":\"\"}\n",
        &["--max-event-size"],
    );
}

#[test]
fn usage_errors() {
    for args in [
        &["--chunk-size", "0"][..],
        &["--chunk-size", "-1"],
        &["--chunk-size", "x"],
        &["--max-line-len", "huge"],
        &["--bogus"],
    ] {
        let output = decode(args, b"data: a\n\n");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let stderr = String::from_utf8(decode(&["--chunk-size", "0"], b"").stderr).unwrap();
    assert!(stderr.contains("at least 1"), "{stderr}");
}

#[test]
fn help_documents_every_flag() {
    for help in ["-h", "--help"] {
        assert_help_lists(
            &["decode", help],
            &[
                "--chunk-size",
                "--all",
                "--max-line-len",
                "--max-event-size",
            ],
        );
    }
}

#[test]
fn closed_stdout_exits_quietly() {
    // Our end of stdout is closed before the binary writes anything.
    let block = b"data: x\n\n".repeat(100_000);
    let output = run_with_stdout_closed(&mut sse(&["decode"]), &block, RUN_LIMIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    assert!(output.status.success());
}

/// One conformance case, as `sse decode --all` must reproduce it.
struct Case {
    name: String,
    input: Vec<u8>,
    /// `(type, data, id, retry)` of each event.
    expected: Vec<(String, String, String, Option<u64>)>,
    final_retry: Option<u64>,
    final_last_event_id: String,
}

/// Every case of the shared conformance vectors.
fn vectors() -> Vec<Case> {
    let text = std::fs::read_to_string(VECTORS).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    let str_of = |v: &Value| v.as_str().unwrap().to_owned();
    cases
        .iter()
        .map(|case| Case {
            name: str_of(&case["name"]),
            input: base64::engine::general_purpose::STANDARD
                .decode(case["input_b64"].as_str().unwrap())
                .unwrap(),
            expected: case["expected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        str_of(&e["type"]),
                        str_of(&e["data"]),
                        str_of(&e["id"]),
                        e["retry"].as_u64(),
                    )
                })
                .collect(),
            final_retry: case["final_retry"].as_u64(),
            final_last_event_id: str_of(&case["final_last_event_id"]),
        })
        .collect()
}

/// Checks the `--all` output of one case; returns a description of the
/// first mismatch.
fn check(case: &Case, out: &str) -> Result<(), String> {
    let mut events = Vec::new();
    let mut pending_retry = None;
    let mut last_retry = None;
    let mut eof = None;
    for line in out.lines() {
        if eof.is_some() {
            return Err(format!("line after the eof line: {line}"));
        }
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
        let object = value.as_object().ok_or(format!("not an object: {line}"))?;
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        match keys.as_slice() {
            ["type", "data", "id"] | ["data", "id", "type"] => {
                let field = |k: &str| object[k].as_str().unwrap().to_owned();
                events.push((
                    field("type"),
                    field("data"),
                    field("id"),
                    pending_retry.take(),
                ));
            }
            ["retry"] => {
                let retry = object["retry"]
                    .as_u64()
                    .ok_or(format!("bad retry: {line}"))?;
                pending_retry = Some(retry);
                last_retry = Some(retry);
            }
            _ if object.get("eof") == Some(&Value::Bool(true)) => {
                eof = Some((
                    object["last_event_id"].as_str().unwrap().to_owned(),
                    object["retry"].as_u64(),
                    object["retry"].is_null(),
                ));
            }
            _ => return Err(format!("unexpected line: {line}")),
        }
    }
    if events != case.expected {
        return Err(format!("events {events:?}, expected {:?}", case.expected));
    }
    let (last_event_id, retry, retry_null) = eof.ok_or("no eof line")?;
    if last_event_id != case.final_last_event_id {
        return Err(format!("last_event_id {last_event_id:?}"));
    }
    if retry != case.final_retry || retry_null != case.final_retry.is_none() {
        return Err(format!("eof retry {retry:?}"));
    }
    if last_retry != case.final_retry {
        return Err(format!("last retry line {last_retry:?}"));
    }
    Ok(())
}

#[test]
fn conformance_vectors() {
    let cases = vectors();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let whole = decode_ok(&["--all"], &case.input);
        if let Err(why) = check(case, &whole) {
            failures.push(format!("{} (whole): {why}", case.name));
        }
        for size in ["1", "7"] {
            let out = decode_ok(&["--all", "--chunk-size", size], &case.input);
            if out != whole {
                failures.push(format!(
                    "{} (--chunk-size {size}): output differs from whole input:\n{out}\nvs\n{whole}",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
