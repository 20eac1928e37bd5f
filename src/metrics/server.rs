//! The small HTTP/1 server behind `--metrics-addr` (hyper's server
//! connection, one task per connection): GET or HEAD `/metrics`, `/healthz`,
//! `/readyz`; 404 for other paths, 405 for other methods.
//!
//! Any pod that can reach the port may try to starve it, and a starved
//! `/healthz` gets the cleaner restarted. So:
//! - every connection is accepted at once; at most [`MAX_CONNECTIONS`] are
//!   kept, and a new one beyond that closes the oldest idle connection of
//!   the address that holds the most (the oldest of them all when none is
//!   idle): a client that opens many connections loses its own, and the
//!   kubelet's probe, one connection from the node, is read;
//! - a client must send a request's headers within [`HEADER_TIMEOUT`] of the
//!   connection being idle (hyper's header timer runs from the end of the
//!   previous response): slow senders and idle keep-alive connections go;
//! - a response must be taken within [`WRITE_TIMEOUT`] once the socket
//!   blocks: a client that pipelines requests and never reads goes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use super::Metrics;
use crate::error::{Error, Result};

/// Connections kept at once; a new one beyond closes the oldest idle one.
const MAX_CONNECTIONS: usize = 32;
/// A client must send a request's headers within this of the connection
/// being idle (accepted, or its previous response written).
const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
/// A response must be written within this once the socket blocks.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Listens on `addr` and serves `metrics` there until the process ends.
/// Returns the address listened on.
pub(crate) async fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::usage(format!("--metrics-addr {addr}: cannot listen: {e}")))?;
    let bound = listener.local_addr().unwrap_or(addr);
    tokio::spawn(serve(listener, metrics));
    Ok(bound)
}

/// One open connection, as the accept loop sees it.
struct Open {
    peer: IpAddr,
    /// Idle since (ms from the server's start), or busy answering.
    state: Arc<State>,
    /// Closes the connection.
    close: oneshot::Sender<()>,
}

struct State {
    busy: AtomicBool,
    idle_since: AtomicU64,
}

/// The open connections, by the order they were accepted in.
#[derive(Default)]
struct Connections {
    next: u64,
    open: BTreeMap<u64, Open>,
}

impl Connections {
    /// Room for one more: while there are too many, closes the oldest idle
    /// connection (the oldest of all when every one is busy) of the address
    /// that holds the most.
    fn make_room(&mut self) {
        while self.open.len() >= MAX_CONNECTIONS {
            let mut by_peer: BTreeMap<IpAddr, usize> = BTreeMap::new();
            for o in self.open.values() {
                *by_peer.entry(o.peer).or_default() += 1;
            }
            // The address holding the most; on a tie (every address holding
            // one, say) the oldest idle connection of any of them, never the
            // highest address (which might be the kubelet's).
            let Some(&most) = by_peer.values().max() else {
                break;
            };
            let victim = self
                .open
                .iter()
                .filter(|(_, o)| by_peer[&o.peer] == most)
                .min_by_key(|(id, o)| {
                    (
                        o.state.busy.load(Ordering::SeqCst),
                        o.state.idle_since.load(Ordering::SeqCst),
                        **id,
                    )
                })
                .map(|(id, _)| *id);
            match victim.and_then(|id| self.open.remove(&id)) {
                Some(o) => {
                    let _ = o.close.send(());
                }
                None => break,
            }
        }
    }
}

async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let connections = Arc::new(Mutex::new(Connections::default()));
    let started = Instant::now();
    let now_ms = move || started.elapsed().as_millis() as u64;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok((stream, peer)) => (stream, peer.ip()),
            Err(_) => {
                // Out of file descriptors and the like: try again shortly.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = Arc::new(State {
            busy: AtomicBool::new(false),
            idle_since: AtomicU64::new(now_ms()),
        });
        let (close, closed) = oneshot::channel();
        let id = {
            let Ok(mut c) = connections.lock() else {
                return;
            };
            c.make_room();
            let id = c.next;
            c.next += 1;
            c.open.insert(
                id,
                Open {
                    peer,
                    state: state.clone(),
                    close,
                },
            );
            id
        };
        let metrics = metrics.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            let busy = state.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                busy.busy.store(true, Ordering::SeqCst);
                let answer = respond(&metrics, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(answer) }
            });
            let io = Guarded::new(stream, state, now_ms);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(io), service);
            tokio::select! {
                _ = conn => {}
                // Dropping the connection closes its socket.
                _ = closed => {}
            }
            if let Ok(mut c) = connections.lock() {
                c.open.remove(&id);
            }
        });
    }
}

/// The socket of one connection: writes that stay blocked for
/// [`WRITE_TIMEOUT`] fail it; a flushed response makes it idle again.
struct Guarded<F> {
    stream: TcpStream,
    state: Arc<State>,
    now_ms: F,
    /// Running while a write or flush is blocked.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<F: Fn() -> u64> Guarded<F> {
    fn new(stream: TcpStream, state: Arc<State>, now_ms: F) -> Self {
        Guarded {
            stream,
            state,
            now_ms,
            deadline: None,
        }
    }

    /// `poll` of a write or flush, failing once blocked for too long.
    fn limited<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll(Pin::new(&mut self.stream), cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => {
                let deadline = self
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_TIMEOUT)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client does not read its responses",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<F: Fn() -> u64 + Unpin> AsyncRead for Guarded<F> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<F: Fn() -> u64 + Unpin> AsyncWrite for Guarded<F> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.limited(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.limited(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let done = self.limited(cx, |s, cx| s.poll_flush(cx));
        if let Poll::Ready(Ok(())) = done {
            // The response is out: the deadline ends, the connection is idle.
            self.deadline = None;
            if self.state.busy.swap(false, Ordering::SeqCst) {
                let now = (self.now_ms)();
                self.state.idle_since.store(now, Ordering::SeqCst);
            }
        }
        done
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.limited(cx, |s, cx| s.poll_shutdown(cx))
    }
}

/// The answer to one request.
pub(crate) fn respond(metrics: &Metrics, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if method != Method::GET && method != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".to_string(),
        )
    } else {
        match path {
            "/metrics" => (StatusCode::OK, OPENMETRICS, metrics.encode()),
            "/healthz" => (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
            "/readyz" => match metrics.ready() {
                Ok(()) => (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
                Err(why) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("not ready: {why}\n"),
                ),
            },
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "not found: try /metrics, /healthz or /readyz\n".into(),
            ),
        }
    };
    let mut answer = Response::new(Full::new(Bytes::from(if method == Method::HEAD {
        String::new()
    } else {
        body
    })));
    *answer.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        answer.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        answer
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens a connection from `peer`, idle since `idle_since` ms; returns
    /// what hears its closing.
    fn open(c: &mut Connections, peer: [u8; 4], idle_since: u64) -> oneshot::Receiver<()> {
        let (close, closed) = oneshot::channel();
        let state = Arc::new(State {
            busy: AtomicBool::new(false),
            idle_since: AtomicU64::new(idle_since),
        });
        c.open.insert(
            c.next,
            Open {
                peer: IpAddr::from(peer),
                state,
                close,
            },
        );
        c.next += 1;
        closed
    }

    #[test]
    fn when_every_address_holds_one_the_oldest_idle_goes_not_the_highest_address() {
        let mut c = Connections::default();
        let mut closed = vec![];
        for i in 0..MAX_CONNECTIONS as u8 {
            // Connection 0 has the highest address (the kubelet's, say);
            // connection 9 has been idle the longest.
            let idle_since = if i == 9 { 1 } else { 100 + u64::from(i) };
            closed.push(open(&mut c, [10, 0, 0, 200 - i], idle_since));
        }
        c.make_room();
        assert_eq!(c.open.len(), MAX_CONNECTIONS - 1);
        for (i, rx) in closed.iter_mut().enumerate() {
            assert_eq!(rx.try_recv().is_ok(), i == 9, "connection {i}");
        }
    }

    #[test]
    fn the_address_holding_the_most_loses_its_oldest_idle() {
        let mut c = Connections::default();
        let mut closed = vec![];
        for i in 0..MAX_CONNECTIONS as u8 - 2 {
            closed.push(open(&mut c, [10, 0, 1, i], u64::from(i)));
        }
        // One address holds two, both idle for less time than the others.
        closed.push(open(&mut c, [10, 0, 2, 1], 500));
        closed.push(open(&mut c, [10, 0, 2, 1], 400));
        c.make_room();
        let gone: Vec<usize> = closed
            .iter_mut()
            .enumerate()
            .filter_map(|(i, rx)| rx.try_recv().is_ok().then_some(i))
            .collect();
        assert_eq!(gone, [MAX_CONNECTIONS - 1]);
    }
}
