//! What this process has recently seen of the directories of one S3 mount, so
//! that a STOR needs no request beyond its PutObject.
//!
//! FTP refuses an upload into a missing directory and an upload onto a
//! directory's name; on S3 each question costs a ListObjectsV2, twice the
//! work of a small file's PutObject. Both answers are kept here for a short
//! time (`S3FTP_DIR_CACHE_SECS`): "directory D exists" (seen in a listing,
//! made by MKD, or found by a check), and "these are all of D's
//! subdirectories" (from a whole listing of D, from MKD of an empty D, or from
//! one listing page of D taken on the second upload into it).
//!
//! Changes made through this server update or drop the facts at once: MKD
//! adds, and every removal or rename forgets the key, everything under it and
//! its ancestors (a directory without a marker vanishes with its last key).
//! Changes made by other writers are seen when the facts expire; until then an
//! upload may recreate a directory another writer just removed, or put a file
//! beside a directory of the same name another writer just made.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most directories remembered; beyond it the expired ones go, then all.
const MAX_DIRS: usize = 10_000;
/// Most subdirectory names remembered across all directories.
const MAX_NAMES: usize = 100_000;
/// Keys asked for when a directory's subdirectories are surveyed: a directory
/// with more entries is "crowded", and its uploads each check their own name.
pub(super) const SURVEY_KEYS: i32 = 1000;

#[derive(Default)]
struct Facts {
    /// When the directory was last seen to exist.
    seen: Option<Instant>,
    /// All its subdirectories' names, and when they were learned.
    subdirs: Option<(Instant, HashSet<String>)>,
    /// When a survey found more entries than one page holds.
    crowded: Option<Instant>,
}

/// What is known of a name inside a directory.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Known {
    /// The directory exists.
    pub exists: bool,
    /// Whether the name is a subdirectory: `Some(false)` can be trusted;
    /// `Some(true)` is to be confirmed (the subdirectory may have vanished
    /// with its last file).
    pub is_dir: Option<bool>,
    /// Not known, and one listing page would probably tell it for every name.
    pub survey: bool,
}

pub(super) struct DirCache {
    ttl: Duration,
    /// The facts by directory key, and how many subdirectory names they hold.
    dirs: Mutex<(HashMap<String, Facts>, usize)>,
}

/// The parent directory of a key and the key's last name ("" is the root).
pub(super) fn split(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

/// The directories above `key`, nearest first, the root not included.
fn ancestors(key: &str) -> impl Iterator<Item = &str> {
    let mut rest = key.rsplit_once('/').map(|(p, _)| p);
    std::iter::from_fn(move || {
        let current = rest?;
        rest = current.rsplit_once('/').map(|(p, _)| p);
        Some(current)
    })
}

fn subdir_count(facts: &Facts) -> usize {
    facts.subdirs.as_ref().map_or(0, |(_, s)| s.len())
}

impl DirCache {
    pub(super) fn new(ttl: Duration) -> DirCache {
        DirCache {
            ttl,
            dirs: Mutex::new((HashMap::new(), 0)),
        }
    }

    fn fresh(&self, at: Option<Instant>, now: Instant) -> bool {
        at.is_some_and(|t| now.saturating_duration_since(t) < self.ttl)
    }

    /// What is known of `name` in the directory `dir`.
    pub(super) fn lookup(&self, dir: &str, name: &str) -> Known {
        let mut known = Known {
            exists: dir.is_empty(),
            is_dir: None,
            survey: false,
        };
        if self.ttl.is_zero() {
            return known;
        }
        let now = Instant::now();
        let Ok(guard) = self.dirs.lock() else {
            return known;
        };
        let facts = guard.0.get(dir);
        known.exists |= self.fresh(facts.and_then(|f| f.seen), now);
        known.is_dir = facts
            .and_then(|f| f.subdirs.as_ref())
            .filter(|(at, _)| self.fresh(Some(*at), now))
            .map(|(_, names)| names.contains(name));
        known.survey = known.exists
            && known.is_dir.is_none()
            && !self.fresh(facts.and_then(|f| f.crowded), now);
        known
    }

    /// True when `dir` was seen to exist within the time facts are kept.
    pub(super) fn exists(&self, dir: &str) -> bool {
        self.lookup(dir, "").exists
    }

    fn edit(&self, change: impl FnOnce(&mut HashMap<String, Facts>, &mut usize, Instant)) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        if let Ok(mut guard) = self.dirs.lock() {
            let (dirs, names) = &mut *guard;
            if dirs.len() >= MAX_DIRS || *names >= MAX_NAMES {
                dirs.retain(|_, f| {
                    self.fresh(f.seen, now)
                        || self.fresh(f.subdirs.as_ref().map(|(t, _)| *t), now)
                        || self.fresh(f.crowded, now)
                });
                *names = dirs.values().map(subdir_count).sum();
                if dirs.len() >= MAX_DIRS || *names >= MAX_NAMES {
                    dirs.clear();
                    *names = 0;
                }
            }
            change(dirs, names, now);
        }
    }

    /// `dir` exists now, and so does every directory above it.
    pub(super) fn saw(&self, dir: &str) {
        if dir.is_empty() {
            return;
        }
        self.edit(|dirs, _, now| {
            dirs.entry(dir.to_string()).or_default().seen = Some(now);
            for d in ancestors(dir) {
                dirs.entry(d.to_string()).or_default().seen = Some(now);
            }
        });
    }

    /// `dir` was listed whole: `subdirs` are all of its subdirectories.
    pub(super) fn listed(&self, dir: &str, subdirs: HashSet<String>) {
        self.saw(dir);
        self.edit(|dirs, names, now| {
            let facts = dirs.entry(dir.to_string()).or_default();
            let old = subdir_count(facts);
            if *names - old + subdirs.len() > MAX_NAMES {
                facts.crowded = Some(now);
                return;
            }
            *names = *names - old + subdirs.len();
            facts.subdirs = Some((now, subdirs));
            facts.crowded = None;
        });
    }

    /// A survey found `dir` to hold more entries than one page.
    pub(super) fn crowded(&self, dir: &str) {
        self.saw(dir);
        self.edit(|dirs, _, now| {
            dirs.entry(dir.to_string()).or_default().crowded = Some(now);
        });
    }

    /// The directory `dir` was just made here, or appeared by a rename.
    /// `empty`: made by MKD, so it has no subdirectories.
    pub(super) fn created(&self, dir: &str, empty: bool) {
        self.forget_tree(dir);
        self.saw(dir);
        let (parent, name) = split(dir);
        self.edit(|dirs, names, now| {
            if let Some((_, set)) = dirs.get_mut(parent).and_then(|f| f.subdirs.as_mut()) {
                if set.insert(name.to_string()) {
                    *names += 1;
                }
            }
            if empty {
                dirs.entry(dir.to_string()).or_default().subdirs = Some((now, HashSet::new()));
            }
        });
    }

    /// The file `key` was removed: its directories may have vanished with it
    /// (their subdirectories are unchanged).
    pub(super) fn file_gone(&self, key: &str) {
        self.edit(|dirs, _, _| {
            for d in ancestors(key) {
                if let Some(f) = dirs.get_mut(d) {
                    f.seen = None;
                }
            }
        });
    }

    /// The directory `dir` was removed or moved, perhaps only in part: forget
    /// it and all below it, and what its parent holds.
    pub(super) fn dir_gone(&self, dir: &str) {
        self.forget_tree(dir);
        self.file_gone(dir);
        let (parent, _) = split(dir);
        self.edit(|dirs, names, _| {
            if let Some(f) = dirs.get_mut(parent) {
                *names -= subdir_count(f);
                f.subdirs = None;
            }
        });
    }

    /// `dir` was found not to be a directory: forget it and all below it.
    pub(super) fn missing(&self, dir: &str) {
        let known = self.dirs.lock().is_ok_and(|g| g.0.contains_key(dir));
        if known {
            self.forget_tree(dir);
        }
    }

    fn forget_tree(&self, dir: &str) {
        let below = format!("{dir}/");
        self.edit(|dirs, names, _| {
            dirs.retain(|d, f| {
                let keep = d != dir && !d.starts_with(&below);
                if !keep {
                    *names -= subdir_count(f);
                }
                keep
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> DirCache {
        DirCache::new(Duration::from_secs(60))
    }

    fn known(exists: bool, is_dir: Option<bool>, survey: bool) -> Known {
        Known {
            exists,
            is_dir,
            survey,
        }
    }

    fn names(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nothing_is_known_at_first_and_the_root_always_exists() {
        let c = cache();
        assert_eq!(c.lookup("a", "f"), known(false, None, false));
        assert_eq!(c.lookup("", "f"), known(true, None, true));
        assert!(c.exists(""));
        assert!(!c.exists("a"));
    }

    #[test]
    fn a_seen_directory_and_its_ancestors_exist() {
        let c = cache();
        c.saw("a/b/c");
        assert!(c.exists("a") && c.exists("a/b") && c.exists("a/b/c"));
        assert!(!c.exists("a/b/c/d") && !c.exists("b"));
        assert_eq!(c.lookup("a/b", "x"), known(true, None, true));
        c.crowded("a/b");
        assert_eq!(c.lookup("a/b", "x"), known(true, None, false));
    }

    #[test]
    fn a_listing_tells_every_name() {
        let c = cache();
        c.listed("a", names(&["sub"]));
        assert_eq!(c.lookup("a", "sub"), known(true, Some(true), false));
        assert_eq!(c.lookup("a", "file"), known(true, Some(false), false));
    }

    #[test]
    fn mkdir_and_rename_add_to_a_known_parent() {
        let c = cache();
        c.listed("a", names(&[]));
        c.created("a/new", true);
        assert_eq!(c.lookup("a", "new"), known(true, Some(true), false));
        assert_eq!(c.lookup("a/new", "f"), known(true, Some(false), false));
        c.created("a/moved", false);
        assert_eq!(c.lookup("a", "moved"), known(true, Some(true), false));
        assert_eq!(c.lookup("a/moved", "f"), known(true, None, true));
    }

    #[test]
    fn a_deleted_file_may_take_its_directories_along() {
        let c = cache();
        c.listed("a", names(&["b"]));
        c.listed("a/b", names(&[]));
        c.file_gone("a/b/f");
        assert_eq!(c.lookup("a/b", "x"), known(false, Some(false), false));
        assert_eq!(c.lookup("a", "b"), known(false, Some(true), false));
    }

    #[test]
    fn a_removed_directory_is_forgotten_with_what_is_below_and_its_parents_names() {
        let c = cache();
        c.listed("a", names(&["b"]));
        c.listed("a/b", names(&["c"]));
        c.created("a/b/c/d", true);
        c.saw("other");
        c.dir_gone("a/b");
        assert_eq!(c.lookup("a", "b"), known(false, None, false));
        assert_eq!(c.lookup("a/b", "c"), known(false, None, false));
        assert_eq!(c.lookup("a/b/c/d", "e"), known(false, None, false));
        assert!(c.exists("other"));
        assert_eq!(c.dirs.lock().unwrap().1, 0);
    }

    #[test]
    fn a_missing_directory_keeps_its_ancestors() {
        let c = cache();
        c.saw("a/b");
        c.missing("a/b");
        assert!(c.exists("a"));
        assert!(!c.exists("a/b"));
    }

    #[test]
    fn facts_expire_and_a_zero_ttl_keeps_none() {
        let c = DirCache::new(Duration::from_millis(30));
        c.listed("a", names(&[]));
        assert_eq!(c.lookup("a", "f"), known(true, Some(false), false));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.lookup("a", "f"), known(false, None, false));
        let off = DirCache::new(Duration::ZERO);
        off.listed("a", names(&[]));
        assert_eq!(off.lookup("a", "f"), known(false, None, false));
        assert_eq!(off.lookup("", "f"), known(true, None, false));
    }

    #[test]
    fn memory_stays_bounded() {
        let c = cache();
        for i in 0..MAX_DIRS + 10 {
            c.saw(&format!("d{i}"));
        }
        assert!(c.dirs.lock().unwrap().0.len() <= MAX_DIRS);
        let many: HashSet<String> = (0..MAX_NAMES + 1).map(|i| i.to_string()).collect();
        c.listed("big", many);
        assert_eq!(c.lookup("big", "1"), known(true, None, false));
        assert!(c.dirs.lock().unwrap().1 <= MAX_NAMES);
    }
}
