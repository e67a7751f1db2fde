//! Storage and uploads: the mount table, S3 part sizes and memory, directory
//! caching, sweeping, upload-then-rename suffixes and legacy name encodings.

use super::vars::names::{
    S3FTP_LEGACY_ENCODING, S3FTP_MOUNTS, S3FTP_PART_SIZE_MIB, S3FTP_TEMP_SUFFIXES,
    S3FTP_UPLOAD_MEMORY_MIB,
};
use super::vars::Raw;
use super::{invalid, ConfigError};
use crate::protocol::names::NameEncoding;
use crate::vfs::mount::{parse_mounts, MountSpec};

/// S3FTP_MOUNTS: the mount table.
pub(super) fn mounts(value: &str) -> Result<Vec<MountSpec>, ConfigError> {
    parse_mounts(value).map_err(|e| invalid(S3FTP_MOUNTS, e))
}

/// Part sizes within S3's limits, and a memory budget that holds a part.
pub(super) fn check_sizes(raw: &Raw) -> Result<(), ConfigError> {
    if !(5..=5120).contains(&raw.part_size_mib) {
        return Err(invalid(
            S3FTP_PART_SIZE_MIB,
            "must be between 5 and 5120 (S3's part size limits)",
        ));
    }
    if raw.upload_memory_mib < raw.part_size_mib {
        return Err(invalid(
            S3FTP_UPLOAD_MEMORY_MIB,
            "must hold at least one part (S3FTP_PART_SIZE_MIB)",
        ));
    }
    Ok(())
}

/// S3FTP_TEMP_SUFFIXES: a comma-separated list, blanks dropped.
pub(super) fn temp_suffixes(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut suffixes = Vec::new();
    for suffix in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if suffix.contains('/') {
            return Err(invalid(
                S3FTP_TEMP_SUFFIXES,
                format!("{suffix:?}: a suffix cannot contain '/'"),
            ));
        }
        suffixes.push(suffix.to_string());
    }
    Ok(suffixes)
}

/// S3FTP_LEGACY_ENCODING: empty is UTF-8 only.
pub(super) fn legacy_encoding(value: &str) -> Result<NameEncoding, ConfigError> {
    match value.trim() {
        "" => Ok(NameEncoding::default()),
        label => NameEncoding::legacy(label).ok_or_else(|| {
            invalid(
                S3FTP_LEGACY_ENCODING,
                format!(
                    "{label:?} is not a legacy encoding label (latin1, gbk, shift_jis, \
                     windows-1251, ...); leave it empty for UTF-8"
                ),
            )
        }),
    }
}

/// S3FTP_UPLOAD_DIGESTS: algorithm names, comma-separated, each once.
pub(super) fn digests(value: &str) -> Result<Vec<crate::digest::Algorithm>, ConfigError> {
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(algorithm) = crate::digest::Algorithm::from_name(name) else {
            return Err(invalid(
                super::vars::names::S3FTP_UPLOAD_DIGESTS,
                format!("{name:?} is not one of crc32, md5, sha1, sha256, sha512"),
            ));
        };
        if !out.contains(&algorithm) {
            out.push(algorithm);
        }
    }
    Ok(out)
}
