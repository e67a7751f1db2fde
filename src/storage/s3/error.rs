//! The one place where S3 failures become [`StorageError`]s. The SDK has
//! already retried throttling and 5xx with backoff by the time an error
//! reaches here, so those become `Transient` (451 to the client).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::storage::StorageError;

/// Maps any S3 operation error. `what` names the operation (and the key,
/// where the caller gives it) for logs and for the error's own message.
pub(super) fn map<E, R>(err: SdkError<E, R>, what: &str) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    let status = err.raw_response().map(HttpStatus::status);
    let code = err.code().map(str::to_string);
    let message = format!("{what}: {}", describe(&err));
    let mapped = classify(code.as_deref(), status, &message);
    // Logged once, by whoever reports the failure (the session's reply,
    // the sweeper, start-up); here only the detail, and access denied,
    // which the operator must fix in a policy and the client cannot see.
    match &mapped {
        StorageError::PermissionDenied => {
            tracing::warn!(operation = what, %message, "S3 access denied")
        }
        _ => tracing::debug!(operation = what, %message, "S3 request failed"),
    }
    mapped
}

/// One line saying what went wrong. The SDK's own Display of a service or
/// response error is often empty (a HEAD has no body to carry a code), so
/// this names the code, the store's message, the HTTP status, and the chain
/// of causes, whichever exist.
pub(super) fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    let status = err.raw_response().map(HttpStatus::status);
    let mut parts: Vec<String> = Vec::new();
    if let SdkError::ServiceError(e) = err {
        if let Some(code) = e.err().code() {
            parts.push(code.to_string());
        }
        if let Some(message) = e.err().message().filter(|m| !m.is_empty()) {
            parts.push(message.to_string());
        }
    }
    if let Some(status) = status {
        parts.push(format!("HTTP {status}"));
    }
    if parts.is_empty() || !matches!(err, SdkError::ServiceError(_)) {
        // "dispatch failure: io error: connection reset": the messages of
        // the whole chain of sources on one line (their Debug form, pages
        // of nested structs, only in the debug log).
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(e) = source {
            let text = e.to_string();
            if !chain.contains(&text) {
                chain.push_str(": ");
                chain.push_str(&text);
            }
            source = e.source();
        }
        tracing::debug!(error = ?err, "S3 error in full");
        parts.push(one_line(&chain));
    }
    parts.join(", ")
}

/// Whether a failed request may still have taken effect at the store: no
/// answer came back (timeout, a connection cut after sending, an unreadable
/// response) or the store answered with a 5xx. A plain 4xx refusal means
/// the request was refused as a whole.
pub(super) fn outcome_unknown<E, R>(err: &SdkError<E, R>) -> bool
where
    R: HttpStatus,
{
    match err {
        SdkError::ConstructionFailure(_) => false,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => e.raw().status() >= 500,
        _ => true,
    }
}

/// Whether the store said the multipart upload is gone: after a retried
/// CompleteMultipartUpload, that is what a lost first answer looks like.
pub(super) fn is_no_such_upload<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.code() == Some("NoSuchUpload")
}

/// Keeps a message on one line and short (a store may send a page of HTML).
pub(super) fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(400) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
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

    #[test]
    fn messages_stay_on_one_short_line() {
        assert_eq!(one_line("a\nb\tc"), "a b c");
        assert_eq!(one_line(&"x".repeat(1000)).len(), 403);
    }
}
