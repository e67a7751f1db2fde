//! The SDK client of one mount and what every request needs with it: the
//! bucket, the upload tuning, the observer. Shared (in an `Arc`) by the
//! operations, the uploads, settling and the sweeper.

use std::sync::{Arc, Mutex};

use crate::bounded::BoundedMap;

use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::list_objects_v2::builders::ListObjectsV2FluentBuilder;
use aws_sdk_s3::types::EncodingType;
use aws_sdk_s3::Client;

use super::diagnose::{diagnose, Place};
use super::error::map;
use super::identity;
use super::observe;
use super::upload::UploadSettings;
use super::uri::{Checksum, S3Uri};
use crate::storage::{Result, StorageError, StorageObserver, Unusable};

/// What operations and uploads share: the client, the bucket, the tuning.
pub(crate) struct S3Target {
    pub(super) client: Client,
    pub(super) bucket: String,
    pub(super) upload: UploadSettings,
    pub(super) observer: Arc<dyn StorageObserver>,
    /// Hash whole objects (the mount's `sha256=true`).
    pub(super) sha256: bool,
    /// Send Content-MD5 with every upload body.
    pub(super) content_md5: bool,
    /// Send each upload body's CRC-32 and the whole object's (FULL_OBJECT),
    /// which the store verifies and keeps (the mount's `checksum=crc32`).
    pub(super) crc32: bool,
    /// Where requests go, for the words of a diagnosis.
    pub(super) place: Place,
    /// Checksums of multipart objects this process uploaded, by ETag.
    pub(super) digests: super::digests::KnownDigests,
}

/// SDK clients by what makes them differ: endpoint, region, addressing and
/// credentials. Mounts (the server's, and users' own from the auth hook)
/// with the same share one client, its connection pool and its credential
/// cache, however many buckets or prefixes they name.
#[derive(Clone)]
pub struct SdkClients(Arc<Mutex<BoundedMap<ClientKey, (Client, String)>>>);

impl std::fmt::Debug for SdkClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdkClients")
    }
}

/// Clients kept at most; each distinct endpoint and credentials is one.
const MAX_CLIENTS: usize = 256;

#[derive(Clone, Hash, PartialEq, Eq)]
struct ClientKey {
    endpoint: Option<String>,
    region: Option<String>,
    path_style: bool,
    access_key: Option<String>,
    secret_key: Option<String>,
}

impl Default for SdkClients {
    fn default() -> Self {
        SdkClients(Arc::new(Mutex::new(BoundedMap::new(MAX_CLIENTS))))
    }
}

impl SdkClients {
    /// How many clients exist (tests).
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The client for `uri` and its signing region.
    async fn get_or_make(
        &self,
        uri: &S3Uri,
        observer: &Arc<dyn StorageObserver>,
    ) -> (Client, String) {
        let key = ClientKey {
            endpoint: uri.endpoint.clone(),
            region: uri.region.clone(),
            path_style: uri.path_style,
            access_key: uri.access_key.clone(),
            secret_key: uri.secret_key.clone(),
        };
        if let Some(found) = self.0.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return found;
        }
        let made = make_client(uri, observer).await;
        if let Ok(mut clients) = self.0.lock() {
            clients.insert(key, made.clone());
        }
        made
    }
}

/// A new client for the URI's endpoint, region and credentials.
async fn make_client(uri: &S3Uri, observer: &Arc<dyn StorageObserver>) -> (Client, String) {
    let region = identity::region(uri).await;
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region.clone())
        .credentials_provider(identity::credentials(uri, &region).await)
        .load()
        .await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(uri.path_style)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        // Checksums are sent explicitly where wanted (`crc32`): the SDK's
        // own would stream them as trailers, which stores such as Garage
        // refuse.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
    if let Some(endpoint) = &uri.endpoint {
        config = config.endpoint_url(endpoint);
    }
    config = config.interceptor(observe::Observe(observer.clone()));
    (Client::from_conf(config.build()), region.to_string())
}

impl S3Target {
    /// A target of the URI's bucket, with a client for its endpoint, region
    /// and credentials (shared with other mounts that have the same),
    /// reporting every request to `observer`.
    pub(super) async fn connect(
        uri: &S3Uri,
        upload: UploadSettings,
        observer: Arc<dyn StorageObserver>,
        clients: &SdkClients,
    ) -> S3Target {
        let (client, region) = clients.get_or_make(uri, &observer).await;
        let checksum = uri.checksum.resolve(uri.endpoint.as_deref());
        S3Target {
            client,
            bucket: uri.bucket.clone(),
            upload,
            observer,
            sha256: uri.sha256,
            content_md5: checksum == Checksum::Md5,
            crc32: checksum == Checksum::Crc32,
            place: Place {
                bucket: uri.bucket.clone(),
                prefix: uri.prefix.clone(),
                endpoint: identity::endpoint(uri),
                region,
                path_style: uri.path_style,
            },
            digests: Default::default(),
        }
    }

    /// `CopySource` for a key of this bucket, URL-encoded as S3 requires.
    pub(super) fn copy_source(&self, key: &str) -> String {
        let mut out = String::with_capacity(self.bucket.len() + key.len() + 1);
        out.push_str(&self.bucket);
        out.push('/');
        for b in key.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                    out.push(b as char)
                }
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    /// A ListObjectsV2 of the keys under `prefix`, asking for URL-encoded
    /// keys (see `urlkeys`): every listing goes through here.
    pub(super) fn list(&self, prefix: impl Into<String>) -> ListObjectsV2FluentBuilder {
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .encoding_type(EncodingType::Url)
    }

    /// HeadObject of an object key; None when nothing is there. With
    /// `crc32`, the object's stored checksums come along.
    pub(super) async fn head(&self, full: &str) -> Result<Option<HeadObjectOutput>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(full)
            .set_checksum_mode(
                self.crc32
                    .then_some(aws_sdk_s3::types::ChecksumMode::Enabled),
            )
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(e) => match map(e, "HeadObject") {
                StorageError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    /// DeleteObject of one object key.
    pub(super) async fn delete(&self, full: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(|e| map(e, "DeleteObject"))?;
        Ok(())
    }

    /// Is the store reachable, and may these credentials list the mount's
    /// prefix? A listing rather than HeadBucket: its error has a body that
    /// tells a bad secret from a denied access, and it needs only the
    /// permission the mount needs, not one on the whole bucket.
    pub(super) async fn check(&self, prefix: &str) -> std::result::Result<(), Unusable> {
        self.list(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| diagnose(&e, "ListObjectsV2", &self.place))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::s3::upload::MIN_PART;

    #[test]
    fn copy_source_is_url_encoded() {
        let t = S3Target {
            client: Client::from_conf(
                aws_sdk_s3::config::Builder::new()
                    .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                    .build(),
            ),
            bucket: "b".into(),
            upload: UploadSettings::new(MIN_PART, 1, 1),
            observer: Arc::new(crate::storage::NoObserver),
            sha256: false,
            content_md5: true,
            crc32: false,
            place: Place {
                bucket: "b".into(),
                prefix: String::new(),
                endpoint: None,
                region: "us-east-1".into(),
                path_style: false,
            },
            digests: Default::default(),
        };
        assert_eq!(t.copy_source("dir/a b+c é"), "b/dir/a%20b%2Bc%20%C3%A9");
    }

    /// Mounts of other buckets or prefixes on the same endpoint with the
    /// same credentials share one client; other credentials get their own.
    #[tokio::test]
    async fn clients_are_shared_by_endpoint_and_credentials() {
        let clients = SdkClients::default();
        let connect = |uri: &str| {
            let uri = S3Uri::parse(uri).unwrap();
            let clients = clients.clone();
            async move {
                S3Target::connect(
                    &uri,
                    UploadSettings::new(MIN_PART, 1, 1),
                    Arc::new(crate::storage::NoObserver),
                    &clients,
                )
                .await
            }
        };
        let at = "endpoint=http://127.0.0.1:9&region=r&path_style=true";
        connect(&format!("s3://a/p?{at}&access_key=k&secret_key=s")).await;
        connect(&format!("s3://b/q?{at}&access_key=k&secret_key=s")).await;
        assert_eq!(clients.len(), 1);
        connect(&format!("s3://b/q?{at}&access_key=k2&secret_key=s")).await;
        connect(&format!("s3://b/q?{at}&access_key=k&secret_key=other")).await;
        assert_eq!(clients.len(), 3);
    }
}
