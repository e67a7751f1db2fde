//! Test harness shared by the integration tests: a real server started in
//! process on an ephemeral loopback port, and a raw control-connection client
//! for the edge cases a client library hides.

#![allow(dead_code)]

pub mod clients;
pub mod faultproxy;
pub mod haproxy;
pub mod hook;
pub mod httpd;
pub mod launch;
pub mod ldap;
pub mod receiver;
pub mod s3;
pub mod store;

#[allow(unused_imports)]
pub use store::{staging_files, Store};

use std::net::SocketAddr;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use s3ftp::config::Config;
use s3ftp::server::Server;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "wonderland";
pub const READER: &str = "reader";
/// A user whose home is `/bob`: their `/` is `/bob` of the whole tree.
pub const JAILED: &str = "bob";
/// An upload-only user.
pub const DROP_BOX: &str = "drop";
/// A user who may not delete.
pub const NO_DELETE: &str = "keeper";
/// A user who may not replace existing files.
pub const NO_OVERWRITE: &str = "careful";

/// An argon2id hash with tiny parameters, so logins are fast in tests.
pub fn cheap_hash(password: &str) -> String {
    let params = Params::new(256, 1, 1, None).expect("valid argon2 params");
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(b"s3ftp-test-salt!").expect("salt");
    argon
        .hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

/// Key prefix the S3 test mounts use.
pub const S3_PREFIX: &str = "mnt/root";

pub struct TestServer {
    pub addr: SocketAddr,
    /// The monitoring listener (/metrics, /healthz, /readyz).
    pub metrics: SocketAddr,
    pub store: Store,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// A server on the memory back end.
    pub async fn memory() -> TestServer {
        TestServer::start(Store::Memory, &[]).await
    }

    /// A server on a fresh local folder.
    pub async fn folder() -> TestServer {
        TestServer::start(Store::folder(), &[]).await
    }

    /// A server on a fresh bucket of the shared S3 server (Garage, or the
    /// external one named by S3FTP_TEST_S3_ENDPOINT).
    pub async fn s3() -> TestServer {
        TestServer::start(Store::s3().await, &[]).await
    }

    pub async fn start(store: Store, extra: &[(&str, &str)]) -> TestServer {
        let mount = store.mount();
        let users = format!(
            r#"[{{"name":"{USER}","password":"{h}"}},{{"name":"{READER}","password":"{h}","read_only":true}},{{"name":"{JAILED}","password":"{h}","home":"/bob"}},{{"name":"{DROP_BOX}","password":"{h}","drop_box":true}},{{"name":"{NO_DELETE}","password":"{h}","no_delete":true}},{{"name":"{NO_OVERWRITE}","password":"{h}","no_overwrite":true}}]"#,
            h = cheap_hash(PASSWORD),
        );
        let launch = launch::Launch::new(mount)
            .users(Some(&users))
            .var("S3FTP_DATA_TIMEOUT", "5")
            .var("S3FTP_LOGIN_FAIL_DELAY_MS", "20")
            .var("S3FTP_METRICS_LISTEN", "127.0.0.1:0")
            .vars(extra);
        let config = Config::from_vars(launch.to_vars()).expect("test config");
        let server = Server::bind(config).await.expect("server binds");
        let addr = server.local_addr().expect("local addr");
        let metrics = server.metrics_addr().expect("metrics listener");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        TestServer {
            addr,
            metrics,
            store,
            shutdown,
            task,
        }
    }

    /// The folder behind a local-folder server.
    pub fn folder_path(&self) -> Option<&std::path::Path> {
        self.store.folder_path()
    }

    /// The bucket behind an S3 server.
    pub fn bucket(&self) -> Option<&str> {
        self.store.bucket()
    }

    /// Nothing half-written is left in the store: no staged file in the local
    /// folder's staging area, no multipart upload in the bucket. Waits a little
    /// for the background clean-up a dropped upload may still be doing.
    pub async fn assert_nothing_partial(&self) {
        for _ in 0..50 {
            if self.store.partials().await.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("a partial upload was left behind");
    }

    /// What the store holds under `name` (relative to the root of the
    /// tree), read directly from the folder or the bucket; None if nothing.
    pub async fn stored(&self, name: &str) -> Option<Vec<u8>> {
        match &self.store {
            // Nothing to read it from but the server itself.
            Store::Memory => {
                let mut c = self.login().await;
                match c.cmd(&format!("SIZE {name}")).await.0 {
                    213 => Some(c.fetch(&format!("RETR {name}")).await),
                    _ => None,
                }
            }
            _ => self.store.read(name).await,
        }
    }

    /// The names the store holds at the root, sorted, read directly (the
    /// folder's staging area excluded). On memory: through FTP's NLST.
    pub async fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = match &self.store {
            Store::Memory => {
                let mut c = self.login().await;
                lines(&c.fetch("NLST").await)
            }
            _ => self.store.root_names().await,
        };
        names.sort();
        names
    }

    /// Starts a graceful shutdown, as SIGTERM does.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// GET on the monitoring listener: status code and body.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_request(self.metrics, "GET", path).await
    }

    /// The value of the metric sample named exactly `series` (name and labels
    /// as exposed, e.g. `s3ftp_logins_total{result="ok"}`); 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let (code, text) = self.http_get("/metrics").await;
        assert_eq!(code, 200, "{text}");
        metric_value(&text, series)
    }

    pub async fn raw(&self) -> Raw {
        Raw::connect(self.addr).await
    }

    pub async fn login(&self) -> Raw {
        let mut raw = self.raw().await;
        raw.login(USER, PASSWORD).await;
        raw
    }

    pub async fn client(&self) -> suppaftp::tokio::AsyncFtpStream {
        client(self.addr).await
    }
}

/// A suppaftp client logged in as [`USER`], in binary mode.
pub async fn client(addr: SocketAddr) -> suppaftp::tokio::AsyncFtpStream {
    let mut ftp = suppaftp::tokio::AsyncFtpStream::connect(addr)
        .await
        .expect("connect");
    ftp.login(USER, PASSWORD).await.expect("login");
    ftp.transfer_type(suppaftp::types::FileType::Binary)
        .await
        .expect("TYPE I");
    ftp
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.task.abort();
    }
}

/// One HTTP/1.1 request on a fresh connection: status code and body.
pub async fn http_request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect to HTTP");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("HTTP answer in time")
    .expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or((response.as_str(), ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    (code, body.to_string())
}

/// The value of sample `series` in a Prometheus text exposition; 0 if absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("metric value"))
        .unwrap_or(0.0)
}

/// A control connection driven line by line.
pub struct Raw {
    reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
    pub peer: SocketAddr,
    /// Local address of the control connection; data connections use it too.
    local: std::net::IpAddr,
}

/// How long a test waits for any single reply before failing.
pub const REPLY_WAIT: Duration = Duration::from_secs(10);

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let mut raw = Raw::connect_any(addr, None).await;
        let (code, _) = raw.reply().await;
        assert_eq!(code, 220, "greeting");
        raw
    }

    /// Connects from a given local address (e.g. 127.0.0.2) and reads no
    /// greeting, so a test can check a refusal.
    pub async fn connect_any(addr: SocketAddr, from: Option<&str>) -> Raw {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(ip) = from {
            socket
                .bind(SocketAddr::new(ip.parse().expect("ip"), 0))
                .expect("bind local address");
        }
        let stream = socket.connect(addr).await.expect("connect");
        let local = stream.local_addr().expect("local address").ip();
        let (read, write) = stream.into_split();
        Raw {
            reader: BufReader::new(read),
            writer: write,
            peer: addr,
            local,
        }
    }

    pub async fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\r\n").as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("send");
    }

    /// Sends `bytes` as TCP urgent data (MSG_OOB), as clients send ABOR.
    pub fn send_urgent(&self, bytes: &[u8]) {
        use std::os::fd::AsRawFd;
        let fd = self.writer.as_ref().as_raw_fd();
        // SAFETY: a connected socket and a buffer of the length given.
        let sent = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_OOB) };
        assert_eq!(sent, bytes.len() as isize, "urgent send");
    }

    /// Reads one reply, multi-line included: (code, full text).
    pub async fn reply(&mut self) -> (u16, String) {
        tokio::time::timeout(REPLY_WAIT, self.read_reply())
            .await
            .expect("timed out waiting for a reply")
    }

    /// One single-line reply as raw bytes (for names in a legacy encoding).
    pub async fn reply_bytes(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        tokio::time::timeout(REPLY_WAIT, self.reader.read_until(b'\n', &mut line))
            .await
            .expect("timed out waiting for a reply")
            .expect("read reply");
        assert!(
            line.ends_with(b"\r\n"),
            "reply not CRLF-terminated: {line:?}"
        );
        line
    }

    /// A reply, or None if the server closed the connection.
    pub async fn try_reply(&mut self) -> Option<(u16, String)> {
        tokio::time::timeout(REPLY_WAIT, self.read_reply_opt())
            .await
            .expect("timed out waiting for a reply")
    }

    async fn read_reply(&mut self) -> (u16, String) {
        self.read_reply_opt()
            .await
            .expect("connection closed while waiting for a reply")
    }

    async fn read_reply_opt(&mut self) -> Option<(u16, String)> {
        let mut first = String::new();
        if self.reader.read_line(&mut first).await.ok()? == 0 {
            return None;
        }
        assert!(
            first.ends_with("\r\n"),
            "reply not CRLF-terminated: {first:?}"
        );
        let code: u16 = first.get(..3)?.parse().ok()?;
        let mut text = first.clone();
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let mut line = String::new();
                if self.reader.read_line(&mut line).await.ok()? == 0 {
                    return None;
                }
                text.push_str(&line);
                if line.starts_with(&end) {
                    break;
                }
            }
        }
        Some((code, text))
    }

    /// Sends a command and returns its reply.
    pub async fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(line).await;
        self.reply().await
    }

    /// Sends a command and asserts the reply code.
    pub async fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line).await;
        assert_eq!(got, code, "{line:?} answered {text:?}");
        text
    }

    pub async fn login(&mut self, user: &str, password: &str) {
        self.expect(&format!("USER {user}"), 331).await;
        self.expect(&format!("PASS {password}"), 230).await;
    }

    /// PASV, returning where to connect.
    pub async fn pasv(&mut self) -> SocketAddr {
        let text = self.expect("PASV", 227).await;
        let start = text.find('(').expect("(") + 1;
        let end = text.find(')').expect(")");
        let n: Vec<u16> = text[start..end]
            .split(',')
            .map(|x| x.trim().parse().expect("number"))
            .collect();
        let ip = format!("{}.{}.{}.{}", n[0], n[1], n[2], n[3]);
        SocketAddr::new(ip.parse().expect("ip"), n[4] * 256 + n[5])
    }

    /// Opens a passive data connection for the next command.
    pub async fn data(&mut self) -> TcpStream {
        let addr = self.pasv().await;
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(self.local, 0))
            .expect("bind data socket");
        socket.connect(addr).await.expect("data connect")
    }

    /// Like [`Raw::fetch`], with `header` (a PROXY header) sent first on the
    /// data connection.
    pub async fn fetch_proxied(&mut self, line: &str, header: &[u8]) -> Vec<u8> {
        let addr = self.pasv().await;
        let mut data = TcpStream::connect(addr).await.expect("data connect");
        data.write_all(header).await.expect("send header");
        self.expect(line, 150).await;
        let mut out = Vec::new();
        data.read_to_end(&mut out).await.expect("read data");
        let (code, text) = self.reply().await;
        assert_eq!(code, 226, "{text}");
        out
    }

    /// Runs a download-type command (RETR, LIST...) and returns the data.
    pub async fn fetch(&mut self, line: &str) -> Vec<u8> {
        let mut data = self.data().await;
        self.expect(line, 150).await;
        let mut out = Vec::new();
        data.read_to_end(&mut out).await.expect("read data");
        let (code, text) = self.reply().await;
        assert_eq!(code, 226, "{line:?} ended with {text:?}");
        out
    }

    /// Runs an upload command with `content`, returning the final reply.
    pub async fn upload(&mut self, line: &str, content: &[u8]) -> (u16, String) {
        let mut data = self.data().await;
        self.expect(line, 150).await;
        data.write_all(content).await.expect("write data");
        data.shutdown().await.expect("close data");
        drop(data);
        self.reply().await
    }
}

/// Logs in once the server has noticed a closed session and freed its slot
/// (it answers 421 until then); gives up after 5 seconds.
pub async fn login_when_a_slot_frees(server: &TestServer) -> Raw {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut raw = Raw::connect_any(server.addr, None).await;
        let (code, text) = raw.reply().await;
        if code == 220 {
            raw.login(USER, PASSWORD).await;
            return raw;
        }
        assert_eq!(code, 421, "{text}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no slot freed: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The CRLF-separated lines of a listing, in the order sent.
pub fn lines(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The lines of a listing, sorted.
pub fn sorted_lines(data: &[u8]) -> Vec<String> {
    let mut v = lines(data);
    v.sort();
    v
}

pub fn sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(data))
}

/// Deterministic pseudo-random content.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Runs each listed `async fn name(server: TestServer)` against the memory,
/// the local-folder and the S3 back end, as `memory::name`, `folder::name`
/// and `s3::name`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::TestServer::memory().await).await
                }
            )*
        }
        mod folder {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::TestServer::folder().await).await
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::TestServer::s3().await).await
                }
            )*
        }
    };
}

/// The random plan of a fault loop: a seeded generator and a bounded number
/// of trials. `S3FTP_FAULT_SEED` replays a run (the seed is printed) and
/// `S3FTP_FAULT_TRIALS` runs more trials (at most 1,000).
pub fn fault_plan(label: &str, default_trials: usize) -> (rand::rngs::StdRng, u64, usize) {
    use rand::SeedableRng;
    let seed = std::env::var("S3FTP_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let trials = std::env::var("S3FTP_FAULT_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_trials)
        .min(1000);
    eprintln!("{label}: S3FTP_FAULT_SEED={seed}, {trials} trials");
    (rand::rngs::StdRng::seed_from_u64(seed), seed, trials)
}
