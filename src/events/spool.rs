//! Where one sink's pending events wait: one file per event in a folder of
//! its own, written before the event counts as emitted (to a temporary name,
//! then renamed, so a crash leaves whole files or none) and removed once the
//! sink took it. Names sort in emission order, so a restart resumes in order.
//! Events the sink refused for good are moved to `refused/`, not deleted.
//! At most `capacity` events wait; past that new ones are dropped, counted
//! and logged.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// Where refused events are kept for an operator to look at (or move back).
pub const REFUSED: &str = "refused";

/// Counters of one sink, read by the metrics and /readyz.
#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    /// Attempts that failed and will be retried.
    pub retried: AtomicU64,
    /// Events the sink refused for good (moved to `refused/`).
    pub refused: AtomicU64,
    /// Events not kept because the spool was full.
    pub dropped: AtomicU64,
}

pub struct Spool {
    dir: PathBuf,
    capacity: usize,
    /// Names of the pending files, oldest first.
    pending: Mutex<VecDeque<String>>,
    added: Notify,
    /// The last name's number: names are unique and increasing.
    last: AtomicU64,
    pub counters: Counters,
}

impl Spool {
    /// Opens (creates) the folder and finds the events a previous run left.
    pub fn open(dir: &Path, capacity: usize) -> io::Result<Spool> {
        fs::create_dir_all(dir.join(REFUSED))?;
        let mut names: Vec<String> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                names.push(name);
            } else if name.ends_with(".tmp") {
                // Cut short by a crash before its rename: never emitted.
                let _ = fs::remove_file(entry.path());
            }
        }
        names.sort();
        let last = names
            .last()
            .and_then(|n| n.trim_end_matches(".json").parse().ok())
            .unwrap_or(0);
        Ok(Spool {
            dir: dir.to_path_buf(),
            capacity,
            pending: Mutex::new(names.into()),
            added: Notify::new(),
            last: AtomicU64::new(last),
            counters: Counters::default(),
        })
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keeps `body` until the sink takes it; false when the spool is full
    /// or cannot be written (counted and logged: the event is lost).
    pub fn push(&self, body: &[u8]) -> bool {
        if self.len() >= self.capacity {
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if dropped.is_power_of_two() || dropped == 0 {
                tracing::error!(
                    spool = %self.dir.display(),
                    pending = self.capacity,
                    dropped = dropped + 1,
                    "event spool full (S3FTP_EVENTS_MAX_PENDING): new events are dropped until the sink catches up"
                );
            }
            return false;
        }
        let name = format!("{:020}.json", self.next_number());
        match self.write(&name, body) {
            Ok(()) => {
                self.lock().push_back(name);
                self.added.notify_one();
                true
            }
            Err(e) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(spool = %self.dir.display(), error = %e, "cannot write an event to the spool: it is lost");
                false
            }
        }
    }

    fn write(&self, name: &str, body: &[u8]) -> io::Result<()> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut file = fs::File::create(&tmp)?;
        file.write_all(body)?;
        drop(file);
        fs::rename(&tmp, self.dir.join(name))
    }

    /// Nanoseconds since the epoch, made strictly increasing.
    fn next_number(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// The oldest pending event (its name and body), waiting for one.
    /// A file that cannot be read is skipped (logged).
    pub async fn oldest(&self) -> (String, Vec<u8>) {
        loop {
            let head = self.lock().front().cloned();
            let Some(name) = head else {
                self.added.notified().await;
                continue;
            };
            match fs::read(self.dir.join(&name)) {
                Ok(body) => return (name, body),
                Err(e) => {
                    tracing::error!(spool = %self.dir.display(), file = %name, error = %e, "unreadable event skipped");
                    self.forget(&name);
                }
            }
        }
    }

    /// The sink took `name`.
    pub fn done(&self, name: &str) {
        let _ = fs::remove_file(self.dir.join(name));
        self.forget(name);
    }

    /// The sink refused `name` for good: kept in `refused/`.
    pub fn refuse(&self, name: &str) {
        let _ = fs::rename(self.dir.join(name), self.dir.join(REFUSED).join(name));
        self.forget(name);
    }

    fn forget(&self, name: &str) {
        let mut pending = self.lock();
        if pending.front().map(String::as_str) == Some(name) {
            pending.pop_front();
        } else {
            pending.retain(|n| n != name);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_survive_a_restart_in_order_and_the_bound_holds() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 3).unwrap();
        for body in [&b"one"[..], b"two", b"three", b"four"] {
            spool.push(body);
        }
        assert_eq!(spool.len(), 3);
        assert_eq!(spool.counters.dropped.load(Ordering::Relaxed), 1);
        let (first, body) = spool.oldest().await;
        assert_eq!(body, b"one");
        spool.done(&first);
        let (second, _) = spool.oldest().await;
        spool.refuse(&second);
        std::fs::write(dir.path().join("x.json.tmp"), b"half").unwrap();
        drop(spool);

        let again = Spool::open(dir.path(), 3).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again.oldest().await.1, b"three");
        assert!(!dir.path().join("x.json.tmp").exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join(REFUSED)).unwrap().count(),
            1
        );
        // New events sort after the old ones.
        again.push(b"five");
        let (name, _) = again.oldest().await;
        again.done(&name);
        assert_eq!(again.oldest().await.1, b"five");
    }
}
