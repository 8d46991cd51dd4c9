//! Events from tokio readers: `read_events` and the `tokio_util` codec,
//! fed over a real in-memory pipe in pieces.

use std::pin::Pin;
use std::time::Duration;

use futures_core::Stream;
use sse_proto::{DecodeError, Decoder, Limits};
use sse_tokio::EventsError;
use sse_tokio::codec::{EventCodec, read_events};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

/// Writes `pieces` to a pipe one by one (yielding between them) and closes
/// it; the reading end.
fn piped(pieces: &'static [&'static [u8]]) -> tokio::io::DuplexStream {
    let (mut writer, reader) = tokio::io::duplex(64);
    tokio::spawn(async move {
        for piece in pieces {
            writer.write_all(piece).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    reader
}

/// Every item of a stream, within a bound.
async fn all<S: Stream + Unpin>(mut stream: S) -> Vec<S::Item> {
    let collect = async {
        let mut items = Vec::new();
        while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await
        {
            items.push(item);
        }
        items
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("the stream ends")
}

const PIECES: &[&[u8]] = &[
    b"\xEF\xBB\xBFid: 1\nda",
    b"ta: one\r",
    b"\n\r\nevent: x\ndata: two\n",
    b"\ndata: never dispatched",
];

#[tokio::test]
async fn a_reader_in_pieces_gives_the_events_of_the_whole() {
    let events = all(read_events(piped(PIECES))).await;
    let got: Vec<(String, String, String)> = events
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            (e.event_type().into(), e.data().into(), e.id().into())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("message".into(), "one".into(), "1".into()),
            ("x".into(), "two".into(), "1".into())
        ]
    );
}

#[tokio::test]
async fn the_codec_gives_the_same_events_and_drops_an_unfinished_one() {
    let frames = FramedRead::new(piped(PIECES), EventCodec::new());
    let data: Vec<String> = all(frames)
        .await
        .into_iter()
        .map(|e| e.unwrap().data().to_owned())
        .collect();
    assert_eq!(data, ["one", "two"]);
}

#[tokio::test]
async fn a_limit_is_an_error_from_both() {
    const LONG: &[&[u8]] = &[b"data: ok\n\n", b"data: 0123456789abcdef\n\n"];
    let limits = Limits::default().max_line_len(12);
    let codec = EventCodec::with_decoder(Decoder::with_limits(limits));
    let items = all(FramedRead::new(piped(LONG), codec)).await;
    assert_eq!(items[0].as_ref().map(|e| e.data()).ok(), Some("ok"));
    assert!(matches!(
        items[1],
        Err(EventsError::Decode(DecodeError::LineTooLong { limit: 12 }))
    ));
    let events = sse_tokio::Events::with_decoder(
        tokio_util::io::ReaderStream::new(piped(LONG)),
        Decoder::with_limits(limits),
    );
    let items = all(events).await;
    assert_eq!(items.len(), 2, "the stream ends after its error");
    assert!(matches!(items[1], Err(EventsError::Decode(_))));
}
