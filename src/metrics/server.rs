//! The small HTTP/1 server behind `--metrics-addr` (hyper's server
//! connection, one task per connection, a bounded number of them): GET or
//! HEAD `/metrics`, `/healthz`, `/readyz`; 404 for other paths, 405 for other
//! methods. A client that is slow to send its headers is dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Metrics;
use crate::error::{Error, Result};

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 32;
/// A client must send a request's headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
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

async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors and the like: try again shortly.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let answer = respond(&metrics, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(answer) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
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
