//! The `http1` module: table-driven cases and properties (split invariance,
//! encode-then-decode roundtrips, no panic on any input).
#![cfg(feature = "http1")]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sse_proto::http1::{
    BodyDecoder, BodyError, BodyKind, BodyLimits, FramingError, HeadError, HeadLimits, LAST_CHUNK,
    Parsed, Request, RequestParser, Response, ResponseHead, ResponseParser, Url, UrlError,
    encode_chunk,
};

fn response(input: &[u8]) -> Result<ResponseHead, HeadError> {
    match ResponseParser::new().parse(input)? {
        Parsed::Complete { head, .. } => Ok(head),
        Parsed::Partial => panic!("partial: {input:?}"),
    }
}

#[test]
fn response_framing_table() {
    use BodyKind::*;
    use FramingError::*;
    let cases: &[(&str, &str, Result<BodyKind, FramingError>)] = &[
        ("HTTP/1.1 200 OK\r\n\r\n", "GET", Ok(CloseDelimited)),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            "GET",
            Ok(Length(10)),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            "HEAD",
            Ok(Length(0)),
        ),
        ("HTTP/1.1 204 No Content\r\n\r\n", "GET", Ok(Length(0))),
        (
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            "GET",
            Ok(Length(0)),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET",
            Ok(Chunked),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
            "GET",
            Ok(Chunked),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            "GET",
            Ok(Length(3)),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "GET",
            Err(ConflictingContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
            "GET",
            Err(ConflictingContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "GET",
            Err(InvalidContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
            "GET",
            Err(InvalidContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "GET",
            Err(TransferEncodingWithContentLength),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "GET",
            Err(UnsupportedTransferCoding),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET",
            Err(UnsupportedTransferCoding),
        ),
        (
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET",
            Err(TransferEncodingInHttp10),
        ),
    ];
    for (input, method, want) in cases {
        let head = response(input.as_bytes()).unwrap();
        assert_eq!(head.body_kind(method), *want, "{input:?}");
    }
}

#[test]
fn response_head_error_table() {
    let cases: &[(&[u8], HeadError)] = &[
        (
            b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
            HeadError::InvalidHeaderName,
        ),
        (
            b"HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n",
            HeadError::InvalidHeaderName,
        ),
        (
            b"HTTP/1.1 200 OK\r\nA: \x01\r\n\r\n",
            HeadError::InvalidHeaderValue,
        ),
        (b"HTTP/1.1 2000 OK\r\n\r\n", HeadError::InvalidStatus),
        (b"SSH-2.0-OpenSSH\r\n\r\n", HeadError::InvalidVersion),
        (b"HTTP/1.1 200 OK\rX\n\n", HeadError::InvalidStatus),
    ];
    for (input, want) in cases {
        assert_eq!(
            ResponseParser::new().parse(input).err(),
            Some(*want),
            "{input:?}"
        );
    }
    // A head that never ends hits the size limit, even if fed in pieces.
    let mut parser = ResponseParser::with_limits(HeadLimits::default().max_head_len(1024));
    let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
    let mut result = Ok(Parsed::Partial);
    for _ in 0..200 {
        input.extend_from_slice(b"X-Filler: 0123456789\r\n");
        result = parser.parse(&input);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(HeadError::TooLarge));
}

#[test]
fn body_table() {
    use BodyError::*;
    use BodyKind::*;
    type Case = (
        BodyKind,
        &'static [u8],
        &'static [u8],
        Result<bool, BodyError>,
    );
    // (framing, input, body, Ok(done before EOF) or the error)
    let cases: &[Case] = &[
        (Chunked, b"1\r\na\r\n0\r\n\r\n", b"a", Ok(true)),
        (
            Chunked,
            b"1;a=b;c\r\na\r\n0;x\r\nX-T: 1\r\nY: 2\r\n\r\n",
            b"a",
            Ok(true),
        ),
        (Chunked, b"0001\r\na\r\n00\r\n\r\n", b"a", Ok(true)),
        (
            Chunked,
            b"f\r\n0123456789abcde\r\n0\r\n\r\n",
            b"0123456789abcde",
            Ok(true),
        ),
        (Chunked, b"1\r\na\r\n", b"a", Err(Truncated)),
        (Chunked, b"1\r\nab\r\n", b"a", Err(MissingCrlf)),
        (Chunked, b"-1\r\n", b"", Err(InvalidChunkSize)),
        (Chunked, b"1\n\na\r\n", b"", Err(InvalidChunkSize)),
        (
            Chunked,
            b"ffffffffffffffff0\r\n",
            b"",
            Err(ChunkSizeOverflow),
        ),
        (Length(4), b"abcdef", b"abcd", Ok(true)),
        (Length(4), b"abc", b"abc", Err(Truncated)),
        (CloseDelimited, b"abc", b"abc", Ok(false)),
    ];
    for (kind, input, want_body, want) in cases {
        let (body, outcome) = decode_split(*kind, BodyLimits::default(), input, &[]);
        assert_eq!(&body[..], *want_body, "{input:?}");
        match want {
            Ok(done) => assert_eq!(
                outcome,
                Outcome::Ok {
                    done_before_eof: *done
                },
                "{input:?}"
            ),
            Err(e) => assert_eq!(outcome, Outcome::Err(*e), "{input:?}"),
        }
    }
}

#[test]
fn url_join_table() {
    let base = Url::parse("https://example.com/a/b/c.html?x=1").unwrap();
    let cases: &[(&str, Result<&str, UrlError>)] = &[
        ("http://other.org/p", Ok("http://other.org/p")),
        ("//cdn.example.com/s", Ok("https://cdn.example.com/s")),
        ("/root", Ok("https://example.com/root")),
        ("sibling", Ok("https://example.com/a/b/sibling")),
        ("./sibling/", Ok("https://example.com/a/b/sibling/")),
        ("../up?q", Ok("https://example.com/a/up?q")),
        ("/x/../../y", Ok("https://example.com/y")),
        ("  /spaced path  ", Ok("https://example.com/spaced%20path")),
        ("ftp://h/", Err(UrlError::UnsupportedScheme)),
        ("https://user@h/", Err(UrlError::UserInfo)),
        ("https://h:99999/", Err(UrlError::InvalidPort)),
    ];
    for (reference, want) in cases {
        let got = base.join(reference).map(|u| u.to_string());
        assert_eq!(got.as_deref().map_err(|e| *e), *want, "{reference:?}");
    }
}

#[test]
fn request_to_server_parser() {
    let url = Url::parse("http://example.com:8080/stream?x=%20").unwrap();
    let mut req = Request::new("POST", url).unwrap();
    req.header("Accept", "text/event-stream").unwrap();
    req.content_length(Some(3));
    let mut buf = BytesMut::new();
    req.encode(&mut buf);
    buf.extend_from_slice(b"abc");
    let head = RequestParser::new().parse_buf(&mut buf).unwrap().unwrap();
    assert_eq!((head.method(), head.target()), ("POST", "/stream?x=%20"));
    assert_eq!(head.header_str("host"), Some("example.com:8080"));
    assert_eq!(head.body_kind(), Ok(BodyKind::Length(3)));
    assert_eq!(&buf[..], b"abc");
}

#[test]
fn sse_response_to_client() {
    let mut buf = BytesMut::new();
    let mut resp = Response::event_stream();
    resp.header("X-Accel-Buffering", "no").unwrap();
    resp.encode(&mut buf);
    encode_chunk(&mut buf, b"data: 1\n\n");
    encode_chunk(&mut buf, b"data: 2\n\n");
    buf.extend_from_slice(LAST_CHUNK);
    let head = ResponseParser::new().parse_buf(&mut buf).unwrap().unwrap();
    assert!(head.is_event_stream());
    let mut decoder = BodyDecoder::new(head.body_kind("GET").unwrap());
    let mut body = Vec::new();
    while let Some(piece) = decoder.decode(&mut buf).unwrap() {
        body.extend_from_slice(&piece);
    }
    assert!(decoder.is_done());
    assert_eq!(body, b"data: 1\n\ndata: 2\n\n");
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok { done_before_eof: bool },
    Err(BodyError),
}

/// Feeds `input` cut at `cuts` (sorted, in range) and returns the body and
/// the outcome, including `handle_eof`.
fn decode_split(
    kind: BodyKind,
    limits: BodyLimits,
    input: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, Outcome) {
    let mut decoder = BodyDecoder::with_limits(kind, limits);
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([input.len()]) {
        buf.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(piece)) => {
                    assert!(!piece.is_empty());
                    body.extend_from_slice(&piece);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.decode(&mut buf), Err(e), "errors are terminal");
                    return (body, Outcome::Err(e));
                }
            }
        }
    }
    let done = decoder.is_done();
    match decoder.handle_eof() {
        Ok(()) => (
            body,
            Outcome::Ok {
                done_before_eof: done,
            },
        ),
        Err(e) => (body, Outcome::Err(e)),
    }
}

/// Random bytes, or bytes drawn from the characters HTTP framing uses (so
/// that structure actually appears).
fn wire_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..max),
        prop::collection::vec(
            prop::sample::select(b"\r\n\r\n \t:;=0123aF-xX\0\x7f\xff".to_vec()),
            0..max
        ),
    ]
}

fn cuts_for(len: usize, raw: &[usize]) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.iter().map(|c| c % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

/// A chunked body with random chunk sizes, extensions, trailers, and an
/// optional corruption.
fn chunked_input() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (
        prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 0..6),
        prop::collection::vec(any::<bool>(), 6),
        any::<bool>(),
    )
        .prop_map(|(chunks, exts, trailers)| {
            let mut wire = Vec::new();
            let mut body = Vec::new();
            for (chunk, ext) in chunks.iter().zip(exts.iter().chain([false].iter().cycle())) {
                wire.extend_from_slice(format!("{:X}", chunk.len()).as_bytes());
                if *ext {
                    wire.extend_from_slice(b" ; name=\"v\"");
                }
                wire.extend_from_slice(b"\r\n");
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
                body.extend_from_slice(chunk);
            }
            wire.extend_from_slice(b"0\r\n");
            if trailers {
                wire.extend_from_slice(b"Expires: never\r\nX: y\r\n");
            }
            wire.extend_from_slice(b"\r\n");
            (wire, body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn chunked_valid_any_split((wire, body) in chunked_input(), raw in prop::collection::vec(any::<usize>(), 0..12), extra in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut input = wire.clone();
        input.extend_from_slice(&extra);
        let cuts = cuts_for(input.len(), &raw);
        let (got, outcome) = decode_split(BodyKind::Chunked, BodyLimits::default(), &input, &cuts);
        prop_assert_eq!(got, body);
        prop_assert_eq!(outcome, Outcome::Ok { done_before_eof: true });
        // The bytes after the body are left for the next message.
        let mut decoder = BodyDecoder::new(BodyKind::Chunked);
        let mut buf = BytesMut::from(&input[..]);
        while decoder.decode(&mut buf).unwrap().is_some() {}
        prop_assert_eq!(&buf[..], &extra[..]);
    }

    #[test]
    fn chunked_corrupted_any_split((wire, _) in chunked_input(), pos in any::<usize>(), byte in any::<u8>(), raw in prop::collection::vec(any::<usize>(), 0..12), small in any::<bool>()) {
        let mut input = wire;
        let i = pos % input.len();
        input[i] = byte;
        let limits = if small { BodyLimits::default().max_chunk_line_len(4).max_trailers_len(8) } else { BodyLimits::default() };
        let whole = decode_split(BodyKind::Chunked, limits, &input, &[]);
        let split = decode_split(BodyKind::Chunked, limits, &input, &cuts_for(input.len(), &raw));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn any_bytes_any_framing_split_invariant(input in wire_bytes(200), raw in prop::collection::vec(any::<usize>(), 0..12), kind in 0u8..4, len in 0u64..300) {
        let kind = match kind {
            0 => BodyKind::CloseDelimited,
            1 => BodyKind::Length(len),
            _ => BodyKind::Chunked,
        };
        let whole = decode_split(kind, BodyLimits::default(), &input, &[]);
        let split = decode_split(kind, BodyLimits::default(), &input, &cuts_for(input.len(), &raw));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn chunk_framing_roundtrip(pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8), raw in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut wire = BytesMut::new();
        for piece in &pieces {
            encode_chunk(&mut wire, piece);
        }
        wire.extend_from_slice(LAST_CHUNK);
        let cuts = cuts_for(wire.len(), &raw);
        let (body, outcome) = decode_split(BodyKind::Chunked, BodyLimits::default(), &wire, &cuts);
        prop_assert_eq!(body, pieces.concat());
        prop_assert_eq!(outcome, Outcome::Ok { done_before_eof: true });
    }

    #[test]
    fn request_roundtrip(
        method in "[A-Z]{1,8}|[!#$%&'*+.^_`|~0-9a-z-]{1,8}",
        path in "(/[a-zA-Z0-9._~%!$&'()*+,;=:@ -]{0,10}){0,4}(\\?[ -~]{0,20})?",
        host in "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,8}){0,2}",
        port in prop::option::of(1u16..),
        headers in prop::collection::vec(("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}", "[ -~\t\u{80}-\u{10ffff}]{0,30}"), 0..6),
        content_length in prop::option::of(any::<u64>()),
    ) {
        let url_text = match port {
            Some(p) => format!("http://{host}:{p}{path}"),
            None => format!("http://{host}{path}"),
        };
        let url = Url::parse(&url_text).unwrap();
        let mut request = Request::new(&method, url.clone()).unwrap();
        let mut sent = Vec::new();
        for (name, value) in &headers {
            if let Ok(r) = request.header(name, value) {
                sent.push(r.headers().last().unwrap().clone());
            }
        }
        request.content_length(content_length);
        let mut wire = BytesMut::new();
        request.encode(&mut wire);
        let Parsed::Complete { head, len } = RequestParser::new().parse(&wire).unwrap() else {
            panic!("partial")
        };
        prop_assert_eq!(len, wire.len());
        prop_assert_eq!(head.method(), method.as_str());
        prop_assert_eq!(head.target(), url.target());
        let authority = url.authority();
        prop_assert_eq!(head.header_str("host"), Some(authority.as_str()));
        let parsed: Vec<_> = head.headers().iter().skip(1).filter(|h| !h.is("content-length")).cloned().collect();
        prop_assert_eq!(parsed, sent);
        let want = BodyKind::Length(content_length.unwrap_or(0));
        prop_assert_eq!(head.body_kind(), Ok(want));
    }

    #[test]
    fn response_head_split_invariant(input in wire_bytes(300), prefix in any::<bool>(), raw in prop::collection::vec(any::<usize>(), 0..10)) {
        let mut bytes = if prefix { b"HTTP/1.1 200 OK\r\n".to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&input);
        let limits = HeadLimits::default().max_head_len(200).max_headers(4);
        let whole = ResponseParser::with_limits(limits).parse(&bytes);
        let mut parser = ResponseParser::with_limits(limits);
        let mut split = Ok(Parsed::Partial);
        for end in cuts_for(bytes.len(), &raw).into_iter().chain([bytes.len()]) {
            split = parser.parse(&bytes[..end]);
            if !matches!(split, Ok(Parsed::Partial)) {
                break;
            }
        }
        prop_assert_eq!(split, whole.clone());
        if let Ok(Parsed::Complete { head, len }) = whole {
            let mut buf = BytesMut::from(&bytes[..]);
            let again = ResponseParser::with_limits(limits).parse_buf(&mut buf).unwrap();
            prop_assert_eq!(again, Some(head.clone()));
            prop_assert_eq!(buf.len(), bytes.len() - len);
            let _ = (head.body_kind("GET"), head.retry_after(), head.keep_alive(), head.content_length());
        }
    }

    #[test]
    fn request_parser_never_panics(input in wire_bytes(300)) {
        let mut bytes = b"GET / HTTP/1.1\r\n".to_vec();
        bytes.extend_from_slice(&input);
        for candidate in [&input[..], &bytes[..]] {
            if let Ok(Parsed::Complete { head, .. }) = RequestParser::new().parse(candidate) {
                let _ = (head.body_kind(), head.keep_alive(), head.path(), head.last_event_id());
            }
        }
    }

    #[test]
    fn url_parse_and_join_never_panic(a in "\\PC{0,40}", b in "(https?:)?(//)?[ -~\u{80}-\u{10ffff}]{0,40}") {
        if let Ok(url) = Url::parse(&a) {
            prop_assert_eq!(Url::parse(&url.to_string()), Ok(url.clone()));
        }
        let base = Url::parse("http://h/x/y").unwrap();
        if let Ok(joined) = base.join(&b) {
            prop_assert!(joined.target().starts_with('/'));
            prop_assert!(joined.target().bytes().all(|c| c.is_ascii_graphic()));
            prop_assert_eq!(Url::parse(&joined.to_string()), Ok(joined.clone()));
        }
    }
}

#[test]
fn piece_is_zero_copy() {
    let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\n"[..]);
    let ptr = buf.as_ptr();
    let mut decoder = BodyDecoder::new(BodyKind::Chunked);
    let piece: Bytes = decoder.decode(&mut buf).unwrap().unwrap();
    assert_eq!(piece.as_ptr(), ptr.wrapping_add(3));
}
