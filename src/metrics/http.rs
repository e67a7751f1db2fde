//! The monitoring listener (S3FTP_METRICS_LISTEN): `GET /metrics` (Prometheus
//! text), `/healthz` (the process answers) and `/readyz` (every mount answers
//! its check, and the server is not shutting down). Plain HTTP/1.1 through
//! hyper; meant for a private network or a sidecar, not the internet.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::secrets::redact;
use crate::vfs::mount::{Mount, MountTable};

/// Longest a mount's check may take before /readyz calls it unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Monitoring connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 32;
/// A request's headers must arrive within this (slow clients are dropped).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// What the endpoints look at.
pub struct Probe {
    pub metrics: Arc<Metrics>,
    pub mounts: Arc<MountTable>,
    /// The server's shutdown signal, once it serves: when cancelled,
    /// /readyz answers 503 so that load balancers stop sending new clients
    /// while transfers finish. Read directly, so the answer changes the
    /// moment shutdown begins, not when the accept loop notices.
    pub shutdown: std::sync::OnceLock<CancellationToken>,
}

/// Serves the monitoring endpoints until `stop` is cancelled.
pub async fn serve(listener: TcpListener, probe: Arc<Probe>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let probe = probe.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let probe = probe.clone();
                async move { Ok::<_, Infallible>(respond(&probe, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stop.cancelled() => {}
            }
            drop(permit);
        });
    }
}

async fn respond(probe: &Probe, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut res = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
        res.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    match req.uri().path() {
        "/metrics" => {
            let mut res = plain(StatusCode::OK, probe.metrics.encode());
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
            res
        }
        "/healthz" => plain(StatusCode::OK, "ok\n".into()),
        "/readyz" => {
            let (ready, text) = readiness(probe).await;
            let code = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            plain(code, text)
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found (try /metrics, /healthz, /readyz)\n".into(),
        ),
    }
}

/// How often the mounts are checked for `s3ftp_mount_up` between scrapes
/// of /readyz.
const WATCH_INTERVAL: Duration = Duration::from_secs(30);

/// Checks every mount at once, recording each outcome in `s3ftp_mount_up`;
/// None for a mount that answered.
async fn check_mounts(probe: &Probe) -> Vec<(&Mount, Option<String>)> {
    let checks = probe.mounts.mounts().iter().map(|mount| async move {
        let result = tokio::time::timeout(CHECK_TIMEOUT, mount.backend.check()).await;
        let problem = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
        };
        probe.metrics.mount_checked(&mount.point, problem.is_none());
        (mount, problem)
    });
    futures::future::join_all(checks).await
}

/// Keeps `s3ftp_mount_up` current, so an alert needs no probe of /readyz.
pub async fn watch_mounts(probe: Arc<Probe>, stop: CancellationToken) {
    loop {
        check_mounts(&probe).await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(WATCH_INTERVAL) => {}
        }
    }
}

/// Checks every mount at once; ready when all answer in time.
async fn readiness(probe: &Probe) -> (bool, String) {
    if probe.shutdown.get().is_some_and(|t| t.is_cancelled()) {
        return (false, "not ready: shutting down\n".into());
    }
    let results = check_mounts(probe).await;
    let ready = results.iter().all(|(_, problem)| problem.is_none());
    let mut text = String::from(if ready { "ready\n" } else { "not ready\n" });
    // A sink's backlog is reported, not made a reason to refuse clients:
    // a webhook outage must not take the FTP service down with it.
    for sink in probe.metrics.event_sinks() {
        let percent = sink.pending * 100 / sink.capacity.max(1);
        let warning = if percent >= 80 {
            "; new events are dropped when it is full"
        } else {
            ""
        };
        text.push_str(&format!(
            "events {}: {} pending of {} ({percent}%){warning}\n",
            sink.name, sink.pending, sink.capacity
        ));
    }
    for (mount, problem) in results {
        let uri = redact(&mount.uri);
        match problem {
            None => text.push_str(&format!("ok {} ({uri})\n", mount.point)),
            Some(p) => text.push_str(&format!("failed {} ({uri}): {p}\n", mount.point)),
        }
    }
    (ready, text)
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
