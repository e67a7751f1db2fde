//! Part buffers of uploads: S3's part limits, part sizes that double so an
//! upload of unknown length fits in 10,000 parts, the global budget of part
//! bytes, and the pool that reuses sent parts' buffers (see ARCHITECTURE.md
//! on the mmap threshold and page faults).

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;
use tokio::time::Instant;

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
            // As many as the budget can have in use at once (at least one
            // upload's worth): buffers stay warm across sessions.
            pool: Arc::new(PartPool::new(
                part_size,
                ((budget_mib.max(1) * MIB) / part_size).max(concurrency + 1),
            )),
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
/// warm buffers. A buffer nobody took for [`RELEASE_AFTER`] goes back to the
/// system, so a burst does not leave the process at the budget's size for
/// good.
#[derive(Debug)]
pub struct PartPool {
    size: usize,
    keep: usize,
    free: std::sync::Mutex<Free>,
}

/// Idle buffers, the most recently given back last (taken first), each with
/// when it came back; and whether a task is releasing the stale ones.
#[derive(Debug, Default)]
struct Free {
    bufs: Vec<(BytesMut, Instant)>,
    releasing: bool,
}

/// How long an idle part buffer is kept for reuse.
pub const RELEASE_AFTER: Duration = Duration::from_secs(60);

impl PartPool {
    fn new(size: usize, keep: usize) -> Self {
        PartPool {
            size,
            keep,
            free: std::sync::Mutex::new(Free::default()),
        }
    }

    /// An empty buffer for a part of `size` bytes.
    pub(super) fn take(&self, size: usize) -> BytesMut {
        if size == self.size {
            if let Some((buf, _)) = self.free.lock().ok().and_then(|mut f| f.bufs.pop()) {
                return buf;
            }
        }
        let buf = BytesMut::with_capacity(size);
        advise_huge_pages(&buf);
        buf
    }

    /// Takes back a sent part's buffer, when nothing else still holds it.
    pub(super) fn give(self: &Arc<Self>, part: Bytes) {
        if let Ok(buf) = part.try_into_mut() {
            self.give_buf(buf);
        }
    }

    /// Takes back a buffer no longer in use. The first one an empty pool
    /// takes back starts a task that releases stale buffers until the pool
    /// is empty again (none outside a runtime: the buffers are then kept).
    pub(super) fn give_buf(self: &Arc<Self>, mut buf: BytesMut) {
        if buf.capacity() < self.size || buf.capacity() > 2 * self.size {
            return;
        }
        buf.clear();
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        if free.bufs.len() >= self.keep {
            return;
        }
        free.bufs.push((buf, Instant::now()));
        if !free.releasing {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                free.releasing = true;
                runtime.spawn(release_stale(Arc::downgrade(self)));
            }
        }
    }

    /// Drops the buffers idle since before `now - RELEASE_AFTER`. False when
    /// none is left, and then the releasing task ends.
    fn release_stale(&self, now: Instant) -> bool {
        let Ok(mut free) = self.free.lock() else {
            return false;
        };
        // Taken last-in first-out, so the oldest are at the bottom.
        let fresh = free
            .bufs
            .iter()
            .position(|(_, since)| now.duration_since(*since) < RELEASE_AFTER)
            .unwrap_or(free.bufs.len());
        let stale: Vec<_> = free.bufs.drain(..fresh).collect();
        free.releasing = !free.bufs.is_empty();
        if !free.releasing {
            free.bufs = Vec::new();
        }
        let go_on = free.releasing;
        drop(free);
        // Unmapped outside the lock.
        drop(stale);
        go_on
    }

    /// Bytes of idle buffers held for reuse.
    pub fn held_bytes(&self) -> usize {
        self.free
            .lock()
            .map_or(0, |f| f.bufs.iter().map(|(b, _)| b.capacity()).sum())
    }
}

/// Releases a pool's stale buffers every quarter of [`RELEASE_AFTER`] while
/// it holds any (so a buffer goes back at most 75 s after its last use).
async fn release_stale(pool: Weak<PartPool>) {
    loop {
        tokio::time::sleep(RELEASE_AFTER / 4).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        if !pool.release_stale(Instant::now()) {
            return;
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
        assert_eq!(pool.held_bytes(), 12 * MIN_PART);
        // A budget smaller than one upload still keeps one upload's worth.
        let small = UploadSettings::new(MIN_PART, 4, 1);
        assert_eq!(small.pool.keep, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_buffers_go_back_to_the_system_after_a_minute() {
        let settings = UploadSettings::new(MIN_PART, 2, 64);
        let pool = &settings.pool;
        for _ in 0..3 {
            pool.give_buf(BytesMut::with_capacity(MIN_PART));
        }
        assert_eq!(pool.held_bytes(), 3 * MIN_PART);
        tokio::time::sleep(Duration::from_secs(40)).await;
        // One is used again at 40 s; the two others stay idle since 0 s.
        let warm = pool.take(MIN_PART);
        pool.give_buf(warm);
        tokio::time::sleep(Duration::from_secs(35)).await;
        assert_eq!(
            pool.held_bytes(),
            MIN_PART,
            "the two idle for a minute are gone"
        );
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(pool.held_bytes(), 0);
        let releasing = |p: &PartPool| p.free.lock().map(|f| f.releasing).unwrap_or(true);
        assert!(!releasing(pool), "an empty pool has no task");
        // The next buffer given back starts another.
        pool.give_buf(BytesMut::with_capacity(MIN_PART));
        assert!(releasing(pool));
        tokio::time::sleep(RELEASE_AFTER + RELEASE_AFTER / 4).await;
        assert_eq!(pool.held_bytes(), 0);
        assert!(!releasing(pool));
    }

    #[test]
    fn settings_never_allow_parts_under_five_mib() {
        assert_eq!(UploadSettings::new(1, 0, 0).part_size, MIN_PART);
        assert_eq!(UploadSettings::new(1, 0, 0).concurrency, 1);
    }
}
