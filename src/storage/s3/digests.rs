//! Checksums of objects this process uploaded, for HASH and the X-commands
//! to answer without reading the object back. A single PutObject keeps them
//! in the object's metadata (`x-amz-meta-s3ftp-<algorithm>`), which survives
//! restarts and moves with copies and renames; a multipart object's
//! metadata is fixed when the upload starts, before its checksums are
//! known, so those are remembered here by the object's ETag, which changes
//! with its content.

use std::sync::Mutex;

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::ChecksumType;

use crate::bounded::BoundedMap;
use crate::digest::{checked_value, Algorithm, Digests};

/// ETags remembered at most.
const CAPACITY: usize = 10_000;

/// The store's own CRC-32 of the whole object (`checksum=crc32` mounts), as
/// hex: a FULL_OBJECT checksum, or one of a single PutObject. A COMPOSITE
/// one (a checksum of the parts' checksums) is no CRC-32 of the content.
fn store_crc32(head: &HeadObjectOutput) -> Option<String> {
    let whole = match head.checksum_type() {
        Some(ChecksumType::FullObject) => true,
        None => !head.e_tag().unwrap_or("-").contains('-'),
        Some(_) => false,
    };
    let value = head.checksum_crc32().filter(|_| whole)?;
    let bytes = aws_smithy_types::base64::decode(value).ok()?;
    let bytes: [u8; 4] = bytes.try_into().ok()?;
    Some(format!("{:08x}", u32::from_be_bytes(bytes)))
}

/// The metadata name of an algorithm's value.
pub(super) fn meta_name(algorithm: Algorithm) -> String {
    format!("s3ftp-{}", algorithm.key())
}

pub(super) struct KnownDigests {
    /// By ETag (bare, lower-case).
    table: Mutex<BoundedMap<String, Digests>>,
}

impl Default for KnownDigests {
    fn default() -> Self {
        KnownDigests {
            table: Mutex::new(BoundedMap::new(CAPACITY)),
        }
    }
}

fn bare(etag: &str) -> String {
    etag.trim().trim_matches('"').to_ascii_lowercase()
}

impl KnownDigests {
    fn table(&self) -> std::sync::MutexGuard<'_, BoundedMap<String, Digests>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn remember(&self, etag: &str, digests: &Digests) {
        if digests.is_empty() {
            return;
        }
        self.table().insert(bare(etag), digests.clone());
    }

    /// The value for the object whose HEAD is `head`: its metadata, else
    /// what this process remembers of its ETag.
    pub(super) fn of(&self, head: &HeadObjectOutput, algorithm: Algorithm) -> Option<String> {
        let meta = head.metadata();
        let stored = meta
            .and_then(|m| m.get(&meta_name(algorithm)))
            // `sha256=true` mounts have kept the whole-object SHA-256 so.
            .or_else(|| {
                meta.filter(|_| algorithm == Algorithm::Sha256)?
                    .get("sha256")
            });
        if let Some(value) = stored.and_then(|v| checked_value(algorithm, v)) {
            return Some(value);
        }
        if algorithm == Algorithm::Crc32 {
            if let Some(value) = store_crc32(head) {
                return Some(value);
            }
        }
        let etag = bare(head.e_tag()?);
        self.table()
            .get(&etag)
            .and_then(|d| d.get(algorithm))
            .map(str::to_string)
    }
}
