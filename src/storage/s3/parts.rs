//! Part buffers of uploads: S3's part limits, part sizes that double so an
//! upload of unknown length fits in 10,000 parts, the global budget of part
//! bytes, and the pool that reuses sent parts' buffers (see ARCHITECTURE.md
//! on the mmap threshold and page faults).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;

/// S3's smallest part (except the last) and largest part.
pub const MIN_PART: usize = 5 * 1024 * 1024;
pub const MAX_PART: usize = 5 * 1024 * 1024 * 1024;
/// S3's most parts per upload.
pub const MAX_PARTS: i32 = 10_000;
pub(super) const MIB: usize = 1024 * 1024;

/// Upload tuning shared by every S3 mount.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Size of the first 900 parts (at least 5 MiB).
    pub part_size: usize,
    /// Parts of one upload in flight at once.
    pub concurrency: usize,
    /// Global budget of part bytes in flight, in MiB permits.
    pub budget: Arc<Semaphore>,
    /// The budget's size, so one part never waits for more than exists.
    pub budget_mib: usize,
    /// Part buffers kept for reuse after their part was sent.
    pub pool: Arc<PartPool>,
    /// Parts of one download asked for at once (ranged GetObjects of
    /// `part_size`, from the same budget); 1: one GetObject streamed.
    pub download_concurrency: usize,
}

impl UploadSettings {
    pub fn new(part_size: usize, concurrency: usize, budget_mib: usize) -> Self {
        let part_size = part_size.clamp(MIN_PART, MAX_PART);
        let concurrency = concurrency.max(1);
        UploadSettings {
            part_size,
            concurrency,
            budget: Arc::new(Semaphore::new(budget_mib.max(1))),
            budget_mib: budget_mib.max(1),
            pool: Arc::new(PartPool {
                size: part_size,
                // As many as the budget can have in use at once (at least
                // one upload's worth): buffers stay warm across sessions.
                keep: ((budget_mib.max(1) * MIB) / part_size).max(concurrency + 1),
                free: std::sync::Mutex::new(Vec::new()),
            }),
            download_concurrency: concurrency,
        }
    }

    /// The same, with downloads asking for `parts` parts at once.
    pub fn with_download_concurrency(mut self, parts: usize) -> Self {
        self.download_concurrency = parts.max(1);
        self
    }
}

/// Reuses part buffers: a new buffer is mapped fresh from the system, and
/// faulting its pages in cost about a third of an upload's CPU. Keeps as
/// many as the upload budget allows in use at once (at least one upload's
/// `concurrency + 1`), so the sessions of a batch that logs in per file find
/// warm buffers; after a burst the process keeps at most the budget
/// (S3FTP_UPLOAD_MEMORY_MIB) of them, which it was allowed to use anyway.
#[derive(Debug)]
pub struct PartPool {
    size: usize,
    keep: usize,
    free: std::sync::Mutex<Vec<BytesMut>>,
}

impl PartPool {
    /// An empty buffer for a part of `size` bytes.
    pub(super) fn take(&self, size: usize) -> BytesMut {
        if size == self.size {
            if let Some(buf) = self.free.lock().ok().and_then(|mut f| f.pop()) {
                return buf;
            }
        }
        let buf = BytesMut::with_capacity(size);
        advise_huge_pages(&buf);
        buf
    }

    /// Takes back a sent part's buffer, when nothing else still holds it.
    pub(super) fn give(&self, part: Bytes) {
        if let Ok(buf) = part.try_into_mut() {
            self.give_buf(buf);
        }
    }

    /// Takes back a buffer no longer in use.
    pub(super) fn give_buf(&self, mut buf: BytesMut) {
        if buf.capacity() < self.size || buf.capacity() > 2 * self.size {
            return;
        }
        buf.clear();
        if let Ok(mut free) = self.free.lock() {
            if free.len() < self.keep {
                free.push(buf);
            }
        }
    }
}

/// A downloaded part in a pooled buffer, as the `Bytes` a session sends:
/// the buffer goes back to the pool when the last of those is dropped, so
/// downloads reuse the warm buffers uploads use, within the same budget.
pub(super) struct PooledPart {
    buf: BytesMut,
    pool: Arc<PartPool>,
}

impl PooledPart {
    pub(super) fn into_bytes(buf: BytesMut, pool: Arc<PartPool>) -> Bytes {
        Bytes::from_owner(PooledPart { buf, pool })
    }
}

impl AsRef<[u8]> for PooledPart {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PooledPart {
    fn drop(&mut self) {
        self.pool.give_buf(std::mem::take(&mut self.buf));
    }
}

/// Asks the kernel to back a fresh part buffer with transparent huge pages
/// where it can (THP in `madvise` mode, as Debian ships it): filling a part
/// then faults in 2 MiB at a time instead of 4 KiB, which took a third of the
/// CPU of concurrent uploads whose buffers could not be reused.
#[cfg(target_os = "linux")]
fn advise_huge_pages(buf: &BytesMut) {
    const HUGE: usize = 2 << 20;
    let start = buf.as_ptr() as usize;
    let end = start + buf.capacity();
    let (from, to) = (start.div_ceil(HUGE) * HUGE, end / HUGE * HUGE);
    if to > from {
        // SAFETY: the range lies inside the buffer's own allocation, and
        // MADV_HUGEPAGE changes only how its pages are backed, never their
        // contents; a refusal (no THP) is harmless and ignored.
        unsafe {
            libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: &BytesMut) {}

/// Parts between two doublings of the part size.
const PARTS_PER_DOUBLING: i32 = 900;

/// Size of part `n` (1-based): the base size, doubled every 900 parts,
/// capped at 5 GiB. With 5 MiB parts, 10,000 parts hold about 9.5 TiB.
pub fn part_size_for(base: usize, n: i32) -> usize {
    let doublings = ((n.max(1) - 1) / PARTS_PER_DOUBLING).min(20) as u32;
    base.saturating_mul(1usize << doublings).min(MAX_PART)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_reach_five_tib_within_ten_thousand_parts() {
        for base in [MIN_PART, 8 * MIB, 16 * MIB] {
            let total: u64 = (1..=MAX_PARTS).map(|n| part_size_for(base, n) as u64).sum();
            assert!(
                total >= 5 * 1024 * 1024 * 1024 * 1024,
                "base {base}: {total}"
            );
            assert!((1..=MAX_PARTS).all(|n| part_size_for(base, n) >= MIN_PART));
            assert!((1..=MAX_PARTS).all(|n| part_size_for(base, n) <= MAX_PART));
        }
        assert_eq!(part_size_for(8 * MIB, 1), 8 * MIB);
        assert_eq!(part_size_for(8 * MIB, 900), 8 * MIB);
        assert_eq!(part_size_for(8 * MIB, 901), 16 * MIB);
    }

    #[test]
    fn sent_part_buffers_are_reused_only_when_nothing_else_holds_them() {
        let settings = UploadSettings::new(MIN_PART, 2, 64);
        let pool = &settings.pool;
        let mut buf = pool.take(MIN_PART);
        buf.extend_from_slice(&[7u8; 1000]);
        let first = buf.as_ptr();
        let part = buf.freeze();
        let still_held = part.clone();
        pool.give(part);
        // A clone is alive (the request could still be reading it): not reused.
        let other = pool.take(MIN_PART);
        assert_ne!(other.as_ptr(), first);
        pool.give(still_held);
        let again = pool.take(MIN_PART);
        assert_eq!(again.as_ptr(), first, "the same memory comes back");
        assert!(again.is_empty() && again.capacity() >= MIN_PART);
        // Other sizes (a doubled part) are never served from the pool, and the
        // pool keeps at most what the budget allows in use: 64 MiB / 5 MiB.
        assert!(pool.take(2 * MIN_PART).capacity() >= 2 * MIN_PART);
        for _ in 0..20 {
            pool.give(BytesMut::with_capacity(MIN_PART).freeze());
        }
        assert_eq!(pool.free.lock().map(|f| f.len()).unwrap_or(0), 12);
        // A budget smaller than one upload still keeps one upload's worth.
        let small = UploadSettings::new(MIN_PART, 4, 1);
        assert_eq!(small.pool.keep, 5);
    }

    #[test]
    fn settings_never_allow_parts_under_five_mib() {
        assert_eq!(UploadSettings::new(1, 0, 0).part_size, MIN_PART);
        assert_eq!(UploadSettings::new(1, 0, 0).concurrency, 1);
    }
}
