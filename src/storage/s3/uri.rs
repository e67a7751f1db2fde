//! Mount URIs of the S3 back end (`s3://bucket/prefix?endpoint=...`) and
//! the checksum option they carry. A bad URI is the operator's mistake in
//! `S3FTP_MOUNTS`, so it has its own error type, not a file-name error.

/// Why a mount URI was refused. The messages name the parameter and say
/// what is accepted, since they end up in a start-up error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("an S3 URI starts with s3://")]
    NotS3,
    #[error("s3:// needs a bucket, e.g. s3://my-bucket/prefix")]
    NoBucket,
    #[error("prefix {0:?} has empty, . or .. segments")]
    BadPrefix(String),
    #[error("{0}: bad %-escape")]
    BadEscape(String),
    #[error("{key}={value}: use true or false")]
    NotBool { key: String, value: String },
    #[error("checksum={0}: use auto, md5, crc32 or none")]
    BadChecksum(String),
    #[error("page_size={0}: use 1 to 1000")]
    BadPageSize(String),
    #[error("unknown parameter {0:?}")]
    UnknownParameter(String),
    #[error("access_key and secret_key go together")]
    HalfCredentials,
}

/// How upload bodies are protected on their way to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Checksum {
    /// `md5` over plain HTTP to another host; `none` over HTTPS (TLS already
    /// authenticates every byte) and to a loopback endpoint (no wire).
    #[default]
    Auto,
    /// Content-MD5 on every part, which every store verifies (about 1.7
    /// CPU-s per GiB: MD5 has no hardware support).
    Md5,
    /// `x-amz-checksum-crc32` on every body, and the whole object's CRC-32
    /// (FULL_OBJECT) at CompleteMultipartUpload: the store verifies each
    /// and keeps the whole one, which XCRC and HASH CRC32 then read from a
    /// HEAD. Sent as headers, not the SDK's streamed trailers (which Garage
    /// refuses).
    Crc32,
    /// Nothing beyond the transport's own (TLS, or TCP on loopback).
    None,
}

impl Checksum {
    /// What `Auto` means for this endpoint (`None`: AWS, which is HTTPS).
    pub(super) fn resolve(self, endpoint: Option<&str>) -> Checksum {
        if self != Checksum::Auto {
            return self;
        }
        let Some(url) = endpoint else {
            return Checksum::None;
        };
        let Some(rest) = url.strip_prefix("http://") else {
            return Checksum::None;
        };
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if !port.contains(']') => h,
            _ => authority,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.to_canonical().is_loopback());
        if loopback {
            Checksum::None
        } else {
            Checksum::Md5
        }
    }
}

/// A parsed `s3://bucket/prefix?...` mount URI.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct S3Uri {
    pub bucket: String,
    /// Key prefix without leading or trailing slash ("" for the whole bucket).
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// How uploaded bodies are protected in transit (`checksum=`).
    pub checksum: Checksum,
    pub page_size: i32,
    /// `sha256=true`: hash every uploaded object whole (SHA-256, logged with
    /// the stored object and kept as `x-amz-meta-sha256` on single-part
    /// uploads). Off by default: about 0.7 CPU-s per GiB.
    pub sha256: bool,
}

impl S3Uri {
    pub fn parse(uri: &str) -> Result<S3Uri, UriError> {
        let rest = uri.strip_prefix("s3://").ok_or(UriError::NotS3)?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Err(UriError::NoBucket);
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|s| s == "." || s == "..") || prefix.contains("//") {
            return Err(UriError::BadPrefix(prefix.to_string()));
        }
        let mut parsed = S3Uri {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            page_size: 1000,
            ..S3Uri::default()
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = percent_decode(v).ok_or_else(|| UriError::BadEscape(k.to_string()))?;
            parsed.set(k, &decoded)?;
        }
        if parsed.access_key.is_some() != parsed.secret_key.is_some() {
            return Err(UriError::HalfCredentials);
        }
        Ok(parsed)
    }

    /// Applies one query parameter (its value already decoded).
    fn set(&mut self, k: &str, v: &str) -> Result<(), UriError> {
        match k {
            "endpoint" => self.endpoint = Some(v.to_string()),
            "region" => self.region = Some(v.to_string()),
            "path_style" => self.path_style = parse_bool(k, v)?,
            "access_key" => self.access_key = Some(v.to_string()),
            "secret_key" => self.secret_key = Some(v.to_string()),
            "checksum" => {
                self.checksum = match v {
                    "auto" => Checksum::Auto,
                    "md5" => Checksum::Md5,
                    "crc32" => Checksum::Crc32,
                    "none" => Checksum::None,
                    _ => return Err(UriError::BadChecksum(v.to_string())),
                }
            }
            "sha256" => self.sha256 = parse_bool(k, v)?,
            "page_size" => {
                self.page_size = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| UriError::BadPageSize(v.to_string()))?
            }
            other => return Err(UriError::UnknownParameter(other.to_string())),
        }
        Ok(())
    }
}

/// Decodes `%XX` escapes in a query value (the value must stay UTF-8).
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_bool(k: &str, v: &str) -> Result<bool, UriError> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(UriError::NotBool {
            key: k.to_string(),
            value: v.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parsing() {
        let u = S3Uri::parse(
            "s3://bucket/a/b/?endpoint=http://127.0.0.1:9000&path_style=true&region=garage",
        )
        .unwrap();
        assert_eq!(u.bucket, "bucket");
        assert_eq!(u.prefix, "a/b");
        assert_eq!(u.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(u.path_style);
        assert_eq!(u.region.as_deref(), Some("garage"));
        assert_eq!(u.page_size, 1000);
        assert_eq!(S3Uri::parse("s3://b").unwrap().prefix, "");
        assert!(S3Uri::parse("s3:///x").is_err());
        assert!(S3Uri::parse("s3://b/../x").is_err());
        assert!(S3Uri::parse("s3://b?colour=blue").is_err());
        assert!(S3Uri::parse("s3://b?access_key=x").is_err());
        assert!(S3Uri::parse("s3://b?page_size=0").is_err());
        assert_eq!(
            S3Uri::parse("s3://b?checksum=crc32").unwrap().checksum,
            Checksum::Crc32
        );
        assert!(S3Uri::parse("s3://b?checksum=sha1").is_err());
    }

    #[test]
    fn auto_checksum_is_md5_only_over_plain_http_to_another_host() {
        let auto = |e: Option<&str>| Checksum::Auto.resolve(e);
        assert_eq!(auto(None), Checksum::None);
        assert_eq!(auto(Some("https://s3.example.com")), Checksum::None);
        assert_eq!(auto(Some("http://minio:9000")), Checksum::Md5);
        assert_eq!(auto(Some("http://10.0.0.5:9000/")), Checksum::Md5);
        assert_eq!(auto(Some("http://127.0.0.1:3900")), Checksum::None);
        assert_eq!(auto(Some("http://localhost:9000")), Checksum::None);
        assert_eq!(auto(Some("http://[::1]:9000")), Checksum::None);
        assert_eq!(auto(Some("http://[2001:db8::1]:9000")), Checksum::Md5);
        assert_eq!(Checksum::Md5.resolve(Some("https://x")), Checksum::Md5);
    }
}
