//! TLS: where the certificate comes from, and the settings that need one.

use super::vars::names::{
    S3FTP_REQUIRE_TLS, S3FTP_TLS_CERT, S3FTP_TLS_CLIENT_CA, S3FTP_TLS_IMPLICIT_LISTEN,
    S3FTP_TLS_KEY,
};
use super::vars::Raw;
use super::{invalid, ConfigError};
use crate::tls::CertSource;

/// The certificate source (None: no FTPS). Implicit FTPS and S3FTP_REQUIRE_TLS
/// are refused without one, since they would only refuse every client.
pub(super) fn cert_source(
    raw: &Raw,
    implicit_listener: bool,
) -> Result<Option<CertSource>, ConfigError> {
    let tls = match (raw.tls_cert.trim(), raw.tls_key.trim()) {
        ("", "") if raw.tls_self_signed => Some(CertSource::SelfSigned),
        ("", "") => None,
        ("", _) => return Err(invalid(S3FTP_TLS_CERT, "S3FTP_TLS_KEY is set without it")),
        (_, "") => return Err(invalid(S3FTP_TLS_KEY, "S3FTP_TLS_CERT is set without it")),
        (cert, key) => Some(CertSource::Files {
            cert: cert.to_string(),
            key: key.to_string(),
        }),
    };
    if tls.is_none() && (implicit_listener || raw.require_tls) {
        let var = if raw.require_tls {
            S3FTP_REQUIRE_TLS
        } else {
            S3FTP_TLS_IMPLICIT_LISTEN
        };
        return Err(invalid(
            var,
            "needs a certificate: set S3FTP_TLS_CERT and S3FTP_TLS_KEY (or S3FTP_TLS_SELF_SIGNED=true)",
        ));
    }
    Ok(tls)
}

/// S3FTP_TLS_CLIENT_CA: only with a server certificate (client certificates
/// are a TLS matter); the file is read when the server starts.
pub(super) fn client_ca(raw: &Raw, tls: bool) -> Result<Option<String>, ConfigError> {
    match raw.tls_client_ca.trim() {
        "" => Ok(None),
        _ if !tls => Err(invalid(
            S3FTP_TLS_CLIENT_CA,
            "needs FTPS: set S3FTP_TLS_CERT and S3FTP_TLS_KEY (or S3FTP_TLS_SELF_SIGNED=true)",
        )),
        path => Ok(Some(path.to_string())),
    }
}
