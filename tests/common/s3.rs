//! Real S3-protocol servers on loopback for the S3 tests.
//!
//! - [`S3Server::shared`]: the server most S3 tests use, one per test binary.
//!   A single-node Garage 2.5.0 started on first use, or, when
//!   `S3FTP_TEST_S3_ENDPOINT` is set, that external server (MinIO from
//!   docker compose, say) with `S3FTP_TEST_S3_ACCESS_KEY`,
//!   `S3FTP_TEST_S3_SECRET_KEY`, optional `S3FTP_TEST_S3_REGION` (default
//!   `us-east-1`) and optional `S3FTP_TEST_S3_BUCKET_PREFIX` (default
//!   `s3ftp-test-`).
//! - [`S3Server::shared_moto`]: one moto server per test binary, the strictest
//!   about S3's multipart rules (EntityTooSmall, NoSuchUpload after abort).
//! - [`S3Server::garage`] and [`S3Server::moto`]: a server of the test's own,
//!   stopped when the value is dropped.
//!
//! Every test takes its own bucket with [`S3Server::fresh_bucket`], so tests
//! share a server but never see each other's objects.
//!
//! Starting is synchronous (it blocks the calling thread for about a second;
//! call it from `#[tokio::test]` bodies freely). Object helpers are async and
//! send their requests with an aws-sdk-s3 client of the harness's own,
//! configured explicitly (not from the environment) and run on a runtime of
//! the harness's own, independently of the back end under test; `*_blocking`
//! twins exist for non-async code.
//!
//! Binaries: `S3FTP_TEST_GARAGE_BIN` (else `garage` on PATH, else
//! `~/.cargo/bin/garage`) and `S3FTP_TEST_MOTO_BIN` (else
//! `${S3FTP_TOOLS_DIR:-~/.cache/s3ftp-tools}/moto-venv/bin/moto_server`);
//! `scripts/test.sh` installs both and exports both variables.
//!
//! Clean-up: each server runs under a small `sh` wrapper whose stdin is a
//! pipe from the test process. When the pipe closes (the [`S3Server`] is
//! dropped, or the test process exits in any way, even SIGKILL, since the
//! kernel closes its end), the wrapper kills the server with SIGKILL and
//! removes its temporary directory. This is what stops the shared servers,
//! which live in statics and are never dropped.

#![allow(dead_code)]

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, EncodingType};
use aws_sdk_s3::Client;

/// How long a server may take to answer after it was started. Generous: the
/// test machines have two shared cores and the suite compiles in parallel.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The region Garage is configured with: not `us-east-1`, so a back end that
/// ignores the mount's `region=` fails to sign requests.
pub const GARAGE_REGION: &str = "garage";

/// Which kind of server is behind an [`S3Server`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Kind {
    /// Garage 2.5.0: faithful listings, copies and multipart bookkeeping, but
    /// accepts non-last parts under 5 MiB and ignores conditional writes.
    Garage,
    /// moto server: enforces EntityTooSmall, InvalidPart, NoSuchUpload.
    Moto,
    /// The server named by `S3FTP_TEST_S3_ENDPOINT` (MinIO, AWS...).
    External,
}

impl S3Kind {
    /// Whether the server refuses a CompleteMultipartUpload with a non-last
    /// part under 5 MiB, as AWS S3 and MinIO do.
    pub fn enforces_min_part_size(self) -> bool {
        !matches!(self, S3Kind::Garage)
    }
}

/// A running S3 server and a key that can create buckets on it.
pub struct S3Server {
    pub kind: S3Kind,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// A bucket that exists from the start. Prefer [`S3Server::fresh_bucket`].
    pub bucket: String,
    bucket_prefix: String,
    process: Option<ServerProcess>,
    /// The harness's own client, made on first use.
    sdk: OnceLock<Client>,
}

static SHARED: OnceLock<Result<S3Server, String>> = OnceLock::new();
static SHARED_MOTO: OnceLock<Result<S3Server, String>> = OnceLock::new();
static BUCKET_COUNTER: AtomicU64 = AtomicU64::new(0);

impl S3Server {
    /// The test binary's S3 server: the external one when
    /// `S3FTP_TEST_S3_ENDPOINT` is set, otherwise a Garage started on first
    /// use and stopped when the test binary exits.
    pub fn shared() -> &'static S3Server {
        shared_or_panic(&SHARED, || {
            S3Server::external_from_env().unwrap_or_else(S3Server::garage)
        })
    }

    /// The test binary's moto server, started on first use.
    pub fn shared_moto() -> &'static S3Server {
        shared_or_panic(&SHARED_MOTO, S3Server::moto)
    }

    /// The server named by `S3FTP_TEST_S3_ENDPOINT`, if that is set, with a
    /// fresh bucket as [`S3Server::bucket`]. Panics if the keys are missing.
    pub fn external_from_env() -> Option<S3Server> {
        let endpoint = env_nonempty("S3FTP_TEST_S3_ENDPOINT")?;
        let need = |name: &str| {
            env_nonempty(name)
                .unwrap_or_else(|| panic!("S3FTP_TEST_S3_ENDPOINT is set but {name} is not"))
        };
        let mut server = S3Server {
            kind: S3Kind::External,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            access_key: need("S3FTP_TEST_S3_ACCESS_KEY"),
            secret_key: need("S3FTP_TEST_S3_SECRET_KEY"),
            region: env_nonempty("S3FTP_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
            bucket: String::new(),
            bucket_prefix: env_nonempty("S3FTP_TEST_S3_BUCKET_PREFIX")
                .unwrap_or_else(|| "s3ftp-test-".into()),
            process: None,
            sdk: OnceLock::new(),
        };
        server.bucket = server.fresh_bucket_blocking();
        Some(server)
    }

    /// A fresh single-node Garage of its own on free loopback ports, with the
    /// bucket [`S3Server::bucket`] ready. Stopped when dropped.
    pub fn garage() -> S3Server {
        let bin = garage_bin();
        let access_key = format!("GK{}", random_hex(12));
        let secret_key = random_hex(32);
        let bucket = "s3ftp-default".to_string();
        let mut last_error = String::new();
        for _attempt in 0..4 {
            let dir = server_dir("s3ftp-garage-");
            let s3_port = free_port();
            let rpc_port = free_port();
            let config = format!(
                r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "lmdb"
replication_factor = 1
compression_level = "none"
disable_scrub = true
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{GARAGE_REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
"#,
                dir = dir.display(),
                secret = random_hex(32),
            );
            let config_path = dir.join("garage.toml");
            std::fs::write(&config_path, config).expect("write garage.toml");
            let mut command = Command::new(&bin);
            command
                .arg("-c")
                .arg(&config_path)
                .args(["server", "--single-node", "--default-bucket"])
                .env("GARAGE_DEFAULT_ACCESS_KEY", &access_key)
                .env("GARAGE_DEFAULT_SECRET_KEY", &secret_key)
                .env("GARAGE_DEFAULT_BUCKET", &bucket)
                .env("RUST_LOG", "garage=warn")
                .env_remove("GARAGE_CONFIG_FILE");
            let process = ServerProcess::spawn(dir, command);
            let server = S3Server {
                kind: S3Kind::Garage,
                endpoint: format!("http://127.0.0.1:{s3_port}"),
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
                region: GARAGE_REGION.into(),
                bucket: bucket.clone(),
                bucket_prefix: "s3ftp-test-".into(),
                process: Some(process),
                sdk: OnceLock::new(),
            };
            match server.wait_ready(s3_port) {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("Garage did not start: {last_error}");
    }

    /// A moto server of its own on a free loopback port, with the bucket
    /// [`S3Server::bucket`] ready. Stopped when dropped. moto accepts any
    /// credentials (and does not check signatures).
    pub fn moto() -> S3Server {
        let bin = moto_bin();
        let mut last_error = String::new();
        for _attempt in 0..4 {
            let dir = server_dir("s3ftp-moto-");
            let port = free_port();
            let mut command = Command::new(&bin);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                // moto would otherwise pick AWS settings up from the user.
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("PYTHONUNBUFFERED", "1");
            let process = ServerProcess::spawn(dir, command);
            let server = S3Server {
                kind: S3Kind::Moto,
                endpoint: format!("http://127.0.0.1:{port}"),
                access_key: "s3ftp-moto-key".into(),
                secret_key: "s3ftp-moto-secret".into(),
                region: "us-east-1".into(),
                bucket: "s3ftp-default".into(),
                bucket_prefix: "s3ftp-test-".into(),
                process: Some(process),
                sdk: OnceLock::new(),
            };
            match server.wait_ready(port) {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("moto did not start: {last_error}");
    }

    /// Waits for the port to accept connections and the default bucket to
    /// exist (creating it on moto). Err when the server exited (a port taken
    /// in between is the usual reason: the caller retries on other ports).
    fn wait_ready(&self, port: u16) -> Result<(), String> {
        let process = self.process.as_ref().expect("a started server");
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if let Some(status) = process.exited() {
                return Err(format!("exited with {status}: {}", process.log_tail()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "S3 server at {addr} did not accept connections within {START_TIMEOUT:?}: {}",
                    process.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        loop {
            let bucket = self.bucket.clone();
            let create = self.kind == S3Kind::Moto;
            let answer = block_on_harness(self.sdk().clone(), move |c| async move {
                fn failed<E: std::error::Error + 'static>(e: SdkError<E>) -> (Option<u16>, String) {
                    (status(&e), DisplayErrorContext(e).to_string())
                }
                if create {
                    c.create_bucket()
                        .bucket(&bucket)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(failed)
                } else {
                    c.head_bucket()
                        .bucket(&bucket)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(failed)
                }
            });
            match answer {
                Ok(()) => return Ok(()),
                Err((Some(code @ (400 | 401 | 403)), text)) => {
                    panic!("S3 server at {addr} refused the harness: {code} {text}")
                }
                Err((_, text)) => {
                    if let Some(status) = process.exited() {
                        return Err(format!("exited with {status}: {}", process.log_tail()));
                    }
                    if Instant::now() > deadline {
                        panic!(
                            "S3 server at {addr} answered {text:?} for its bucket: {}",
                            process.log_tail()
                        );
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates a bucket no other test uses and returns its name.
    pub async fn fresh_bucket(&self) -> String {
        let (region, prefix) = (self.region.clone(), self.bucket_prefix.clone());
        self.run(move |c| create_fresh_bucket(c, region, prefix))
            .await
    }

    /// [`S3Server::fresh_bucket`] for non-async code.
    pub fn fresh_bucket_blocking(&self) -> String {
        let (region, prefix) = (self.region.clone(), self.bucket_prefix.clone());
        block_on_harness(self.sdk().clone(), move |c| {
            create_fresh_bucket(c, region, prefix)
        })
    }

    /// The mount URI for `S3FTP_MOUNTS`, credentials included as the
    /// `access_key` and `secret_key` query parameters (for servers started in
    /// process, where per-server environment variables cannot be set):
    /// `s3://BUCKET/PREFIX?endpoint=http://127.0.0.1:PORT&path_style=true&region=R&access_key=K&secret_key=S`.
    /// An empty `prefix` gives `s3://BUCKET?...`; slashes around it are
    /// trimmed. Query values keep letters, digits, `-._~:/` as they are and
    /// percent-encode the rest (so a `,` or `&` in a secret cannot split
    /// `S3FTP_MOUNTS` or the query): Garage's and moto's hex keys and the
    /// loopback endpoint appear verbatim.
    pub fn mount_uri(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "{}&access_key={}&secret_key={}",
            self.mount_uri_without_credentials(bucket, prefix),
            encode_mount_value(&self.access_key),
            encode_mount_value(&self.secret_key),
        )
    }

    /// The mount URI without credentials, for a server process started with
    /// [`S3Server::credentials_env`] in its environment.
    pub fn mount_uri_without_credentials(&self, bucket: &str, prefix: &str) -> String {
        let prefix = prefix.trim_matches('/');
        let path = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{prefix}")
        };
        format!(
            "s3://{bucket}{path}?endpoint={}&path_style=true&region={}",
            encode_mount_value(&self.endpoint),
            encode_mount_value(&self.region),
        )
    }

    /// The standard AWS variables that point an SDK at this server: for a
    /// child process (`Command::envs`), never for `std::env::set_var` in a
    /// test binary whose tests run in parallel.
    pub fn credentials_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
            ("AWS_REGION", self.region.as_str()),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// CreateBucket of `name` (in the server's region); panics unless the
    /// server creates it.
    pub async fn create_bucket(&self, name: &str) {
        let (name, region) = (name.to_string(), self.region.clone());
        self.run(move |c| async move {
            let location = (region != "us-east-1").then(|| {
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build()
            });
            if let Err(e) = c
                .create_bucket()
                .bucket(&name)
                .set_create_bucket_configuration(location)
                .send()
                .await
            {
                panic!("CreateBucket {name}: {}", DisplayErrorContext(e));
            }
        })
        .await
    }

    /// DeleteBucket of an empty bucket; panics unless the server deletes it.
    pub async fn delete_bucket(&self, name: &str) {
        let name = name.to_string();
        self.run(move |c| async move {
            if let Err(e) = c.delete_bucket().bucket(&name).send().await {
                panic!("DeleteBucket {name}: {}", DisplayErrorContext(e));
            }
        })
        .await
    }

    /// PutObject; panics unless the server accepts it.
    pub async fn put_object(&self, bucket: &str, key: &str, data: &[u8]) {
        let (bucket, key, data) = (bucket.to_string(), key.to_string(), data.to_vec());
        self.run(move |c| async move {
            if let Err(e) = c
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .content_type("application/octet-stream")
                .body(ByteStream::from(data))
                .send()
                .await
            {
                panic!("PutObject {bucket}/{key}: {}", DisplayErrorContext(e));
            }
        })
        .await
    }

    /// GetObject: the content, or None when the object does not exist.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.run(move |c| async move {
            match c.get_object().bucket(&bucket).key(&key).send().await {
                Ok(out) => Some(
                    out.body
                        .collect()
                        .await
                        .unwrap_or_else(|e| panic!("GetObject {bucket}/{key} body: {e}"))
                        .to_vec(),
                ),
                Err(e) if status(&e) == Some(404) => None,
                Err(e) => panic!("GetObject {bucket}/{key}: {}", DisplayErrorContext(e)),
            }
        })
        .await
    }

    /// HeadObject: what the callers check (ETag, Content-Length,
    /// x-amz-meta-*), or None when the object does not exist.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Option<ObjectHead> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.run(move |c| async move {
            match c.head_object().bucket(&bucket).key(&key).send().await {
                Ok(out) => Some(ObjectHead::from(out)),
                Err(e) if status(&e) == Some(404) => None,
                Err(e) => panic!("HeadObject {bucket}/{key}: {}", DisplayErrorContext(e)),
            }
        })
        .await
    }

    /// The store's own CRC-32 of an object (HeadObject with ChecksumMode
    /// ENABLED): the base64 value and the checksum type, when it keeps one.
    pub async fn stored_crc32(&self, bucket: &str, key: &str) -> Option<(String, String)> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.run(move |c| async move {
            let out = c
                .head_object()
                .bucket(&bucket)
                .key(&key)
                .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("HeadObject {bucket}/{key}: {}", DisplayErrorContext(e))
                });
            let kind = out
                .checksum_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default();
            out.checksum_crc32().map(|v| (v.to_string(), kind))
        })
        .await
    }

    /// DeleteObject (succeeds whether or not the object existed).
    pub async fn delete_object(&self, bucket: &str, key: &str) {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.run(move |c| async move {
            if let Err(e) = c.delete_object().bucket(&bucket).key(&key).send().await {
                panic!("DeleteObject {bucket}/{key}: {}", DisplayErrorContext(e));
            }
        })
        .await
    }

    /// Every key under `prefix` (ListObjectsV2, all pages), in S3 order.
    /// Keys are asked for URL-encoded, so keys with control characters (which
    /// XML cannot carry) are listed too.
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
        self.run(move |c| async move {
            let mut keys = Vec::new();
            let mut pages = c
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(&prefix)
                .encoding_type(EncodingType::Url)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.unwrap_or_else(|e| {
                    panic!(
                        "ListObjectsV2 {bucket} {prefix:?}: {}",
                        DisplayErrorContext(e)
                    )
                });
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key())
                        .map(url_decode),
                );
            }
            keys
        })
        .await
    }

    /// Keys of the multipart uploads in progress in `bucket` (one entry per
    /// upload): empty when no upload was left behind.
    pub async fn list_multipart_uploads(&self, bucket: &str) -> Vec<String> {
        let bucket = bucket.to_string();
        self.run(move |c| async move {
            let out = c
                .list_multipart_uploads()
                .bucket(&bucket)
                .encoding_type(EncodingType::Url)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("ListMultipartUploads {bucket}: {}", DisplayErrorContext(e))
                });
            out.uploads()
                .iter()
                .filter_map(|u| u.key())
                .map(url_decode)
                .collect()
        })
        .await
    }

    /// CreateMultipartUpload; returns the upload id.
    pub async fn create_multipart_upload(&self, bucket: &str, key: &str) -> String {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.run(move |c| async move {
            c.create_multipart_upload()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "CreateMultipartUpload {bucket}/{key}: {}",
                        DisplayErrorContext(e)
                    )
                })
                .upload_id()
                .expect("an upload id")
                .to_string()
        })
        .await
    }

    /// AbortMultipartUpload; the answer is not checked (the upload may be
    /// gone already).
    pub async fn abort_multipart_upload(&self, bucket: &str, key: &str, upload_id: &str) {
        let (bucket, key, id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        self.run(move |c| async move {
            let _ = c
                .abort_multipart_upload()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&id)
                .send()
                .await;
        })
        .await
    }

    /// Whether HeadBucket answers 200 for `bucket`, for non-async code.
    pub fn bucket_exists_blocking(&self, bucket: &str) -> bool {
        let bucket = bucket.to_string();
        block_on_harness(self.sdk().clone(), move |c| async move {
            c.head_bucket().bucket(&bucket).send().await.is_ok()
        })
    }

    /// The directory of a server this harness started (removed when it stops).
    /// A key the store knows but that may use no bucket (Garage only:
    /// imported with Garage's own command line); None on other servers.
    pub fn key_without_access(&self) -> Option<(String, String)> {
        let dir = self.server_dir().filter(|_| self.kind == S3Kind::Garage)?;
        let (id, secret) = (format!("GK{}", random_hex(12)), random_hex(32));
        let out = Command::new(garage_bin())
            .arg("-c")
            .arg(dir.join("garage.toml"))
            .args(["key", "import", &id, &secret, "--yes"])
            .env("RUST_LOG", "garage=warn")
            .output()
            .expect("run garage key import");
        assert!(
            out.status.success(),
            "garage key import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some((id, secret))
    }

    pub fn server_dir(&self) -> Option<&Path> {
        self.process.as_ref().map(|p| p.dir.as_path())
    }

    /// The harness's own SDK client for this server, configured explicitly
    /// (endpoint, static keys, region, path style; no environment, profile or
    /// instance metadata), independently of the back end under test.
    fn sdk(&self) -> &Client {
        self.sdk.get_or_init(|| {
            let config = aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .endpoint_url(&self.endpoint)
                .region(Region::new(self.region.clone()))
                .credentials_provider(Credentials::new(
                    self.access_key.clone(),
                    self.secret_key.clone(),
                    None,
                    None,
                    "s3ftp-test-harness",
                ))
                .force_path_style(true)
                .retry_config(RetryConfig::disabled())
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(10))
                        .operation_timeout(Duration::from_secs(120))
                        .build(),
                )
                .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
                .build();
            Client::from_conf(config)
        })
    }

    /// Runs `f` with the client on the harness's runtime and waits for it.
    async fn run<T, F, Fut>(&self, f: F) -> T
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        join(harness_runtime().spawn(f(self.sdk().clone()))).await
    }
}

/// The runtime every harness request runs on. The shared servers (and so
/// their clients' connection pools) outlive each test's runtime; a pooled
/// connection bound to a finished runtime would fail the next test's request.
fn harness_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("s3-harness")
            .enable_all()
            .build()
            .expect("the S3 harness's runtime")
    })
}

/// A harness task's result; its panic is the caller's.
async fn join<T>(handle: tokio::task::JoinHandle<T>) -> T {
    match handle.await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// [`S3Server::run`] for non-async code (inside a runtime or not).
fn block_on_harness<T, F, Fut>(client: Client, f: F) -> T
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    futures::executor::block_on(join(harness_runtime().spawn(f(client))))
}

/// The HTTP status of a failed request, when the server answered.
fn status<E>(error: &SdkError<E>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

/// Decodes a key listed with `encoding-type=url`: `%XX` escapes, and `+` as a
/// space (a literal `+` arrives as `%2B`).
fn url_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| panic!("listed key {value:?} is not UTF-8"))
}

/// What HeadObject said that the tests check.
#[derive(Debug, Clone)]
pub struct ObjectHead {
    /// Header names in lower case: `etag` (quoted, as sent),
    /// `content-length`, and `x-amz-meta-NAME` for each metadata entry.
    pub headers: Vec<(String, String)>,
}

impl ObjectHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl From<aws_sdk_s3::operation::head_object::HeadObjectOutput> for ObjectHead {
    fn from(out: aws_sdk_s3::operation::head_object::HeadObjectOutput) -> ObjectHead {
        let mut headers = Vec::new();
        if let Some(etag) = out.e_tag() {
            headers.push(("etag".to_string(), etag.to_string()));
        }
        if let Some(len) = out.content_length() {
            headers.push(("content-length".to_string(), len.to_string()));
        }
        for (name, value) in out.metadata().into_iter().flatten() {
            headers.push((
                format!("x-amz-meta-{}", name.to_ascii_lowercase()),
                value.clone(),
            ));
        }
        ObjectHead { headers }
    }
}

/// Starts a shared server once; if that fails, every test using it fails
/// with the same message at once instead of each trying again.
fn shared_or_panic(
    cell: &'static OnceLock<Result<S3Server, String>>,
    start: fn() -> S3Server,
) -> &'static S3Server {
    let result = cell.get_or_init(|| {
        std::panic::catch_unwind(start).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into())
        })
    });
    match result {
        Ok(server) => server,
        Err(message) => panic!("the shared S3 server did not start: {message}"),
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.stop();
        }
    }
}

/// Percent-encodes a mount URI query value, keeping `:` and `/` readable.
pub fn encode_mount_value(value: &str) -> String {
    encode_keeping(value, b"/:")
}

fn encode_keeping(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn create_fresh_bucket(client: Client, region: String, prefix: String) -> String {
    // Unique across test binaries (pid) and runs (start time: an external
    // server keeps its buckets, and pids are reused).
    static RUN: OnceLock<u64> = OnceLock::new();
    let run = *RUN.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64 % (1 << 40))
            .unwrap_or_default()
    });
    let location = (region != "us-east-1").then(|| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region.as_str()))
            .build()
    });
    for _ in 0..10 {
        let n = BUCKET_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}{:x}-{run:x}-{n}", std::process::id());
        assert!(
            name.len() <= 63,
            "bucket name {name:?} too long: shorten S3FTP_TEST_S3_BUCKET_PREFIX"
        );
        let result = client
            .create_bucket()
            .bucket(&name)
            .set_create_bucket_configuration(location.clone())
            .send()
            .await;
        match result {
            Ok(_) => return name,
            Err(e) if status(&e) == Some(409) => continue,
            Err(e) => panic!("CreateBucket {name}: {}", DisplayErrorContext(e)),
        }
    }
    panic!("could not find a free bucket name");
}

/// A server child under the `sh` wrapper described in the module comment.
struct ServerProcess {
    wrapper: Child,
    /// Our end of the wrapper's stdin: closing it stops the server.
    stdin: Option<ChildStdin>,
    dir: PathBuf,
}

/// `$1` is the server's directory, the rest its command line. The pipe is
/// kept as fd 3 for the watcher (a background job's stdin would be /dev/null).
/// SIGINT is ignored so that a Ctrl-C still ends with the clean-up below (the
/// test process dies, the pipe closes); `server.exit` tells the watcher the
/// server is already gone (so it never kills a recycled pid).
const WRAPPER: &str = r#"
trap '' INT
exec 3<&0 </dev/null
dir=$1
shift
"$@" 3<&- >"$dir/server.log" 2>&1 &
pid=$!
(
    cat <&3 >/dev/null
    [ -e "$dir/server.exit" ] || kill -9 "$pid" 2>/dev/null
) &
exec 3<&-
wait "$pid"
echo "$?" >"$dir/server.exit"
wait
rm -rf "$dir"
"#;

impl ServerProcess {
    fn spawn(dir: PathBuf, command: Command) -> ServerProcess {
        let mut wrapper = Command::new("/bin/sh");
        wrapper
            .arg("-c")
            .arg(WRAPPER)
            .arg("s3ftp-s3-server")
            .arg(&dir)
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapper.env(key, value),
                None => wrapper.env_remove(key),
            };
        }
        let mut wrapper = wrapper
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
        let stdin = wrapper.stdin.take();
        ServerProcess {
            wrapper,
            stdin,
            dir,
        }
    }

    /// The server's exit status, once it has exited on its own.
    fn exited(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("server.exit"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read(self.dir.join("server.log")).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        String::from_utf8_lossy(&log[start..]).into_owned()
    }

    fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.wrapper.wait();
    }
}

fn server_dir(prefix: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir for an S3 server")
        .keep()
}

/// A port that was free a moment ago (the caller retries if it is taken by
/// the time the server binds it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
}

fn garage_bin() -> PathBuf {
    if let Some(bin) = env_nonempty("S3FTP_TEST_GARAGE_BIN") {
        return PathBuf::from(bin);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("garage"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cargo"));
    on_path
        .into_iter()
        .chain([cargo_home.join("bin/garage")])
        .find(|p| is_executable(p))
        .unwrap_or_else(|| {
            panic!(
                "Garage not found: run scripts/test.sh (it installs it), \
                 or `cargo install garage@2.5.0 --locked`, or set S3FTP_TEST_GARAGE_BIN"
            )
        })
}

fn moto_bin() -> PathBuf {
    if let Some(bin) = env_nonempty("S3FTP_TEST_MOTO_BIN") {
        return PathBuf::from(bin);
    }
    let tools = env_nonempty("S3FTP_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/s3ftp-tools"));
    let bin = tools.join("moto-venv/bin/moto_server");
    assert!(
        is_executable(&bin),
        "moto not found at {}: run scripts/test.sh (it installs it), or set S3FTP_TEST_MOTO_BIN",
        bin.display()
    );
    bin
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
