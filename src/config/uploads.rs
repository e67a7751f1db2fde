//! Storage and uploads: the mount table, S3 part sizes and memory, directory
//! caching, sweeping, upload-then-rename suffixes and legacy name encodings.

use std::time::Duration;

use super::vars::names::{
    S3FTP_LEGACY_ENCODING, S3FTP_MOUNTS, S3FTP_PART_SIZE_MIB, S3FTP_TEMP_SUFFIXES,
    S3FTP_UPLOAD_CONCURRENCY, S3FTP_UPLOAD_MEMORY_MIB,
};
use super::vars::Raw;
use super::{invalid, ConfigError};
use crate::protocol::names::NameEncoding;
use crate::vfs::mount::{parse_mounts, MountSpec};

/// The checked storage settings.
pub(super) struct Uploads {
    pub mounts: Vec<MountSpec>,
    pub part_size_mib: usize,
    pub upload_concurrency: usize,
    pub upload_memory_mib: usize,
    pub dir_cache: Duration,
    pub upload_sweep_age: Duration,
    pub rename_overwrite: bool,
    pub temp_suffixes: Vec<String>,
    pub legacy_encoding: NameEncoding,
}

pub(super) fn check(raw: &Raw) -> Result<Uploads, ConfigError> {
    let mounts = parse_mounts(&raw.mounts).map_err(|e| invalid(S3FTP_MOUNTS, e))?;
    if !(5..=5120).contains(&raw.part_size_mib) {
        return Err(invalid(
            S3FTP_PART_SIZE_MIB,
            "must be between 5 and 5120 (S3's part size limits)",
        ));
    }
    if raw.upload_concurrency == 0 {
        return Err(invalid(S3FTP_UPLOAD_CONCURRENCY, "must be at least 1"));
    }
    if raw.upload_memory_mib < raw.part_size_mib {
        return Err(invalid(
            S3FTP_UPLOAD_MEMORY_MIB,
            "must hold at least one part (S3FTP_PART_SIZE_MIB)",
        ));
    }
    Ok(Uploads {
        mounts,
        part_size_mib: raw.part_size_mib,
        upload_concurrency: raw.upload_concurrency,
        upload_memory_mib: raw.upload_memory_mib,
        dir_cache: Duration::from_secs(raw.dir_cache_secs),
        upload_sweep_age: Duration::from_secs(raw.upload_sweep_age),
        rename_overwrite: raw.rename_overwrite,
        temp_suffixes: temp_suffixes(&raw.temp_suffixes)?,
        legacy_encoding: legacy_encoding(&raw.legacy_encoding)?,
    })
}

/// S3FTP_TEMP_SUFFIXES: a comma-separated list, blanks dropped.
fn temp_suffixes(value: &str) -> Result<Vec<String>, ConfigError> {
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
fn legacy_encoding(value: &str) -> Result<NameEncoding, ConfigError> {
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
