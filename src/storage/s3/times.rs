//! Client-set times: kept in the `mtime` / `btime` user metadata (seconds
//! since the epoch, as rclone writes them), set by a copy of the object onto
//! itself, and remembered per ETag so listings can show them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::operation::head_object::HeadObjectOutput;

use super::S3Backend;
use crate::storage::{EntryKind, Metadata, Result, Times};

/// Most entries [`KnownTimes`] holds before it starts afresh.
const KNOWN_TIMES_CAP: usize = 100_000;

/// Client-set modification times seen in object metadata (by MFMT or a
/// HEAD), so listings can show them without a HEAD per listed entry
/// (ListObjectsV2 carries no user metadata). An entry holds only while the
/// object's ETag is the one seen with it: an overwrite with other content, by
/// this server or another client, makes the listing fall back to LastModified.
#[derive(Default)]
pub(super) struct KnownTimes(Mutex<HashMap<String, (SystemTime, String)>>);

impl KnownTimes {
    fn remember(&self, full: &str, client_time: SystemTime, etag: Option<&str>) {
        let Some(stamp) = etag.map(str::to_string) else {
            return;
        };
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= KNOWN_TIMES_CAP {
                map.clear();
            }
            map.insert(full.to_string(), (client_time, stamp));
        }
    }

    /// Remembers the client-set time a HEAD of `full` showed, if any.
    pub(super) fn remember_head(&self, full: &str, head: &HeadObjectOutput) {
        if let Some(client_time) = client_mtime(head) {
            self.remember(full, client_time, head.e_tag());
        }
    }

    /// The client-set time of `full`, if it still applies to this version.
    pub(super) fn lookup(&self, full: &str, etag: Option<&str>) -> Option<SystemTime> {
        let etag = etag?;
        let map = self.0.lock().ok()?;
        map.get(full).filter(|(_, s)| s == etag).map(|(t, _)| *t)
    }
}

impl S3Backend {
    /// Stores `times` on the file at `key`, whose HEAD is `head`.
    pub(super) async fn store_times(
        &self,
        key: &str,
        head: &HeadObjectOutput,
        times: Times,
    ) -> Result<()> {
        let mut metadata = head.metadata().cloned().unwrap_or_default();
        if let Some(t) = times.modified {
            metadata.insert("mtime".into(), format_epoch(t));
        }
        if let Some(t) = times.created {
            metadata.insert("btime".into(), format_epoch(t));
        }
        let full = self.full(key);
        // A copy onto itself with the metadata replaced: content, type and the
        // other metadata stay as they were.
        self.copy_object(
            &full,
            &full,
            size_of(head),
            Some(metadata),
            head.content_type().map(str::to_string),
        )
        .await
    }
}

fn user_time(head: &HeadObjectOutput, name: &str) -> Option<SystemTime> {
    head.metadata()
        .and_then(|m| m.get(name))
        .and_then(|v| parse_epoch(v))
}

fn client_mtime(head: &HeadObjectOutput) -> Option<SystemTime> {
    user_time(head, "mtime")
}

/// A file's metadata from its HEAD: the client-set times when stored.
pub(super) fn metadata_of(head: &HeadObjectOutput) -> Metadata {
    let modified = client_mtime(head).or_else(|| head.last_modified().and_then(to_system_time));
    Metadata {
        kind: EntryKind::File,
        size: size_of(head),
        modified,
        created: user_time(head, "btime"),
    }
}

/// An object's size in bytes (0 when the store does not say).
pub(super) fn size_of(head: &HeadObjectOutput) -> u64 {
    head.content_length().unwrap_or(0).max(0) as u64
}

/// Seconds since the epoch, with an optional fraction (rclone's format).
fn parse_epoch(value: &str) -> Option<SystemTime> {
    let secs: f64 = value.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs_f64(secs))
}

pub(super) fn format_epoch(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

pub(super) fn to_system_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_times_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_577_934_245, 500_000_000);
        assert_eq!(parse_epoch(&format_epoch(t)), Some(t));
        assert_eq!(
            parse_epoch("1577934245"),
            Some(UNIX_EPOCH + Duration::from_secs(1_577_934_245))
        );
        assert_eq!(parse_epoch("nope"), None);
    }
}
