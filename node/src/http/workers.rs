//! The public listener's worker threads. Each worker is a thread with its own single-threaded
//! tokio runtime (a `LocalRuntime`, as actix-server's workers have: actix-http and the
//! connection tasks spawn `!Send` tasks); it accepts from the shared listening socket itself
//! and serves each socket it accepts with [`super::front`] on the same thread. A connection
//! lives on the worker that accepted it (its pump, [`crate::outbound::pump`], is that worker's).
//!
//! Why not actix-server: its accept loop runs on a thread of its own and hands every socket to
//! a worker through a channel, a cross-thread wake and a context switch per connection (on the
//! benchmark's one server core: ≈ 18 % of the node's CPU in the accept thread and 15 % in
//! context switches while 19 000 clients connected, `perf record`, 2026-12-06). Here the
//! socket is served where it was accepted. All workers wait on one listening socket, so a new
//! connection may wake several of them; one accepts it, the others find nothing
//! (`SO_REUSEPORT` would avoid that, but would let a second process bind the same port
//! without an error).
//!
//! Owns the worker threads and their runtimes; what a connection does is
//! [`super::front`]'s and [`crate::connection`]'s.

use crate::metrics::Metrics;
use actix_service::{Service, ServiceFactory};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Pause after an accept error that says the process or the machine ran out of something (file
/// descriptors, buffers), so the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long handshakes and HTTP requests under way may take to finish once the workers stop.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The running workers.
pub struct Workers {
    stop: watch::Sender<bool>,
    done: Vec<tokio::sync::oneshot::Receiver<()>>,
}

/// Why the workers did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A worker thread, its runtime or the listener's registration failed.
    #[error("public listener worker {worker}: {source}")]
    Io {
        /// Worker index.
        worker: usize,
        /// Cause.
        source: std::io::Error,
    },
    /// A worker's service could not be built.
    #[error("public listener worker {0}: the HTTP service could not be built")]
    Service(usize),
    /// A worker thread ended before it reported.
    #[error("a public listener worker ended while starting")]
    Died,
}

impl Workers {
    /// Starts `count` workers accepting from `listener`, each serving its sockets (with the
    /// peer's address) with a service built by `factory` on that worker. Returns once every worker is accepting.
    pub fn start<M, F>(
        listener: std::net::TcpListener,
        count: usize,
        metrics: Arc<Metrics>,
        factory: M,
    ) -> Result<Self, StartError>
    where
        M: Fn() -> F + Send + Clone + 'static,
        F: ServiceFactory<(TcpStream, SocketAddr), Config = (), Response = ()> + 'static,
        F::Service: 'static,
    {
        listener
            .set_nonblocking(true)
            .map_err(|source| StartError::Io { worker: 0, source })?;
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let count = count.max(1);
        let mut done = Vec::with_capacity(count);
        for worker in 0..count {
            let io = |source| StartError::Io { worker, source };
            let listener = listener.try_clone().map_err(io)?;
            let factory = factory.clone();
            let stop_rx = stop_rx.clone();
            let ready = ready_tx.clone();
            let metrics = metrics.clone();
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            done.push(done_rx);
            std::thread::Builder::new()
                .name(format!("gatehouse-worker-{worker}"))
                .spawn(move || {
                    run(worker, listener, factory, stop_rx, ready, &metrics);
                    let _ = done_tx.send(());
                })
                .map_err(io)?;
        }
        drop(ready_tx);
        for _ in 0..count {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let _ = stop.send(true);
                    return Err(e);
                }
                Err(_) => {
                    let _ = stop.send(true);
                    return Err(StartError::Died);
                }
            }
        }
        Ok(Self { stop, done })
    }

    /// Stops accepting, lets handshakes under way finish (at most `STOP_GRACE`), then ends
    /// the workers; connections still open on them are dropped.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for done in self.done {
            let _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(1), done).await;
        }
    }
}

fn run<M, F>(
    worker: usize,
    listener: std::net::TcpListener,
    factory: M,
    mut stop: watch::Receiver<bool>,
    ready: std::sync::mpsc::Sender<Result<(), StartError>>,
    metrics: &Metrics,
) where
    M: Fn() -> F,
    F: ServiceFactory<(TcpStream, SocketAddr), Config = (), Response = ()>,
    F::Service: 'static,
{
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build_local(tokio::runtime::LocalOptions::default())
    {
        Ok(rt) => rt,
        Err(source) => {
            let _ = ready.send(Err(StartError::Io { worker, source }));
            return;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(source) => {
                let _ = ready.send(Err(StartError::Io { worker, source }));
                return;
            }
        };
        let Ok(service) = factory().new_service(()).await else {
            let _ = ready.send(Err(StartError::Service(worker)));
            return;
        };
        let _ = ready.send(Ok(()));
        drop(ready);
        let service = Rc::new(service);
        let in_flight = Rc::new(InFlight::default());
        loop {
            let accepted = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                r = listener.accept() => r,
            };
            match accepted {
                Ok((io, peer)) => {
                    let service = service.clone();
                    let in_flight = in_flight.clone();
                    in_flight.start();
                    tokio::task::spawn_local(async move {
                        let _ = service.call((io, peer)).await;
                        in_flight.end();
                    });
                }
                Err(e) => on_accept_error(worker, &e, metrics).await,
            }
        }
        drop(listener);
        // Handshakes and HTTP requests under way get a moment to finish.
        let _ = tokio::time::timeout(STOP_GRACE, in_flight.idle()).await;
    });
}

/// Sockets a worker is serving (handshakes, HTTP connections); a connection handed to its
/// task no longer counts.
#[derive(Default)]
struct InFlight {
    count: Cell<usize>,
    idle: tokio::sync::Notify,
}

impl InFlight {
    fn start(&self) {
        self.count.set(self.count.get() + 1);
    }

    fn end(&self) {
        self.count.set(self.count.get() - 1);
        if self.count.get() == 0 {
            self.idle.notify_one();
        }
    }

    /// Returns once none is left.
    async fn idle(&self) {
        while self.count.get() > 0 {
            self.idle.notified().await;
        }
    }
}

async fn on_accept_error(worker: usize, e: &std::io::Error, metrics: &Metrics) {
    // Errors about the connection just accepted (reset before accept, and the like) concern
    // that connection only; running out of descriptors or memory needs a pause (the pending
    // connections stay in the kernel's backlog meanwhile, nothing spins).
    let errno = e.raw_os_error().unwrap_or(0);
    let name = match errno {
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOMEM => "ENOMEM",
        libc::ECONNABORTED => "ECONNABORTED",
        _ => "other",
    };
    Metrics::count(&metrics.accept_errors, name);
    let exhausted = matches!(
        errno,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
    );
    if exhausted {
        // At most one line a second per worker, however long the condition lasts.
        thread_local! {
            static LAST_WARN: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
        }
        let now = std::time::Instant::now();
        if LAST_WARN
            .get()
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            LAST_WARN.set(Some(now));
            tracing::warn!(worker, error = %e, "accept failed: pausing the public listener");
        }
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    } else {
        tracing::debug!(worker, error = %e, "accept failed");
    }
}
