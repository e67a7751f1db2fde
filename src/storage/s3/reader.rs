//! Reads: GetObject bodies as the storage layer's chunk streams, from an
//! offset (RETR, REST + RETR) or of a short prefix (kept by an append).
//!
//! An object larger than a part is read as ranged GetObjects of the upload
//! part size, `download_concurrency` at once, sent in order: the first part
//! streams as it arrives while the next ones are fetched, each held whole
//! (from the upload budget) until its turn. One connection to the store
//! carries only so much (a TCP window per round trip across a network; one
//! core of the store's server on loopback), so several carry more. Every
//! later part asks `If-Match` the first part's ETag: an object replaced
//! during the download ends it with an error, never a mix of two objects.
//! Parts are taken only while more than half the budget would stay free
//! (uploads wait for budget; slow downloaders must not make them wait);
//! otherwise the object streams from one GetObject.

use std::collections::VecDeque;
use std::sync::Arc;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};
use tokio::sync::OwnedSemaphorePermit;

use super::client::S3Target;
use super::error::map;
use super::parts::{PooledPart, MIB};
use super::S3Backend;
use crate::storage::{ByteStream, Result, StorageError};
use crate::task::AbortOnDrop;

impl S3Backend {
    /// The content of the object at `key` from byte `offset` on. A missing
    /// object that is a directory is IsDirectory.
    pub(super) async fn get(&self, key: &str, offset: u64) -> Result<ByteStream> {
        let upload = &self.target.upload;
        let part_mib = upload.part_size.div_ceil(MIB);
        let parts = upload.download_concurrency;
        // Downloads read ahead only while more than half the budget would
        // stay free (which also keeps one download within the budget): a
        // slow client holds its parts as long as it takes, and uploads,
        // which wait for budget, must not wait on downloads.
        let permits = parts * part_mib;
        if parts > 1 && upload.budget.available_permits() >= permits + upload.budget_mib / 2 {
            if let Ok(permit) = upload.budget.clone().try_acquire_many_owned(permits as u32) {
                return self.get_in_parts(key, offset, parts, permit).await;
            }
        }
        self.get_whole(key, offset).await
    }

    /// The object from `offset` from one GetObject, streamed.
    async fn get_whole(&self, key: &str, offset: u64) -> Result<ByteStream> {
        let range = (offset > 0).then(|| format!("bytes={offset}-"));
        let Some(out) = self.first_get(key, range).await? else {
            return Ok(stream::empty().boxed());
        };
        Ok(body_stream(out.body, self.full(key), offset))
    }

    /// The object from `offset` as parts, `parts` of them held or asked for
    /// at once under `permit` (see the module docs).
    async fn get_in_parts(
        &self,
        key: &str,
        offset: u64,
        parts: usize,
        permit: OwnedSemaphorePermit,
    ) -> Result<ByteStream> {
        let part = self.target.upload.part_size as u64;
        let range = format!("bytes={offset}-{}", offset + part - 1);
        let Some(out) = self.first_get(key, Some(range)).await? else {
            return Ok(stream::empty().boxed());
        };
        let full = self.full(key);
        let Some(range) = out.content_range() else {
            // No Content-Range: the store sent the whole object.
            return Ok(body_stream(out.body, full, offset));
        };
        let Some(total) = total_of(range) else {
            // A size the store does not say (`bytes 0-9/*`): never guess
            // where the object ends; read it from one GetObject instead.
            drop(out);
            return self.get_whole(key, offset).await;
        };
        // Without an ETag (S3 always sends one) the parts cannot be tied
        // to one version of the object; they are still read.
        let etag = out.e_tag().map(str::to_string);
        let first = body_stream(out.body, full.clone(), offset);
        if offset + part >= total {
            return Ok(first);
        }
        let ranges: VecDeque<(u64, u64)> = (offset + part..total)
            .step_by(part as usize)
            .map(|start| (start, (start + part).min(total) - 1))
            .collect();
        let mut ahead = Ahead {
            target: self.target.clone(),
            key: full,
            etag,
            ranges,
            fetching: VecDeque::new(),
            _permit: permit,
        };
        // One part streams from `first`; the others are fetched now.
        for _ in 1..parts {
            ahead.fetch_next();
        }
        let rest = stream::try_unfold(ahead, |mut ahead| async move {
            let Some(task) = ahead.fetching.pop_front() else {
                return Ok::<_, StorageError>(None);
            };
            let part = task
                .await
                .map_err(|e| StorageError::Other(format!("a download part failed: {e}")))??;
            ahead.fetch_next();
            Ok(Some((part, ahead)))
        });
        Ok(first.chain(rest).boxed())
    }

    /// The first (or only) GetObject of a read. None: the range starts at
    /// the end (416), nothing to send.
    async fn first_get(&self, key: &str, range: Option<String>) -> Result<Option<GetObjectOutput>> {
        let req = self
            .target
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(self.full(key))
            .set_range(range);
        match req.send().await {
            Ok(out) => Ok(Some(out)),
            Err(e) => {
                let is_range = e.raw_response().is_some_and(|r| r.status().as_u16() == 416);
                if is_range {
                    // Offset exactly at the end: nothing left to send.
                    return Ok(None);
                }
                Err(match map(e, "GetObject") {
                    StorageError::NotFound if self.dir_exists(key).await? => {
                        StorageError::IsDirectory
                    }
                    other => other,
                })
            }
        }
    }

    /// The first `len` bytes of an object (a short kept prefix).
    pub(super) async fn read_range(&self, full: &str, len: u64) -> Result<ByteStream> {
        let out = self
            .target
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(full)
            .range(format!("bytes=0-{}", len - 1))
            .send()
            .await
            .map_err(|e| map(e, "GetObject"))?;
        Ok(body_stream(out.body, full.to_string(), 0))
    }
}

/// The later parts of one download: those being fetched, in order, and
/// the ranges still to ask for.
struct Ahead {
    target: Arc<S3Target>,
    key: String,
    etag: Option<String>,
    ranges: VecDeque<(u64, u64)>,
    /// Parts' tasks, ended when the download is dropped (the client left).
    fetching: VecDeque<AbortOnDrop<Result<Bytes>>>,
    /// The budget the parts use, given back when the download ends.
    _permit: OwnedSemaphorePermit,
}

impl Ahead {
    /// Starts fetching the next range, if any is left.
    fn fetch_next(&mut self) {
        if let Some((start, end)) = self.ranges.pop_front() {
            let (target, key, etag) = (self.target.clone(), self.key.clone(), self.etag.clone());
            self.fetching.push_back(AbortOnDrop::spawn(async move {
                fetch_part(&target, &key, etag.as_deref(), start, end).await
            }));
        }
    }
}

/// Bytes `start..=end` of the object, if it is still the one with `etag`.
async fn fetch_part(
    target: &S3Target,
    key: &str,
    etag: Option<&str>,
    start: u64,
    end: u64,
) -> Result<Bytes> {
    let out = target
        .client
        .get_object()
        .bucket(&target.bucket)
        .key(key)
        .range(format!("bytes={start}-{end}"))
        .set_if_match(etag.map(str::to_string))
        .send()
        .await
        .map_err(|e| {
            let changed = e.raw_response().is_some_and(|r| r.status().as_u16() == 412);
            match map(e, "GetObject") {
                _ if changed => StorageError::Changed(format!(
                    "GetObject {key:?}: the object was replaced during the download \
                     (at byte {start})"
                )),
                // Deleted since the first part: changed too.
                StorageError::NotFound => StorageError::Changed(format!(
                    "GetObject {key:?}: the object was deleted during the download \
                     (at byte {start})"
                )),
                other => other,
            }
        })?;
    let mut body = body_stream(out.body, key.to_string(), start);
    let want = (end - start + 1) as usize;
    let pool = &target.upload.pool;
    let mut buf = pool.take(target.upload.part_size);
    while let Some(chunk) = body.try_next().await? {
        if buf.len() + chunk.len() > want {
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    if buf.len() != want {
        let got = buf.len();
        pool.give_buf(buf);
        return Err(StorageError::Transient(format!(
            "GetObject {key:?}: {got} bytes for bytes {start}-{end}"
        )));
    }
    Ok(PooledPart::into_bytes(buf, pool.clone()))
}

/// The object's total size from a Content-Range (`bytes 0-99/1234`).
fn total_of(content_range: &str) -> Option<u64> {
    content_range.rsplit_once('/')?.1.trim().parse().ok()
}

/// An object's body as the storage layer's chunk stream. A body cut off
/// mid-way is an error that says which object, how far it got and why.
fn body_stream(body: aws_sdk_s3::primitives::ByteStream, key: String, offset: u64) -> ByteStream {
    stream::try_unfold((body, offset), move |(mut body, read)| {
        let key = key.clone();
        async move {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    let read = read + chunk.len() as u64;
                    Ok(Some((chunk, (body, read))))
                }
                Ok(None) => Ok(None),
                Err(e) => {
                    let cause = aws_sdk_s3::error::DisplayErrorContext(&e).to_string();
                    tracing::warn!(?key, bytes_read = read, %cause, "S3 object body cut off");
                    Err(StorageError::Transient(format!(
                        "GetObject {key:?}: body cut off after byte {read}: {cause}"
                    )))
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::total_of;

    #[test]
    fn the_size_comes_from_content_range() {
        assert_eq!(total_of("bytes 0-99/1234"), Some(1234));
        assert_eq!(total_of("bytes 5242880-10485759/62914567"), Some(62914567));
        assert_eq!(total_of("bytes 0-9/*"), None);
        assert_eq!(total_of("bytes 0-9"), None);
    }
}
