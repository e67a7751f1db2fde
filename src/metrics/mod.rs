//! Prometheus metrics. [`Metrics`] holds every family; the session and the
//! server record into it, back ends report through [`StorageObserver`], and
//! [`http`] serves the text format with the health endpoints.

pub mod http;

use std::fmt::Write as _;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::protocol::ReplyCode;
use crate::storage::s3::upload::UploadSettings;
use crate::storage::{MultipartEvent, RequestOutcome, StorageObserver};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    verb: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransferLabels {
    command: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    backend: &'static str,
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    backend: &'static str,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkOutcome {
    sink: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViaLabel {
    via: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MountLabel {
    mount: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Transfers take from milliseconds to hours: 10 ms to about 45 minutes.
fn transfer_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 4.0, 10))
}

/// Store requests: 1 ms to about 33 s.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every figure the server keeps. Cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    sessions_active: Gauge,
    sessions: Counter,
    refused: Family<ReasonLabel, Counter>,
    logins: Family<ResultLabel, Counter>,
    login_check_seconds: Histograms<ViaLabel>,
    commands: Family<CommandLabels, Counter>,
    bytes: Family<DirectionLabel, Counter>,
    transfers: Family<TransferLabels, Counter>,
    transfer_seconds: Histograms<CommandLabel>,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<OperationLabels>,
    multipart: Family<EventLabel, Counter>,
    /// 1 while a mount's store answers its periodic check.
    mount_up: Family<MountLabel, Gauge>,
    budget_bytes: Gauge,
    budget_used_bytes: Gauge,
    pool_bytes: Gauge,
    events_pending: Family<SinkLabel, Gauge>,
    events_pending_limit: Family<SinkLabel, Gauge>,
    events: Family<SinkOutcome, Counter>,
    /// The event pipeline, read at each scrape.
    event_source: std::sync::OnceLock<std::sync::Arc<crate::events::Events>>,
    /// The uploads' part budget and buffer pool, read at each scrape.
    upload: std::sync::OnceLock<UploadSettings>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// How a transfer ended, for [`Metrics::transfer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferEnd {
    Ok,
    Failed,
    Aborted,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("s3ftp");
        let m = Metrics {
            sessions_active: Gauge::default(),
            sessions: Counter::default(),
            refused: Family::default(),
            logins: Family::default(),
            login_check_seconds: Family::new_with_constructor(request_buckets),
            commands: Family::default(),
            bytes: Family::default(),
            transfers: Family::default(),
            transfer_seconds: Family::new_with_constructor(transfer_buckets),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(request_buckets),
            multipart: Family::default(),
            mount_up: Family::default(),
            budget_bytes: Gauge::default(),
            budget_used_bytes: Gauge::default(),
            pool_bytes: Gauge::default(),
            upload: std::sync::OnceLock::new(),
            events_pending: Family::default(),
            events_pending_limit: Family::default(),
            events: Family::default(),
            event_source: std::sync::OnceLock::new(),
            registry: Registry::default(),
        };
        registry.register(
            "sessions_active",
            "Control connections open now",
            m.sessions_active.clone(),
        );
        registry.register(
            "sessions",
            "Control connections accepted",
            m.sessions.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at once: session limit, per-address limit, ban",
            m.refused.clone(),
        );
        registry.register(
            "logins",
            "Login attempts by result: ok, failed, unavailable (the auth hook or directory did not answer)",
            m.logins.clone(),
        );
        registry.register(
            "events_pending",
            "Events waiting in a sink's spool (S3FTP_EVENTS_SPOOL)",
            m.events_pending.clone(),
        );
        registry.register(
            "events_pending_limit",
            "Most events a sink's spool keeps (S3FTP_EVENTS_MAX_PENDING); new events are dropped past it",
            m.events_pending_limit.clone(),
        );
        registry.register(
            "events",
            "Event deliveries by sink and outcome: delivered, retried (a failed attempt), refused (set aside for good), dropped (spool full)",
            m.events.clone(),
        );
        registry.register(
            "login_check_seconds",
            "Time to check a login, by who answered: cache, local (argon2), hook, ldap",
            m.login_check_seconds.clone(),
        );
        registry.register(
            "commands",
            "Commands by verb and final reply code",
            m.commands.clone(),
        );
        registry.register(
            "transfer_bytes",
            "Bytes moved over data connections: in (uploads), out (downloads, listings)",
            m.bytes.clone(),
        );
        registry.register(
            "transfers",
            "Data transfers by command and result",
            m.transfers.clone(),
        );
        registry.register(
            "transfer_duration_seconds",
            "Data transfer durations by command",
            m.transfer_seconds.clone(),
        );
        registry.register(
            "backend_requests",
            "Requests to the storage back end by operation and outcome (not_found is not an error)",
            m.requests.clone(),
        );
        registry.register(
            "backend_request_duration_seconds",
            "Storage back-end request latency by operation, retries included",
            m.request_seconds.clone(),
        );
        registry.register(
            "multipart_uploads",
            "Multipart uploads: started, completed, aborted; abort attempts that failed and \
             will be retried (abort_retried) or were given up to the sweeper (abort_abandoned); \
             stale uploads the sweeper aborted (swept); unclear CompleteMultipartUpload answers \
             resolved by reading the key (complete_confirmed, complete_not_stored)",
            m.multipart.clone(),
        );
        registry.register(
            "mount_up",
            "1 while the mount's store answers its check (every 30 s and on /readyz), else 0",
            m.mount_up.clone(),
        );
        registry.register(
            "upload_budget_bytes",
            "Size of the global budget of S3 part buffers (S3FTP_UPLOAD_MEMORY_MIB)",
            m.budget_bytes.clone(),
        );
        registry.register(
            "upload_budget_used_bytes",
            "Part buffers in use now; uploads wait while it equals the budget",
            m.budget_used_bytes.clone(),
        );
        registry.register(
            "upload_pool_bytes",
            "Idle part buffers kept warm for the next transfers; each goes back to the system after a minute unused",
            m.pool_bytes.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Reports the uploads' part budget and buffer pool at each scrape.
    pub fn watch_upload_budget(&self, upload: &UploadSettings) {
        self.budget_bytes.set((upload.budget_mib << 20) as i64);
        let _ = self.upload.set(upload.clone());
    }

    /// The outcome of a check of the mount at `point`.
    pub fn mount_checked(&self, point: &str, up: bool) {
        self.mount_up
            .get_or_create(&MountLabel {
                mount: point.to_string(),
            })
            .set(i64::from(up));
    }

    pub fn session_opened(&self) {
        self.sessions.inc();
        self.sessions_active.inc();
    }

    pub fn session_closed(&self) {
        self.sessions_active.dec();
    }

    /// `reason`: "max_sessions", "per_address" or "banned".
    pub fn connection_refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A login attempt's result: "ok", "failed" or "unavailable".
    pub fn login(&self, result: &'static str) {
        self.logins.get_or_create(&ResultLabel { result }).inc();
    }

    /// How long checking a login took, and who answered it.
    pub fn login_check(&self, via: &'static str, took: std::time::Duration) {
        self.login_check_seconds
            .get_or_create(&ViaLabel { via })
            .observe(took.as_secs_f64());
    }

    /// A command and the code of its final reply. `verb` comes from the
    /// parser's fixed set ("unknown" and "invalid" for lines it refused), so
    /// the number of series stays bounded whatever clients send.
    pub fn command(&self, verb: &'static str, code: ReplyCode) {
        let labels = CommandLabels {
            verb,
            code: code.as_u16(),
        };
        self.commands.get_or_create(&labels).inc();
    }

    /// A finished data transfer. `upload`: bytes came in from the client.
    pub fn transfer(
        &self,
        command: &'static str,
        upload: bool,
        bytes: u64,
        elapsed: Duration,
        end: TransferEnd,
    ) {
        let direction = if upload { "in" } else { "out" };
        self.bytes
            .get_or_create(&DirectionLabel { direction })
            .inc_by(bytes);
        let result = match end {
            TransferEnd::Ok => "ok",
            TransferEnd::Failed => "failed",
            TransferEnd::Aborted => "aborted",
        };
        self.transfers
            .get_or_create(&TransferLabels { command, result })
            .inc();
        self.transfer_seconds
            .get_or_create(&CommandLabel { command })
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition (OpenMetrics, which Prometheus reads).
    /// The event pipeline whose sinks /metrics and /readyz report.
    pub fn watch_events(&self, events: std::sync::Arc<crate::events::Events>) {
        let _ = self.event_source.set(events);
    }

    /// The state of each event sink (none when events are off).
    pub fn event_sinks(&self) -> Vec<crate::events::SinkStatus> {
        self.event_source
            .get()
            .map(|e| e.status())
            .unwrap_or_default()
    }

    pub fn encode(&self) -> String {
        if let Some(upload) = self.upload.get() {
            let mib = upload.budget_mib;
            let free = upload.budget.available_permits().min(mib);
            self.budget_used_bytes.set(((mib - free) << 20) as i64);
            self.pool_bytes.set(upload.pool.held_bytes() as i64);
        }
        for sink in self.event_sinks() {
            let label = SinkLabel { sink: sink.name };
            self.events_pending
                .get_or_create(&label)
                .set(sink.pending as i64);
            self.events_pending_limit
                .get_or_create(&label)
                .set(sink.capacity as i64);
            for (outcome, total) in [
                ("delivered", sink.delivered),
                ("retried", sink.retried),
                ("refused", sink.refused),
                ("dropped", sink.dropped),
            ] {
                let counter = self.events.get_or_create(&SinkOutcome {
                    sink: sink.name,
                    outcome,
                });
                // The pipeline keeps the totals; the counter catches up.
                counter.inc_by(total.saturating_sub(counter.get()));
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# metrics could not be encoded");
        }
        out
    }
}

impl StorageObserver for Metrics {
    fn request(
        &self,
        backend: &'static str,
        operation: &str,
        outcome: RequestOutcome,
        elapsed: Duration,
    ) {
        let outcome = match outcome {
            RequestOutcome::Ok => "ok",
            RequestOutcome::NotFound => "not_found",
            RequestOutcome::Error => "error",
        };
        self.requests
            .get_or_create(&RequestLabels {
                backend,
                operation: operation.to_string(),
                outcome,
            })
            .inc();
        self.request_seconds
            .get_or_create(&OperationLabels {
                backend,
                operation: operation.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn multipart(&self, event: MultipartEvent) {
        let event = match event {
            MultipartEvent::Started => "started",
            MultipartEvent::Completed => "completed",
            MultipartEvent::Aborted => "aborted",
            MultipartEvent::AbortRetried => "abort_retried",
            MultipartEvent::AbortAbandoned => "abort_abandoned",
            MultipartEvent::Swept => "swept",
            MultipartEvent::CompleteConfirmed => "complete_confirmed",
            MultipartEvent::CompleteNotStored => "complete_not_stored",
        };
        self.multipart.get_or_create(&EventLabel { event }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metrics with every family touched, as a busy server's are.
    fn exercised() -> Metrics {
        let m = Metrics::new();
        m.session_opened();
        m.login("failed");
        m.command("STOR", ReplyCode::ClosingDataConnection);
        m.transfer(
            "RETR",
            false,
            1234,
            Duration::from_millis(20),
            TransferEnd::Ok,
        );
        m.request(
            "s3",
            "HeadObject",
            RequestOutcome::NotFound,
            Duration::from_millis(3),
        );
        m.multipart(MultipartEvent::Aborted);
        m.multipart(MultipartEvent::Swept);
        m.mount_checked("/in", false);
        let upload = UploadSettings::new(5 << 20, 1, 16);
        m.watch_upload_budget(&upload);
        upload.budget.try_acquire_many(5).expect("permits").forget();
        m.connection_refused("banned");
        m.login_check("cache", Duration::from_micros(3));
        // What an event sink reports at a scrape (see `encode`).
        let sink = SinkLabel { sink: "webhook" };
        m.events_pending.get_or_create(&sink).set(3);
        m.events_pending_limit.get_or_create(&sink).set(100);
        m.events
            .get_or_create(&SinkOutcome {
                sink: "webhook",
                outcome: "dropped",
            })
            .inc();
        m
    }

    #[test]
    fn every_family_is_exposed_with_its_labels() {
        let m = exercised();
        let text = m.encode();
        for line in [
            "s3ftp_sessions_active 1",
            "s3ftp_sessions_total 1",
            "s3ftp_logins_total{result=\"failed\"} 1",
            "s3ftp_commands_total{verb=\"STOR\",code=\"226\"} 1",
            "s3ftp_transfer_bytes_total{direction=\"out\"} 1234",
            "s3ftp_transfers_total{command=\"RETR\",result=\"ok\"} 1",
            "s3ftp_transfer_duration_seconds_count{command=\"RETR\"} 1",
            "s3ftp_backend_requests_total{backend=\"s3\",operation=\"HeadObject\",outcome=\"not_found\"} 1",
            "s3ftp_backend_request_duration_seconds_count{backend=\"s3\",operation=\"HeadObject\"} 1",
            "s3ftp_multipart_uploads_total{event=\"aborted\"} 1",
            "s3ftp_multipart_uploads_total{event=\"swept\"} 1",
            "s3ftp_mount_up{mount=\"/in\"} 0",
            "s3ftp_upload_budget_bytes 16777216",
            "s3ftp_upload_budget_used_bytes 5242880",
            "s3ftp_upload_pool_bytes 0",
            "s3ftp_login_check_seconds_count{via=\"cache\"} 1",
            "s3ftp_events_pending{sink=\"webhook\"} 3",
            "s3ftp_events_pending_limit{sink=\"webhook\"} 100",
            "s3ftp_events_total{sink=\"webhook\",outcome=\"dropped\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        m.session_closed();
        assert!(m.encode().lines().any(|l| l == "s3ftp_sessions_active 0"));
    }

    /// Every `s3ftp_*` series name in `text` (dashboard queries, alert rules).
    fn metric_names_in(text: &str) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        let mut rest = text;
        while let Some(i) = rest.find("s3ftp_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            names.insert(name);
            rest = &rest[i + "s3ftp_".len()..];
        }
        names
    }

    /// The series names an exposition holds, from its `# TYPE` lines:
    /// counters end in `_total`, histograms have `_bucket`, `_sum`, `_count`.
    fn exported_names(exposition: &str) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        for line in exposition.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let ["#", "TYPE", family, kind] = words[..] else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
        }
        names
    }

    /// The Grafana dashboard and the alert rules in deploy/ only use
    /// series the server exports (promtool checks the rules themselves:
    /// tests/deploy_files.rs).
    #[test]
    fn deploy_files_use_only_exported_metrics() {
        let exported = exported_names(&exercised().encode());
        let root = env!("CARGO_MANIFEST_DIR");
        for file in [
            "deploy/grafana/s3ftp-dashboard.json",
            "deploy/prometheus/alerts.yml",
        ] {
            let text = std::fs::read_to_string(format!("{root}/{file}")).expect(file);
            let used = metric_names_in(&text);
            assert!(used.len() >= 8, "{file} uses only {used:?}");
            for name in used {
                assert!(
                    exported.contains(&name),
                    "{file} uses {name}, which the server does not export: {exported:?}"
                );
            }
        }
    }
}
