//! Checksums: HASH with OPTS HASH and RANG (draft-bryan-ftpext-hash-02,
//! draft-bryan-ftp-range), and the older XCRC, XMD5, XSHA1, XSHA256 and
//! XSHA512 that WinSCP, FileZilla and scripts send. Computed by reading the
//! object once (bounded by S3FTP_HASH_MAX_MIB) and remembered while the
//! file is unchanged.

use super::{reply, Handled};
use crate::digest::Algorithm;
use crate::protocol::{Reply, ReplyCode};
use crate::session::Session;
use crate::storage::Metadata;

/// What OPTS HASH and RANG chose for the next HASH.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HashChoice {
    pub algorithm: Algorithm,
    /// First and last byte (inclusive), for the next HASH only.
    pub range: Option<(u64, u64)>,
}

impl Default for HashChoice {
    fn default() -> Self {
        HashChoice {
            algorithm: Algorithm::Sha256,
            range: None,
        }
    }
}

impl HashChoice {
    /// FEAT's line: every algorithm, the chosen one starred.
    pub fn feat_line(&self) -> String {
        let names: Vec<String> = Algorithm::ALL
            .iter()
            .map(|&a| {
                let star = if a == self.algorithm { "*" } else { "" };
                format!("{}{star}", a.name())
            })
            .collect();
        format!("HASH {}", names.join(";"))
    }
}

/// OPTS HASH [<algorithm>].
pub(super) fn opts_hash(s: &mut Session, value: Option<&str>) -> Handled {
    if let Some(name) = value {
        let Some(algorithm) = Algorithm::from_name(name) else {
            let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
            return reply(
                ReplyCode::ParameterSyntaxError,
                format!("Unknown algorithm; choose one of {}.", known.join(", ")),
            );
        };
        s.hash.algorithm = algorithm;
    }
    reply(ReplyCode::CommandOkay, s.hash.algorithm.name())
}

pub(super) fn rang(s: &mut Session, start: u64, end: u64) -> Handled {
    if (start, end) == (1, 0) {
        s.hash.range = None;
        return reply(ReplyCode::FileActionPending, "Resetting the range.");
    }
    if end < start {
        return reply(
            ReplyCode::ParameterSyntaxError,
            "The end of the range comes before its start (RANG 1 0 resets it).",
        );
    }
    s.hash.range = Some((start, end));
    reply(
        ReplyCode::FileActionPending,
        format!("Restarting at {start}. Ending byte at {end}."),
    )
}

/// HASH <path>: `213 <algorithm> <start>-<end> <hex> <path>`, the end one
/// past the last byte hashed.
pub(super) async fn hash(s: &mut Session, arg: &str) -> Handled {
    let range = s.hash.range.take();
    let algorithm = s.hash.algorithm;
    let path = s.resolve(arg)?;
    let meta = file_meta(s, &path).await?;
    let (start, len) = match range {
        None => (0, meta.size),
        Some((first, last)) => span(&meta, first, Some(last.saturating_add(1)))?,
    };
    let value = compute(s, &path, &meta, algorithm, start, len).await?;
    reply(
        ReplyCode::FileStatus,
        format!("{} {start}-{} {value} {arg}", algorithm.name(), start + len),
    )
}

/// XCRC, XMD5, XSHA1, XSHA256, XSHA512 `<path> [<start> [<end>]]`, the path
/// perhaps quoted, the end exclusive: `250 <HEX>`.
pub(super) async fn x_hash(s: &mut Session, algorithm: Algorithm, arg: &str) -> Handled {
    let (path, meta, start, end) = x_target(s, arg).await?;
    let (start, len) = span(&meta, start, end)?;
    let value = compute(s, &path, &meta, algorithm, start, len).await?;
    reply(ReplyCode::FileActionOkay, value.to_ascii_uppercase())
}

/// The file an X-command names, and its offsets: a quoted path is taken as
/// quoted; otherwise the whole argument when it names a file, else the words
/// before one or two trailing numbers.
async fn x_target(s: &Session, arg: &str) -> Result<(String, Metadata, u64, Option<u64>), Reply> {
    let (name, numbers) = match arg.strip_prefix('"').and_then(|r| r.split_once('"')) {
        Some((quoted, rest)) => (quoted.to_string(), rest.to_string()),
        None => {
            let whole = s.resolve(arg)?;
            if let Ok(meta) = s.stat(&whole).await {
                if !meta.is_dir() {
                    return Ok((whole, meta, 0, None));
                }
            }
            split_numbers(arg)
        }
    };
    let offsets: Vec<Option<u64>> = numbers.split_whitespace().map(|w| w.parse().ok()).collect();
    let (start, end) = match offsets[..] {
        [] => (0, None),
        [Some(start)] => (start, None),
        [Some(start), Some(end)] => (start, Some(end)),
        _ => {
            return Err(Reply::new(
                ReplyCode::ParameterSyntaxError,
                "Use <command> <path> [<start> [<end>]].",
            ))
        }
    };
    let path = s.resolve(&name)?;
    let meta = file_meta(s, &path).await?;
    Ok((path, meta, start, end))
}

/// `text` without its one or two trailing numbers, and those numbers.
fn split_numbers(text: &str) -> (String, String) {
    let mut name = text.trim_end();
    let mut numbers = Vec::new();
    for _ in 0..2 {
        match name.rsplit_once(' ') {
            Some((rest, word)) if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) => {
                numbers.insert(0, word);
                name = rest.trim_end();
            }
            _ => break,
        }
    }
    (name.to_string(), numbers.join(" "))
}

async fn file_meta(s: &Session, path: &str) -> Result<Metadata, Reply> {
    let meta = s.stat(path).await?;
    if meta.is_dir() {
        return Err(Reply::new(
            ReplyCode::FileUnavailable,
            "Is a directory: checksums are of files.",
        ));
    }
    Ok(meta)
}

/// Start and length of `[start, end)` (end None: the file's end) within
/// the file; a start past the end is refused.
fn span(meta: &Metadata, start: u64, end: Option<u64>) -> Result<(u64, u64), Reply> {
    let end = end.unwrap_or(meta.size).min(meta.size);
    if start > meta.size || end < start {
        return Err(Reply::new(
            ReplyCode::ParameterSyntaxError,
            format!("The range is outside the file ({} bytes).", meta.size),
        ));
    }
    Ok((start, end - start))
}

async fn compute(
    s: &Session,
    path: &str,
    meta: &Metadata,
    algorithm: Algorithm,
    start: u64,
    len: u64,
) -> Result<String, Reply> {
    let limit = s.shared.config.hash_max_bytes;
    if limit > 0 && len > limit {
        return Err(Reply::new(
            ReplyCode::FileUnavailable,
            format!(
                "Too large to checksum here: {len} bytes, more than {} MiB (S3FTP_HASH_MAX_MIB).",
                limit >> 20
            ),
        ));
    }
    Ok(s.vfs()?
        .digest(path, meta, algorithm, start, Some(len))
        .await?)
}
