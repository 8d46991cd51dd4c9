//! The binding to `async-io`, the reactor under smol and async-std:
//! [`AsyncIo`] (the system clock, [`async_io::Timer`]s, [`async_net`]
//! sockets, and TLS through `futures-rustls` with feature `rustls`). Any
//! `futures-io` socket becomes a [`Transport`](sse_driver::rt::Transport)
//! for the server functions in `sse-driver`'s [`FuturesIo`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_net::TcpStream;
pub use sse_driver::rt::FuturesIo;
#[cfg(feature = "rustls")]
use sse_driver::rt::TlsConfig;
use sse_driver::rt::{BoxTransport, Connecting, Runtime, Timer};

/// The `async-io` reactor, for the driving loops. It runs its own thread
/// when nothing else drives it, so it works under `smol::block_on`,
/// `async_std::task::block_on`, `futures::executor` or any other executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncIo;

/// An [`async_io::Timer`], re-armed in place.
#[derive(Debug)]
pub struct AsyncIoTimer(async_io::Timer);

impl Timer for AsyncIoTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // A fired `async_io::Timer` stays pending until it is set again:
        // the driver re-arms it for every wait.
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

impl AsyncIo {
    /// A TCP connection with `TCP_NODELAY` (events are small writes that
    /// must leave at once).
    async fn tcp(host: String, port: u16) -> io::Result<TcpStream> {
        let stream = TcpStream::connect((host.as_str(), port)).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl Runtime for AsyncIo {
    type Timer = AsyncIoTimer;
    type Socket = BoxTransport;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self, deadline: Instant) -> AsyncIoTimer {
        AsyncIoTimer(async_io::Timer::at(deadline))
    }

    fn connect(&self, host: String, port: u16) -> Connecting<BoxTransport> {
        let opening = AsyncIo::tcp(host, port);
        Box::pin(async move { Ok(Box::new(FuturesIo::new(opening.await?)) as BoxTransport) })
    }

    fn supports_tls(&self) -> bool {
        cfg!(feature = "rustls")
    }

    #[cfg(feature = "rustls")]
    fn connect_tls(&self, host: String, port: u16, tls: &TlsConfig) -> Connecting<BoxTransport> {
        let handshake = futures_rustls::TlsConnector::from(tls.rustls().clone());
        let name = TlsConfig::server_name(&host);
        let opening = AsyncIo::tcp(host, port);
        Box::pin(async move {
            let stream = handshake.connect(name?, opening.await?).await?;
            Ok(Box::new(FuturesIo::new(stream)) as BoxTransport)
        })
    }
}
