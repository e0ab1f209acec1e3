//! The metrics port (`metrics.listen`): `/metrics` for Prometheus, `/health` (the
//! process serves) and `/ready` (the broker has started: logs loaded, listeners bound,
//! and in a cluster registered and unfenced) for load balancers and Kubernetes probes.
//!
//! The recorder and this server are process-wide and start before the broker, so the
//! broker plugs in later through [`set_broker_hooks`]: a collector run on each scrape
//! (gauges read at scrape time are never stale; it also returns the series clients
//! pushed, appended after the broker's own) and the readiness probe. Without hooks
//! (starting, or shut down) `/ready` answers 503.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use parking_lot::RwLock;

/// Runs on each scrape; returns series of its own (clients' pushed metrics) to append.
type Collector = Box<dyn Fn() -> String + Send + Sync>;
type Probe = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

struct Hooks {
    collect: Collector,
    ready: Probe,
}

static HOOKS: RwLock<Option<Hooks>> = RwLock::new(None);

/// Plug the running broker in (`None` when it stops).
pub fn set_broker_hooks(hooks: Option<(Collector, Probe)>) {
    *HOOKS.write() = hooks.map(|(collect, ready)| Hooks { collect, ready });
}

/// Serve the metrics port on an already bound listener.
pub async fn serve(listener: tokio::net::TcpListener, handle: PrometheusHandle) {
    let handle = Arc::new(handle);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(route(&req, &handle).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}

async fn route(req: &Request<Incoming>, handle: &Arc<PrometheusHandle>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            let handle = handle.clone();
            // Reading /proc and every partition's size is blocking work.
            let body = tokio::task::spawn_blocking(move || {
                let extra = HOOKS
                    .read()
                    .as_ref()
                    .map(|h| (h.collect)())
                    .unwrap_or_default();
                let mut body = handle.render();
                body.push_str(&extra);
                body
            })
            .await
            .unwrap_or_default();
            let mut r = text(StatusCode::OK, body);
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        "/health" => text(StatusCode::OK, "ok\n".into()),
        "/ready" => {
            let verdict = match HOOKS.read().as_ref() {
                Some(h) => (h.ready)(),
                None => Err("the broker is not running".into()),
            };
            match verdict {
                Ok(()) => text(StatusCode::OK, "ready\n".into()),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /health or /ready\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

/// Bind the metrics port now, so that a taken port fails the start with a clear error.
pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(std)
}
