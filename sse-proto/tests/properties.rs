//! Property tests: the decoder equals a literal, unoptimised reading of the
//! WHATWG algorithm on arbitrary input; any chunking gives the same output as
//! the whole input (in both feeding modes, with and without tight limits);
//! lent events (`poll_event_ref`) are the owned ones, also when the two ways
//! of polling alternate; decode(encode(events)) gives the events back.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sse_proto::{
    DecodeError, Decoder, EventId, EventName, Frame, InvalidField, Limits, OutgoingEvent,
};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Event {
        event_type: String,
        data: String,
        id: String,
    },
    Retry(u64),
    Error(DecodeError),
}

/// The spec, read literally: decode the whole stream (one BOM stripped,
/// invalid UTF-8 replaced), split it into lines, process each line.
fn reference(input: &[u8]) -> (Vec<Out>, String, Option<u64>) {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = String::from_utf8_lossy(input);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut line));
            }
            '\n' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }
    // `line` is now the unterminated last line: never processed.
    let (mut data, mut event_type, mut id_buffer, mut last_id) =
        (String::new(), String::new(), String::new(), String::new());
    let mut retry = None;
    let mut out = Vec::new();
    for line in lines {
        if line.is_empty() {
            last_id = id_buffer.clone();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            let t = if event_type.is_empty() {
                "message".to_owned()
            } else {
                event_type.clone()
            };
            out.push(Out::Event {
                event_type: t,
                data: std::mem::take(&mut data),
                id: last_id.clone(),
            });
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line.as_str(), ""),
        };
        match field {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id_buffer = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse::<u64>() {
                    retry = Some(ms);
                    out.push(Out::Retry(ms));
                }
            }
            _ => {}
        }
    }
    (out, last_id, retry)
}

#[derive(Clone, Copy, Debug)]
enum Feed {
    Copy,
    Chunk,
}

fn decode(
    input: &[u8],
    cuts: &[usize],
    feed: Feed,
    limits: Limits,
) -> (Vec<Out>, String, Option<u64>) {
    let mut decoder = Decoder::with_limits(limits);
    let mut out = Vec::new();
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let cut = cut.clamp(start, input.len());
        pieces.push(&input[start..cut]);
        start = cut;
    }
    pieces.push(&input[start..]);
    let drain = |decoder: &mut Decoder, out: &mut Vec<Out>| loop {
        match decoder.poll_frame() {
            Ok(Some(Frame::Event(e))) => out.push(Out::Event {
                event_type: e.event_type().into(),
                data: e.data().into(),
                id: e.id().into(),
            }),
            Ok(Some(Frame::Retry(r))) => {
                out.push(Out::Retry(u64::try_from(r.as_millis()).unwrap()))
            }
            Ok(Some(_)) => unreachable!(),
            Ok(None) => return true,
            Err(e) => {
                out.push(Out::Error(e));
                // Terminal: the same error again, and nothing else.
                assert_eq!(decoder.poll_frame(), Err(e));
                return false;
            }
        }
    };
    for piece in pieces {
        match feed {
            Feed::Copy => decoder.handle_bytes(piece),
            Feed::Chunk => decoder.handle_chunk(Bytes::copy_from_slice(piece)),
        }
        if !drain(&mut decoder, &mut out) {
            return (
                out,
                decoder.last_event_id().into(),
                decoder.retry().map(|r| r.as_millis() as u64),
            );
        }
    }
    decoder.handle_eof();
    drain(&mut decoder, &mut out);
    (
        out,
        decoder.last_event_id().into(),
        decoder.retry().map(|r| r.as_millis() as u64),
    )
}

/// Pieces that make up event streams, including every tricky byte.
const TOKENS: &[&[u8]] = &[
    b"data",
    b"data:",
    b"data: ",
    b"event:",
    b"event: ",
    b"id:",
    b"id: ",
    b"retry:",
    b"retry: ",
    b":",
    b" ",
    b"\n",
    b"\n",
    b"\n",
    b"\r",
    b"\r\n",
    b"\r\n",
    b"x",
    b"hello",
    b"message",
    b"0",
    b"12",
    b"18446744073709551616",
    b"\0",
    b"\xEF\xBB\xBF",
    b"\xEF\xBB",
    b"\xC3\xA9",
    b"\xF0\x9F\x99\x82",
    b"\xFF",
    b"\xE2\x82",
    b"Data",
    b"ev",
    b"ent",
    b"\t",
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    // Longer than a 64-byte scan window, and than the 128 bytes after which
    // the decoder hands a line over to memchr2.
    b"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
];

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.concat())
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..1200, 0..12).prop_map(|mut c| {
        c.sort_unstable();
        c
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoder_matches_the_literal_algorithm(input in stream(), cuts in cuts()) {
        let want = reference(&input);
        prop_assert_eq!(&decode(&input, &[], Feed::Copy, Limits::default()), &want);
        prop_assert_eq!(&decode(&input, &cuts, Feed::Copy, Limits::default()), &want);
        prop_assert_eq!(&decode(&input, &cuts, Feed::Chunk, Limits::default()), &want);
    }

    #[test]
    fn a_leading_bom_split_anywhere_is_skipped_once(
        input in stream(),
        first_cut in 0usize..4,
        cuts in cuts(),
    ) {
        let input = [b"\xEF\xBB\xBF".as_slice(), &input].concat();
        let want = reference(&input);
        let cuts: Vec<usize> = std::iter::once(first_cut).chain(cuts.into_iter().map(|c| c.max(first_cut))).collect();
        prop_assert_eq!(&decode(&input, &cuts, Feed::Copy, Limits::default()), &want);
        prop_assert_eq!(&decode(&input, &cuts, Feed::Chunk, Limits::default()), &want);
    }

    #[test]
    fn any_chunking_gives_the_whole_input_output_even_at_the_limits(
        input in stream(),
        cuts in cuts(),
        max_line in 0usize..60,
        max_event in 0usize..120,
    ) {
        let limits = Limits::default().max_line_len(max_line).max_event_size(max_event);
        let whole = decode(&input, &[], Feed::Copy, limits);
        prop_assert_eq!(&decode(&input, &cuts, Feed::Copy, limits), &whole);
        prop_assert_eq!(&decode(&input, &cuts, Feed::Chunk, limits), &whole);
        let bytewise: Vec<usize> = (1..input.len()).collect();
        prop_assert_eq!(&decode(&input, &bytewise, Feed::Chunk, limits), &whole);
    }
}

/// How events are taken out of the decoder.
#[derive(Clone, Copy, Debug)]
enum Take {
    /// `poll_frame`, retries dropped.
    Owned,
    /// `poll_event_ref`.
    Lent,
    /// `poll_event_ref` and `poll_frame` in turn.
    Alternating,
}

/// The events (type, data, id) in order, the error that ended them if any,
/// and the final last event ID and retry.
type Taken = (
    Vec<(String, String, String)>,
    Option<DecodeError>,
    String,
    Option<Duration>,
);

fn take_events(input: &[u8], cuts: &[usize], take: Take, limits: Limits) -> Taken {
    let mut decoder = Decoder::with_limits(limits);
    let mut events = Vec::new();
    let mut turn = false;
    let mut error = None;
    let mut start = 0;
    let ends = cuts
        .iter()
        .map(|&c| c.clamp(0, input.len()))
        .chain([input.len()]);
    let mut drain = |decoder: &mut Decoder, events: &mut Vec<(String, String, String)>| loop {
        turn = !turn;
        let lend = match take {
            Take::Owned => false,
            Take::Lent => true,
            Take::Alternating => turn,
        };
        let next = if lend {
            decoder
                .poll_event_ref()
                .map(|e| e.map(|e| Some((e.event_type().into(), e.data().into(), e.id().into()))))
        } else {
            decoder.poll_frame().map(|f| {
                f.map(|f| match f {
                    Frame::Event(e) => {
                        Some((e.event_type().into(), e.data().into(), e.id().into()))
                    }
                    _ => None,
                })
            })
        };
        match next {
            Ok(Some(Some(event))) => events.push(event),
            Ok(Some(None)) => {}
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    };
    for end in ends {
        let end = end.max(start);
        decoder.handle_chunk(Bytes::copy_from_slice(&input[start..end]));
        start = end;
        if let Some(e) = drain(&mut decoder, &mut events) {
            error = Some(e);
            break;
        }
    }
    if error.is_none() {
        decoder.handle_eof();
        error = drain(&mut decoder, &mut events);
    }
    (
        events,
        error,
        decoder.last_event_id().into(),
        decoder.retry(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn lent_events_are_the_owned_events(
        input in stream(),
        cuts in cuts(),
        max_line in 0usize..200,
        max_event in 0usize..400,
    ) {
        for limits in [Limits::default(), Limits::default().max_line_len(max_line).max_event_size(max_event)] {
            let owned = take_events(&input, &cuts, Take::Owned, limits);
            prop_assert_eq!(&take_events(&input, &cuts, Take::Lent, limits), &owned);
            prop_assert_eq!(&take_events(&input, &cuts, Take::Alternating, limits), &owned);
        }
    }
}

/// Characters that stress the encoder: every line end, NUL, spaces, colons,
/// BOM, multi-byte text.
fn text() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        'a', 'Z', ' ', ':', '\r', '\n', '\0', 'é', '🙂', '\u{FEFF}', '\t',
    ]);
    prop::collection::vec(chars, 0..16).prop_map(|c| c.into_iter().collect())
}

#[derive(Clone, Debug)]
struct Spec {
    id: Option<String>,
    name: Option<String>,
    data: String,
    retry: Option<u64>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(text()),
        prop::option::of(text()),
        text(),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(id, name, data, retry)| Spec {
            id,
            name,
            data,
            retry,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_of_encode_gives_the_events_back(specs in prop::collection::vec(spec(), 0..6), cuts in cuts()) {
        let mut wire = BytesMut::new();
        let mut want = Vec::new();
        let mut last_id = String::new();
        for spec in &specs {
            let id = spec.id.as_deref().map(EventId::new);
            let name = spec.name.as_deref().map(EventName::new);
            // Validation rejects exactly the values that could inject a field.
            if let (Some(raw), Some(result)) = (&spec.id, &id) {
                let expect = if raw.contains(['\r', '\n']) {
                    Err(InvalidField::IdLineBreak)
                } else if raw.contains('\0') {
                    Err(InvalidField::IdNul)
                } else {
                    Ok(())
                };
                prop_assert_eq!(result.as_ref().map(|_| ()).map_err(|e| *e), expect);
            }
            if let (Some(raw), Some(result)) = (&spec.name, &name) {
                prop_assert_eq!(result.is_err(), raw.contains(['\r', '\n']));
            }
            let id = id.and_then(Result::ok);
            let name = name.and_then(Result::ok);
            let mut event = OutgoingEvent::new(&spec.data);
            if let Some(id) = &id {
                event = event.id(id);
                last_id = id.as_str().to_owned();
            }
            if let Some(name) = &name {
                event = event.event(name);
            }
            if let Some(ms) = spec.retry {
                event = event.retry(Duration::from_millis(ms));
                want.push(Out::Retry(ms));
            }
            let before = wire.len();
            event.encode(&mut wire);
            prop_assert_eq!(wire.len() - before, event.encoded_len());
            let event_type = match name.as_ref().map(|n| n.as_str()) {
                None | Some("") => "message".to_owned(),
                Some(n) => n.to_owned(),
            };
            want.push(Out::Event {
                event_type,
                data: spec.data.replace("\r\n", "\n").replace('\r', "\n"),
                id: last_id.clone(),
            });
        }
        let (got, final_id, _) = decode(&wire, &cuts, Feed::Chunk, Limits::default());
        prop_assert_eq!(got, want);
        prop_assert_eq!(final_id, last_id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The checks behind `try_id`/`try_event` (borrowed strings, one pass)
    /// and behind `from_static` (a `const fn`) accept and reject exactly
    /// what `EventId::new`/`EventName::new` do, with the same errors; and
    /// an event built either way encodes to the same bytes.
    #[test]
    fn every_way_of_checking_a_field_agrees(value in text(), data in text()) {
        let by_new = EventId::new(value.as_str());
        let borrowed = OutgoingEvent::new(&data).try_id(&value);
        prop_assert_eq!(borrowed.map(|_| ()), by_new.clone().map(|_| ()));
        let leaked: &'static str = Box::leak(value.clone().into_boxed_str());
        let by_const = std::panic::catch_unwind(|| EventId::from_static(leaked));
        prop_assert_eq!(by_const.ok(), by_new.clone().ok());

        let name_by_new = EventName::new(value.as_str());
        let borrowed = OutgoingEvent::new(&data).try_event(&value);
        prop_assert_eq!(borrowed.map(|_| ()), name_by_new.clone().map(|_| ()));
        let by_const = std::panic::catch_unwind(|| EventName::from_static(leaked));
        prop_assert_eq!(by_const.ok(), name_by_new.clone().ok());

        if let (Ok(id), Ok(name)) = (&by_new, &name_by_new) {
            let owned = OutgoingEvent::new(&data).id(id).event(name).to_bytes();
            let borrowed = OutgoingEvent::new(&data).try_id(&value).and_then(|e| e.try_event(&value));
            prop_assert_eq!(borrowed.map(|e| e.to_bytes()), Ok(owned));
        }
    }
}
