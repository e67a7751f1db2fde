//! What a person reads when an S3 mount cannot be used: one line that says
//! what is wrong in words and what to try (no credentials, credentials
//! rejected, access denied, no such bucket, wrong region, endpoint
//! unreachable, path-style needed). Start-up, `/readyz` and `s3ftp check`
//! show it; the SDK's whole error goes to the debug log.

use std::error::Error as _;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::error::{describe, one_line};
use crate::storage::Unusable;

/// Where a mount's requests go, for the words of a diagnosis.
#[derive(Clone, Debug)]
pub(crate) struct Place {
    pub bucket: String,
    /// The mount's key prefix (empty: the whole bucket).
    pub prefix: String,
    /// None: AWS itself.
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    pub region: String,
    pub path_style: bool,
}

impl Place {
    fn store(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("AWS S3 ({})", self.region),
        }
    }

    fn scope(&self) -> String {
        if self.prefix.is_empty() {
            format!("bucket {}", self.bucket)
        } else {
            format!("bucket {} prefix {}/", self.bucket, self.prefix)
        }
    }
}

/// The one-line diagnosis of `operation` failing with `err`.
pub(crate) fn diagnose<E>(
    err: &SdkError<E, HttpResponse>,
    operation: &str,
    place: &Place,
) -> Unusable
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    tracing::debug!(operation, error = %describe(err), "store check failed");
    match err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => refused(err, operation, place),
        SdkError::TimeoutError(_) => Unusable::passing(format!(
            "no answer from {} in time: check the endpoint, a firewall or a proxy",
            place.store()
        )),
        _ => unreachable(err, place),
    }
}

/// The store answered, and said no.
fn refused<E>(err: &SdkError<E, HttpResponse>, operation: &str, place: &Place) -> Unusable
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().unwrap_or_default();
    let message = err.message().unwrap_or_default();
    let (bucket, store, scope) = (&place.bucket, place.store(), place.scope());
    match (code, status) {
        ("InvalidAccessKeyId", _) => Unusable::lasting(format!(
            "credentials rejected: {store} does not know this access key ID \
             (check AWS_ACCESS_KEY_ID or access_key= in the mount)"
        )),
        ("SignatureDoesNotMatch", _) => Unusable::lasting(format!(
            "credentials rejected: the secret key does not match the access key ID at {store} \
             (check AWS_SECRET_ACCESS_KEY or secret_key= in the mount)"
        )),
        ("NoSuchBucket", _) | ("", Some(404)) => Unusable::passing(format!(
            "bucket {bucket} does not exist at {store}: create it, or fix the bucket name in \
             S3FTP_MOUNTS"
        )),
        (
            "PermanentRedirect"
            | "AuthorizationHeaderMalformed"
            | "IllegalLocationConstraintException",
            _,
        )
        | ("", Some(301)) => wrong_region(err, message, place),
        ("AccessDenied" | "Forbidden", _) | ("", Some(403)) => {
            if looks_like_bad_secret(message) {
                return Unusable::lasting(format!(
                    "credentials rejected by {store}: {message} (check the access key ID and \
                     secret, AWS_* variables or access_key=/secret_key= in the mount)"
                ));
            }
            Unusable::lasting(format!(
                "access denied: these credentials may not {operation} on {scope} at {store} \
                 (grant it in the bucket or IAM policy, or use other credentials)"
            ))
        }
        (_, Some(s)) if s >= 500 => Unusable::passing(format!(
            "{store} answered HTTP {s} {code}: it may be starting or overloaded"
        )),
        _ => Unusable::lasting(format!(
            "{operation} on {scope} at {store} was refused: {}",
            describe(err)
        )),
    }
}

/// Some stores (Garage) answer a bad signature or an unknown key ID with
/// a plain 403 AccessDenied whose message says which.
fn looks_like_bad_secret(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["signature", "access key", "secret", "no such key"]
        .iter()
        .any(|sign| m.contains(sign))
}

/// The bucket is in another region; the right one where the store says.
fn wrong_region<E>(err: &SdkError<E, HttpResponse>, message: &str, place: &Place) -> Unusable {
    let right = err
        .raw_response()
        .and_then(|r| r.headers().get("x-amz-bucket-region"))
        .map(str::to_string)
        .or_else(|| quoted_after(message, "expecting"));
    let (bucket, region) = (&place.bucket, &place.region);
    Unusable::lasting(match right {
        Some(right) => format!(
            "wrong region: bucket {bucket} is in {right}, not {region}; add region={right} to \
             the mount or set AWS_REGION={right}"
        ),
        None => format!(
            "wrong region {region} for bucket {bucket}: add region=<the bucket's region> to the \
             mount or set AWS_REGION"
        ),
    })
}

/// `'x'` after `word` in `text` (AWS: "the region 'us-east-1' is wrong;
/// expecting 'eu-west-1'").
fn quoted_after(text: &str, word: &str) -> Option<String> {
    let rest = &text[text.find(word)? + word.len()..];
    let start = rest.find('\'')? + 1;
    let len = rest[start..].find('\'')?;
    Some(rest[start..start + len].to_string())
}

/// No answer came: no credentials to sign with, or no connection.
fn unreachable<E, R>(err: &SdkError<E, R>, place: &Place) -> Unusable
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let store = place.store();
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    let mut text = String::new();
    while let Some(e) = source {
        if let Some(creds) = e.downcast_ref::<CredentialsError>() {
            return no_credentials(creds);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return Unusable::passing(format!(
                    "cannot connect to {store}: connection refused (is the store running, and \
                     is the port right?)"
                ));
            }
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            if matches!(tls, rustls::Error::InvalidCertificate(_)) {
                return untrusted(&store, tls);
            }
        }
        text.push_str(&e.to_string().to_ascii_lowercase());
        text.push(' ');
        source = e.source();
    }
    if text.contains("dns error") || text.contains("failed to lookup address") {
        return unresolved(place);
    }
    if text.contains("certificate") {
        return untrusted(&store, &text);
    }
    if text.contains("timed out") || text.contains("timeout") {
        return Unusable::passing(format!(
            "no answer from {store} in time: check the endpoint, a firewall or a proxy"
        ));
    }
    Unusable::passing(format!("cannot reach {store}: {}", describe_chain(err)))
}

fn no_credentials(err: &CredentialsError) -> Unusable {
    match err {
        CredentialsError::CredentialsNotLoaded(_) => Unusable::lasting(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
             AWS_PROFILE, or add access_key=...&secret_key=... to the mount",
        ),
        other => Unusable::lasting(format!(
            "the AWS credentials could not be loaded: {}",
            one_line(&aws_sdk_s3::error::DisplayErrorContext(other).to_string())
        )),
    }
}

fn untrusted(store: &str, detail: &dyn std::fmt::Display) -> Unusable {
    tracing::debug!(%detail, "TLS certificate refused");
    Unusable::lasting(format!(
        "the TLS certificate of {store} is not trusted: add its CA to AWS_CA_BUNDLE or the \
         system's certificates"
    ))
}

fn unresolved(place: &Place) -> Unusable {
    match &place.endpoint {
        Some(endpoint) if !place.path_style => Unusable::passing(format!(
            "cannot resolve {}.{}: stores other than AWS usually need path_style=true in the \
             mount (else the bucket goes into the host name)",
            place.bucket,
            host_of(endpoint)
        )),
        Some(endpoint) => Unusable::passing(format!(
            "cannot resolve the host name of {endpoint}: check endpoint= in the mount, or DNS"
        )),
        None => Unusable::passing(format!(
            "cannot resolve AWS S3's host name for region {}: check DNS and region=",
            place.region
        )),
    }
}

fn host_of(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

fn describe_chain<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    // The innermost cause is the one a person understands ("connection
    // reset by peer"); the layers above it are the SDK's.
    let mut last = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        last = e.to_string();
        source = e.source();
    }
    one_line(&last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_region_is_read_from_the_message() {
        assert_eq!(
            quoted_after(
                "the region 'us-east-1' is wrong; expecting 'eu-west-1'",
                "expecting"
            ),
            Some("eu-west-1".into())
        );
        assert_eq!(quoted_after("no region here", "expecting"), None);
    }

    #[test]
    fn hosts_of_endpoints() {
        assert_eq!(host_of("http://127.0.0.1:9000"), "127.0.0.1");
        assert_eq!(host_of("https://minio.example/"), "minio.example");
        assert_eq!(host_of("minio:9000"), "minio");
    }
}
