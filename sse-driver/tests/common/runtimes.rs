//! The three runtimes every test runs on: tokio (a multi-thread runtime of
//! two workers per test, `tokio::net`, `tokio-rustls`), and smol and
//! async-std, which share the `async-io` reactor and so its sockets
//! (`async-net`, `futures-rustls`) and differ in their executors.

use std::future::Future;
use std::io;
use std::sync::{Arc, Weak};

use sse_async_std::rt::{AsyncIo, FuturesIo};
use sse_driver::rustls::ServerConfig;
use sse_tokio::rt::{Tokio, TokioIo};

use super::{Job, Rt};

/// tokio: a fresh multi-thread runtime (two workers) for each test,
/// dropped with its tasks when the test returns.
#[derive(Clone)]
pub struct OnTokio {
    handle: tokio::runtime::Handle,
}

impl Rt for OnTokio {
    type Driver = Tokio;
    type Listener = tokio::net::TcpListener;
    type Tcp = tokio::net::TcpStream;
    type Stream = TokioIo<tokio::net::TcpStream>;
    type TlsStream = TokioIo<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;

    fn block_on<F: Future>(test: impl FnOnce(OnTokio) -> F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        runtime.block_on(test(OnTokio { handle }))
    }

    fn detach(&self, job: Job) {
        drop(self.handle.spawn(job));
    }

    fn listener(listener: std::net::TcpListener) -> io::Result<tokio::net::TcpListener> {
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener)
    }

    async fn accept(listener: &tokio::net::TcpListener) -> io::Result<tokio::net::TcpStream> {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    fn transport(tcp: tokio::net::TcpStream) -> Self::Stream {
        TokioIo::new(tcp)
    }

    async fn start_tls(
        tcp: tokio::net::TcpStream,
        config: Arc<ServerConfig>,
    ) -> io::Result<Self::TlsStream> {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        Ok(TokioIo::new(acceptor.accept(tcp).await?))
    }
}

/// An executor of the `futures-io` world, on the `async-io` reactor.
pub trait Executor: Clone + Send + Sync + 'static {
    /// Runs the future `test` makes from a handle to a fresh executor.
    fn block_on<F: Future>(test: impl FnOnce(Self) -> F) -> F::Output;

    /// Runs `job` as a task of this executor.
    fn detach(&self, job: Job);
}

/// smol or async-std: `E`'s executor with the sockets and timers of the
/// `async-io` reactor (the `sse-async-std` binding).
#[derive(Clone)]
pub struct OnFutures<E>(E);

/// smol: `smol::block_on` running a fresh `smol::Executor` for each test
/// (so every task runs on the test's thread), dropped with its tasks when
/// the test returns.
pub type OnSmol = OnFutures<Smol>;

/// async-std: `async_std::task::block_on`, tasks on
/// `async_std::task::spawn`, each stopped when the test returns.
pub type OnAsyncStd = OnFutures<AsyncStd>;

/// The TCP stream of the `async-io` reactor.
type NetStream = async_net::TcpStream;

impl<E: Executor> Rt for OnFutures<E> {
    type Driver = AsyncIo;
    type Listener = async_net::TcpListener;
    type Tcp = NetStream;
    type Stream = FuturesIo<NetStream>;
    type TlsStream = FuturesIo<futures_rustls::server::TlsStream<NetStream>>;

    fn block_on<F: Future>(test: impl FnOnce(Self) -> F) -> F::Output {
        E::block_on(|executor| test(OnFutures(executor)))
    }

    fn detach(&self, job: Job) {
        self.0.detach(job);
    }

    fn listener(listener: std::net::TcpListener) -> io::Result<async_net::TcpListener> {
        async_net::TcpListener::try_from(listener)
    }

    async fn accept(listener: &async_net::TcpListener) -> io::Result<NetStream> {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    fn transport(tcp: NetStream) -> Self::Stream {
        FuturesIo::new(tcp)
    }

    async fn start_tls(tcp: NetStream, config: Arc<ServerConfig>) -> io::Result<Self::TlsStream> {
        let acceptor = futures_rustls::TlsAcceptor::from(config);
        Ok(FuturesIo::new(acceptor.accept(tcp).await?))
    }
}

/// A handle to a test's `smol::Executor` (weak: the executor, and with it
/// every task, goes when the test returns).
#[derive(Clone)]
pub struct Smol(Weak<smol::Executor<'static>>);

impl Executor for Smol {
    fn block_on<F: Future>(test: impl FnOnce(Smol) -> F) -> F::Output {
        let executor = Arc::new(smol::Executor::new());
        let test = test(Smol(Arc::downgrade(&executor)));
        smol::block_on(executor.run(test))
    }

    fn detach(&self, job: Job) {
        if let Some(executor) = self.0.upgrade() {
            executor.spawn(job).detach();
        }
    }
}

/// A handle to a test's scope on async-std's global executor: every task
/// spawned through it stops when the test returns (when the sending side
/// of `stop` is dropped).
#[derive(Clone)]
pub struct AsyncStd {
    stop: smol::channel::Receiver<()>,
}

impl Executor for AsyncStd {
    fn block_on<F: Future>(test: impl FnOnce(AsyncStd) -> F) -> F::Output {
        let (_scope, stop) = smol::channel::bounded(1);
        async_std::task::block_on(test(AsyncStd { stop }))
    }

    fn detach(&self, job: Job) {
        let stop = self.stop.clone();
        drop(async_std::task::spawn(futures_lite::future::or(
            job,
            async move {
                let _ = stop.recv().await;
            },
        )));
    }
}
