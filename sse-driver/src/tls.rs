//! TLS for the client, written once over any [`Transport`]: rustls's
//! connection is itself sans-IO (records in, records out), so the driver
//! runs it over whatever byte stream a runtime opened, a plain TCP socket
//! or a proxy's `CONNECT` tunnel alike. No runtime binding carries TLS code.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConnection;

use crate::rt::{BoxTransport, Connecting, TlsConfig, Transport};

/// TLS over `io`: a [`Transport`] of plaintext.
struct TlsStream<S> {
    io: S,
    conn: ClientConnection,
    /// The peer's records ended (its TCP side closed).
    eof: bool,
    /// `close_notify` is queued.
    closing: bool,
}

/// Starts TLS with `server_name` over `io` (any [`Transport`]: a TCP
/// socket, a proxy's tunnel): ready with the plaintext transport once the
/// handshake is done. A failed handshake (an untrusted certificate, say)
/// is an `InvalidData` error that names the server, its source the
/// `rustls::Error`.
pub fn handshake(
    io: BoxTransport,
    server_name: String,
    config: &TlsConfig,
) -> Connecting<BoxTransport> {
    let config = Arc::clone(config.rustls());
    Box::pin(async move {
        let name = TlsConfig::server_name(&server_name)?;
        let conn = ClientConnection::new(config, name).map_err(|e| failed(&server_name, e))?;
        let mut stream = TlsStream {
            io,
            conn,
            eof: false,
            closing: false,
        };
        std::future::poll_fn(|cx| stream.poll_handshake(cx))
            .await
            .map_err(|e| match e.downcast::<rustls::Error>() {
                Ok(e) => failed(&server_name, e),
                Err(e) => e,
            })?;
        Ok(Box::new(stream) as BoxTransport)
    })
}

/// The error for a failed handshake with `server`: one sentence naming it,
/// with what to do about an untrusted certificate.
fn failed(server: &str, e: rustls::Error) -> io::Error {
    let hint = match &e {
        rustls::Error::InvalidCertificate(_) => {
            " (to trust a private certificate authority, set SSL_CERT_FILE to its PEM file or \
             give the client a rustls ClientConfig)"
        }
        _ => "",
    };
    io::Error::new(
        io::ErrorKind::InvalidData,
        HandshakeError {
            message: format!("TLS with {server} failed: {e}{hint}"),
            source: e,
        },
    )
}

/// A failed handshake: the message names the server; the source is
/// rustls's error.
#[derive(Debug)]
struct HandshakeError {
    message: String,
    source: rustls::Error,
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The transport as `std::io` for rustls: `Pending` is `WouldBlock` (the
/// waker is registered by the poll underneath).
struct Blocking<'a, 'b, S> {
    io: &'a mut S,
    cx: &'a mut Context<'b>,
}

impl<S: Transport> Read for Blocking<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.io.poll_read(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: Transport> Write for Blocking<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.io.poll_write_vectored(self.cx, bufs) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.io.poll_flush(self.cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// `Ready` for a result, `Pending` for `WouldBlock`.
fn ready<T>(result: io::Result<T>) -> Poll<io::Result<T>> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        result => Poll::Ready(result),
    }
}

impl<S: Transport> TlsStream<S> {
    /// Writes every pending TLS record to the transport.
    fn poll_write_records(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let mut io = Blocking {
                io: &mut self.io,
                cx,
            };
            match std::task::ready!(ready(self.conn.write_tls(&mut io))) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads records from the transport and processes them: `Ok(0)` at
    /// the end of the transport's stream.
    fn poll_read_records(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut io = Blocking {
            io: &mut self.io,
            cx,
        };
        let n = match std::task::ready!(ready(self.conn.read_tls(&mut io))) {
            Ok(n) => n,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if n == 0 {
            self.eof = true;
            return Poll::Ready(Ok(0));
        }
        if let Err(e) = self.conn.process_new_packets() {
            // Tell the peer why (the alert rustls queued), as far as the
            // socket takes it now.
            let _ = self.poll_write_records(cx);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        Poll::Ready(Ok(n))
    }

    /// Drives the handshake to its end.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.is_handshaking() {
            if self.conn.wants_write() {
                std::task::ready!(self.poll_write_records(cx))?;
                continue;
            }
            if std::task::ready!(self.poll_read_records(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                )));
            }
        }
        // The client's last flight (a TLS 1.2 Finished, say).
        std::task::ready!(self.poll_write_records(cx))?;
        self.io.poll_flush(cx)
    }
}

impl<S: Transport> Transport for TlsStream<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            if self.eof {
                // rustls answers `UnexpectedEof` itself for a close without
                // `close_notify`; this is the belt to its braces.
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            // Records the peer asked for (a key update's answer) go first,
            // as far as the socket takes them.
            if self.conn.wants_write() {
                if let Poll::Ready(Err(e)) = self.poll_write_records(cx) {
                    return Poll::Ready(Err(e));
                }
            }
            std::task::ready!(self.poll_read_records(cx))?;
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        loop {
            let written = self.conn.writer().write_vectored(bufs)?;
            // Push out what can go now; what cannot waits for the next
            // write or flush.
            let sent = self.poll_write_records(cx)?;
            if written > 0 {
                return Poll::Ready(Ok(written));
            }
            // rustls's buffer is full: wait for the socket to take some.
            if sent.is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.conn.writer().flush()?;
        std::task::ready!(self.poll_write_records(cx))?;
        self.io.poll_flush(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closing {
            self.closing = true;
            self.conn.send_close_notify();
        }
        std::task::ready!(self.poll_write_records(cx))?;
        self.io.poll_close(cx)
    }
}
