//! The response head of an event stream (feature `http1`).

use super::stream::{BodyFraming, Encoding};
use crate::http1::{Framing, RequestHead, Response};

/// The response head for an event stream answering `request`, and how its
/// body is framed and encoded: `200` with `Content-Type: text/event-stream`,
/// `Cache-Control` ([`CACHE_CONTROL`](super::CACHE_CONTROL)), `X-Accel-Buffering: no` (so that
/// proxies such as nginx pass each event on at once), and
/// `Content-Encoding: gzip` with `Vary: Accept-Encoding` when `gzip_enabled`
/// and the request accepts it. HTTP/1.1 requests get a chunked body,
/// HTTP/1.0 ones a close-delimited body. Add more fields with
/// [`Response::header`] before encoding it.
///
/// ```
/// use bytes::BytesMut;
/// use sse_proto::http1::RequestParser;
/// use sse_proto::server::{stream_response, BodyFraming, Encoding};
///
/// let mut buf = BytesMut::from(&b"GET /events HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n"[..]);
/// let request = RequestParser::new().parse_buf(&mut buf)?.unwrap();
/// let (response, framing, encoding) = stream_response(&request, true);
/// assert_eq!((framing, encoding), (BodyFraming::Chunked, Encoding::Gzip));
/// let mut head = BytesMut::new();
/// response.encode(&mut head);
/// assert!(head.starts_with(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"));
/// # Ok::<(), sse_proto::http1::HeadError>(())
/// ```
pub fn stream_response(
    request: &RequestHead,
    gzip_enabled: bool,
) -> (Response, BodyFraming, Encoding) {
    let encoding = Encoding::negotiate(request.header_str("accept-encoding"), gzip_enabled);
    let framing = Framing::for_stream(request);
    let mut response = Response::event_stream();
    for (name, value) in encoding.stream_headers() {
        // Valid names and values: setting them cannot fail.
        let _ = response.replace_header(name, value);
    }
    let body = match framing {
        Framing::Chunked => BodyFraming::Chunked,
        _ => BodyFraming::Raw,
    };
    response.framing(framing);
    (response, body, encoding)
}
