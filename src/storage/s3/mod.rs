//! The S3 back end (aws-sdk-s3): any S3-compatible store. Directories are
//! common prefixes plus zero-byte `dir/` markers; listings stream
//! ListObjectsV2 pages; uploads are streamed multipart uploads (see `upload`);
//! renames are server-side copies then deletes; client-set times live in the
//! `mtime` / `btime` user metadata (seconds since the epoch, as rclone writes
//! them), set by a copy of the object onto itself.

mod dirs;
mod error;
mod observe;
mod settle;
mod sweep;
pub mod upload;
mod uri;
mod urlkeys;

/// Kept for `config.rs`, which is being reshaped elsewhere: the function
/// lives in [`crate::secrets`].
pub use crate::secrets::redact;
pub use uri::{Checksum, S3Uri, UriError};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{Delete, EncodingType, MetadataDirective, ObjectIdentifier};
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};

use crate::storage::{
    Backend, ByteStream, Entry, EntryKind, EntryPages, Metadata, Result, StorageError,
    StorageObserver, StorageSettings, Times, UploadSink, WriteOptions,
};
use dirs::DirCache;
use error::map;
use upload::{MultipartSink, UploadSettings, MAX_PART, MIN_PART};

/// Keys copied at once when a directory is renamed.
const COPY_CONCURRENCY: usize = 8;
/// S3's longest key, in bytes.
const MAX_KEY_BYTES: usize = 1024;
/// Most subdirectory names a listing learns for later uploads (`dirs`).
const LEARNED_SUBDIRS: usize = 10_000;
/// Most keys per DeleteObjects request (S3's limit).
const DELETE_BATCH: usize = 1000;

/// What only S3 mounts use; the generic [`StorageSettings`] carries it.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// Part sizes, concurrency and the global memory budget of uploads.
    pub upload: UploadSettings,
    /// How long what was seen of directories is trusted (S3FTP_DIR_CACHE_SECS).
    pub dir_cache: Duration,
    /// Age after which another process's multipart upload under the mount's
    /// prefix counts as abandoned and is aborted (S3FTP_UPLOAD_SWEEP_AGE);
    /// zero: no sweeping.
    pub upload_sweep_age: Duration,
}

impl From<UploadSettings> for S3Settings {
    /// These uploads, the default directory cache and no sweeping.
    fn from(upload: UploadSettings) -> Self {
        S3Settings {
            upload,
            dir_cache: Duration::from_secs(10),
            upload_sweep_age: Duration::ZERO,
        }
    }
}

/// What operations and uploads share: the client, the bucket, the tuning.
pub(crate) struct S3Target {
    client: Client,
    bucket: String,
    upload: UploadSettings,
    observer: Arc<dyn StorageObserver>,
    /// Hash whole objects (the mount's `sha256=true`).
    sha256: bool,
    /// Send Content-MD5 with every upload body.
    content_md5: bool,
}

impl S3Target {
    /// `CopySource` for a key of this bucket, URL-encoded as S3 requires.
    fn copy_source(&self, key: &str) -> String {
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
}

pub struct S3Backend {
    target: Arc<S3Target>,
    prefix: String,
    page_size: i32,
    description: String,
    times: Arc<KnownTimes>,
    /// Directories recently seen (see `dirs`).
    dirs: Arc<DirCache>,
    /// The sweeper of stale multipart uploads under the prefix, stopped
    /// with the back end.
    _sweeper: Option<sweep::Sweeper>,
}

/// Most entries [`KnownTimes`] holds before it starts afresh.
const KNOWN_TIMES_CAP: usize = 100_000;

/// Client-set modification times seen in object metadata (by MFMT or a
/// HEAD), so listings can show them without a HEAD per listed entry
/// (ListObjectsV2 carries no user metadata). An entry holds only while the
/// object's ETag is the one seen with it: an overwrite with other content, by
/// this server or another client, makes the listing fall back to LastModified.
#[derive(Default)]
struct KnownTimes(std::sync::Mutex<HashMap<String, (SystemTime, String)>>);

impl KnownTimes {
    fn remember(&self, full: &str, client_time: SystemTime, etag: Option<&str>) {
        let Some(stamp) = etag.map(str::to_string) else {
            return;
        };
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= KNOWN_TIMES_CAP {
                map.clear();
            }
            map.insert(full.to_string(), (client_time, stamp));
        }
    }

    /// The client-set time of `full`, if it still applies to this version.
    fn lookup(&self, full: &str, etag: Option<&str>) -> Option<SystemTime> {
        let etag = etag?;
        let map = self.0.lock().ok()?;
        map.get(full).filter(|(_, s)| s == etag).map(|(t, _)| *t)
    }
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl S3Backend {
    pub async fn open(uri: &S3Uri, settings: &StorageSettings) -> S3Backend {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &uri.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let (Some(key), Some(secret)) = (&uri.access_key, &uri.secret_key) {
            loader = loader.credentials_provider(Credentials::new(
                key.clone(),
                secret.clone(),
                None,
                None,
                "s3ftp-mount-uri",
            ));
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(uri.path_style)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        let checksum = uri.checksum.resolve(uri.endpoint.as_deref());
        config = config.request_checksum_calculation(if checksum == Checksum::Crc32 {
            RequestChecksumCalculation::WhenSupported
        } else {
            RequestChecksumCalculation::WhenRequired
        });
        if shared.region().is_none() {
            config = config.region(Region::new("us-east-1"));
        }
        if let Some(endpoint) = &uri.endpoint {
            config = config.endpoint_url(endpoint);
        }
        config = config.interceptor(observe::Observe(settings.observer.clone()));
        let client = Client::from_conf(config.build());
        let target = Arc::new(S3Target {
            client,
            bucket: uri.bucket.clone(),
            upload: settings.s3.upload.clone(),
            observer: settings.observer.clone(),
            sha256: uri.sha256,
            content_md5: checksum == Checksum::Md5,
        });
        S3Backend {
            _sweeper: sweep::spawn(target.clone(), &uri.prefix, settings.s3.upload_sweep_age),
            target,
            prefix: uri.prefix.clone(),
            page_size: uri.page_size,
            times: Arc::new(KnownTimes::default()),
            dirs: Arc::new(DirCache::new(settings.s3.dir_cache)),
            description: format!(
                "S3Backend(s3://{}/{} at {})",
                uri.bucket,
                uri.prefix,
                uri.endpoint.as_deref().unwrap_or("AWS")
            ),
        }
    }

    fn client(&self) -> &Client {
        &self.target.client
    }

    fn bucket(&self) -> &str {
        &self.target.bucket
    }

    /// The object key of a back-end key.
    fn full(&self, key: &str) -> String {
        match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{key}", self.prefix),
        }
    }

    /// S3 keys are at most 1,024 bytes, mount prefix and directory slash
    /// included: refused here, before any request.
    fn check_len(&self, key: &str) -> Result<()> {
        if self.full(key).len() + 1 > MAX_KEY_BYTES {
            return Err(StorageError::InvalidName(format!(
                "object key longer than {} bytes",
                MAX_KEY_BYTES - 1
            )));
        }
        Ok(())
    }

    /// The listing prefix of a directory: its object key and a slash.
    fn dir_prefix(&self, key: &str) -> String {
        let full = self.full(key);
        if full.is_empty() {
            full
        } else {
            format!("{full}/")
        }
    }

    async fn head(&self, key: &str) -> Result<Option<HeadObjectOutput>> {
        match self
            .client()
            .head_object()
            .bucket(self.bucket())
            .key(self.full(key))
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

    /// True if anything (a marker or any key) lies under the directory `key`.
    async fn dir_exists(&self, key: &str) -> Result<bool> {
        if key.is_empty() {
            return Ok(true);
        }
        let out = self
            .client()
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(self.dir_prefix(key))
            .max_keys(1)
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .map_err(|e| map(e, "ListObjectsV2"))?;
        let exists = out.key_count().unwrap_or(0) > 0 || !out.contents().is_empty();
        if exists {
            self.dirs.saw(key);
        } else {
            self.dirs.missing(key);
        }
        Ok(exists)
    }

    /// File, directory or nothing, with one round trip (both asked at once).
    async fn kind(&self, key: &str) -> Result<Option<(EntryKind, Option<HeadObjectOutput>)>> {
        if key.is_empty() {
            return Ok(Some((EntryKind::Dir, None)));
        }
        let (head, dir) = tokio::join!(self.head(key), self.dir_exists(key));
        if let Some(head) = head? {
            return Ok(Some((EntryKind::File, Some(head))));
        }
        Ok(dir?.then_some((EntryKind::Dir, None)))
    }

    /// The parent directory of `key` must exist (and not be a file).
    async fn check_parent(&self, key: &str) -> Result<()> {
        let Some((parent, _)) = key.rsplit_once('/') else {
            return Ok(());
        };
        if self.dirs.exists(parent) || self.dir_exists(parent).await? {
            return Ok(());
        }
        if self.head(parent).await?.is_some() {
            Err(StorageError::NotDirectory)
        } else {
            Err(StorageError::NotFound)
        }
    }

    /// Checks that `key` can be written as a file: its directory exists
    /// (else NotFound or NotDirectory) and it is not itself a directory.
    /// Answered from what was recently seen when possible, so a run of
    /// uploads into one directory sends nothing but their PutObjects.
    async fn check_writable(&self, key: &str) -> Result<()> {
        let (parent, name) = dirs::split(key);
        let mut known = self.dirs.lookup(parent, name);
        if known.survey {
            self.survey(parent).await?;
            known = self.dirs.lookup(parent, name);
        }
        let parent_check = async {
            if known.exists {
                Ok(())
            } else {
                self.check_parent(key).await
            }
        };
        let dir_check = async {
            if known.is_dir == Some(false) {
                Ok(false)
            } else {
                self.dir_exists(key).await
            }
        };
        let (parent_ok, is_dir) = tokio::join!(parent_check, dir_check);
        parent_ok?;
        if is_dir? {
            return Err(StorageError::IsDirectory);
        }
        Ok(())
    }

    /// One listing page of `dir`, to learn all its subdirectories when the
    /// page holds every entry (or that it is crowded, or missing).
    async fn survey(&self, dir: &str) -> Result<()> {
        let prefix = self.dir_prefix(dir);
        let out = self
            .client()
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(&prefix)
            .delimiter("/")
            .max_keys(dirs::SURVEY_KEYS)
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .map_err(|e| map(e, "ListObjectsV2"))?;
        let seen = out.key_count().unwrap_or(0) > 0
            || !out.contents().is_empty()
            || !out.common_prefixes().is_empty();
        if !seen && !dir.is_empty() {
            self.dirs.missing(dir);
        } else if out.is_truncated() == Some(true) {
            self.dirs.crowded(dir);
        } else {
            let mut subdirs = HashSet::new();
            for cp in out.common_prefixes() {
                let decoded = urlkeys::decode_opt(cp.prefix())?.unwrap_or_default();
                if let Some(name) = decoded.strip_prefix(&prefix) {
                    subdirs.insert(name.trim_end_matches('/').to_string());
                }
            }
            self.dirs.listed(dir, subdirs);
        }
        Ok(())
    }

    /// Deletes every key under a directory, page by page.
    async fn delete_tree(&self, key: &str) -> Result<()> {
        let mut pages = Box::pin(self.walk(key));
        while let Some(keys) = pages.try_next().await? {
            self.delete_keys(keys.into_iter().map(|(k, _)| k).collect())
                .await?;
        }
        Ok(())
    }

    /// Every object key (with its size) under a directory, page by page.
    fn walk(
        &self,
        key: &str,
    ) -> impl futures::Stream<Item = Result<Vec<(String, u64)>>> + Send + 'static {
        let (client, bucket, prefix) = (
            self.client().clone(),
            self.bucket().to_string(),
            self.dir_prefix(key),
        );
        stream::try_unfold(Some(None::<String>), move |token| {
            let (client, bucket, prefix) = (client.clone(), bucket.clone(), prefix.clone());
            async move {
                let Some(token) = token else {
                    return Ok(None);
                };
                let out = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_continuation_token(token)
                    .encoding_type(EncodingType::Url)
                    .send()
                    .await
                    .map_err(|e| map(e, "ListObjectsV2"))?;
                let mut keys: Vec<(String, u64)> = Vec::with_capacity(out.contents().len());
                for o in out.contents() {
                    if let Some(key) = urlkeys::decode_opt(o.key())? {
                        keys.push((key, o.size().unwrap_or(0).max(0) as u64));
                    }
                }
                let next = out.next_continuation_token().map(|t| Some(t.to_string()));
                Ok(Some((keys, next)))
            }
        })
    }

    async fn delete_keys(&self, keys: Vec<String>) -> Result<()> {
        for batch in keys.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| StorageError::Other(e.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StorageError::Other(e.to_string()))?;
            let out = self
                .client()
                .delete_objects()
                .bucket(self.bucket())
                .delete(delete)
                .send()
                .await
                .map_err(|e| map(e, "DeleteObjects"))?;
            if let Some(err) = out.errors().first() {
                return Err(StorageError::Other(format!(
                    "DeleteObjects: {} {}",
                    err.key().unwrap_or(""),
                    err.message().unwrap_or("")
                )));
            }
        }
        Ok(())
    }

    /// Server-side copy of one object: CopyObject up to 5 GiB, UploadPartCopy
    /// in parallel parts above. `metadata` replaces the source's when given.
    async fn copy_object(
        &self,
        from_full: &str,
        to_full: &str,
        size: u64,
        metadata: Option<HashMap<String, String>>,
        content_type: Option<String>,
    ) -> Result<()> {
        if size <= MAX_PART as u64 {
            let mut req = self
                .client()
                .copy_object()
                .bucket(self.bucket())
                .key(to_full)
                .copy_source(self.target.copy_source(from_full));
            if let Some(metadata) = metadata {
                req = req
                    .metadata_directive(MetadataDirective::Replace)
                    .set_metadata(Some(metadata))
                    .set_content_type(content_type);
            }
            req.send().await.map_err(|e| map(e, "CopyObject"))?;
            return Ok(());
        }
        let source_meta = match metadata {
            Some(m) => m,
            None => self
                .client()
                .head_object()
                .bucket(self.bucket())
                .key(from_full)
                .send()
                .await
                .map_err(|e| map(e, "HeadObject"))?
                .metadata()
                .cloned()
                .unwrap_or_default(),
        };
        let mut sink = MultipartSink::new(self.target.clone(), to_full.to_string(), source_meta);
        match sink.copy_prefix(from_full, size).await {
            Ok(()) => Box::new(sink).commit().await.map(|_| ()),
            Err(e) => {
                let _ = Box::new(sink).abort().await;
                Err(e)
            }
        }
    }
}

fn user_time(head: &HeadObjectOutput, name: &str) -> Option<SystemTime> {
    head.metadata()
        .and_then(|m| m.get(name))
        .and_then(|v| parse_epoch(v))
}

fn client_mtime(head: &HeadObjectOutput) -> Option<SystemTime> {
    user_time(head, "mtime")
}

fn metadata_of(head: &HeadObjectOutput) -> Metadata {
    let modified = client_mtime(head).or_else(|| head.last_modified().and_then(to_system_time));
    Metadata {
        kind: EntryKind::File,
        size: head.content_length().unwrap_or(0).max(0) as u64,
        modified,
        created: user_time(head, "btime"),
    }
}

/// Seconds since the epoch, with an optional fraction (rclone's format).
fn parse_epoch(value: &str) -> Option<SystemTime> {
    let secs: f64 = value.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs_f64(secs))
}

fn format_epoch(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// An object's body as the storage layer's chunk stream. A body cut off
/// mid-way is an error that says which object, how far it got and why.
fn body_stream(body: aws_sdk_s3::primitives::ByteStream, key: String, offset: u64) -> ByteStream {
    stream::try_unfold((body, offset), move |(mut body, read)| {
        let key = key.clone();
        async move {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    let read = read + chunk.len() as u64;
                    Ok(Some((chunk, (body, read))))
                }
                Ok(None) => Ok(None),
                Err(e) => {
                    let cause = aws_sdk_s3::error::DisplayErrorContext(&e).to_string();
                    tracing::warn!(?key, bytes_read = read, %cause, "S3 object body cut off");
                    Err(StorageError::Transient(format!(
                        "GetObject {key:?}: body cut off after byte {read}: {cause}"
                    )))
                }
            }
        }
    })
    .boxed()
}

fn to_system_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

#[async_trait]
impl Backend for S3Backend {
    async fn stat(&self, key: &str) -> Result<Metadata> {
        self.check_len(key)?;
        match self.kind(key).await? {
            Some((EntryKind::File, Some(head))) => {
                let meta = metadata_of(&head);
                if let Some(client_time) = client_mtime(&head) {
                    self.times
                        .remember(&self.full(key), client_time, head.e_tag());
                }
                Ok(meta)
            }
            Some(_) => Ok(Metadata::dir()),
            None => Err(StorageError::NotFound),
        }
    }

    async fn list(&self, dir: &str) -> Result<EntryPages> {
        self.check_len(dir)?;
        let prefix = self.dir_prefix(dir);
        let client = self.client().clone();
        let bucket = self.bucket().to_string();
        let page_size = self.page_size;
        let times = self.times.clone();
        // Its subdirectories, learned as the pages go by (None: too many to keep).
        let learned = Arc::new(std::sync::Mutex::new(Some(HashSet::new())));
        let (dirs, key) = (self.dirs.clone(), dir.to_string());
        let fetch = move |token: Option<String>| {
            let (client, bucket, prefix) = (client.clone(), bucket.clone(), prefix.clone());
            let (times, learned, dirs, key) =
                (times.clone(), learned.clone(), dirs.clone(), key.clone());
            async move {
                let out = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(&prefix)
                    .delimiter("/")
                    .max_keys(page_size)
                    .set_continuation_token(token)
                    .encoding_type(EncodingType::Url)
                    .send()
                    .await
                    .map_err(|e| map(e, "ListObjectsV2"))?;
                let mut entries = Vec::new();
                for cp in out.common_prefixes() {
                    let decoded = urlkeys::decode_opt(cp.prefix())?.unwrap_or_default();
                    let name = decoded
                        .strip_prefix(&prefix)
                        .map(|p| p.trim_end_matches('/'))
                        .unwrap_or("");
                    if !name.is_empty() {
                        entries.push(Entry {
                            name: name.to_string(),
                            meta: Metadata::dir(),
                        });
                    }
                }
                if let Ok(mut learned) = learned.lock() {
                    if let Some(set) = learned.as_mut() {
                        set.extend(
                            entries
                                .iter()
                                .filter(|e| e.meta.kind == EntryKind::Dir)
                                .map(|e| e.name.clone()),
                        );
                        if set.len() > LEARNED_SUBDIRS {
                            *learned = None;
                        }
                    }
                }
                for obj in out.contents() {
                    // The directory's own marker (`dir/`) is not an entry.
                    let key = urlkeys::decode_opt(obj.key())?.unwrap_or_default();
                    let key = key.as_str();
                    let name = key.strip_prefix(&prefix).unwrap_or("");
                    if name.is_empty() {
                        continue;
                    }
                    let stored = obj.last_modified().and_then(to_system_time);
                    entries.push(Entry {
                        name: name.to_string(),
                        meta: Metadata {
                            kind: EntryKind::File,
                            size: obj.size().unwrap_or(0).max(0) as u64,
                            modified: times.lookup(key, obj.e_tag()).or(stored),
                            created: None,
                        },
                    });
                }
                let seen_anything = out.key_count().unwrap_or(0) > 0
                    || !out.contents().is_empty()
                    || !out.common_prefixes().is_empty();
                let next = out.next_continuation_token().map(str::to_string);
                if next.is_none() && (seen_anything || key.is_empty()) {
                    // The last page: every subdirectory has been seen.
                    if let Some(set) = learned.lock().ok().and_then(|mut l| l.take()) {
                        dirs.listed(&key, set);
                    }
                }
                Ok::<_, StorageError>((entries, seen_anything, next))
            }
        };
        // The first page is read now, so a missing directory is an error of
        // the LIST command rather than an empty listing.
        let (first, seen_anything, next) = fetch(None).await?;
        if !seen_anything && !dir.is_empty() {
            self.dirs.missing(dir);
            return Err(if self.head(dir).await?.is_some() {
                StorageError::NotDirectory
            } else {
                StorageError::NotFound
            });
        }
        let rest = stream::try_unfold(next, move |token| {
            let fetch = fetch.clone();
            async move {
                match token {
                    None => Ok(None),
                    Some(t) => {
                        let (entries, _, next) = fetch(Some(t)).await?;
                        Ok(Some((entries, next)))
                    }
                }
            }
        });
        Ok(stream::iter([Ok(first)])
            .chain(rest)
            .try_filter(|page| futures::future::ready(!page.is_empty()))
            .boxed())
    }

    async fn read(&self, key: &str, offset: u64) -> Result<ByteStream> {
        self.check_len(key)?;
        if key.is_empty() {
            return Err(StorageError::IsDirectory);
        }
        let mut req = self
            .client()
            .get_object()
            .bucket(self.bucket())
            .key(self.full(key));
        if offset > 0 {
            req = req.range(format!("bytes={offset}-"));
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                let is_range = e.raw_response().is_some_and(|r| r.status().as_u16() == 416);
                if is_range {
                    // Offset exactly at the end: nothing left to send.
                    return Ok(stream::empty().boxed());
                }
                return Err(match map(e, "GetObject") {
                    StorageError::NotFound if self.dir_exists(key).await? => {
                        StorageError::IsDirectory
                    }
                    other => other,
                });
            }
        };
        Ok(body_stream(out.body, self.full(key), offset))
    }

    async fn write(&self, key: &str, options: WriteOptions) -> Result<Box<dyn UploadSink>> {
        self.check_len(key)?;
        if key.is_empty() {
            return Err(StorageError::IsDirectory);
        }
        self.check_writable(key).await?;
        let mut metadata = HashMap::new();
        if let Some(t) = options.modified {
            metadata.insert("mtime".to_string(), format_epoch(t));
        }
        let full = self.full(key);
        let mut sink = MultipartSink::new(self.target.clone(), full.clone(), metadata);
        let keep = options.keep_prefix;
        if keep > 0 {
            let existing = self.head(key).await?.ok_or(StorageError::NotFound)?;
            let size = existing.content_length().unwrap_or(0).max(0) as u64;
            if keep > size {
                return Err(StorageError::Other(format!(
                    "cannot keep {keep} bytes of a {size}-byte object"
                )));
            }
            let kept = if keep >= MIN_PART as u64 {
                // Large: copied server-side, never downloaded.
                sink.copy_prefix(&full, keep).await
            } else {
                let mut stream = self.read_range(&full, keep).await?;
                let mut result = Ok(());
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(bytes) => sink.push_prefix(bytes).await?,
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                result
            };
            if let Err(e) = kept {
                let _ = Box::new(sink).abort().await;
                return Err(e);
            }
        }
        Ok(Box::new(sink))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.check_len(key)?;
        if key.is_empty() {
            return Err(StorageError::IsDirectory);
        }
        match self.kind(key).await? {
            None => return Err(StorageError::NotFound),
            Some((EntryKind::Dir, _)) => return Err(StorageError::IsDirectory),
            Some((EntryKind::File, _)) => {}
        }
        self.client()
            .delete_object()
            .bucket(self.bucket())
            .key(self.full(key))
            .send()
            .await
            .map_err(|e| map(e, "DeleteObject"))?;
        self.dirs.file_gone(key);
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.check_len(from)?;
        self.check_len(to)?;
        if from.is_empty() || to.is_empty() {
            return Err(StorageError::PermissionDenied);
        }
        if from == to {
            return Ok(());
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(StorageError::InvalidName(
                "cannot move a directory into itself".into(),
            ));
        }
        let (source, target, parent) =
            tokio::join!(self.kind(from), self.kind(to), self.check_parent(to));
        parent?;
        let target = target?;
        match source? {
            None => Err(StorageError::NotFound),
            Some((EntryKind::File, head)) => {
                if matches!(target, Some((EntryKind::Dir, _))) {
                    return Err(StorageError::IsDirectory);
                }
                let size = head
                    .as_ref()
                    .and_then(|h| h.content_length())
                    .unwrap_or(0)
                    .max(0) as u64;
                let (from_full, to_full) = (self.full(from), self.full(to));
                self.copy_object(&from_full, &to_full, size, None, None)
                    .await?;
                self.client()
                    .delete_object()
                    .bucket(self.bucket())
                    .key(from_full)
                    .send()
                    .await
                    .map_err(|e| map(e, "DeleteObject"))?;
                self.dirs.file_gone(from);
                Ok(())
            }
            Some((EntryKind::Dir, _)) => {
                if target.is_some() {
                    return Err(StorageError::AlreadyExists);
                }
                let (from_prefix, to_prefix) = (self.dir_prefix(from), self.dir_prefix(to));
                let moved = async {
                    // Copy everything first: the source stays whole until every copy worked.
                    let mut pages = Box::pin(self.walk(from));
                    while let Some(keys) = pages.try_next().await? {
                        stream::iter(keys)
                            .map(|(k, size)| {
                                let dest = format!("{to_prefix}{}", &k[from_prefix.len()..]);
                                async move { self.copy_object(&k, &dest, size, None, None).await }
                            })
                            .buffer_unordered(COPY_CONCURRENCY)
                            .try_collect::<Vec<()>>()
                            .await?;
                    }
                    self.delete_tree(from).await
                }
                .await;
                // Done or not, both trees may have changed.
                self.dirs.dir_gone(from);
                self.dirs.created(to, false);
                moved
            }
        }
    }

    async fn mkdir(&self, key: &str) -> Result<()> {
        self.check_len(key)?;
        if key.is_empty() {
            return Err(StorageError::AlreadyExists);
        }
        let (parent, existing) = tokio::join!(self.check_parent(key), self.kind(key));
        parent?;
        if existing?.is_some() {
            return Err(StorageError::AlreadyExists);
        }
        self.client()
            .put_object()
            .bucket(self.bucket())
            .key(self.dir_prefix(key))
            .body(aws_sdk_s3::primitives::ByteStream::from(Bytes::new()))
            .send()
            .await
            .map_err(|e| map(e, "PutObject"))?;
        self.dirs.created(key, true);
        Ok(())
    }

    async fn rmdir(&self, key: &str) -> Result<()> {
        self.check_len(key)?;
        if key.is_empty() {
            return Err(StorageError::PermissionDenied);
        }
        let marker = self.dir_prefix(key);
        let out = self
            .client()
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(&marker)
            .max_keys(2)
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .map_err(|e| map(e, "ListObjectsV2"))?;
        let keys = out
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(urlkeys::decode)
            .collect::<Result<Vec<String>>>()?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        match keys.as_slice() {
            [] => Err(if self.head(key).await?.is_some() {
                StorageError::NotDirectory
            } else {
                StorageError::NotFound
            }),
            [only] if *only == marker => {
                self.client()
                    .delete_object()
                    .bucket(self.bucket())
                    .key(&marker)
                    .send()
                    .await
                    .map_err(|e| map(e, "DeleteObject"))?;
                self.dirs.dir_gone(key);
                Ok(())
            }
            _ => Err(StorageError::NotEmpty),
        }
    }

    async fn remove_all(&self, key: &str) -> Result<()> {
        self.check_len(key)?;
        if key.is_empty() {
            return Err(StorageError::PermissionDenied);
        }
        match self.kind(key).await? {
            None => return Err(StorageError::NotFound),
            Some((EntryKind::File, _)) => return Err(StorageError::NotDirectory),
            Some((EntryKind::Dir, _)) => {}
        }
        let removed = self.delete_tree(key).await;
        self.dirs.dir_gone(key);
        removed
    }

    async fn set_times(&self, key: &str, times: Times) -> Result<()> {
        self.check_len(key)?;
        let head = match self.kind(key).await? {
            None => return Err(StorageError::NotFound),
            Some((EntryKind::Dir, _)) => return Err(StorageError::IsDirectory),
            Some((EntryKind::File, head)) => head.ok_or(StorageError::NotFound)?,
        };
        let mut metadata = head.metadata().cloned().unwrap_or_default();
        if let Some(t) = times.modified {
            metadata.insert("mtime".into(), format_epoch(t));
        }
        if let Some(t) = times.created {
            metadata.insert("btime".into(), format_epoch(t));
        }
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        let full = self.full(key);
        // A copy onto itself with the metadata replaced: content, type and the
        // other metadata stay as they were.
        self.copy_object(
            &full,
            &full,
            size,
            Some(metadata),
            head.content_type().map(str::to_string),
        )
        .await?;
        // Learn the new version's ETag so listings can show the time.
        self.stat(key).await.map(|_| ())
    }

    async fn check(&self) -> Result<()> {
        self.client()
            .head_bucket()
            .bucket(self.bucket())
            .send()
            .await
            .map_err(|e| map(e, "HeadBucket"))?;
        Ok(())
    }
}

impl S3Backend {
    /// The first `len` bytes of an object (a short kept prefix).
    async fn read_range(&self, full: &str, len: u64) -> Result<ByteStream> {
        let out = self
            .client()
            .get_object()
            .bucket(self.bucket())
            .key(full)
            .range(format!("bytes=0-{}", len - 1))
            .send()
            .await
            .map_err(|e| map(e, "GetObject"))?;
        Ok(body_stream(out.body, full.to_string(), 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        assert_eq!(t.copy_source("dir/a b+c é"), "b/dir/a%20b%2Bc%20%C3%A9");
    }

    #[test]
    fn epoch_times_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_577_934_245, 500_000_000);
        assert_eq!(parse_epoch(&format_epoch(t)), Some(t));
        assert_eq!(
            parse_epoch("1577934245"),
            Some(UNIX_EPOCH + Duration::from_secs(1_577_934_245))
        );
        assert_eq!(parse_epoch("nope"), None);
    }
}
