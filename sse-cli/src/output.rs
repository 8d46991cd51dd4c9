//! How events are printed: the JSON lines shared by `sse decode` and
//! `sse listen`, and the human-readable form of `sse listen --pretty`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use sse_proto::Event;

/// Writes `{"type":…,"data":…,"id":…}` and a line feed.
pub fn write_event(event: &Event, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"{\"type\":")?;
    write_json_str(event.event_type(), out)?;
    out.write_all(b",\"data\":")?;
    write_json_str(event.data(), out)?;
    out.write_all(b",\"id\":")?;
    write_json_str(event.id(), out)?;
    out.write_all(b"}\n")
}

/// Writes an event for people: `[type] id=…` (no `id=` when the last event
/// ID is empty), then each line of its data indented by two spaces, then an
/// empty line.
pub fn write_pretty_event(event: &Event, out: &mut impl Write) -> io::Result<()> {
    write!(out, "[{}]", escape_controls(event.event_type()))?;
    if !event.id().is_empty() {
        write!(out, " id={}", escape_controls(event.id()))?;
    }
    out.write_all(b"\n")?;
    for line in event.data().split('\n') {
        writeln!(out, "  {}", escape_controls(line))?;
    }
    out.write_all(b"\n")
}

/// `text` fit for a terminal: every control character other than line
/// feed and tab (an escape sequence's ESC, a carriage return, a bell) as
/// `\u{..}`, so bytes from a server cannot move the cursor, recolour or
/// retitle the terminal.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes `s` as a JSON string (quoted and escaped by serde_json), with
/// DEL and the C1 controls (U+007F to U+009F, which JSON allows raw but a
/// terminal may act on) escaped too.
pub fn write_json_str(s: &str, out: &mut impl Write) -> io::Result<()> {
    let json = serde_json::to_string(s).map_err(io::Error::from)?;
    if !json.chars().any(|c| ('\u{7f}'..='\u{9f}').contains(&c)) {
        return out.write_all(json.as_bytes());
    }
    let mut escaped = String::with_capacity(json.len() + 12);
    for c in json.chars() {
        if ('\u{7f}'..='\u{9f}').contains(&c) {
            // Writing to a String cannot fail.
            let _ = write!(escaped, "\\u{:04x}", u32::from(c));
        } else {
            escaped.push(c);
        }
    }
    out.write_all(escaped.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_escape_c1_controls_and_stay_json() {
        let mut out = Vec::new();
        write_json_str("a\u{9b}31m\u{7f}é\n", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "\"a\\u009b31m\\u007fé\\n\"");
        let back: String = serde_json::from_str(&text).unwrap();
        assert_eq!(back, "a\u{9b}31m\u{7f}é\n");
    }

    #[test]
    fn controls_are_escaped_for_the_terminal() {
        assert_eq!(escape_controls("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            escape_controls("\u{1b}[31mred\r\u{7}\u{9b}"),
            "\\u{1b}[31mred\\u{d}\\u{7}\\u{9b}"
        );
    }

    #[test]
    fn pretty_output_escapes_what_the_server_sent() {
        let mut decoder = sse_proto::Decoder::new();
        decoder.handle_bytes(b"event: a\x1b]0;t\x07\nid: \x1b[2J\ndata: x\x1b[31m\n\n");
        let event = decoder.poll_event().unwrap().unwrap();
        let mut out = Vec::new();
        write_pretty_event(&event, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains('\u{1b}'), "{out:?}");
        assert_eq!(
            out,
            "[a\\u{1b}]0;t\\u{7}] id=\\u{1b}[2J\n  x\\u{1b}[31m\n\n"
        );
    }
}
