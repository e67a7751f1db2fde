//! Virtual paths: what a client typed, normalised against its working directory
//! and confined to its root. A virtual path is absolute (`/` or `/a/b`), has no
//! empty, `.` or `..` segments, and never goes above `/`: `..` at the root stays
//! at the root, so no argument can leave the user's home.

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
    if matches!(last, "" | "." | "..") {
        if arg.is_empty() {
            return Err(PathError::Empty);
        }
        return Err(PathError::BadName(arg.to_string()));
    }
    resolve(cwd, trimmed)
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
    fn parents() {
        assert_eq!(split_parent("/a/b"), ("/a", "b"));
        assert_eq!(split_parent("/a"), ("/", "a"));
        assert_eq!(child("/", "a"), "/a");
        assert_eq!(child("/a", "b"), "/a/b");
    }
}
