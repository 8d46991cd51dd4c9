//! The binding to `async-io`, the reactor under smol and async-std:
//! [`AsyncIo`] (the system clock, [`async_io::Timer`]s and [`async_net`]
//! TCP sockets; TLS is the driver's, over them). Any
//! `futures-io` socket becomes a [`Transport`](sse_driver::rt::Transport)
//! for the server functions in `sse-driver`'s [`FuturesIo`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_net::TcpStream;
pub use sse_driver::rt::FuturesIo;
use sse_driver::rt::{Connecting, Runtime, Timer};

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

impl Runtime for AsyncIo {
    type Timer = AsyncIoTimer;
    type Socket = FuturesIo<TcpStream>;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self, deadline: Instant) -> AsyncIoTimer {
        AsyncIoTimer(async_io::Timer::at(deadline))
    }

    /// An `async_net::TcpStream` with `TCP_NODELAY` (events are small
    /// writes that must leave at once).
    fn connect(&self, host: String, port: u16) -> Connecting<FuturesIo<TcpStream>> {
        Box::pin(async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            let _ = stream.set_nodelay(true);
            Ok(FuturesIo::new(stream))
        })
    }
}
