//! Streamed uploads to S3. Bytes fill a part buffer; a file that ends within
//! the first part becomes one PutObject, anything larger a multipart upload
//! whose parts go up concurrently while the client is still sending. Nothing is
//! visible until CompleteMultipartUpload; an abort (or a dropped sink) aborts
//! the multipart upload so no parts are left behind.
//!
//! Memory per upload is bounded by the part buffer plus `concurrency` parts in
//! flight, and a global budget (a semaphore counted in MiB) bounds the parts in
//! flight across all sessions. Part sizes double every 900 parts so an upload
//! of unknown length reaches S3's 5 TiB limit within 10,000 parts (doubling
//! every 1,000 falls just short of it with the smallest, 5 MiB, parts).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use md5::{Digest as _, Md5};
use sha2::Sha256;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::error::{is_no_such_upload, map, outcome_unknown};
use super::settle::{self, Expected, LiveUpload};
use super::S3Target;
use crate::storage::Committed;
use crate::storage::{MultipartEvent, Result, StorageError, UploadSink};

use super::parts::MIB;
pub use super::parts::{part_size_for, PartPool, UploadSettings, MAX_PART, MAX_PARTS, MIN_PART};

pub(super) struct MultipartSink {
    target: Arc<S3Target>,
    key: String,
    metadata: HashMap<String, String>,
    buf: BytesMut,
    upload_id: Option<String>,
    /// Keeps the upload id in this process's registry (the sweeper skips it)
    /// until it is completed or its abort is settled.
    live: Option<LiveUpload>,
    /// Random token stored in the multipart object's metadata, so an unclear
    /// CompleteMultipartUpload can be settled by reading the key.
    token: String,
    /// Number of the next part to send.
    next_part: i32,
    tasks: JoinSet<Result<CompletedPart>>,
    done: Vec<CompletedPart>,
    slots: Arc<Semaphore>,
    total: u64,
    /// Hash of every byte of the object; None once a prefix was copied
    /// server-side (those bytes never pass through here).
    sha256: Option<Sha256>,
    /// Checksums the uploader computed, kept with the object at commit.
    kept: crate::digest::Digests,
    /// With the mount's `checksum=crc32`: each part's number, CRC-32 and
    /// length, for the whole object's CRC-32 at Complete. None without it,
    /// or once a prefix is copied server-side (those bytes pass elsewhere).
    part_crcs: Option<Vec<(i32, u32, u64)>>,
    finished: bool,
    /// Budget held for the part buffer being filled, taken when a file
    /// outgrows the small-file range and handed on to that part's upload:
    /// the budget bounds every part buffer, not only those in flight.
    fill_permit: Option<OwnedSemaphorePermit>,
}

impl MultipartSink {
    pub(super) fn new(
        target: Arc<S3Target>,
        key: String,
        metadata: HashMap<String, String>,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(target.upload.concurrency));
        let target_crc32 = target.crc32;
        let sha256 = target.sha256.then(Sha256::new);
        MultipartSink {
            target,
            key,
            metadata,
            buf: BytesMut::new(),
            upload_id: None,
            live: None,
            token: settle::new_token(),
            next_part: 1,
            tasks: JoinSet::new(),
            done: Vec::new(),
            slots,
            total: 0,
            sha256,
            kept: Default::default(),
            part_crcs: target_crc32.then(Vec::new),
            finished: false,
            fill_permit: None,
        }
    }

    /// Waits for `len` bytes of the global budget (whole MiB, at most all of it).
    async fn budget_for(&self, len: usize) -> Result<OwnedSemaphorePermit> {
        let mib = len.div_ceil(MIB).clamp(1, self.target.upload.budget_mib) as u32;
        self.target
            .upload
            .budget
            .clone()
            .acquire_many_owned(mib)
            .await
            .map_err(closed)
    }

    /// Past the small-file range: a whole part buffer, taken once (within
    /// the budget) rather than grown by copies; what was buffered moves in.
    async fn take_part_buffer(&mut self, part: usize) -> Result<()> {
        if self.buf.capacity() >= part {
            return Ok(());
        }
        if self.fill_permit.is_none() {
            self.fill_permit = Some(self.budget_for(part).await?);
        }
        let mut whole = self.target.upload.pool.take(part);
        whole.extend_from_slice(&self.buf);
        self.buf = whole;
        Ok(())
    }

    fn current_part_size(&self) -> usize {
        part_size_for(self.target.upload.part_size, self.next_part)
    }

    async fn create_upload(&mut self) -> Result<String> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let mut metadata = self.metadata.clone();
        metadata.insert(settle::TOKEN_META.into(), self.token.clone());
        let out = self
            .target
            .client
            .create_multipart_upload()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .set_metadata(Some(metadata))
            .set_checksum_algorithm(self.part_crcs.as_ref().map(|_| ChecksumAlgorithm::Crc32))
            .set_checksum_type(self.part_crcs.as_ref().map(|_| ChecksumType::FullObject))
            .send()
            .await
            .map_err(|e| map(e, "CreateMultipartUpload"))?;
        let id = out
            .upload_id()
            .ok_or_else(|| StorageError::Other("CreateMultipartUpload gave no upload id".into()))?
            .to_string();
        self.upload_id = Some(id.clone());
        self.live = Some(LiveUpload::new(&id));
        self.target.observer.multipart(MultipartEvent::Started);
        Ok(id)
    }

    /// Starts the upload of `body` as the next part, waiting for a slot and
    /// for budget first (which holds back the client when the store is slow).
    async fn start_part(&mut self, body: Bytes) -> Result<()> {
        if self.next_part > MAX_PARTS {
            return Err(StorageError::TooLarge("more than 10,000 parts".into()));
        }
        self.collect_finished()?;
        let upload_id = self.create_upload().await?;
        let slot = self.slots.clone().acquire_owned().await.map_err(closed)?;
        let budget = match self.fill_permit.take() {
            Some(permit) => permit,
            None => self.budget_for(body.len()).await?,
        };
        let number = self.next_part;
        self.next_part += 1;
        let crc = self.part_crcs.as_mut().map(|crcs| {
            let crc = crc32fast::hash(&body);
            crcs.push((number, crc, body.len() as u64));
            crc
        });
        let target = self.target.clone();
        let key = self.key.clone();
        self.tasks.spawn(async move {
            let permits: (OwnedSemaphorePermit, OwnedSemaphorePermit) = (slot, budget);
            let result = upload_part(&target, &key, &upload_id, number, body, crc).await;
            drop(permits);
            result
        });
        Ok(())
    }

    /// Moves parts that already finished into `done`, failing on the first error.
    fn collect_finished(&mut self) -> Result<()> {
        while let Some(joined) = self.tasks.try_join_next() {
            self.done
                .push(joined.map_err(|e| StorageError::Other(e.to_string()))??);
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<Committed> {
        let sha256 = self.sha256.take().map(|h| hex(&h.finalize()));
        let etag = if self.upload_id.is_none() {
            self.put_whole(sha256.as_deref()).await?
        } else {
            self.complete().await?
        };
        tracing::info!(
            key = %self.key,
            bytes = self.total,
            sha256 = sha256.as_deref().unwrap_or("-"),
            "object stored"
        );
        self.finished = true;
        Ok(Committed {
            size: self.total,
            etag,
        })
    }

    /// A file that ended within its first part: one PutObject, settled by
    /// reading the key when the answer is unclear. Its ETag.
    async fn put_whole(&mut self, sha256: Option<&str>) -> Result<Option<String>> {
        let body = std::mem::take(&mut self.buf).freeze();
        let mut metadata = self.metadata.clone();
        if let Some(sum) = sha256 {
            metadata.insert("sha256".into(), sum.to_string());
        }
        for (algorithm, value) in self.kept.iter() {
            metadata.insert(super::digests::meta_name(algorithm), value.to_string());
        }
        let sent = self
            .target
            .client
            .put_object()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .set_content_md5(self.target.content_md5.then(|| content_md5(&body)))
            .set_checksum_crc32(self.target.crc32.then(|| crc32_b64(crc32fast::hash(&body))))
            .set_metadata(Some(metadata))
            .body(ByteStream::from(body.clone()))
            .customize()
            .disable_payload_signing()
            .send()
            .await;
        let expected_etag = settle::simple_etag(&body);
        match sent {
            Ok(out) => Ok(out.e_tag),
            Err(e) if outcome_unknown(&e) => {
                // The object may be stored though the answer was lost:
                // its ETag (the body's MD5) says.
                let failure = settle::failure(&e);
                let _ = map(e, "PutObject");
                let expected = Expected {
                    token: None,
                    etag: Some(expected_etag.clone()),
                };
                settle::settle_commit(&self.target, &self.key, "PutObject", expected, failure)
                    .await?;
                Ok(Some(expected_etag))
            }
            Err(e) => Err(map(e, "PutObject")),
        }
    }

    /// The last part sent, every part awaited, then CompleteMultipartUpload,
    /// settled by reading the key when the answer is unclear.
    /// Completes the multipart upload; its ETag.
    async fn complete(&mut self) -> Result<Option<String>> {
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf).freeze();
            self.start_part(last).await?;
        }
        while let Some(joined) = self.tasks.join_next().await {
            self.done
                .push(joined.map_err(|e| StorageError::Other(e.to_string()))??);
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        let count = parts.len();
        let upload_id = self.upload_id.clone().unwrap_or_default();
        let etag = settle::multipart_etag(&parts);
        let whole_crc = self.part_crcs.as_mut().map(|crcs| {
            crcs.sort_by_key(|(number, ..)| *number);
            let mut whole = crc32fast::Hasher::new();
            for &(_, crc, len) in crcs.iter() {
                whole.combine(&crc32fast::Hasher::new_with_initial_len(crc, len));
            }
            whole.finalize()
        });
        let sent = self
            .target
            .client
            .complete_multipart_upload()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_checksum_crc32(whole_crc.map(crc32_b64))
            .set_checksum_type(whole_crc.map(|_| ChecksumType::FullObject))
            .send()
            .await;
        let stored_etag = match sent {
            Ok(out) => out.e_tag.or_else(|| etag.clone()),
            // NoSuchUpload: typically the SDK's retry after a first
            // attempt that committed but whose answer was lost.
            Err(e) if is_no_such_upload(&e) || outcome_unknown(&e) => {
                let failure = settle::failure(&e);
                let _ = map(e, "CompleteMultipartUpload");
                let expected = Expected {
                    token: Some(&self.token),
                    etag: etag.clone(),
                };
                settle::settle_commit(
                    &self.target,
                    &self.key,
                    "CompleteMultipartUpload",
                    expected,
                    failure,
                )
                .await?;
                etag.clone()
            }
            Err(e) => return Err(map(e, "CompleteMultipartUpload")),
        };
        if let Some(etag) = &etag {
            self.target.digests.remember(etag, &self.kept);
        }
        // Completed: nothing left to abort or sweep.
        self.upload_id = None;
        self.live = None;
        self.target.observer.multipart(MultipartEvent::Completed);
        tracing::debug!(key = %self.key, parts = count, "multipart upload completed");
        Ok(stored_etag)
    }

    async fn abort_now(&mut self) -> Result<()> {
        self.finished = true;
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        self.upload_id = None;
        if let Some(live) = self.live.take() {
            settle::abort(&self.target, &self.key, live).await;
        }
        Ok(())
    }

    /// Puts copied parts (UploadPartCopy of an existing object's first bytes)
    /// at the start of the upload. Each part is at least 5 MiB and at most 5 GiB.
    pub(super) async fn copy_prefix(&mut self, source_key: &str, len: u64) -> Result<()> {
        // Copied parts carry no CRC-32 of ours: no whole-object checksum.
        self.part_crcs = None;
        let upload_id = self.create_upload().await?;
        let ranges = copy_ranges(len);
        let first = self.next_part;
        self.next_part += ranges.len() as i32;
        let source = self.target.copy_source(source_key);
        let (target, key) = (&self.target, &self.key);
        let copied: Vec<CompletedPart> = futures::stream::iter(ranges.into_iter().enumerate())
            .map(|(i, (start, end))| {
                let (source, upload_id) = (&source, &upload_id);
                async move {
                    let number = first + i as i32;
                    let out = target
                        .client
                        .upload_part_copy()
                        .bucket(&target.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={start}-{end}"))
                        .send()
                        .await
                        .map_err(|e| map(e, "UploadPartCopy"))?;
                    let etag = out
                        .copy_part_result()
                        .and_then(|r| r.e_tag())
                        .unwrap_or_default();
                    Ok::<_, StorageError>(
                        CompletedPart::builder()
                            .part_number(number)
                            .e_tag(etag)
                            .build(),
                    )
                }
            })
            .buffer_unordered(target.upload.concurrency)
            .try_collect()
            .await?;
        self.done.extend(copied);
        self.total = len;
        self.sha256 = None;
        Ok(())
    }

    /// Puts already-read bytes at the start of the upload (a short kept prefix).
    pub(super) async fn push_prefix(&mut self, data: Bytes) -> Result<()> {
        self.total += data.len() as u64;
        if let Some(h) = self.sha256.as_mut() {
            h.update(&data);
        }
        self.buf.extend_from_slice(&data);
        Ok(())
    }
}

#[async_trait]
impl UploadSink for MultipartSink {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        if let Some(h) = self.sha256.as_mut() {
            h.update(&data);
        }
        self.total += data.len() as u64;
        let mut data = data;
        loop {
            let part = self.current_part_size();
            let room = part - self.buf.len();
            if data.len() < room {
                let large = self.upload_id.is_some() || self.buf.len() + data.len() > 256 * 1024;
                if large {
                    self.take_part_buffer(part).await?;
                }
                self.buf.extend_from_slice(&data);
                return Ok(());
            }
            if self.buf.is_empty() && data.len() == room {
                // A chunk that is exactly a part goes up without a copy.
                return self.start_part(data).await;
            }
            self.buf.extend_from_slice(&data.split_to(room));
            let full = std::mem::take(&mut self.buf).freeze();
            self.start_part(full).await?;
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    async fn room(&mut self) -> Result<Option<bytes::buf::Limit<&mut BytesMut>>> {
        // Small files stay in a small buffer (see `write`); past that range
        // the client's bytes are read straight into the part buffer.
        if self.upload_id.is_none() && self.buf.len() < 256 * 1024 {
            return Ok(None);
        }
        if self.buf.len() >= self.current_part_size() {
            // Never lend an empty room: a read into it would look like the
            // end of the data.
            let full = std::mem::take(&mut self.buf).freeze();
            self.start_part(full).await?;
        }
        let part = self.current_part_size();
        self.take_part_buffer(part).await?;
        let room = part.saturating_sub(self.buf.len());
        Ok(Some(bytes::BufMut::limit(&mut self.buf, room)))
    }

    async fn filled(&mut self, n: usize) -> Result<()> {
        let len = self.buf.len();
        if let Some(h) = self.sha256.as_mut() {
            h.update(&self.buf[len.saturating_sub(n)..]);
        }
        self.total += n as u64;
        if len >= self.current_part_size() {
            let full = std::mem::take(&mut self.buf).freeze();
            self.start_part(full).await?;
        }
        Ok(())
    }

    fn keep_digests(&mut self, digests: crate::digest::Digests) {
        self.kept = digests;
    }

    async fn commit(mut self: Box<Self>) -> Result<Committed> {
        match self.finish().await {
            Ok(n) => Ok(n),
            Err(e) => {
                if let Err(abort) = self.abort_now().await {
                    tracing::warn!(key = %self.key, error = %abort, "abort after a failed commit failed");
                }
                Err(e)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.abort_now().await
    }
}

impl Drop for MultipartSink {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.tasks.abort_all();
        if let Some(live) = self.live.take() {
            settle::abort_detached(self.target.clone(), self.key.clone(), live);
        }
    }
}

async fn upload_part(
    target: &S3Target,
    key: &str,
    upload_id: &str,
    number: i32,
    body: Bytes,
    crc: Option<u32>,
) -> Result<CompletedPart> {
    let md5 = target.content_md5.then(|| content_md5(&body));
    let crc = crc.map(crc32_b64);
    let buffer = body.clone();
    let out = target
        .client
        .upload_part()
        .bucket(&target.bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .set_content_md5(md5)
        .set_checksum_crc32(crc.clone())
        .body(ByteStream::from(body))
        // The body is protected by Content-MD5, TLS or a loopback socket
        // (see Checksum): signing it too would hash every byte with SHA-256.
        .customize()
        .disable_payload_signing()
        .send()
        .await;
    target.upload.pool.give(buffer);
    let out = out.map_err(|e| map(e, "UploadPart"))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(out.e_tag().map(str::to_string))
        .set_checksum_crc32(crc)
        .build())
}

/// A CRC-32 as S3's `x-amz-checksum-crc32`: base64 of its 4 big-endian bytes.
fn crc32_b64(crc: u32) -> String {
    aws_smithy_types::base64::encode(crc.to_be_bytes())
}

/// Smallest part a server-side copy is split into: big enough that copies
/// are few, small enough that they run in parallel.
const COPY_PART: u64 = 256 * 1024 * 1024;

/// Inclusive byte ranges for copying the first `len` bytes in parallel parts:
/// equal sizes (so none is under 5 MiB when `len` is at least 5 MiB), at most
/// 5 GiB each, and about 1,000 of them (1,024 for a 5 TiB object, S3's
/// 5 GiB part limit) so that data parts can follow.
fn copy_ranges(len: u64) -> Vec<(u64, u64)> {
    let target = COPY_PART.max(len.div_ceil(1000)).min(MAX_PART as u64);
    let parts = len.div_ceil(target).max(1);
    let size = len.div_ceil(parts);
    (0..parts)
        .map(|i| (i * size, ((i + 1) * size).min(len) - 1))
        .filter(|(start, end)| start <= end)
        .collect()
}

/// Content-MD5 header value: the base64 MD5 of the body, which the store verifies.
fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn closed(_: tokio::sync::AcquireError) -> StorageError {
    StorageError::Other("upload budget closed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges_cover_the_prefix_in_valid_parts() {
        for len in [
            MIN_PART as u64,
            6 * MIB as u64,
            300 * MIB as u64,
            7 << 30,
            5 << 40,
        ] {
            let ranges = copy_ranges(len);
            assert!(ranges.len() <= 1024, "{len}: {} parts", ranges.len());
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges.last().map(|r| r.1), Some(len - 1));
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1 + 1, pair[1].0, "contiguous");
            }
            for (start, end) in &ranges {
                let size = end - start + 1;
                assert!(
                    size >= MIN_PART as u64 && size <= MAX_PART as u64,
                    "{len}: {size}"
                );
            }
        }
        assert_eq!(copy_ranges(300 * MIB as u64).len(), 2);
    }

    #[test]
    fn md5_header() {
        assert_eq!(content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
