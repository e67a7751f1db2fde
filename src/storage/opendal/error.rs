//! The one conversion of OpenDAL (and file system) errors into [`StorageError`],
//! used by both OpenDAL services through `?`.

use ::opendal::ErrorKind;

use crate::storage::StorageError;

/// OpenDAL folds most I/O errors into `Unexpected`, so the I/O error
/// underneath, when there is one, decides.
impl From<::opendal::Error> for StorageError {
    fn from(err: ::opendal::Error) -> Self {
        convert(&err)
    }
}

fn convert(err: &::opendal::Error) -> StorageError {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(mapped) = map_io_kind(io.kind()) {
                return mapped;
            }
            break;
        }
        source = s.source();
    }
    match err.kind() {
        ErrorKind::NotFound => StorageError::NotFound,
        ErrorKind::AlreadyExists | ErrorKind::ConditionNotMatch => StorageError::AlreadyExists,
        ErrorKind::PermissionDenied => StorageError::PermissionDenied,
        ErrorKind::IsADirectory => StorageError::IsDirectory,
        ErrorKind::NotADirectory => StorageError::NotDirectory,
        ErrorKind::Unsupported => StorageError::Unsupported("operation not supported by OpenDAL"),
        ErrorKind::RateLimited => StorageError::Transient(err.to_string()),
        _ if err.is_temporary() => StorageError::Transient(err.to_string()),
        _ => StorageError::Other(err.to_string()),
    }
}

/// Errors that mean "nothing there": not found, or a file in the middle of the
/// path (fs reports ENOTDIR; object stores just find nothing).
pub(super) fn is_missing(err: &::opendal::Error) -> bool {
    matches!(
        convert(err),
        StorageError::NotFound | StorageError::NotDirectory
    )
}

/// Maps an I/O error, including one that wraps an OpenDAL error (byte streams).
pub(super) fn io_error(err: std::io::Error) -> StorageError {
    if let Some(inner) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<::opendal::Error>())
    {
        return convert(inner);
    }
    map_io_kind(err.kind()).unwrap_or_else(|| StorageError::Other(err.to_string()))
}

fn map_io_kind(kind: std::io::ErrorKind) -> Option<StorageError> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::NotFound => StorageError::NotFound,
        K::AlreadyExists => StorageError::AlreadyExists,
        K::PermissionDenied | K::ReadOnlyFilesystem => StorageError::PermissionDenied,
        K::IsADirectory => StorageError::IsDirectory,
        K::NotADirectory => StorageError::NotDirectory,
        K::DirectoryNotEmpty => StorageError::NotEmpty,
        K::StorageFull | K::QuotaExceeded => StorageError::InsufficientStorage,
        K::FileTooLarge => StorageError::TooLarge("file too large for the filesystem".into()),
        K::InvalidFilename => StorageError::InvalidName("rejected by the filesystem".into()),
        K::Unsupported => StorageError::Unsupported("operation not supported by the filesystem"),
        K::Interrupted | K::TimedOut | K::WouldBlock | K::ResourceBusy => {
            StorageError::Transient(kind.to_string())
        }
        _ => return None,
    })
}

/// A blocking task that did not finish (panicked or cancelled at shutdown).
pub(super) fn join_error(what: &str, err: tokio::task::JoinError) -> StorageError {
    StorageError::Other(format!("{what} task: {err}"))
}
