//! How events are printed: the JSON lines shared by `sse decode` and
//! `sse listen`, and the human-readable form of `sse listen --pretty`.

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
    write!(out, "[{}]", event.event_type())?;
    if !event.id().is_empty() {
        write!(out, " id={}", event.id())?;
    }
    out.write_all(b"\n")?;
    for line in event.data().split('\n') {
        writeln!(out, "  {line}")?;
    }
    out.write_all(b"\n")
}

/// Writes `s` as a JSON string (quoted and escaped by serde_json).
pub fn write_json_str(s: &str, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(out, s).map_err(io::Error::from)
}
