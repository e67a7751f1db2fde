//! The mount table: virtual path prefixes mapped to back ends. The longest
//! matching prefix wins; directories above mount points (such as `/` when only
//! `/inbox` and `/archive` are mounted) exist virtually and list the mounts.

use std::sync::{Arc, Mutex};

use crate::bounded::BoundedMap;

use crate::storage::{self, Backend, Key, KeyError, StorageSettings};

/// One `PATH=URI` entry of `S3FTP_MOUNTS`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MountSpec {
    /// Normalised virtual path: `/` or `/a/b`.
    pub point: String,
    pub uri: String,
}

impl std::fmt::Debug for MountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.point, crate::secrets::redact(&self.uri))
    }
}

/// Parses `S3FTP_MOUNTS`: comma-separated `PATH=URI` pairs.
pub fn parse_mounts(value: &str) -> Result<Vec<MountSpec>, String> {
    let mut specs: Vec<MountSpec> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (point, uri) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not PATH=URI"))?;
        add_mount(&mut specs, point, uri)?;
    }
    if specs.is_empty() {
        return Err("no mount given".into());
    }
    Ok(specs)
}

/// Adds the mount of `uri` at `point` (normalised) to `specs`, once.
pub fn add_mount(specs: &mut Vec<MountSpec>, point: &str, uri: &str) -> Result<(), String> {
    if !point.starts_with('/') {
        return Err(format!("mount point {point:?} must start with /"));
    }
    let point = super::path::resolve("/", point).map_err(|e| e.to_string())?;
    if specs.iter().any(|s| s.point == point) {
        return Err(format!("mount point {point} given twice"));
    }
    specs.push(MountSpec {
        point,
        uri: uri.trim().to_string(),
    });
    Ok(())
}

#[derive(Debug)]
pub struct Mount {
    pub point: String,
    pub uri: String,
    pub backend: Arc<dyn Backend>,
}

/// Where a virtual path lives.
pub enum Location<'a> {
    /// Inside a mount, at `key` ([`Key::ROOT`] for the mount point itself).
    Mounted { mount: &'a Mount, key: Key },
    /// A directory above one or more mount points, with no back end of its own.
    Virtual,
    /// Nowhere: not under any mount point nor above one.
    Missing,
}

#[derive(Debug, Default)]
pub struct MountTable {
    /// Sorted by decreasing mount point length, so the first match is the longest.
    mounts: Vec<Mount>,
    /// Checksums of whole files computed so far, for every session.
    pub(crate) digests: super::digests::DigestCache,
}

impl MountTable {
    pub fn new(mut mounts: Vec<Mount>) -> Self {
        mounts.sort_by_key(|m| std::cmp::Reverse(m.point.len()));
        MountTable {
            mounts,
            digests: Default::default(),
        }
    }

    /// Opens every back end of `specs`.
    pub async fn open(specs: &[MountSpec], settings: &StorageSettings) -> Result<Self, String> {
        let mut mounts = Vec::new();
        for spec in specs {
            let backend = storage::open(&spec.uri, settings)
                .await
                .map_err(|e| format!("mount {spec:?}: {e}"))?;
            mounts.push(Mount {
                point: spec.point.clone(),
                uri: spec.uri.clone(),
                backend,
            });
        }
        Ok(MountTable::new(mounts))
    }

    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// Where `path` (a normalised path in the whole tree) lives. Inside a
    /// mount this builds the key, with the rules of the mount's back end:
    /// the one place keys are made.
    pub fn locate(&self, path: &str) -> Result<Location<'_>, KeyError> {
        for mount in &self.mounts {
            if let Some(rest) = rest_under(&mount.point, path) {
                let key = Key::new(rest, &mount.backend.key_rules())?;
                return Ok(Location::Mounted { mount, key });
            }
        }
        Ok(if self.mounts_below(path).next().is_some() {
            Location::Virtual
        } else {
            Location::Missing
        })
    }

    /// Names of the directories directly inside `dir` that are mount points or
    /// lead to one, e.g. `inbox` for `dir = "/"` and a mount at `/inbox/x`.
    pub fn mounts_below<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let mut seen: Vec<&str> = Vec::new();
        self.mounts.iter().filter_map(move |m| {
            let rest = rest_under(dir, &m.point)?;
            let name = rest.split('/').next().filter(|n| !n.is_empty())?;
            if seen.contains(&name) {
                None
            } else {
                seen.push(name);
                Some(name)
            }
        })
    }

    /// True if `path` is a mount point (which cannot be removed or renamed).
    pub fn is_mount_point(&self, path: &str) -> bool {
        self.mounts.iter().any(|m| m.point == path)
    }
}

/// What follows `point` in `path`, if `path` is `point` or lies under it.
fn rest_under<'a>(point: &str, path: &'a str) -> Option<&'a str> {
    if point == "/" {
        return Some(path.trim_start_matches('/'));
    }
    let rest = path.strip_prefix(point)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix('/')
    }
}

/// The trees of users who bring their own mounts (from the auth hook), by
/// mount list: opened and checked on the first login that needs them, then
/// shared by every session with the same list. Back ends keep their
/// directory cache and sweeper across logins, and S3 clients are shared by
/// endpoint and credentials (`StorageSettings::s3.clients`).
pub struct UserTrees {
    settings: StorageSettings,
    tables: Mutex<BoundedMap<Vec<MountSpec>, Arc<MountTable>>>,
}

/// Different mount lists kept at most.
const MAX_USER_TREES: usize = 1000;

impl UserTrees {
    pub fn new(settings: StorageSettings) -> Self {
        UserTrees {
            settings,
            tables: Mutex::new(BoundedMap::new(MAX_USER_TREES)),
        }
    }

    /// The tree of `specs`; an error says which mount cannot be used, in
    /// one line.
    pub async fn get(&self, specs: &[MountSpec]) -> Result<Arc<MountTable>, String> {
        let key = specs.to_vec();
        if let Some(table) = self.tables.lock().ok().and_then(|t| t.get(&key).cloned()) {
            return Ok(table);
        }
        let table = MountTable::open(specs, &self.settings).await?;
        for mount in table.mounts() {
            mount.backend.check().await.map_err(|u| {
                format!(
                    "mount {} ({}): {}",
                    mount.point,
                    crate::secrets::redact(&mount.uri),
                    u.message
                )
            })?;
        }
        let mut tables = self
            .tables
            .lock()
            .map_err(|_| "the tree cache is unusable".to_string())?;
        // Another login may have opened the same meanwhile: one tree stays.
        if let Some(table) = tables.get(&key) {
            return Ok(table.clone());
        }
        let table = Arc::new(table);
        tables.insert(key, table.clone());
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::opendal::OpendalBackend;

    fn table(points: &[&str]) -> MountTable {
        MountTable::new(
            points
                .iter()
                .map(|p| Mount {
                    point: p.to_string(),
                    uri: "memory://".into(),
                    backend: Arc::new(OpendalBackend::memory()),
                })
                .collect(),
        )
    }

    fn located(t: &MountTable, path: &str) -> Option<(String, String)> {
        match t.locate(path).expect("a valid key") {
            Location::Mounted { mount, key } => Some((mount.point.clone(), key.to_string())),
            _ => None,
        }
    }

    #[test]
    fn keys_follow_the_rules_of_their_back_end() {
        let t = table(&["/", "/in"]);
        // OpenDAL trims white space around a path, so its keys may not have it.
        assert!(matches!(
            t.locate("/in/ lead"),
            Err(KeyError::SurroundingSpace(_))
        ));
        let long = format!("/in/{}", "k".repeat(storage::MAX_KEY_BYTES + 1));
        assert!(matches!(t.locate(&long), Err(KeyError::TooLong(_))));
        assert!(matches!(
            t.locate("/.s3ftp-partial/x"),
            Err(KeyError::Reserved(_))
        ));
        assert!(matches!(
            t.locate("/in").expect("key"),
            Location::Mounted { key, .. } if key.is_root()
        ));
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table(&["/", "/inbox", "/inbox/deep"]);
        assert_eq!(located(&t, "/a/b"), Some(("/".into(), "a/b".into())));
        assert_eq!(located(&t, "/inbox"), Some(("/inbox".into(), "".into())));
        assert_eq!(located(&t, "/inbox/x"), Some(("/inbox".into(), "x".into())));
        assert_eq!(
            located(&t, "/inbox/deep/y"),
            Some(("/inbox/deep".into(), "y".into()))
        );
        assert_eq!(
            located(&t, "/inboxes"),
            Some(("/".into(), "inboxes".into()))
        );
    }

    #[test]
    fn directories_above_mounts_are_virtual() {
        let t = table(&["/in", "/arch/2024"]);
        assert!(matches!(t.locate("/"), Ok(Location::Virtual)));
        assert!(matches!(t.locate("/arch"), Ok(Location::Virtual)));
        assert!(matches!(t.locate("/other"), Ok(Location::Missing)));
        let mut names: Vec<&str> = t.mounts_below("/").collect();
        names.sort();
        assert_eq!(names, ["arch", "in"]);
        assert_eq!(t.mounts_below("/arch").collect::<Vec<_>>(), ["2024"]);
    }

    #[test]
    fn mount_spec_parsing() {
        let specs = parse_mounts("/=fs://./data, /inbox/=memory://").unwrap();
        assert_eq!(specs[0].point, "/");
        assert_eq!(specs[1].point, "/inbox");
        assert_eq!(specs[1].uri, "memory://");
        assert!(parse_mounts("").is_err());
        assert!(parse_mounts("inbox=memory://").is_err());
        assert!(parse_mounts("/a").is_err());
        assert!(parse_mounts("/a=memory://,/a/=memory://").is_err());
    }
}
