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
//! run curl (requests signed with SigV4 here) on the blocking pool,
//! independently of the back end under test; `*_blocking` twins exist for
//! non-async code.
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

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
}

/// One HTTP answer from the server.
#[derive(Debug, Clone)]
pub struct S3Response {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl S3Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
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
            let path = format!("/{}", self.bucket);
            let response = if self.kind == S3Kind::Moto {
                self.request_blocking("PUT", &path, Some(b""))
            } else {
                self.request_blocking("HEAD", &path, None)
            };
            match response.status {
                200 => return Ok(()),
                400 | 401 | 403 => panic!(
                    "S3 server at {addr} refused the harness: {} {}",
                    response.status,
                    response.text()
                ),
                _ => {}
            }
            if let Some(status) = process.exited() {
                return Err(format!("exited with {status}: {}", process.log_tail()));
            }
            if Instant::now() > deadline {
                panic!(
                    "S3 server at {addr} answered {} {:?} for its bucket: {}",
                    response.status,
                    response.text(),
                    process.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates a bucket no other test uses and returns its name.
    pub async fn fresh_bucket(&self) -> String {
        let this = self.client();
        let prefix = self.bucket_prefix.clone();
        tokio::task::spawn_blocking(move || create_fresh_bucket(&this, &prefix))
            .await
            .expect("fresh_bucket task")
    }

    /// [`S3Server::fresh_bucket`] for non-async code.
    pub fn fresh_bucket_blocking(&self) -> String {
        create_fresh_bucket(&self.client(), &self.bucket_prefix)
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

    /// A signed request. `path_and_query` has its path already encoded, e.g.
    /// `/bucket/key%20name?uploads` (see [`object_path`]); the query may be
    /// in any order and encoded or not (`&`, `=` and `%` excepted).
    pub async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&[u8]>,
    ) -> S3Response {
        let client = self.client();
        let method = method.to_string();
        let path = path_and_query.to_string();
        let body = body.map(<[u8]>::to_vec);
        tokio::task::spawn_blocking(move || client.request(&method, &path, body.as_deref()))
            .await
            .expect("request task")
    }

    /// [`S3Server::request`] for non-async code.
    pub fn request_blocking(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&[u8]>,
    ) -> S3Response {
        self.client().request(method, path_and_query, body)
    }

    /// PutObject; panics unless the server answers 200.
    pub async fn put_object(&self, bucket: &str, key: &str, data: &[u8]) {
        let path = object_path(bucket, key);
        let response = self.request("PUT", &path, Some(data)).await;
        assert_eq!(response.status, 200, "PUT {path}: {}", response.text());
    }

    /// GetObject: the content, or None when the object does not exist.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let path = object_path(bucket, key);
        let response = self.request("GET", &path, None).await;
        match response.status {
            200 => Some(response.body),
            404 => None,
            other => panic!("GET {path}: {other} {}", response.text()),
        }
    }

    /// HeadObject: the response (headers: ETag, Content-Length,
    /// x-amz-meta-*...), or None when the object does not exist.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Option<S3Response> {
        let path = object_path(bucket, key);
        let response = self.request("HEAD", &path, None).await;
        match response.status {
            200 => Some(response),
            404 => None,
            other => panic!("HEAD {path}: {other}"),
        }
    }

    /// DeleteObject (succeeds whether or not the object existed).
    pub async fn delete_object(&self, bucket: &str, key: &str) {
        let path = object_path(bucket, key);
        let response = self.request("DELETE", &path, None).await;
        assert!(
            response.status == 204 || response.status == 200,
            "DELETE {path}: {} {}",
            response.status,
            response.text()
        );
    }

    /// Every key under `prefix` (ListObjectsV2, all pages), in S3 order.
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = String::new();
            if let Some(t) = &token {
                query.push_str(&format!("continuation-token={}&", encode_query_value(t)));
            }
            query.push_str(&format!(
                "list-type=2&prefix={}",
                encode_query_value(prefix)
            ));
            let path = format!("/{bucket}?{query}");
            let response = self.request("GET", &path, None).await;
            assert_eq!(response.status, 200, "GET {path}: {}", response.text());
            let text = response.text();
            keys.extend(xml_values(&text, "Key"));
            token = xml_values(&text, "NextContinuationToken")
                .into_iter()
                .next();
            if token.is_none() || !xml_values(&text, "IsTruncated").contains(&"true".into()) {
                return keys;
            }
        }
    }

    /// Keys of the multipart uploads in progress in `bucket` (one entry per
    /// upload): empty when no upload was left behind.
    pub async fn list_multipart_uploads(&self, bucket: &str) -> Vec<String> {
        let path = format!("/{bucket}?uploads");
        let response = self.request("GET", &path, None).await;
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        let text = response.text();
        text.split("<Upload>")
            .skip(1)
            .flat_map(|upload| xml_values(upload, "Key").into_iter().take(1))
            .collect()
    }

    /// The directory of a server this harness started (removed when it stops).
    pub fn server_dir(&self) -> Option<&Path> {
        self.process.as_ref().map(|p| p.dir.as_path())
    }

    fn client(&self) -> Client {
        Client {
            endpoint: self.endpoint.clone(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            region: self.region.clone(),
        }
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

/// `/bucket/key` with the key encoded for a URL path.
pub fn object_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", encode_key(key))
}

/// Percent-encodes an object key for a URL path: everything but unreserved
/// characters and `/`, as SigV4 canonical URIs for S3 require.
pub fn encode_key(key: &str) -> String {
    encode(key, true)
}

/// Percent-encodes a query value: everything but unreserved characters.
pub fn encode_query_value(value: &str) -> String {
    encode(value, false)
}

/// Percent-encodes a mount URI query value, keeping `:` and `/` readable.
pub fn encode_mount_value(value: &str) -> String {
    encode_keeping(value, b"/:")
}

fn encode(text: &str, keep_slash: bool) -> String {
    encode_keeping(text, if keep_slash { b"/" } else { b"" })
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

/// The text of every `<tag>...</tag>` in `xml`, entities decoded.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        out.push(xml_unescape(&rest[..end]));
        rest = &rest[end + close.len()..];
    }
    out
}

fn xml_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What a request needs, cheap to move to the blocking pool.
#[derive(Clone)]
struct Client {
    endpoint: String,
    access_key: String,
    secret_key: String,
    region: String,
}

impl Client {
    /// Signs with AWS SigV4 here (curl's own `--aws-sigv4` differs between
    /// versions in how it canonicalises queries) and sends with curl.
    fn request(&self, method: &str, path_and_query: &str, body: Option<&[u8]>) -> S3Response {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, canonical_query(q)),
            None => (path_and_query, String::new()),
        };
        let host = self
            .endpoint
            .split_once("://")
            .map_or(self.endpoint.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let payload_hash = sha256_hex(body.unwrap_or_default());
        let now = chrono::Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let day = now.format("%Y%m%d").to_string();
        let canonical_request = format!(
            "{method}\n{path}\n{query}\nhost:{host}\nx-amz-content-sha256:{payload_hash}\n\
             x-amz-date:{amz_date}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload_hash}"
        );
        let scope = format!("{day}/{}/s3/aws4_request", self.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(canonical_request.as_bytes())
        );
        let mut key = hmac_sha256(
            format!("AWS4{}", self.secret_key).as_bytes(),
            day.as_bytes(),
        );
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        let signature: String = hmac_sha256(&key, string_to_sign.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let authorization = format!(
            "Authorization: AWS4-HMAC-SHA256 Credential={}/{scope}, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}",
            self.access_key
        );

        let body_file = body.map(|data| {
            let mut file = tempfile::NamedTempFile::new().expect("temp file for a request body");
            file.write_all(data).expect("write request body");
            file.flush().expect("flush request body");
            file
        });
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--globoff", "--path-as-is"])
            .args(["--max-time", "120", "--include", "--output", "-"])
            .args(["--write-out", "%{http_code}"])
            .arg("--header")
            .arg(format!("Host: {host}"))
            .arg("--header")
            .arg(format!("x-amz-date: {amz_date}"))
            .arg("--header")
            .arg(format!("x-amz-content-sha256: {payload_hash}"))
            .arg("--header")
            .arg(authorization);
        match method {
            "HEAD" => {
                command.arg("--head");
            }
            other => {
                command.args(["--request", other]);
            }
        }
        if let Some(file) = &body_file {
            command
                .args(["--header", "Content-Type: application/octet-stream"])
                .arg("--data-binary")
                .arg(format!("@{}", file.path().display()));
        }
        let url = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        command.arg(&url);
        let output = command
            .stdin(Stdio::null())
            .output()
            .expect("run curl (needed by the S3 tests; scripts/test.sh installs it)");
        let out = output.stdout;
        assert!(
            out.len() >= 3,
            "curl {method} {url} printed nothing: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (response, code) = out.split_at(out.len() - 3);
        let status: u16 = std::str::from_utf8(code)
            .ok()
            .and_then(|c| c.parse().ok())
            .expect("curl --write-out status");
        assert!(
            status != 0,
            "curl {method} {url} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (headers, body) = split_head(response);
        S3Response {
            status,
            headers,
            body: if method == "HEAD" { Vec::new() } else { body },
        }
    }
}

/// The SigV4 canonical form of a query string: each name and value decoded
/// and re-encoded strictly, `name=` for a bare name, sorted.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (
                encode_query_value(&percent_decode(name)),
                encode_query_value(&percent_decode(value)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
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
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Splits curl `--include` output into the final response's headers and the
/// body (interim `100 Continue` heads are skipped).
fn split_head(mut data: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    loop {
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            return (Vec::new(), data.to_vec());
        };
        let head = String::from_utf8_lossy(&data[..end]).into_owned();
        data = &data[end + 4..];
        if head.starts_with("HTTP/") && head.split(' ').nth(1) == Some("100") {
            continue;
        }
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return (headers, data.to_vec());
    }
}

fn create_fresh_bucket(client: &Client, prefix: &str) -> String {
    // Unique across test binaries (pid) and runs (start time: an external
    // server keeps its buckets, and pids are reused).
    static RUN: OnceLock<u64> = OnceLock::new();
    let run = *RUN.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64 % (1 << 40))
            .unwrap_or_default()
    });
    let body = if client.region == "us-east-1" {
        None
    } else {
        Some(format!(
            "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            client.region
        ))
    };
    for _ in 0..10 {
        let n = BUCKET_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}{:x}-{run:x}-{n}", std::process::id());
        assert!(
            name.len() <= 63,
            "bucket name {name:?} too long: shorten S3FTP_TEST_S3_BUCKET_PREFIX"
        );
        let response = client.request(
            "PUT",
            &format!("/{name}"),
            body.as_deref().map(str::as_bytes),
        );
        match response.status {
            200 => return name,
            409 => continue,
            other => panic!("CreateBucket {name}: {other} {}", response.text()),
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

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(data))
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
