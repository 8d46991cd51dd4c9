//! Answers to pipelined requests, written together: a keep-alive answer
//! waits in the connection's outbox while the next request is already in
//! the read buffer, and the outbox goes out in one write before the
//! connection reads from its socket again or writes anything else. A
//! publisher that pipelines four requests gets four answers in one segment
//! instead of four (a write per answer was most of the kernel's time per
//! publish).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The most answer bytes kept back before they are written anyway.
pub const OUTBOX_LIMIT: usize = 64 * 1024;

/// An outbox that grew past this is given back once it is empty.
const KEEP_CAPACITY: usize = 16 * 1024;

/// Writes what waits in `outbox` to `socket`, in order, and empties it.
///
/// # Errors
/// The socket's write error.
pub async fn flush<S: AsyncWrite + Unpin>(socket: &mut S, outbox: &mut Vec<u8>) -> io::Result<()> {
    if outbox.is_empty() {
        return Ok(());
    }
    let result = socket.write_all(outbox).await;
    empty(outbox);
    result
}

/// Empties `outbox`, giving back a capacity a burst grew.
fn empty(outbox: &mut Vec<u8>) {
    if outbox.capacity() > KEEP_CAPACITY {
        *outbox = Vec::new();
    } else {
        outbox.clear();
    }
}

/// A socket whose reads and writes first write out the outbox: reading a
/// request or writing anything else (`100 Continue`, an error) never
/// overtakes an answer that waits.
pub struct Flushing<'a, S> {
    socket: &'a mut S,
    outbox: &'a mut Vec<u8>,
}

impl<'a, S: AsyncWrite + Unpin> Flushing<'a, S> {
    /// `socket`, with `outbox` written out before it is used.
    pub fn new(socket: &'a mut S, outbox: &'a mut Vec<u8>) -> Flushing<'a, S> {
        Flushing { socket, outbox }
    }

    fn poll_outbox(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.outbox.is_empty() {
            let n = ready!(Pin::new(&mut *self.socket).poll_write(cx, self.outbox))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.outbox.drain(..n);
        }
        empty(self.outbox);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Flushing<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_outbox(cx))?;
        Pin::new(&mut *this.socket).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Flushing<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_outbox(cx))?;
        Pin::new(&mut *this.socket).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_outbox(cx))?;
        Pin::new(&mut *this.socket).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_outbox(cx))?;
        Pin::new(&mut *this.socket).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn waiting_answers_go_out_before_a_read_or_a_write() {
        let (mut near, mut far) = tokio::io::duplex(1024);
        let mut outbox = b"first answer;".to_vec();
        {
            let mut flushing = Flushing::new(&mut near, &mut outbox);
            flushing.write_all(b"then this;").await.unwrap();
        }
        assert!(outbox.is_empty());
        outbox.extend_from_slice(b"second answer;");
        far.write_all(b"next request").await.unwrap();
        let mut request = [0u8; 12];
        Flushing::new(&mut near, &mut outbox)
            .read_exact(&mut request)
            .await
            .unwrap();
        assert_eq!(&request, b"next request");
        let mut got = vec![0u8; 37];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"first answer;then this;second answer;");
    }

    #[tokio::test]
    async fn flush_empties_the_outbox_and_gives_back_a_large_one() {
        let (mut near, mut far) = tokio::io::duplex(64 * 1024);
        let mut outbox = vec![b'x'; KEEP_CAPACITY + 1];
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            far.read_to_end(&mut all).await.unwrap();
            all.len()
        });
        flush(&mut near, &mut outbox).await.unwrap();
        assert!(outbox.is_empty());
        assert_eq!(outbox.capacity(), 0);
        drop(near);
        assert_eq!(reader.await.unwrap(), KEEP_CAPACITY + 1);
    }
}
