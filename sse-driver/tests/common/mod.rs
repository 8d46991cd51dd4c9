//! What every suite of this folder runs on: [`Rt`], a small test-only
//! runtime abstraction bound to tokio, smol and async-std (module
//! `runtimes`), the [`on_every_runtime!`] macro that turns one generic
//! test into a `#[test]` per runtime, bounded waits on the runtime's own
//! timers, and reading and writing any [`Transport`].
//!
//! Each test binary uses a part of it.
#![allow(dead_code)]

pub mod proxy;
mod runtimes;
pub mod source;

use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use runtimes::{OnAsyncStd, OnSmol, OnTokio};
use sse_driver::client::{ClientConfig, Error, EventSource};
use sse_driver::rt::{Connecting, Runtime, Timer, Transport};
use sse_driver::rustls::ServerConfig;

/// How long one test may take on one runtime before it fails.
pub const TEST_LIMIT: Duration = Duration::from_secs(30);

/// How long a single network wait of a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A spawned task: awaiting it waits for its output (and fails the test if
/// the task panicked); dropping it leaves the task running until the test
/// ends.
pub type Task<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A task handed to [`Rt::detach`].
pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An async runtime as the tests use it: an executor (run a test to
/// completion, spawn tasks), its TCP listener and server-side TLS, and the
/// `sse-driver` binding its clients and served streams run on.
///
/// A value is a handle to one runtime instance, made for one test by
/// [`Rt::block_on`]; tasks still running when the test returns are dropped.
pub trait Rt: Clone + Send + Sync + Sized + 'static {
    /// The binding of `sse-driver` for this runtime (clock, timers, client
    /// sockets), the one its adapter crate exports.
    type Driver: Runtime + Default;
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;
    /// An accepted TCP connection, as the runtime has it.
    type Tcp: Send + 'static;
    /// An accepted TCP connection as a transport.
    type Stream: Transport + Send + 'static;
    /// An accepted connection after the server side of a TLS handshake.
    type TlsStream: Transport + Send + 'static;

    /// Runs the future `test` makes from a handle to a fresh instance of
    /// the runtime, on this thread, to completion.
    fn block_on<F: Future>(test: impl FnOnce(Self) -> F) -> F::Output;

    /// Runs `job` as a task of this instance, without waiting for it.
    fn detach(&self, job: Job);

    /// Makes `listener` (bound, blocking) a listener of this runtime.
    fn listener(listener: std::net::TcpListener) -> io::Result<Self::Listener>;

    /// Accepts one connection, with `TCP_NODELAY` set (so that every write
    /// of a scripted server goes out as it is).
    fn accept(listener: &Self::Listener)
    -> impl Future<Output = io::Result<Self::Tcp>> + Send + '_;

    /// `tcp` as a transport.
    fn transport(tcp: Self::Tcp) -> Self::Stream;

    /// The server side of a TLS handshake on `tcp` with `config`, through
    /// the runtime's rustls wrapper.
    fn start_tls(
        tcp: Self::Tcp,
        config: Arc<ServerConfig>,
    ) -> impl Future<Output = io::Result<Self::TlsStream>> + Send;

    /// The binding.
    fn driver(&self) -> Self::Driver {
        Self::Driver::default()
    }

    /// Spawns `future` on this instance.
    fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        let (sender, receiver) = smol::channel::bounded(1);
        self.detach(Box::pin(async move {
            let _ = sender.try_send(future.await);
        }));
        Box::pin(async move {
            receiver
                .recv()
                .await
                .expect("the task panicked or was dropped")
        })
    }

    /// A future that is ready once `duration` has passed, on the binding's
    /// timer.
    fn sleep(&self, duration: Duration) -> Sleep<Self::Driver> {
        let driver = self.driver();
        Sleep(driver.timer(driver.now() + duration))
    }

    /// `future`'s output, or `None` when it takes longer than `limit`.
    fn timeout<F: Future>(&self, limit: Duration, future: F) -> Timeout<Self::Driver, F> {
        Timeout {
            sleep: self.sleep(limit),
            future: Box::pin(future),
        }
    }

    /// The crate's client on this runtime's binding.
    fn event_source(&self, config: ClientConfig) -> Result<EventSource<Self::Driver>, Error> {
        EventSource::new(config)
    }

    /// Opens a client TCP connection to `addr` with the binding's connector.
    fn connect(&self, addr: SocketAddr) -> Connecting<<Self::Driver as Runtime>::Socket> {
        self.driver().connect(addr.ip().to_string(), addr.port())
    }

    /// Checks `done` every 5 ms, failing the test when it is still false
    /// after `limit`.
    fn wait_until(
        &self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut() -> bool,
    ) -> impl Future<Output = ()> {
        let start = Instant::now();
        async move {
            while !done() {
                assert!(start.elapsed() < limit, "timed out waiting for {what}");
                self.sleep(ms(5)).await;
            }
        }
    }
}

/// Runs `test` on a fresh instance of `R`, failing it when it takes longer
/// than [`TEST_LIMIT`]: what the `#[test]` functions of
/// [`on_every_runtime!`] call.
pub fn run<R: Rt, F: Future>(test: impl FnOnce(R) -> F) -> F::Output {
    R::block_on(|rt: R| async move {
        rt.timeout(TEST_LIMIT, test(rt.clone()))
            .await
            .unwrap_or_else(|| panic!("test timed out after {TEST_LIMIT:?}"))
    })
}

/// Instantiates each generic test `name(rt: R)` of the list as three
/// `#[test]`s: `on_tokio::name`, `on_smol::name` and `on_async_std::name`.
/// Attributes before a name (a `cfg`, say) go to all three.
macro_rules! on_every_runtime {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        common::on_every_runtime!(@on on_tokio, OnTokio; $($(#[$attr])* $name),*);
        common::on_every_runtime!(@on on_smol, OnSmol; $($(#[$attr])* $name),*);
        common::on_every_runtime!(@on on_async_std, OnAsyncStd; $($(#[$attr])* $name),*);
    };
    (@on $module:ident, $runtime:ident; $($(#[$attr:meta])* $name:ident),*) => {
        /// The tests, each run on one runtime.
        mod $module {
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    super::common::run::<super::common::$runtime, _>(super::$name)
                }
            )*
        }
    };
}
pub(crate) use on_every_runtime;

/// [`Rt::sleep`]'s future.
pub struct Sleep<D: Runtime>(D::Timer);

impl<D: Runtime> Future for Sleep<D> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.poll_fired(cx)
    }
}

/// [`Rt::timeout`]'s future.
pub struct Timeout<D: Runtime, F> {
    sleep: Sleep<D>,
    future: Pin<Box<F>>,
}

impl<D: Runtime, F: Future> Future for Timeout<D, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let this = self.get_mut();
        if let Poll::Ready(output) = this.future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        Pin::new(&mut this.sleep).poll(cx).map(|()| None)
    }
}

/// A TCP listener of runtime `R` on a port of 127.0.0.1.
pub struct Listener<R: Rt> {
    inner: R::Listener,
    addr: SocketAddr,
}

impl<R: Rt> Listener<R> {
    /// Listens on a free port of 127.0.0.1.
    pub fn bind() -> Listener<R> {
        Listener::bind_to(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Listens on `addr` (a port of 127.0.0.1 used before, say).
    pub fn bind_to(addr: SocketAddr) -> Listener<R> {
        let listener = std::net::TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = R::listener(listener).unwrap();
        Listener { inner, addr }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` this address, then `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next connection.
    pub async fn accept(&self) -> R::Stream {
        R::transport(R::accept(&self.inner).await.unwrap())
    }

    /// The next connection and its request head, read byte by byte.
    pub async fn accept_request(&self) -> (R::Stream, String) {
        let mut stream = self.accept().await;
        let head = read_head(&mut stream).await;
        (stream, head)
    }

    /// Answers the next request with `response`, then keeps the
    /// connection open until the client closes it: the request head.
    pub async fn answer(&self, response: &str) -> String {
        let (mut stream, head) = self.accept_request().await;
        write_all(&mut stream, response.as_bytes()).await.unwrap();
        drain(&mut stream).await;
        head
    }

    /// The next connection with TLS started on it; `Err` when the
    /// handshake fails.
    pub async fn accept_tls(&self, config: &Arc<ServerConfig>) -> io::Result<R::TlsStream> {
        R::start_tls(R::accept(&self.inner).await?, Arc::clone(config)).await
    }
}

/// [`Listener::answer`] in a task of its own.
pub fn serve_once<R: Rt>(
    rt: &R,
    listener: Listener<R>,
    response: impl Into<String>,
) -> Task<String> {
    let response = response.into();
    rt.spawn(async move { listener.answer(&response).await })
}

/// Reads into `buf`: how many bytes, `0` at the end of the stream.
pub async fn read<T: Transport + ?Sized>(io: &mut T, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| io.poll_read(cx, buf)).await
}

/// Writes all of `bytes`, then flushes (a TLS stream sends its records).
pub async fn write_all<T: Transport + ?Sized>(io: &mut T, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| io.poll_write_vectored(cx, &[IoSlice::new(bytes)])).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    poll_fn(|cx| io.poll_flush(cx)).await
}

/// Closes the writing side (a TLS `close_notify`, then a TCP `FIN`).
pub async fn close<T: Transport + ?Sized>(io: &mut T) -> io::Result<()> {
    poll_fn(|cx| io.poll_close(cx)).await
}

/// Reads a request head byte by byte, up to its blank line (or the end of
/// the stream).
pub async fn read_head<T: Transport + ?Sized>(io: &mut T) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if read(io, &mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads and drops everything until the peer closes (or the connection
/// fails): a server holding a connection open until the client gives up.
pub async fn drain<T: Transport + ?Sized>(io: &mut T) {
    let mut buf = [0u8; 1024];
    while let Ok(1..) = read(io, &mut buf).await {}
}
