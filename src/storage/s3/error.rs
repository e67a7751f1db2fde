//! The one place where S3 failures become [`StorageError`]s. The SDK has
//! already retried throttling and 5xx with backoff by the time an error
//! reaches here, so those become `Transient` (451 to the client).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::storage::StorageError;

/// Maps any S3 operation error. `what` names the operation and key for logs.
pub(super) fn map<E, R>(err: SdkError<E, R>, what: &str) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    let status = err.raw_response().map(HttpStatus::status);
    let code = err.code().map(str::to_string);
    let message = match &err {
        SdkError::ServiceError(e) => format!(
            "{}: {}",
            e.err().code().unwrap_or("error"),
            e.err().message().unwrap_or("")
        ),
        other => format!("{}", aws_sdk_s3::error::DisplayErrorContext(other)),
    };
    let mapped = classify(code.as_deref(), status, &message);
    match &mapped {
        StorageError::PermissionDenied => {
            tracing::warn!(operation = what, %message, "S3 access denied")
        }
        StorageError::Transient(_) | StorageError::Other(_) => {
            tracing::warn!(operation = what, %message, "S3 request failed")
        }
        _ => tracing::debug!(operation = what, %message, "S3 refusal"),
    }
    mapped
}

fn classify(code: Option<&str>, status: Option<u16>, message: &str) -> StorageError {
    match (code, status) {
        (Some("NoSuchKey" | "NotFound" | "NoSuchUpload"), _) | (None, Some(404)) => {
            StorageError::NotFound
        }
        (Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _)
        | (None, Some(403)) => StorageError::PermissionDenied,
        (Some("EntityTooLarge"), _) => StorageError::TooLarge(message.to_string()),
        (Some("KeyTooLongError" | "InvalidObjectName"), _) => {
            StorageError::InvalidName(message.to_string())
        }
        (Some("PreconditionFailed"), _) | (None, Some(412)) => StorageError::AlreadyExists,
        (Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout"), _) => {
            StorageError::Transient(message.to_string())
        }
        (_, Some(s)) if s >= 500 => StorageError::Transient(message.to_string()),
        // No response at all: connection refused, timeout, DNS.
        (None, None) => StorageError::Transient(message.to_string()),
        _ => StorageError::Other(message.to_string()),
    }
}

/// The HTTP status of a raw response, whatever its type.
pub(super) trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        assert!(matches!(
            classify(Some("NoSuchKey"), Some(404), ""),
            StorageError::NotFound
        ));
        assert!(matches!(
            classify(None, Some(404), ""),
            StorageError::NotFound
        ));
        assert!(matches!(
            classify(Some("AccessDenied"), Some(403), ""),
            StorageError::PermissionDenied
        ));
        assert!(matches!(
            classify(Some("SlowDown"), Some(503), ""),
            StorageError::Transient(_)
        ));
        assert!(matches!(
            classify(None, Some(500), ""),
            StorageError::Transient(_)
        ));
        assert!(matches!(
            classify(None, None, "refused"),
            StorageError::Transient(_)
        ));
        assert!(matches!(
            classify(Some("EntityTooLarge"), Some(400), ""),
            StorageError::TooLarge(_)
        ));
        assert!(matches!(
            classify(Some("InvalidArgument"), Some(400), ""),
            StorageError::Other(_)
        ));
    }
}
