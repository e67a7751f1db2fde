//! Virtual paths: what a client typed, normalised against its working directory
//! and confined to its root. A virtual path is absolute (`/` or `/a/b`), has no
//! empty, `.` or `..` segments, and never goes above `/`: `..` at the root stays
//! at the root, so no argument can leave the user's home.
//!
//! A name being created (STOR, APPE, STOU, MKD, RNTO) may not hold a control
//! character: C0 (U+0001 to U+001F) or DEL. Such names break other clients'
//! listings, terminals and logs, and no legitimate client needs them. Paths
//! that only name existing things are not checked, so a file that another
//! tool stored under such a name can still be read, renamed or deleted.

/// Why a path argument is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("path contains a NUL byte")]
    Nul,
    /// The last segment cannot name a new file or directory (`.`, `..`, empty).
    #[error("not a valid name: {0:?}")]
    BadName(String),
    /// A new name holds a control character (given as its code point, so the
    /// message itself stays printable).
    #[error("name contains the control character U+{0:04X}")]
    ControlChar(u32),
    /// A configured home is not an absolute path.
    #[error("not an absolute path")]
    NotAbsolute,
    /// A configured home has a segment that normalising would change.
    #[error("segment {0:?} is not allowed (empty, `.` or `..`)")]
    BadSegment(String),
}

/// The characters new names may not hold: C0 controls and DEL (NUL is
/// refused in every path already).
pub fn is_forbidden_control(c: char) -> bool {
    matches!(c, '\u{1}'..='\u{1f}' | '\u{7f}')
}

/// Resolves `arg` against `cwd` (itself a virtual path).
pub fn resolve(cwd: &str, arg: &str) -> Result<String, PathError> {
    if arg.is_empty() {
        return Err(PathError::Empty);
    }
    if arg.contains('\0') {
        return Err(PathError::Nul);
    }
    let mut segments: Vec<&str> = if arg.starts_with('/') {
        Vec::new()
    } else {
        cwd.split('/').filter(|s| !s.is_empty()).collect()
    };
    for segment in arg.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            name => segments.push(name),
        }
    }
    Ok(join(&segments))
}

/// Resolves a path that will name something new (STOR, MKD, RNTO, APPE): as
/// [`resolve`], and its last segment must be a real name, so `STOR .`,
/// `MKD ..` or `STOR dir/` are refused instead of silently meaning the parent.
/// A trailing slash is tolerated when `dir_ok` (MKD `a/`).
pub fn resolve_new(cwd: &str, arg: &str, dir_ok: bool) -> Result<String, PathError> {
    let trimmed = if dir_ok {
        arg.trim_end_matches('/')
    } else {
        arg
    };
    let last = trimmed.rsplit('/').next().unwrap_or("");
    if crate::storage::is_bad_segment(last) {
        if arg.is_empty() {
            return Err(PathError::Empty);
        }
        return Err(PathError::BadName(arg.to_string()));
    }
    if let Some(c) = last.chars().find(|&c| is_forbidden_control(c)) {
        return Err(PathError::ControlChar(c.into()));
    }
    resolve(cwd, trimmed)
}

/// Checks a configured home (a path in the whole tree) and returns it
/// normalised. Unlike a client's argument it must already be normal: absolute,
/// no empty, `.` or `..` segment (one trailing `/` aside), no NUL or control
/// character. Normalising it instead could silently widen what the user sees
/// (`/alice/..` would be `/`, the whole tree).
pub fn check_home(home: &str) -> Result<String, PathError> {
    if home.is_empty() {
        return Err(PathError::Empty);
    }
    if !home.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if home.contains('\0') {
        return Err(PathError::Nul);
    }
    if let Some(c) = home.chars().find(|&c| is_forbidden_control(c)) {
        return Err(PathError::ControlChar(c.into()));
    }
    if home == "/" {
        return Ok(home.to_string());
    }
    let body = &home[1..];
    let body = body.strip_suffix('/').unwrap_or(body);
    if let Some(bad) = body.split('/').find(|s| crate::storage::is_bad_segment(s)) {
        return Err(PathError::BadSegment(bad.to_string()));
    }
    resolve("/", home)
}

/// Joins segments into a virtual path.
pub fn join(segments: &[&str]) -> String {
    if segments.is_empty() {
        "/".to_string()
    } else {
        let mut out = String::new();
        for s in segments {
            out.push('/');
            out.push_str(s);
        }
        out
    }
}

/// The parent of a virtual path (`/` for `/` itself) and its last segment.
pub fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// Joins a virtual path and one more name.
pub fn child(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute() {
        assert_eq!(resolve("/a", "b").unwrap(), "/a/b");
        assert_eq!(resolve("/a", "/b").unwrap(), "/b");
        assert_eq!(resolve("/", "b/c/").unwrap(), "/b/c");
    }

    #[test]
    fn dots_and_empty_segments_collapse() {
        assert_eq!(resolve("/a/b", "./c//d/.").unwrap(), "/a/b/c/d");
        assert_eq!(resolve("/a/b", "..").unwrap(), "/a");
        assert_eq!(resolve("/a/b", "../../c").unwrap(), "/c");
    }

    #[test]
    fn dot_dot_never_leaves_the_root() {
        assert_eq!(resolve("/", "..").unwrap(), "/");
        assert_eq!(
            resolve("/a", "../../../../etc/passwd").unwrap(),
            "/etc/passwd"
        );
        assert_eq!(resolve("/", "/../..").unwrap(), "/");
        assert_eq!(resolve("/x", "a/../../..").unwrap(), "/");
    }

    #[test]
    fn refused_arguments() {
        assert_eq!(resolve("/", ""), Err(PathError::Empty));
        assert_eq!(resolve("/", "a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn new_names_must_be_real_names() {
        assert!(matches!(
            resolve_new("/", ".", false),
            Err(PathError::BadName(_))
        ));
        assert!(matches!(
            resolve_new("/", "..", false),
            Err(PathError::BadName(_))
        ));
        assert!(matches!(
            resolve_new("/", "a/..", false),
            Err(PathError::BadName(_))
        ));
        assert!(matches!(
            resolve_new("/", "a/", false),
            Err(PathError::BadName(_))
        ));
        assert!(matches!(
            resolve_new("/", "/", true),
            Err(PathError::BadName(_))
        ));
        assert_eq!(resolve_new("/", "", false), Err(PathError::Empty));
        assert_eq!(resolve_new("/d", "a/", true).unwrap(), "/d/a");
        assert_eq!(resolve_new("/d", "x y ", false).unwrap(), "/d/x y ");
    }

    #[test]
    fn new_names_may_not_hold_control_characters() {
        for arg in ["a\u{1}b", "x\u{1b}y", "d/\u{c}", "tab\there", "del\u{7f}"] {
            assert!(
                matches!(resolve_new("/", arg, true), Err(PathError::ControlChar(_))),
                "{arg:?}"
            );
        }
        assert_eq!(
            resolve_new("/", "x\u{1b}y", false),
            Err(PathError::ControlChar(0x1b))
        );
        assert_eq!(
            PathError::ControlChar(0x1b).to_string(),
            "name contains the control character U+001B"
        );
        // Only the new name counts: an existing directory may have one, and
        // existing names are resolved as they are.
        assert_eq!(
            resolve_new("/", "o\u{1}d/new", false).unwrap(),
            "/o\u{1}d/new"
        );
        assert_eq!(resolve("/", "a\u{1}b").unwrap(), "/a\u{1}b");
        // Printable non-ASCII is fine, C1 too (not a C0 control).
        assert_eq!(resolve_new("/", "caf\u{e9}", false).unwrap(), "/caf\u{e9}");
    }

    #[test]
    fn homes_must_be_normal_absolute_paths() {
        assert_eq!(check_home("/").unwrap(), "/");
        assert_eq!(check_home("/alice").unwrap(), "/alice");
        assert_eq!(check_home("/a/b/").unwrap(), "/a/b");
        assert_eq!(check_home(""), Err(PathError::Empty));
        assert_eq!(check_home("alice"), Err(PathError::NotAbsolute));
        assert_eq!(check_home("/a\0b"), Err(PathError::Nul));
        assert_eq!(check_home("/a\u{1b}"), Err(PathError::ControlChar(0x1b)));
        let bad = |s: &str| PathError::BadSegment(s.to_string());
        assert_eq!(check_home("/alice/.."), Err(bad("..")));
        assert_eq!(check_home("/../etc"), Err(bad("..")));
        assert_eq!(check_home("/a//b"), Err(bad("")));
        assert_eq!(check_home("//"), Err(bad("")));
        assert_eq!(check_home("/a/./b"), Err(bad(".")));
    }

    #[test]
    fn parents() {
        assert_eq!(split_parent("/a/b"), ("/a", "b"));
        assert_eq!(split_parent("/a"), ("/", "a"));
        assert_eq!(child("/", "a"), "/a");
        assert_eq!(child("/a", "b"), "/a/b");
    }
}
