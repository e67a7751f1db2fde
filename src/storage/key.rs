//! Keys: the names back ends store things under. Only the virtual file
//! system builds them ([`Key::new`], from a normalised virtual path and the
//! rules of the mount's back end), so a back end never checks a key's shape
//! itself and never sees one that breaks the rules below:
//! - `/`-separated, relative to the mount's root, no leading or trailing
//!   slash, no empty, `.` or `..` segment, no NUL;
//! - at most [`MAX_KEY_BYTES`] bytes, or fewer where the back end says so
//!   (an S3 mount's prefix and a directory's trailing slash count too);
//! - what a back end refuses on top ([`KeyRules`]): names with white space
//!   around them (OpenDAL trims it), names it keeps for itself.
//!
//! The root of a mount is the empty [`Key::ROOT`]; it always exists and is a
//! directory. Operations that name something to create, change or remove take
//! a [`NamedKey`], which cannot be the root, so a back end has no "is it the
//! root?" preamble either.

use std::fmt;
use std::ops::Deref;

/// Longest key in bytes on every back end: S3's limit, so that a tree can
/// move between back ends.
pub const MAX_KEY_BYTES: usize = 1024;

/// What one back end asks of keys beyond the shape every key has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRules {
    /// Longest key in bytes (at most [`MAX_KEY_BYTES`]).
    pub max_bytes: usize,
    /// Refuse a key with white space at its start or end.
    pub no_surrounding_space: bool,
    /// First segments the back end keeps for itself.
    pub reserved: &'static [&'static str],
}

impl Default for KeyRules {
    fn default() -> Self {
        KeyRules {
            max_bytes: MAX_KEY_BYTES,
            no_surrounding_space: false,
            reserved: &[],
        }
    }
}

/// Why a path cannot be a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("path longer than {0} bytes")]
    TooLong(usize),
    #[error("{0:?}: NUL character")]
    Nul(String),
    #[error("{0:?}: empty, `.` or `..` segment")]
    BadSegment(String),
    #[error("{0:?}: leading or trailing white space")]
    SurroundingSpace(String),
    #[error("{0:?}: reserved name")]
    Reserved(String),
}

impl From<KeyError> for super::StorageError {
    fn from(e: KeyError) -> Self {
        super::StorageError::InvalidName(e.to_string())
    }
}

/// True for a segment no path may hold: empty, `.` or `..`.
pub fn is_bad_segment(segment: &str) -> bool {
    matches!(segment, "" | "." | "..")
}

/// A key in one back end; may be the mount's root.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// The mount's root directory.
    pub const ROOT: Key = Key(String::new());

    /// Checks `key` against the shape every key has and `rules`.
    pub fn new(key: impl Into<String>, rules: &KeyRules) -> Result<Key, KeyError> {
        let key = key.into();
        if key.is_empty() {
            return Ok(Key::ROOT);
        }
        if key.len() > rules.max_bytes.min(MAX_KEY_BYTES) {
            return Err(KeyError::TooLong(rules.max_bytes.min(MAX_KEY_BYTES)));
        }
        if key.contains('\0') {
            return Err(KeyError::Nul(key));
        }
        if key.split('/').any(is_bad_segment) {
            return Err(KeyError::BadSegment(key));
        }
        if rules.no_surrounding_space
            && (key.starts_with(char::is_whitespace) || key.ends_with(char::is_whitespace))
        {
            return Err(KeyError::SurroundingSpace(key));
        }
        if key
            .split('/')
            .next()
            .is_some_and(|first| rules.reserved.contains(&first))
        {
            return Err(KeyError::Reserved(key));
        }
        Ok(Key(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The key as a [`NamedKey`], unless it is the root.
    pub fn into_named(self) -> Option<NamedKey> {
        (!self.is_root()).then_some(NamedKey(self))
    }
}

impl Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key that names something inside a mount: never the root.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamedKey(Key);

impl NamedKey {
    pub fn as_key(&self) -> &Key {
        &self.0
    }

    /// The last segment.
    pub fn name(&self) -> &str {
        self.0 .0.rsplit('/').next().unwrap_or_default()
    }

    /// The directory this key lies in (the root for a top-level name).
    pub fn parent(&self) -> Key {
        match self.0 .0.rsplit_once('/') {
            Some((parent, _)) => Key(parent.to_string()),
            None => Key::ROOT,
        }
    }

    /// True if `other` lies inside this key taken as a directory.
    pub fn contains(&self, other: &Key) -> bool {
        other
            .strip_prefix(self.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl Deref for NamedKey {
    type Target = Key;
    fn deref(&self) -> &Key {
        &self.0
    }
}

impl fmt::Display for NamedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Result<Key, KeyError> {
        Key::new(s, &KeyRules::default())
    }

    #[test]
    fn shape_every_key_has() {
        assert!(key("").expect("root").is_root());
        assert_eq!(key("a/b c/ü").expect("key").as_str(), "a/b c/ü");
        for bad in ["/a", "a/", "a//b", ".", "a/./b", "..", "a/.."] {
            assert!(matches!(key(bad), Err(KeyError::BadSegment(_))), "{bad:?}");
        }
        assert!(matches!(key("a\0b"), Err(KeyError::Nul(_))));
        assert!(key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        assert_eq!(
            key(&"k".repeat(MAX_KEY_BYTES + 1)),
            Err(KeyError::TooLong(MAX_KEY_BYTES))
        );
        // White space is a name like any other unless the back end says not.
        assert!(key(" lead/trail ").is_ok());
    }

    #[test]
    fn back_end_rules() {
        let rules = KeyRules {
            max_bytes: 10,
            no_surrounding_space: true,
            reserved: &[".hidden"],
        };
        assert!(Key::new("0123456789", &rules).is_ok());
        assert_eq!(Key::new("0123456789a", &rules), Err(KeyError::TooLong(10)));
        for bad in [" a", "a ", "\ta"] {
            assert!(matches!(
                Key::new(bad, &rules),
                Err(KeyError::SurroundingSpace(_))
            ));
        }
        assert!(Key::new("a/ b", &rules).is_ok(), "only the whole key");
        assert!(matches!(
            Key::new(".hidden/x", &rules),
            Err(KeyError::Reserved(_))
        ));
        assert!(Key::new("x/.hidden", &rules).is_ok(), "only at the top");
    }

    #[test]
    fn named_keys() {
        assert!(Key::ROOT.into_named().is_none());
        let k = key("a/b/c").expect("key");
        let named = k.clone().into_named().expect("named");
        assert_eq!(named.name(), "c");
        assert_eq!(named.parent().as_str(), "a/b");
        let top = key("a").expect("key");
        let a = top.clone().into_named().expect("named");
        assert!(a.parent().is_root());
        assert!(a.contains(&k));
        assert!(!a.contains(&top));
        assert!(!a.contains(&key("ab/c").expect("key")));
    }
}
