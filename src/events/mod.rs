//! Events of completed actions (an upload stored, a file deleted...), sent
//! to a webhook, an SQS queue or an SNS topic, at least once.
//!
//! An event is built where the action ended (after the store confirmed it),
//! written to each sink's spool folder before `emit` returns, and delivered
//! by that sink's worker, oldest first, one at a time: events reach a sink in
//! the order they were emitted (so per key too), and a sink that is down
//! holds the line until it comes back (retries with exponential backoff and
//! jitter) while transfers go on. Receivers deduplicate by `id`. Schema:
//! README, "Events".

pub mod sinks;
pub mod spool;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::storage::StoreRef;
use sinks::{Failure, SharedSink};
use spool::Spool;

/// The `schema` of every event; a change that removes or renames a field
/// gets a new version.
pub const SCHEMA: &str = "s3ftp.event.v1";

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    #[serde(rename = "upload.completed")]
    Uploaded,
    #[serde(rename = "upload.failed")]
    UploadFailed,
    #[serde(rename = "upload.aborted")]
    UploadAborted,
    #[serde(rename = "download.completed")]
    Downloaded,
    #[serde(rename = "file.deleted")]
    Deleted,
    #[serde(rename = "file.renamed")]
    Renamed,
    #[serde(rename = "dir.created")]
    DirCreated,
    #[serde(rename = "dir.removed")]
    DirRemoved,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Uploaded,
        Kind::UploadFailed,
        Kind::UploadAborted,
        Kind::Downloaded,
        Kind::Deleted,
        Kind::Renamed,
        Kind::DirCreated,
        Kind::DirRemoved,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Uploaded => "upload.completed",
            Kind::UploadFailed => "upload.failed",
            Kind::UploadAborted => "upload.aborted",
            Kind::Downloaded => "download.completed",
            Kind::Deleted => "file.deleted",
            Kind::Renamed => "file.renamed",
            Kind::DirCreated => "dir.created",
            Kind::DirRemoved => "dir.removed",
        }
    }
}

/// One event, as sent.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub schema: &'static str,
    /// Unique; receivers deduplicate by it.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub server_id: String,
    pub session: u64,
    pub user: String,
    pub client_ip: String,
    pub client_port: u16,
    /// The FTP command that did it (STOR, APPE, RNTO...).
    pub command: &'static str,
    /// The path in the server's whole tree (the user's home included).
    pub path: String,
    /// The path as the user sees it (relative to their home).
    pub user_path: String,
    /// A rename's old path (whole tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_path: Option<String>,
    /// The mount point the path is under.
    pub mount: Option<String>,
    /// Where it is stored: `{"kind":"s3","bucket":..,"key":..}`,
    /// `{"kind":"folder","path":..}` or `{"kind":"memory","key":..}`.
    pub store: Option<StoreRef>,
    /// A rename's old location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_store: Option<StoreRef>,
    /// Bytes stored (uploads) or sent (downloads).
    pub size: Option<u64>,
    pub etag: Option<String>,
    /// Checksums the server computed, by algorithm (`crc32`, `sha256`...).
    pub checksums: BTreeMap<String, String>,
    pub duration_ms: Option<u64>,
    /// The final reply of a failed or aborted upload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
}

impl Event {
    /// An event of `kind` now, with a fresh id; the caller fills the rest.
    pub fn new(kind: Kind, command: &'static str) -> Event {
        Event {
            schema: SCHEMA,
            id: new_id(),
            kind,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            server_id: String::new(),
            session: 0,
            user: String::new(),
            client_ip: String::new(),
            client_port: 0,
            command,
            path: String::new(),
            user_path: String::new(),
            from_path: None,
            mount: None,
            store: None,
            from_store: None,
            size: None,
            etag: None,
            checksums: BTreeMap::new(),
            duration_ms: None,
            reply: None,
        }
    }
}

/// A random UUID (version 4) in its usual text form.
fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Which events are sent: by type and by path prefix (whole tree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub kinds: Vec<Kind>,
    /// Empty: every path.
    pub prefixes: Vec<String>,
}

impl Filter {
    pub fn wants(&self, kind: Kind, path: &str) -> bool {
        self.kinds.contains(&kind)
            && (self.prefixes.is_empty()
                || self.prefixes.iter().any(|p| {
                    p == "/"
                        || path == p
                        || path.starts_with(&format!("{}/", p.trim_end_matches('/')))
                }))
    }
}

/// The sinks configured (S3FTP_EVENTS_*).
#[derive(Clone, Debug)]
pub struct EventSettings {
    pub webhook: Option<(hyper::Uri, crate::secrets::Secret)>,
    pub sqs_queue_url: Option<String>,
    pub sns_topic_arn: Option<String>,
    pub filter: Filter,
    pub spool: PathBuf,
    pub max_pending: usize,
    /// Longest wait between two attempts.
    pub retry_max: Duration,
    /// Per attempt.
    pub timeout: Duration,
}

impl EventSettings {
    pub fn any_sink(&self) -> bool {
        self.webhook.is_some() || self.sqs_queue_url.is_some() || self.sns_topic_arn.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("S3FTP_EVENTS_SPOOL: cannot use {path}: {reason}")]
    Spool { path: String, reason: String },
}

/// The state of one sink, for metrics and /readyz.
pub struct SinkStatus {
    pub name: &'static str,
    pub pending: usize,
    pub capacity: usize,
    pub delivered: u64,
    pub retried: u64,
    pub refused: u64,
    pub dropped: u64,
}

/// The event pipeline: a filter and each sink's spool and worker. Cheap to
/// emit into from any task; never waits for a sink.
#[derive(Default)]
pub struct Events {
    filter: Option<Filter>,
    server_id: String,
    sinks: Vec<(SharedSink, Arc<Spool>)>,
    /// Holds the spool folder's lock while the server runs.
    _lock: Option<std::fs::File>,
}

impl Events {
    /// No sinks: nothing is ever built or sent.
    pub fn off() -> Events {
        Events::default()
    }

    /// Opens the spools (locking the folder against another process) and
    /// starts a worker per sink.
    pub async fn start(settings: &EventSettings, server_id: &str) -> Result<Events, EventsError> {
        if !settings.any_sink() {
            return Ok(Events::off());
        }
        let spool_error = |reason: String| EventsError::Spool {
            path: settings.spool.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(&settings.spool).map_err(|e| spool_error(e.to_string()))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(settings.spool.join(".lock"))
            .map_err(|e| spool_error(e.to_string()))?;
        lock.try_lock().map_err(|_| {
            spool_error(
                "another s3ftp process uses this folder; give each replica a spool of its own"
                    .into(),
            )
        })?;
        let mut sinks: Vec<SharedSink> = Vec::new();
        if let Some((url, secret)) = &settings.webhook {
            let tls = crate::tls::client_config(None).map_err(|e| spool_error(e.to_string()))?;
            sinks.push(Arc::new(sinks::Webhook {
                url: url.clone(),
                secret: secret.clone(),
                client: crate::httpclient::HttpClient::new(tls, settings.timeout),
            }));
        }
        if let Some(url) = &settings.sqs_queue_url {
            let config = sinks::aws_config(sinks::region_of(url), settings.timeout).await;
            sinks.push(Arc::new(sinks::Sqs {
                client: aws_sdk_sqs::Client::new(&config),
                queue_url: url.clone(),
            }));
        }
        if let Some(arn) = &settings.sns_topic_arn {
            let config = sinks::aws_config(sinks::region_of(arn), settings.timeout).await;
            sinks.push(Arc::new(sinks::Sns {
                client: aws_sdk_sns::Client::new(&config),
                topic_arn: arn.clone(),
            }));
        }
        let mut started = Vec::new();
        for sink in sinks {
            let spool = Spool::open(&settings.spool.join(sink.name()), settings.max_pending)
                .map_err(|e| spool_error(e.to_string()))?;
            let spool = Arc::new(spool);
            if !spool.is_empty() {
                tracing::info!(
                    sink = sink.name(),
                    pending = spool.len(),
                    "events left by the last run are sent first"
                );
            }
            tokio::spawn(deliver(sink.clone(), spool.clone(), settings.retry_max));
            started.push((sink, spool));
        }
        Ok(Events {
            filter: Some(settings.filter.clone()),
            server_id: server_id.to_string(),
            sinks: started,
            _lock: Some(lock),
        })
    }

    /// Whether an event of `kind` at `path` (whole tree) would be sent;
    /// false when events are off, so callers build nothing.
    pub fn wants(&self, kind: Kind, path: &str) -> bool {
        self.filter.as_ref().is_some_and(|f| f.wants(kind, path))
    }

    /// Spools `event` for every sink. Returns at once. Callers build events
    /// only when [`Events::wants`] them.
    pub fn emit(&self, mut event: Event) {
        if self.sinks.is_empty() {
            return;
        }
        event.server_id.clone_from(&self.server_id);
        let body = match serde_json::to_vec(&event) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "an event could not be encoded");
                return;
            }
        };
        for (_, spool) in &self.sinks {
            spool.push(&body);
        }
    }

    pub fn status(&self) -> Vec<SinkStatus> {
        self.sinks
            .iter()
            .map(|(sink, spool)| SinkStatus {
                name: sink.name(),
                pending: spool.len(),
                capacity: spool.capacity(),
                delivered: spool.counters.delivered.load(Ordering::Relaxed),
                retried: spool.counters.retried.load(Ordering::Relaxed),
                refused: spool.counters.refused.load(Ordering::Relaxed),
                dropped: spool.counters.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// First wait after a failed attempt; doubles up to the maximum.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// Sends a sink's events oldest first, each until the sink takes or
/// refuses it.
async fn deliver(sink: SharedSink, spool: Arc<Spool>, retry_max: Duration) {
    loop {
        let (name, body) = spool.oldest().await;
        let (id, group) = ids(&body);
        let mut failures: u32 = 0;
        loop {
            match sink.send(&id, &body, &group).await {
                Ok(()) => {
                    spool.done(&name);
                    spool.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    if failures > 0 {
                        tracing::info!(sink = sink.name(), failures, "events flow again");
                    }
                    break;
                }
                Err(Failure::Refuse(why)) => {
                    tracing::error!(sink = sink.name(), event = %id, "event refused for good, kept in the spool's refused/ folder: {why}");
                    spool.refuse(&name);
                    spool.counters.refused.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(Failure::Retry(why)) => {
                    failures += 1;
                    spool.counters.retried.fetch_add(1, Ordering::Relaxed);
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(
                            sink = sink.name(),
                            pending = spool.len(),
                            failures,
                            "events wait: {why}"
                        );
                    }
                    tokio::time::sleep(backoff(failures, retry_max)).await;
                }
            }
        }
    }
}

/// Exponential, capped, with jitter in [half, whole] so that replicas do
/// not retry in step.
fn backoff(failures: u32, max: Duration) -> Duration {
    let exp = FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let capped = exp.min(max.max(FIRST_RETRY));
    capped.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// The id and the ordering key (the path) of a spooled event.
fn ids(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Ids {
        id: String,
        path: String,
    }
    match serde_json::from_slice::<Ids>(body) {
        Ok(ids) => (ids.id, ids.path),
        Err(_) => (new_id(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn the_filter_takes_types_and_whole_segments() {
        let f = Filter {
            kinds: vec![Kind::Uploaded],
            prefixes: vec!["/in".into()],
        };
        assert!(f.wants(Kind::Uploaded, "/in/a.csv"));
        assert!(f.wants(Kind::Uploaded, "/in"));
        assert!(!f.wants(Kind::Uploaded, "/inbox/a.csv"));
        assert!(!f.wants(Kind::Deleted, "/in/a.csv"));
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let max = Duration::from_secs(8);
        for failures in 1..30 {
            let d = backoff(failures, max);
            assert!(d <= max, "{failures}: {d:?}");
            assert!(d >= FIRST_RETRY / 2);
        }
        assert!(backoff(20, max) >= max / 2);
    }

    #[test]
    fn events_serialise_with_their_schema() {
        let mut e = Event::new(Kind::Uploaded, "STOR");
        e.path = "/in/a.csv".into();
        e.store = Some(StoreRef::S3 {
            bucket: "b".into(),
            key: "p/in/a.csv".into(),
        });
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["type"], "upload.completed");
        assert_eq!(v["store"]["kind"], "s3");
        assert!(v.get("from_path").is_none());
        assert_eq!(
            ids(&serde_json::to_vec(&e).unwrap()),
            (e.id.clone(), e.path.clone())
        );
    }
}
