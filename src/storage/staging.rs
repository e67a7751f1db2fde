//! The local folder's staging area, where uploads are written before the
//! rename that commits them, and the start-up sweep of what dead uploads left.
//!
//! Each server process stages in its own subdirectory `<area>/<id>/` and holds
//! an exclusive `flock` on `<area>/<id>.lock` for as long as it runs. The kernel
//! releases that lock when the process ends, however it ends (`kill -9`
//! included), so at start an instance whose lock can be taken is dead and its
//! files are the remains of uploads that will never commit. A live instance's
//! lock cannot be taken, so two processes sharing one folder (two replicas on a
//! shared volume) never remove each other's uploads in flight.
//!
//! Ordering that makes this safe against a process starting while another one
//! sweeps: an owner creates and locks its lock file *before* creating its
//! directory, and removes the directory *before* the lock file; a sweeper
//! removes a dead instance's directory *before* its lock file, while holding
//! the lock. An owner whose new lock file was unlinked by a sweeper between
//! creating and locking it notices (the path no longer names its file) and
//! picks another id.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Suffix of an instance's lock file next to its directory.
const LOCK_SUFFIX: &str = ".lock";

/// Ids tried before giving up (a collision needs a sweeper racing each one).
const CLAIM_ATTEMPTS: usize = 8;

/// This process's staging directory, owned while the value lives.
#[derive(Debug)]
pub struct StagingDir {
    id: String,
    dir: PathBuf,
    lock_path: PathBuf,
    /// Holds the `flock`; closing it releases the lock.
    _lock: File,
}

/// What the start-up sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Dead instances whose directory and lock were removed.
    pub instances: usize,
    /// Staging files removed: those of dead instances and loose files of the
    /// flat layout older versions used.
    pub files: usize,
}

impl StagingDir {
    /// Claims a fresh staging directory in `area` (created if missing).
    pub fn claim(area: &Path) -> io::Result<StagingDir> {
        fs::create_dir_all(area)?;
        for _ in 0..CLAIM_ATTEMPTS {
            let id = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
            let lock_path = area.join(format!("{id}{LOCK_SUFFIX}"));
            let mut lock = match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock_path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            match lock.try_lock() {
                Ok(()) => {}
                // A sweeper took it for a dead instance's: it will remove it.
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => return Err(e),
            }
            if !names_file(&lock_path, &lock) {
                continue;
            }
            // For whoever looks at the folder: which process this is.
            let _ = writeln!(lock, "pid {}", std::process::id());
            let dir = area.join(&id);
            fs::create_dir(&dir)?;
            return Ok(StagingDir {
                id,
                dir,
                lock_path,
                _lock: lock,
            });
        }
        Err(io::Error::other(format!(
            "could not claim a staging directory in {}",
            area.display()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for StagingDir {
    /// A clean exit leaves nothing: the directory (empty unless uploads were
    /// dropped mid-abort), then the lock file, then the lock.
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::debug!(dir = %self.dir.display(), "removing the staging directory: {e}");
        }
        if let Err(e) = fs::remove_file(&self.lock_path) {
            tracing::debug!(lock = %self.lock_path.display(), "removing the staging lock: {e}");
        }
    }
}

/// Removes from `area` the staging directories of dead instances (every one
/// whose lock can be taken, `own` excepted) and loose files of the older flat
/// layout. Best effort: what cannot be removed is logged and left.
pub fn sweep(area: &Path, own: &str) -> Sweep {
    let mut done = Sweep::default();
    let Ok(entries) = fs::read_dir(area) else {
        return done;
    };
    let mut ids = std::collections::BTreeSet::new();
    let mut loose = Vec::new();
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        // Our ids are ASCII; a name that is not UTF-8 is nobody's we know.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if kind.is_dir() {
            ids.insert(name);
        } else if let Some(id) = name.strip_suffix(LOCK_SUFFIX) {
            ids.insert(id.to_string());
        } else {
            loose.push(entry.path());
        }
    }
    for id in ids.iter().filter(|id| id.as_str() != own) {
        match sweep_instance(area, id) {
            Ok(Some(files)) => {
                done.instances += 1;
                done.files += files;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(instance = %id, "removing a dead upload's staging files: {e}"),
        }
    }
    for path in loose {
        match fs::remove_file(&path) {
            Ok(()) => done.files += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %path.display(), "removing a stale staging file: {e}"),
        }
    }
    done
}

/// Removes instance `id` if it is dead; `Some(files removed)` if it was.
fn sweep_instance(area: &Path, id: &str) -> io::Result<Option<usize>> {
    let lock_path = area.join(format!("{id}{LOCK_SUFFIX}"));
    let dir = area.join(id);
    let lock = match File::open(&lock_path) {
        Ok(file) => {
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(e),
            }
            if !names_file(&lock_path, &file) {
                // Another sweeper removed it (and the directory) meanwhile.
                return Ok(None);
            }
            Some(file)
        }
        // No lock file: its owner is gone (an owner creates the lock first and
        // removes it last), or another sweeper is finishing the job.
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let files = count_files(&dir);
    let removed_dir = match fs::remove_dir_all(&dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    if lock.is_some() {
        match fs::remove_file(&lock_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok((removed_dir || lock.is_some()).then_some(files))
}

/// True if `path` still names the file open as `file` (not unlinked, not
/// replaced).
fn names_file(path: &Path, file: &File) -> bool {
    match (fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Regular files under `dir`, at any depth (0 if it cannot be read).
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("read area")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_claimed_directory_is_live_until_dropped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let area = tmp.path().join("area");
        let mine = StagingDir::claim(&area).expect("claim");
        fs::write(mine.path().join("upload.x1"), b"data").expect("staging file");
        let other = StagingDir::claim(&area).expect("second claim");
        assert_eq!(
            sweep(&area, other.id()),
            Sweep::default(),
            "a live one stays"
        );
        assert!(mine.path().join("upload.x1").exists());
        let id = mine.id().to_string();
        drop(mine);
        assert!(
            !area.join(&id).exists(),
            "a clean exit removes its directory"
        );
        assert_eq!(
            names(&area),
            vec![other.id().to_string(), format!("{}.lock", other.id())]
        );
    }

    #[test]
    fn dead_instances_and_loose_files_are_removed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let area = tmp.path();
        // Dead with its lock file; dead without one; a loose old-layout file.
        fs::create_dir(area.join("1-dead")).expect("dir");
        fs::write(area.join("1-dead/a.1"), b"x").expect("file");
        fs::write(area.join("1-dead/b.2"), b"x").expect("file");
        fs::write(area.join("1-dead.lock"), b"").expect("lock");
        fs::create_dir(area.join("2-orphan")).expect("dir");
        fs::write(area.join("2-orphan/c.3"), b"x").expect("file");
        fs::write(area.join("old.bin.abc"), b"x").expect("loose");
        // Live: its lock is held through another handle.
        fs::create_dir(area.join("3-live")).expect("dir");
        fs::write(area.join("3-live/d.4"), b"x").expect("file");
        let held = File::create(area.join("3-live.lock")).expect("lock");
        held.try_lock().expect("hold the live lock");

        let swept = sweep(area, "none");
        assert_eq!(
            swept,
            Sweep {
                instances: 2,
                files: 4
            }
        );
        assert_eq!(names(area), vec!["3-live", "3-live.lock"]);
        assert!(area.join("3-live/d.4").exists());

        drop(held);
        assert_eq!(
            sweep(area, "none"),
            Sweep {
                instances: 1,
                files: 1
            }
        );
        assert!(names(area).is_empty());
    }
}
