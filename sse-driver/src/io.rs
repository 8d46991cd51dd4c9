//! The I/O decisions every loop shares, made once: an `Interrupted` error
//! is retried, a write that takes nothing is `WriteZero`, and what a
//! transport buffers is flushed after the last byte of each batch.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use crate::rt::Transport;

/// One read into `buf`, retrying `Interrupted`.
pub(crate) fn poll_read<T: Transport + ?Sized>(
    io: &mut T,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    loop {
        match io.poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// One vectored write of `bufs`, retrying `Interrupted`; taking nothing of
/// a non-empty batch is `WriteZero`.
pub(crate) fn poll_write<T: Transport + ?Sized>(
    io: &mut T,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    loop {
        match io.poll_write_vectored(cx, bufs) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Ok(0)) if bufs.iter().any(|b| !b.is_empty()) => {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            other => return other,
        }
    }
}

/// A flush, retrying `Interrupted`.
pub(crate) fn poll_flush<T: Transport + ?Sized>(
    io: &mut T,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    loop {
        match io.poll_flush(cx) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Writes all of `bytes`, then flushes (`Interrupted` retried, a write
/// that takes nothing is `WriteZero`).
pub async fn write_all<T: Transport + ?Sized>(io: &mut T, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| poll_write(io, cx, &[IoSlice::new(bytes)])).await?;
        bytes = bytes.get(n..).unwrap_or_default();
    }
    poll_fn(|cx| poll_flush(io, cx)).await
}

/// Reads what comes next onto `buf` (at most 8 KiB): how many bytes, `0`
/// at the end of the stream.
pub async fn read_buf<T: Transport + ?Sized>(
    io: &mut T,
    buf: &mut bytes::BytesMut,
) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    let n = poll_fn(|cx| poll_read(io, cx, &mut chunk)).await?;
    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    Ok(n)
}

/// Closes the writing side (after flushing it).
pub(crate) async fn close<T: Transport + ?Sized>(io: &mut T) -> io::Result<()> {
    poll_fn(|cx| io.poll_close(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::future::Future;
    use std::pin::pin;
    use std::task::Waker;

    /// A transport that answers each call from a script, then takes
    /// everything.
    #[derive(Default)]
    struct Scripted {
        answers: VecDeque<io::Result<usize>>,
        written: Vec<u8>,
        flushes: usize,
    }

    impl Transport for Scripted {
        fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(self.answers.pop_front().unwrap_or(Ok(0)))
        }

        fn poll_write_vectored(
            &mut self,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            let answer = self.answers.pop_front().unwrap_or(Ok(first.len()));
            if let Ok(n) = answer {
                self.written
                    .extend_from_slice(first.get(..n).unwrap_or(first));
            }
            Poll::Ready(answer)
        }

        fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn interrupted() -> io::Result<usize> {
        Err(io::ErrorKind::Interrupted.into())
    }

    fn run<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the scripted transport never waits"),
        }
    }

    #[test]
    fn interrupted_is_retried_everywhere() {
        let mut io = Scripted::default();
        io.answers.extend([interrupted(), Ok(3)]);
        let mut buf = [0; 8];
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            poll_read(&mut io, &mut cx, &mut buf),
            Poll::Ready(Ok(3))
        ));
        io.answers.extend([interrupted(), Ok(2), interrupted()]);
        run(write_all(&mut io, b"hello")).unwrap();
        assert_eq!(io.written, b"hello");
        assert_eq!(io.flushes, 1, "flushed once, after the last byte");
    }

    #[test]
    fn a_write_that_takes_nothing_is_write_zero() {
        let mut io = Scripted::default();
        io.answers.push_back(Ok(0));
        let err = run(write_all(&mut io, b"x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
        assert_eq!(io.flushes, 0);
        // An empty batch taking nothing is no error.
        let mut cx = Context::from_waker(Waker::noop());
        io.answers.push_back(Ok(0));
        assert!(matches!(
            poll_write(&mut io, &mut cx, &[IoSlice::new(&[])]),
            Poll::Ready(Ok(0))
        ));
    }

    #[test]
    fn other_errors_pass_through() {
        let mut io = Scripted::default();
        io.answers
            .push_back(Err(io::ErrorKind::ConnectionReset.into()));
        let err = run(write_all(&mut io, b"x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
}
