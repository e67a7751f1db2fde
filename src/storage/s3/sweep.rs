//! The sweeper of stale multipart uploads under a mount's prefix: what a
//! crashed or killed server left behind, and aborts that kept failing. Runs
//! once at start (in its own task: start-up does not wait) and then every
//! min(age, 1 h) / 2.
//!
//! An upload is stale when this process is not sending it (the registry in
//! `settle`), it was initiated more than `age` ago, and its newest part is
//! older than `age` too: another replica's upload that is slow but alive
//! keeps sending parts and survives. Uploads of other tools under the same
//! prefix are judged the same way; uploads outside the prefix are never
//! listed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::types::EncodingType;

use super::error::{is_no_such_upload, map};
use super::settle::{is_live, send_abort};
use super::times::to_system_time;
use super::{urlkeys, S3Target};
use crate::storage::{MultipartEvent, Result};

/// Most ListMultipartUploads pages (of up to 1,000 uploads) read per sweep,
/// and ListParts pages per upload: bounded work per round.
const MAX_PAGES: usize = 100;

/// Aborts the sweeping task when the back end goes away.
#[derive(Debug)]
pub(super) struct Sweeper(tokio::task::AbortHandle);

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Time between two sweeps for a given staleness age.
pub(super) fn interval(age: Duration) -> Duration {
    (age.min(Duration::from_secs(3600)) / 2).max(Duration::from_secs(1))
}

/// Starts sweeping `prefix` (a mount's key prefix, "" for the whole bucket).
/// None when `age` is zero (sweeping is off) or there is no runtime.
pub(super) fn spawn(target: Arc<S3Target>, prefix: &str, age: Duration) -> Option<Sweeper> {
    if age.is_zero() {
        return None;
    }
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let task = handle.spawn(async move {
        // Start-up reports a store that cannot be used, once: the sweeper
        // waits quietly until it can be.
        let mut pause = Duration::from_millis(200);
        while target.check(&prefix).await.is_err() {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(interval(age));
        }
        loop {
            match sweep_once(&target, &prefix, age).await {
                Ok(0) => tracing::debug!(?prefix, "no stale multipart uploads"),
                Ok(n) => tracing::info!(?prefix, swept = n, "stale multipart uploads aborted"),
                Err(e) => tracing::warn!(?prefix, error = %e, "sweeping multipart uploads failed"),
            }
            tokio::time::sleep(interval(age)).await;
        }
    });
    Some(Sweeper(task.abort_handle()))
}

/// One pass over the uploads under `prefix`; returns how many were aborted.
pub(super) async fn sweep_once(target: &S3Target, prefix: &str, age: Duration) -> Result<usize> {
    let cutoff = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    let mut swept = 0;
    for _ in 0..MAX_PAGES {
        let out = target
            .client
            .list_multipart_uploads()
            .bucket(&target.bucket)
            .prefix(prefix)
            .encoding_type(EncodingType::Url)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .map_err(|e| map(e, "ListMultipartUploads"))?;
        for upload in out.uploads() {
            let (Some(key), Some(id)) = (urlkeys::decode_opt(upload.key())?, upload.upload_id())
            else {
                continue;
            };
            // The store filtered by prefix; checked again so a store that
            // ignores the parameter cannot make us touch other keys.
            if !key.starts_with(prefix) || is_live(id) {
                continue;
            }
            let Some(initiated) = upload.initiated().and_then(to_system_time) else {
                continue;
            };
            if initiated > cutoff || newest_part(target, &key, id).await? > Some(cutoff) {
                continue;
            }
            if abort_stale(target, &key, id, initiated).await {
                swept += 1;
            }
        }
        if out.is_truncated() != Some(true) {
            return Ok(swept);
        }
        // The markers come back URL-encoded like the keys; the next
        // request wants the key itself.
        key_marker = urlkeys::decode_opt(out.next_key_marker())?;
        id_marker = out.next_upload_id_marker().map(str::to_string);
        if key_marker.is_none() {
            return Ok(swept);
        }
    }
    Ok(swept)
}

/// When the newest part of an upload was sent (None: no parts yet).
async fn newest_part(target: &S3Target, key: &str, id: &str) -> Result<Option<SystemTime>> {
    let mut newest = None;
    let mut marker = None::<String>;
    for _ in 0..MAX_PAGES {
        let out = match target
            .client
            .list_parts()
            .bucket(&target.bucket)
            .key(key)
            .upload_id(id)
            .set_part_number_marker(marker.clone())
            .send()
            .await
        {
            Ok(out) => out,
            // Completed or aborted meanwhile: nothing to sweep, and "now"
            // keeps it from being aborted.
            Err(e) if is_no_such_upload(&e) => return Ok(Some(SystemTime::now())),
            Err(e) => return Err(map(e, "ListParts")),
        };
        for part in out.parts() {
            let sent = part.last_modified().and_then(to_system_time);
            newest = newest.max(sent);
        }
        if out.is_truncated() != Some(true) {
            break;
        }
        marker = out.next_part_number_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    Ok(newest)
}

/// Aborts one stale upload, logging and counting it; false if it failed.
async fn abort_stale(target: &S3Target, key: &str, id: &str, initiated: SystemTime) -> bool {
    let age = SystemTime::now()
        .duration_since(initiated)
        .unwrap_or_default()
        .as_secs();
    match send_abort(target, key, id).await {
        Ok(true) => {
            target.observer.multipart(MultipartEvent::Swept);
            tracing::info!(
                ?key,
                upload_id = id,
                age_secs = age,
                "stale multipart upload aborted"
            );
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::warn!(?key, upload_id = id, error = %e, "could not abort a stale multipart upload");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_every_half_age_capped_at_half_an_hour() {
        assert_eq!(
            interval(Duration::from_secs(3600)),
            Duration::from_secs(1800)
        );
        assert_eq!(
            interval(Duration::from_secs(86400)),
            Duration::from_secs(1800)
        );
        assert_eq!(interval(Duration::from_secs(60)), Duration::from_secs(30));
        assert_eq!(interval(Duration::from_secs(1)), Duration::from_secs(1));
    }
}
