//! TLS for FTPS (rustls, TLS 1.2 and 1.3). One server configuration serves the
//! control and the data connections, with a session cache and tickets, so
//! clients that resume the control connection's TLS session on the data
//! connection (FileZilla, lftp, curl) are served without a full handshake.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerSessionMemoryCache;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// TLS sessions remembered for resumption.
const SESSION_CACHE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("S3FTP_TLS_CERT: cannot read certificates from {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("S3FTP_TLS_KEY: cannot read a private key from {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("TLS configuration refused: {0}")]
    Config(String),
    #[error("cannot use {path} as certificate authorities: {reason}")]
    CaFile { path: String, reason: String },
    #[error("S3FTP_TLS_CLIENT_CA: cannot use {path} as client certificate authorities: {reason}")]
    ClientCa { path: String, reason: String },
}

/// Where the certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files: the chain (leaf first) and its private key.
    Files { cert: String, key: String },
    /// Generated at start for `localhost` and `127.0.0.1` (development only).
    SelfSigned,
}

/// The acceptors of a server: one for control connections and one for data
/// connections. Both share the session cache and ticket key, so a data
/// connection resumes the control connection's session; the data one issues
/// no TLS 1.3 tickets of its own, because clients that never read them (curl)
/// then close with unread bytes, the kernel sends a reset instead of a FIN,
/// and a complete upload would look broken.
#[derive(Clone)]
pub struct Acceptors {
    pub control: TlsAcceptor,
    pub data: TlsAcceptor,
}

impl Acceptors {
    /// `client_ca`: a PEM file of the CAs whose client certificates are
    /// asked for (and verified when presented); None: none asked for.
    pub fn new(source: &CertSource, client_ca: Option<&str>) -> Result<Acceptors, TlsError> {
        let control = server_config(source, client_ca)?;
        let mut data = control.clone();
        data.send_tls13_tickets = 0;
        Ok(Acceptors {
            control: TlsAcceptor::from(Arc::new(control)),
            data: TlsAcceptor::from(Arc::new(data)),
        })
    }
}

/// The acceptors in use, replaced as a whole when the certificate is
/// reloaded (SIGHUP). Connections already established keep their TLS state;
/// new handshakes use the new certificate.
pub struct TlsState {
    source: CertSource,
    client_ca: Option<String>,
    current: RwLock<Acceptors>,
}

impl TlsState {
    pub fn new(source: &CertSource, client_ca: Option<&str>) -> Result<TlsState, TlsError> {
        Ok(TlsState {
            source: source.clone(),
            client_ca: client_ca.map(str::to_string),
            current: RwLock::new(Acceptors::new(source, client_ca)?),
        })
    }

    pub fn acceptors(&self) -> Acceptors {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the certificate again; on error the old one stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Acceptors::new(&self.source, self.client_ca.as_deref())?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }
}

fn server_config(source: &CertSource, client_ca: Option<&str>) -> Result<ServerConfig, TlsError> {
    let (certs, key) = match source {
        CertSource::Files { cert, key } => (read_certs(cert)?, read_key(key)?),
        CertSource::SelfSigned => self_signed()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
    config.ticketer =
        rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(config)
}

fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Cert {
        path: path.to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(Path::new(path))
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE block in the file".into()));
    }
    Ok(certs)
}

/// Verifies client certificates against the CAs in `path`; a client
/// presenting none is still served (it logs in with a password).
fn client_verifier(
    path: &str,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let err = |reason: String| TlsError::ClientCa {
        path: path.to_string(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(Path::new(path)).map_err(|e| err(e.to_string()))? {
        roots
            .add(cert.map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no CERTIFICATE block in the file".into()));
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| err(e.to_string()))
}

/// A TLS client configuration for the servers this one calls (the auth
/// hook, the LDAP directory): the system's CAs, plus those in `extra_ca`.
pub fn client_config(extra_ca: Option<&str>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    // Certificates the system has but rustls cannot parse are skipped.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        let err = |reason: String| TlsError::CaFile {
            path: path.to_string(),
            reason,
        };
        let mut added = 0;
        for cert in
            CertificateDer::pem_file_iter(Path::new(path)).map_err(|e| err(e.to_string()))?
        {
            roots
                .add(cert.map_err(|e| err(e.to_string()))?)
                .map_err(|e| err(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(err("no CERTIFICATE block in the file".into()));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The names a verified client certificate vouches for: its subject's
/// common names and its DNS and e-mail alternative names. Empty without a
/// certificate (the verifier already refused any it could not verify).
pub fn client_identities(conn: &rustls::ServerConnection) -> Vec<String> {
    let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) else {
        return Vec::new();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(n)
                | x509_parser::extensions::GeneralName::RFC822Name(n) => names.push(n.to_string()),
                _ => {}
            }
        }
    }
    names
}

fn read_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(Path::new(path)).map_err(|e| TlsError::Key {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Config(e.to_string()))?;
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok((vec![generated.cert.der().clone()], key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_acceptors_build() {
        assert!(Acceptors::new(&CertSource::SelfSigned, None).is_ok());
    }

    #[test]
    fn unreadable_files_name_the_variable() {
        let err = Acceptors::new(
            &CertSource::Files {
                cert: "/nonexistent/cert.pem".into(),
                key: "/nonexistent/key.pem".into(),
            },
            None,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.starts_with("S3FTP_TLS_CERT"), "{err}");
    }

    #[test]
    fn pem_files_round_trip() {
        let generated =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("generate");
        let dir = std::env::temp_dir().join(format!("s3ftp-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, generated.cert.pem()).expect("cert");
        std::fs::write(&key, generated.signing_key.serialize_pem()).expect("key");
        let source = CertSource::Files {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
        };
        assert!(Acceptors::new(&source, None).is_ok());
        let err = Acceptors::new(&source, Some("/nonexistent/ca.pem"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("S3FTP_TLS_CLIENT_CA"), "{err}");
        assert!(Acceptors::new(&source, Some(&cert.display().to_string())).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
