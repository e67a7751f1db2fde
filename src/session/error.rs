//! The one place where failures become FTP replies. Handlers return
//! `Result<_, Reply>` and use `?` on storage and path errors; the mapping below
//! decides the code, so every command answers the same failure the same way.

use crate::protocol::{Reply, ReplyCode};
use crate::storage::StorageError;
use crate::vfs::path::PathError;

impl From<StorageError> for Reply {
    fn from(err: StorageError) -> Reply {
        use ReplyCode::*;
        let (code, text) = match &err {
            StorageError::NotFound => (FileUnavailable, "No such file or directory.".into()),
            StorageError::AlreadyExists => (FileUnavailable, "File exists.".into()),
            StorageError::IsDirectory => (FileUnavailable, "Is a directory.".into()),
            StorageError::NotDirectory => (FileUnavailable, "Not a directory.".into()),
            StorageError::NotEmpty => (FileUnavailable, "Directory not empty.".into()),
            StorageError::PermissionDenied => (FileUnavailable, "Permission denied.".into()),
            StorageError::InvalidName(why) => {
                (FileNameNotAllowed, format!("File name not allowed: {why}."))
            }
            StorageError::TooLarge(why) => (
                ExceededStorageAllocation,
                format!("Exceeded storage allocation: {why}."),
            ),
            StorageError::InsufficientStorage => {
                (InsufficientStorage, "Insufficient storage space.".into())
            }
            StorageError::Transient(_) => {
                (LocalError, "Temporary storage failure, try again.".into())
            }
            StorageError::Changed(_) => (
                LocalError,
                "The file changed during the download; download it again.".into(),
            ),
            StorageError::Unsupported(what) => (
                NotImplemented,
                format!("Not supported by this storage: {what}."),
            ),
            StorageError::Other(_) => (LocalError, "Local error in processing.".into()),
        };
        match &err {
            StorageError::Transient(_) | StorageError::Other(_) | StorageError::Changed(_) => {
                tracing::warn!(error = %err, reply = %code, "storage failure")
            }
            _ => tracing::debug!(error = %err, reply = %code, "storage refusal"),
        }
        Reply::new(code, text)
    }
}

impl From<PathError> for Reply {
    fn from(err: PathError) -> Reply {
        match err {
            PathError::Empty => Reply::new(ReplyCode::ParameterSyntaxError, "Path required."),
            PathError::Nul
            | PathError::BadName(_)
            | PathError::ControlChar(_)
            | PathError::NotAbsolute
            | PathError::BadSegment(_) => Reply::new(
                ReplyCode::FileNameNotAllowed,
                format!("File name not allowed: {err}."),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_code() {
        let cases = [
            (StorageError::NotFound, 550),
            (StorageError::NotEmpty, 550),
            (StorageError::PermissionDenied, 550),
            (StorageError::InvalidName("x".into()), 553),
            (StorageError::TooLarge("x".into()), 552),
            (StorageError::InsufficientStorage, 452),
            (StorageError::Transient("x".into()), 451),
            (StorageError::Changed("x".into()), 451),
            (StorageError::Unsupported("x"), 502),
            (StorageError::Other("x".into()), 451),
        ];
        for (err, code) in cases {
            assert_eq!(Reply::from(err).code.as_u16(), code);
        }
        assert_eq!(Reply::from(PathError::Nul).code.as_u16(), 553);
        let control = Reply::from(PathError::ControlChar(0x1b));
        assert_eq!(control.code.as_u16(), 553);
        assert!(
            !control.text().contains('\u{1b}'),
            "the reply names it printably"
        );
        assert_eq!(Reply::from(PathError::Empty).code.as_u16(), 501);
    }
}
