//! What a multipart upload became, when the store's answer leaves doubt, and
//! making sure what this process started is finished or cleaned up:
//!
//! - an unclear CompleteMultipartUpload (no answer, a 5xx, or the SDK's retry
//!   answered NoSuchUpload because the first attempt had committed) is
//!   settled by reading the key: the upload's token in the object's metadata,
//!   else its multipart ETag, says whether this upload is what is stored;
//! - an abort that fails is retried in the background with backoff, then
//!   left to the sweeper (`sweep`), each outcome logged and counted;
//! - the registry of upload ids this process is still sending, which the
//!   sweeper never touches.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::types::CompletedPart;
use md5::{Digest as _, Md5};

use super::error::{describe, is_no_such_upload, map};
use super::S3Target;
use crate::storage::{MultipartEvent, Result, StorageError};

/// User metadata naming the upload an object came from (a random token set
/// at CreateMultipartUpload).
pub(super) const TOKEN_META: &str = "s3ftp-upload";

/// Upload ids this process created and has not finished with.
static LIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Whether this process is still sending (or cleaning up) the upload.
pub(super) fn is_live(upload_id: &str) -> bool {
    LIVE.lock().is_ok_and(|live| live.contains(upload_id))
}

/// An upload id in the registry for as long as this value lives.
#[derive(Debug)]
pub(super) struct LiveUpload(String);

impl LiveUpload {
    pub(super) fn new(upload_id: &str) -> LiveUpload {
        if let Ok(mut live) = LIVE.lock() {
            live.insert(upload_id.to_string());
        }
        LiveUpload(upload_id.to_string())
    }

    pub(super) fn id(&self) -> &str {
        &self.0
    }
}

impl Drop for LiveUpload {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            live.remove(&self.0);
        }
    }
}

/// A fresh token for [`TOKEN_META`]: 128 random bits in hex.
pub(super) fn new_token() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// The ETag S3 (and Garage, moto, MinIO) gives a multipart object: the hex
/// MD5 of the concatenated binary MD5s of its parts, then `-` and the number
/// of parts. None when a part's ETag is not a plain hex MD5 (SSE-KMS, some
/// stores), where the scheme cannot be relied on.
pub(super) fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(parse_md5(part.e_tag()?)?);
    }
    Some(format!("{}-{}", hex(&md5.finalize()), parts.len()))
}

/// The ETag of a single PutObject of `body` (its hex MD5).
pub(super) fn simple_etag(body: &[u8]) -> String {
    hex(&Md5::digest(body))
}

fn parse_md5(etag: &str) -> Option<[u8; 16]> {
    let etag = etag.trim().trim_matches('"');
    if etag.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(etag.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the key holds, compared with the upload that may have landed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Landed {
    Yes,
    /// Something else is stored, or nothing.
    No,
    /// The store could not be read, or nothing decides.
    Unknown(String),
}

/// How to recognise the upload in what is stored.
pub(super) struct Expected<'a> {
    pub token: Option<&'a str>,
    pub etag: Option<String>,
}

/// Reads the key (HeadObject) to learn whether the expected upload is the
/// object stored there now.
pub(super) async fn landed(target: &S3Target, key: &str, expected: &Expected<'_>) -> Landed {
    let head = match target
        .client
        .head_object()
        .bucket(&target.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(head) => head,
        Err(e) => {
            return match map(e, "HeadObject") {
                StorageError::NotFound => Landed::No,
                other => Landed::Unknown(other.to_string()),
            }
        }
    };
    let stored_token = head.metadata().and_then(|m| m.get(TOKEN_META));
    if let (Some(token), Some(stored)) = (expected.token, stored_token) {
        // The token decides whenever the object carries one: it also works
        // where ETags are not MD5s.
        return if token == stored {
            Landed::Yes
        } else {
            Landed::No
        };
    }
    let stored_etag = head.e_tag().map(|e| e.trim().trim_matches('"'));
    match (&expected.etag, stored_etag) {
        (Some(etag), Some(stored)) => {
            if etag.eq_ignore_ascii_case(stored) {
                Landed::Yes
            } else {
                Landed::No
            }
        }
        _ => Landed::Unknown("neither an upload token nor a comparable ETag".into()),
    }
}

/// After an unclear failure of the request that would commit `key`: settles
/// what is stored and turns it into the commit's result, logging the
/// decision. `failure` describes what the store answered.
pub(super) async fn settle_commit(
    target: &S3Target,
    key: &str,
    operation: &str,
    expected: Expected<'_>,
    failure: String,
) -> Result<()> {
    let verdict = landed(target, key, &expected).await;
    match verdict {
        Landed::Yes => {
            tracing::info!(?key, operation, %failure,
                "the store's answer was lost or unclear, but the key holds this upload: committed");
            target.observer.multipart(MultipartEvent::CompleteConfirmed);
            Ok(())
        }
        Landed::No => {
            tracing::info!(?key, operation, %failure,
                "the store's answer was lost or unclear, and the key does not hold this upload: not committed");
            target.observer.multipart(MultipartEvent::CompleteNotStored);
            Err(StorageError::Transient(format!(
                "{operation} {key:?} did not take effect: {failure}"
            )))
        }
        Landed::Unknown(why) => {
            tracing::warn!(?key, operation, %failure, %why,
                "the store's answer was lost or unclear, and what is stored could not be read");
            Err(StorageError::Transient(format!(
                "{operation} {key:?}: outcome unknown ({failure}; reading the key: {why})"
            )))
        }
    }
}

/// Pauses between background abort attempts: with the SDK's own three tries
/// per attempt, six attempts over about a minute.
const ABORT_BACKOFF: [Duration; 5] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
    Duration::from_secs(30),
];

/// One AbortMultipartUpload. An upload already gone (NoSuchUpload) counts as
/// aborted: someone (a sweeper, a committed Complete) got there first.
pub(super) async fn abort_once(target: &S3Target, key: &str, upload_id: &str) -> Result<()> {
    if send_abort(target, key, upload_id).await? {
        target.observer.multipart(MultipartEvent::Aborted);
        tracing::debug!(?key, "multipart upload aborted");
    } else {
        tracing::debug!(?key, "multipart upload already gone");
    }
    Ok(())
}

/// One AbortMultipartUpload request: true if this request aborted it, false
/// if it was already gone (NoSuchUpload).
pub(super) async fn send_abort(target: &S3Target, key: &str, upload_id: &str) -> Result<bool> {
    let sent = target
        .client
        .abort_multipart_upload()
        .bucket(&target.bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    match sent {
        Ok(_) => Ok(true),
        Err(e) if is_no_such_upload(&e) => Ok(false),
        Err(e) => Err(map(e, "AbortMultipartUpload")),
    }
}

/// Aborts now; when that fails, keeps trying in the background (the caller's
/// reply is not delayed) and finally leaves the upload to the sweeper.
pub(super) async fn abort(target: &Arc<S3Target>, key: &str, upload: LiveUpload) {
    if let Err(e) = abort_once(target, key, upload.id()).await {
        retry_in_background(target.clone(), key.to_string(), upload, e);
    }
}

/// [`abort`] from code that cannot wait (a dropped sink): every attempt runs
/// in a task.
pub(super) fn abort_detached(target: Arc<S3Target>, key: String, upload: LiveUpload) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            ?key,
            upload_id = upload.id(),
            "no runtime to abort a dropped upload; left to the sweeper"
        );
        return;
    };
    handle.spawn(async move { abort(&target, &key, upload).await });
}

fn retry_in_background(
    target: Arc<S3Target>,
    key: String,
    upload: LiveUpload,
    first: StorageError,
) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    target.observer.multipart(MultipartEvent::AbortRetried);
    tracing::warn!(?key, upload_id = upload.id(), error = %first, "abort failed; retrying in the background");
    handle.spawn(async move {
        for (n, pause) in ABORT_BACKOFF.iter().enumerate() {
            tokio::time::sleep(*pause).await;
            match abort_once(&target, &key, upload.id()).await {
                Ok(()) => {
                    tracing::info!(?key, upload_id = upload.id(), attempt = n + 2, "abort succeeded on retry");
                    return;
                }
                Err(e) if n + 1 < ABORT_BACKOFF.len() => {
                    target.observer.multipart(MultipartEvent::AbortRetried);
                    tracing::warn!(?key, upload_id = upload.id(), error = %e, "abort failed again; retrying");
                }
                Err(e) => {
                    target.observer.multipart(MultipartEvent::AbortAbandoned);
                    tracing::warn!(?key, upload_id = upload.id(), error = %e,
                        "abort failed {} times; leaving the upload to the sweeper", n + 2);
                }
            }
        }
        // `upload` drops here: the sweeper may take it.
    });
}

/// The one-line description of an SDK failure, for [`settle_commit`].
pub(super) fn failure<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + super::error::HttpStatus,
{
    describe(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(n: i32, etag: &str) -> CompletedPart {
        CompletedPart::builder().part_number(n).e_tag(etag).build()
    }

    #[test]
    fn multipart_etag_is_the_md5_of_the_part_md5s() {
        let (a, b) = (vec![1u8; 5 << 20], b"tail".to_vec());
        let parts = [
            part(1, &format!("\"{}\"", simple_etag(&a))),
            part(2, &simple_etag(&b)),
        ];
        let mut concat = Vec::new();
        concat.extend_from_slice(&Md5::digest(&a));
        concat.extend_from_slice(&Md5::digest(&b));
        let expected = format!("{}-2", hex(&Md5::digest(&concat)));
        assert_eq!(multipart_etag(&parts), Some(expected));
        // Known value: one part of b"" (its MD5 d41d8cd9...).
        assert_eq!(
            multipart_etag(&[part(1, "d41d8cd98f00b204e9800998ecf8427e")]).as_deref(),
            Some("59adb24ef3cdbe0297f05b395827453f-1")
        );
    }

    #[test]
    fn multipart_etag_needs_md5_part_etags() {
        assert_eq!(multipart_etag(&[part(1, "not-an-md5")]), None);
        assert_eq!(multipart_etag(&[part(1, "abc-3")]), None);
        assert_eq!(
            multipart_etag(&[part(1, "zz1d8cd98f00b204e9800998ecf8427e")]),
            None
        );
        assert_eq!(multipart_etag(&[CompletedPart::builder().build()]), None);
    }

    #[test]
    fn the_registry_holds_ids_while_their_guard_lives() {
        let guard = LiveUpload::new("test-upload-id");
        assert!(is_live("test-upload-id"));
        drop(guard);
        assert!(!is_live("test-upload-id"));
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 32);
    }
}
