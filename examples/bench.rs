//! The benchmark (issue 7): the built server (`target/release/s3ftp`, a child
//! process) in front of a loopback S3 server (Garage, or the one named by
//! S3FTP_TEST_S3_ENDPOINT), each workload measured through FTP and, where
//! there is one, on the direct path with aws-sdk-s3 in the same run:
//!
//! - W1 upload of one large file: STOR vs a multipart upload (same part size
//!   and concurrency);
//! - W2 download of it: RETR vs GetObject;
//!   (W1 and W2 run 3 rounds, direct then FTP in each, and compare medians:
//!   on two shared cores single runs vary by 10-20%);
//! - W3 1,000 files of 4 KiB over one control connection: files per second
//!   (3 rounds too, after a direct warm-up pass);
//! - W4 LIST, MLSD and NLST of 10,000 objects vs a ListObjectsV2 walk (9
//!   rounds, medians);
//! - W5 50 sessions uploading 20 MiB each at once, every object verified
//!   (logged in once, then 3 rounds; the median is reported);
//! - the server's peak resident memory (VmHWM, reset before each workload)
//!   and CPU time (utime + stime from /proc) per workload, and its memory
//!   with 200 idle logged-in sessions.
//!
//! It prints a table, then the same figures as `name=value` lines to compare
//! runs. Run it with `scripts/bench.sh` (release build); `--help` for options.
//! Loopback only; every loop is bounded.

#[path = "../tests/common/s3.rs"]
#[allow(dead_code, clippy::all)]
mod s3;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const MIB: u64 = 1024 * 1024;
const USER: &str = "bench";
const PASSWORD: &str = "bench-password";
/// The server's defaults, used on the direct path too.
const PART_SIZE: u64 = 8 * MIB;
const CONCURRENCY: usize = 4;
/// Longest any single FTP reply may take.
const REPLY_WAIT: Duration = Duration::from_secs(300);

struct Options {
    size_mib: u64,
    big_mib: Option<u64>,
    small_files: usize,
    list_entries: usize,
    sessions: usize,
    session_mib: u64,
    idle_sessions: usize,
    /// W1/W2/W3 rounds (direct and FTP interleaved) and W5 rounds; medians
    /// are reported.
    rounds: usize,
    only: Option<Vec<String>>,
    /// Extra server variables (`--set S3FTP_PART_SIZE_MIB=16`).
    server_env: Vec<(String, String)>,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut o = Options {
            size_mib: 1024,
            big_mib: None,
            small_files: 1000,
            list_entries: 10_000,
            sessions: 50,
            session_mib: 20,
            idle_sessions: 200,
            rounds: 3,
            only: None,
            server_env: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--size-mib" => o.size_mib = value()?.parse()?,
                "--big-mib" => o.big_mib = Some(value()?.parse()?),
                "--small-files" => o.small_files = value()?.parse()?,
                "--list-entries" => o.list_entries = value()?.parse()?,
                "--sessions" => o.sessions = value()?.parse()?,
                "--session-mib" => o.session_mib = value()?.parse()?,
                "--idle-sessions" => o.idle_sessions = value()?.parse()?,
                "--rounds" => o.rounds = value()?.parse::<usize>()?.max(1),
                "--only" => {
                    o.only = Some(
                        value()?
                            .split(',')
                            .map(|s| s.trim().to_uppercase())
                            .collect(),
                    )
                }
                "--set" => {
                    let pair = value()?;
                    let (k, v) = pair.split_once('=').ok_or("--set needs NAME=VALUE")?;
                    o.server_env.push((k.to_string(), v.to_string()));
                }
                "--quick" => {
                    o.size_mib = 128;
                    o.small_files = 200;
                    o.list_entries = 2000;
                    o.sessions = 10;
                    o.session_mib = 10;
                    o.idle_sessions = 50;
                    o.rounds = 1;
                }
                "-h" | "--help" => {
                    println!(
                        "bench [--size-mib 1024] [--big-mib 4096] [--small-files 1000] \
                         [--list-entries 10000] [--sessions 50] [--session-mib 20] \
                         [--idle-sessions 200] [--rounds 3] [--only W1,W2,W3,W4,W5,IDLE] [--quick] \
                         [--set S3FTP_NAME=VALUE ...]\n\
                         Server binary: S3FTP_BENCH_BIN (default: target/release/s3ftp)."
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?} (see --help)").into()),
            }
        }
        Ok(o)
    }

    fn runs(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    }
}

// ---------------------------------------------------------------- data

/// A 16 MiB block of pseudo-random bytes; files are windows over it, so no
/// workload holds a file in memory and nothing compresses.
struct Pattern(Bytes);

impl Pattern {
    fn new() -> Pattern {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut data = Vec::with_capacity(16 * MIB as usize);
        while data.len() < 16 * MIB as usize {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(&state.to_le_bytes());
        }
        Pattern(Bytes::from(data))
    }

    /// Chunks of at most `chunk` bytes making `len` bytes of file `seed`.
    fn chunks(&self, seed: u64, len: u64, chunk: u64) -> impl Iterator<Item = Bytes> + '_ {
        let block = self.0.len() as u64;
        let start = (seed * 4096 + seed * seed * 131) % (block / 2);
        let mut sent = 0u64;
        std::iter::from_fn(move || {
            if sent >= len {
                return None;
            }
            let at = (start + sent) % block;
            let n = chunk.min(len - sent).min(block - at);
            sent += n;
            Some(self.0.slice(at as usize..(at + n) as usize))
        })
    }

    fn sha256(&self, seed: u64, len: u64) -> String {
        let mut h = Sha256::new();
        for c in self.chunks(seed, len, MIB) {
            h.update(&c);
        }
        hex(&h.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

// ---------------------------------------------------------------- the server

/// The server process, and what /proc says about it.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// The server's monitoring listener (/metrics).
    metrics: SocketAddr,
    ticks_per_second: f64,
}

impl ServerProcess {
    fn start(mount: &str, extra: &[(String, String)]) -> Result<ServerProcess> {
        let bin = std::env::var_os("S3FTP_BENCH_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                // target/release/examples/bench -> target/release/s3ftp
                let exe = std::env::current_exe().unwrap_or_default();
                exe.parent()
                    .and_then(|p| p.parent())
                    .map(|p| p.join("s3ftp"))
                    .unwrap_or_else(|| PathBuf::from("target/release/s3ftp"))
            });
        let hash = s3ftp::auth::hash_password(PASSWORD).map_err(|e| e.to_string())?;
        let users = format!(r#"[{{"name":"{USER}","password":"{hash}"}}]"#);
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut cmd = Command::new(&bin);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("S3FTP_")) {
            cmd.env_remove(k);
        }
        let mut child = cmd
            .env("S3FTP_LISTEN", "127.0.0.1:0")
            .env("S3FTP_MOUNTS", format!("/={mount}"))
            .env("S3FTP_USERS", users)
            .env("S3FTP_MAX_SESSIONS", "1024")
            .env("S3FTP_MAX_SESSIONS_PER_IP", "1024")
            .env("S3FTP_MAX_COMMANDS_PER_SECOND", "0")
            .env("S3FTP_DATA_TIMEOUT", "120")
            .env("S3FTP_LOG", "warn")
            .env("S3FTP_METRICS_LISTEN", metrics.to_string())
            .envs(extra.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!(
                    "starting {}: {e} (build it: scripts/bench.sh)",
                    bin.display()
                )
            })?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let addr = line
            .trim()
            .rsplit("ftp://")
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("unexpected first line from the server: {line:?}"))?;
        let ticks = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0);
        Ok(ServerProcess {
            child,
            addr,
            metrics,
            ticks_per_second: ticks,
        })
    }

    /// Requests of one S3 operation the server sent so far, and the seconds
    /// they took in all (from its /metrics).
    fn backend_time(&self, operation: &str) -> (f64, f64) {
        use std::io::{Read, Write};
        let mut text = String::new();
        if let Ok(mut conn) = std::net::TcpStream::connect(self.metrics) {
            let _ = conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n");
            let _ = conn.read_to_string(&mut text);
        }
        let series = format!(r#"{{backend="s3",operation="{operation}"}} "#);
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(series.as_str()))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (
            value("s3ftp_backend_request_duration_seconds_count"),
            value("s3ftp_backend_request_duration_seconds_sum"),
        )
    }

    fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Peak resident memory since the last reset, in MiB.
    fn peak_mib(&self) -> f64 {
        self.status_kib("VmHWM") as f64 / 1024.0
    }

    fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS") as f64 / 1024.0
    }

    /// Starts a new peak: VmHWM becomes the current RSS.
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }

    /// User + system CPU seconds used so far.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses).
        let rest = stat.rsplit(')').next().unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
        (ticks(11) + ticks(12)) / self.ticks_per_second
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Server-side figures over one workload.
struct Usage {
    cpu: f64,
    peak: f64,
}

async fn measured<T>(
    server: &ServerProcess,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<(T, Duration, Usage)> {
    server.reset_peak();
    let cpu = server.cpu_seconds();
    let started = Instant::now();
    let out = work.await?;
    let elapsed = started.elapsed();
    Ok((
        out,
        elapsed,
        Usage {
            cpu: server.cpu_seconds() - cpu,
            peak: server.peak_mib(),
        },
    ))
}

// ---------------------------------------------------------------- FTP client

/// A minimal FTP client: the bench measures the server, so the client does
/// nothing but move bytes (no parsing beyond reply codes).
struct Ftp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Ftp {
    async fn login(addr: SocketAddr) -> Result<Ftp> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut ftp = Ftp {
            reader: BufReader::new(r),
            writer: w,
        };
        ftp.expect_reply(220).await?;
        ftp.cmd(&format!("USER {USER}"), 331).await?;
        ftp.cmd(&format!("PASS {PASSWORD}"), 230).await?;
        ftp.cmd("TYPE I", 200).await?;
        Ok(ftp)
    }

    async fn reply(&mut self) -> Result<(u16, String)> {
        let read = async {
            let mut text = String::new();
            loop {
                let mut line = String::new();
                if self.reader.read_line(&mut line).await? == 0 {
                    return Err::<_, Error>("connection closed".into());
                }
                text.push_str(&line);
                let b = line.as_bytes();
                if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
                    let code = line[..3].parse()?;
                    return Ok((code, text));
                }
            }
        };
        tokio::time::timeout(REPLY_WAIT, read)
            .await
            .map_err(|_| "no reply in time")?
    }

    async fn expect_reply(&mut self, code: u16) -> Result<String> {
        let (got, text) = self.reply().await?;
        if got != code {
            return Err(format!("expected {code}, got {}", text.trim_end()).into());
        }
        Ok(text)
    }

    async fn send(&mut self, line: &str) -> Result<()> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        Ok(())
    }

    async fn cmd(&mut self, line: &str, code: u16) -> Result<String> {
        self.send(line).await?;
        self.expect_reply(code)
            .await
            .map_err(|e| format!("{line}: {e}").into())
    }

    async fn data(&mut self) -> Result<TcpStream> {
        let text = self.cmd("EPSV", 229).await?;
        let port: u16 = text
            .split('|')
            .nth(3)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("bad EPSV reply {text:?}"))?;
        let peer = self.writer.peer_addr()?;
        let stream = TcpStream::connect(SocketAddr::new(peer.ip(), port)).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// STOR of `chunks`; returns the bytes sent.
    async fn stor(&mut self, path: &str, chunks: impl Iterator<Item = Bytes>) -> Result<u64> {
        let mut data = self.data().await?;
        self.cmd(&format!("STOR {path}"), 150).await?;
        let mut sent = 0;
        for chunk in chunks {
            data.write_all(&chunk).await?;
            sent += chunk.len() as u64;
        }
        data.shutdown().await?;
        drop(data);
        self.expect_reply(226).await?;
        Ok(sent)
    }

    /// A download-type command (RETR, LIST, MLSD); returns the bytes read and
    /// the number of lines (counted only for listings: a RETR's client reads
    /// and drops, as the direct path does).
    async fn fetch(&mut self, line: &str) -> Result<(u64, u64)> {
        let count_lines = !line.starts_with("RETR");
        let mut data = self.data().await?;
        self.cmd(line, 150).await?;
        let mut buf = vec![0u8; 256 * 1024];
        let (mut total, mut lines) = (0u64, 0u64);
        loop {
            let n = data.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if count_lines {
                lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            }
        }
        self.expect_reply(226).await?;
        Ok((total, lines))
    }
}

// ---------------------------------------------------------------- direct S3

struct Direct {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl Direct {
    fn new(server: &s3::S3Server, bucket: &str) -> Direct {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&server.endpoint)
            .region(Region::new(server.region.clone()))
            .credentials_provider(Credentials::new(
                server.access_key.clone(),
                server.secret_key.clone(),
                None,
                None,
                "bench",
            ))
            .force_path_style(true)
            .build();
        Direct {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: bucket.to_string(),
        }
    }

    /// A multipart upload with the server's part size and concurrency.
    async fn multipart(&self, key: &str, pattern: &Pattern, len: u64) -> Result<()> {
        let c = &self.client;
        let id = c
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await?
            .upload_id
            .ok_or("no upload id")?;
        let parts: Vec<CompletedPart> =
            futures::stream::iter(pattern.chunks(1, len, PART_SIZE).enumerate())
                .map(|(i, body)| {
                    let id = id.clone();
                    async move {
                        let n = i as i32 + 1;
                        let out = c
                            .upload_part()
                            .bucket(&self.bucket)
                            .key(key)
                            .upload_id(id)
                            .part_number(n)
                            .body(ByteStream::from(body))
                            // As the server does on loopback: no payload hash.
                            .customize()
                            .disable_payload_signing()
                            .send()
                            .await?;
                        Ok::<_, Error>(
                            CompletedPart::builder()
                                .part_number(n)
                                .set_e_tag(out.e_tag)
                                .build(),
                        )
                    }
                })
                .buffered(CONCURRENCY)
                .try_collect()
                .await?;
        c.complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }

    /// The body of a GetObject of `key`.
    async fn body(&self, key: &str) -> Result<ByteStream> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await?;
        Ok(out.body)
    }

    /// Reads an object and only counts its bytes (W2's direct path).
    async fn get(&self, key: &str) -> Result<u64> {
        let mut body = self.body(key).await?;
        let mut total = 0;
        while let Some(chunk) = body.try_next().await? {
            total += chunk.len() as u64;
        }
        Ok(total)
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await?;
        Ok(())
    }

    /// Walks a "directory" the way the server does: delimiter `/`, 1,000 a page.
    async fn list(&self, prefix: &str) -> Result<u64> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut n = 0;
        while let Some(page) = pages.next().await {
            let page = page?;
            n += page.contents().len() as u64 + page.common_prefixes().len() as u64;
        }
        Ok(n)
    }

    /// Size and SHA-256 of a stored object, read back in full.
    async fn digest(&self, key: &str) -> Result<(u64, String)> {
        let mut body = self.body(key).await?;
        let (mut total, mut h) = (0u64, Sha256::new());
        while let Some(chunk) = body.try_next().await? {
            total += chunk.len() as u64;
            h.update(&chunk);
        }
        Ok((total, hex(&h.finalize())))
    }
}

// ---------------------------------------------------------------- report

#[derive(Default)]
struct Report {
    rows: Vec<(String, String, String)>,
    values: Vec<(String, String)>,
    failures: Vec<String>,
}

impl Report {
    fn row(&mut self, workload: &str, figure: String, note: String) {
        println!("{workload:<34} {figure:<34} {note}");
        self.rows.push((workload.into(), figure, note));
    }

    fn value(&mut self, name: &str, value: f64) {
        self.values.push((name.into(), format!("{value:.3}")));
    }

    /// Records a target and whether it was met.
    fn target(&mut self, name: &str, ok: bool, text: String) {
        self.value(&format!("{name}_met"), if ok { 1.0 } else { 0.0 });
        if !ok {
            self.failures.push(text);
        }
    }
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

// ---------------------------------------------------------------- workloads

/// The median of `rounds` timings.
fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

/// Peak and CPU over several rounds: the highest peak, the mean CPU.
fn combined(usages: &[Usage]) -> Usage {
    Usage {
        cpu: usages.iter().map(|u| u.cpu).sum::<f64>() / usages.len().max(1) as f64,
        peak: usages.iter().map(|u| u.peak).fold(0.0, f64::max),
    }
}

/// W1 (and W2 when `download`): `rounds` rounds, each timing the direct path
/// and then FTP on the same data, so that both see the same noise; the
/// medians are compared. Every FTP upload and download is verified.
#[allow(clippy::too_many_arguments)]
async fn w1_w2(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    pattern: &Pattern,
    size_mib: u64,
    name: &str,
    download: bool,
    rounds: usize,
) -> Result<()> {
    let len = size_mib * MIB;
    let gib = len as f64 / (1024.0 * MIB as f64);
    let key = format!("{name}-{size_mib}m.bin");
    let want = pattern.sha256(1, len);
    let mut ftp = Ftp::login(server.addr).await?;
    let (mut direct_ups, mut ftp_ups, mut up_usage) = (Vec::new(), Vec::new(), Vec::new());
    let (mut direct_downs, mut ftp_downs, mut down_usage) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let ((), direct_up, _) = measured(
            server,
            direct.multipart(&format!("direct-{key}"), pattern, len),
        )
        .await?;
        let (sent, ftp_up, usage) =
            measured(server, ftp.stor(&key, pattern.chunks(1, len, 256 * 1024))).await?;
        if sent != len {
            return Err(format!("{name}: sent {sent} of {len} bytes").into());
        }
        let (size, sha) = direct.digest(&key).await?;
        if size != len || sha != want {
            return Err(
                format!("{name}: stored {size} bytes, sha256 {sha}, expected {want}").into(),
            );
        }
        direct_ups.push(direct_up);
        ftp_ups.push(ftp_up);
        up_usage.push(usage);
        if download {
            let (got, direct_down, _) = measured(server, direct.get(&key)).await?;
            if got != len {
                return Err(format!("W2 direct: {got} bytes of {len}").into());
            }
            let ((got, _), ftp_down, usage) =
                measured(server, ftp.fetch(&format!("RETR {key}"))).await?;
            if got != len {
                return Err(format!("W2: RETR gave {got} bytes of {len}").into());
            }
            direct_downs.push(direct_down);
            ftp_downs.push(ftp_down);
            down_usage.push(usage);
        }
    }
    let (ftp_up, direct_up, usage) = (median(ftp_ups), median(direct_ups), combined(&up_usage));
    let ratio = mib_s(len, ftp_up) / mib_s(len, direct_up);
    let cpu = usage.cpu / gib;
    r.row(
        &format!("{name} upload {size_mib} MiB"),
        format!(
            "{:.0} MiB/s FTP, {:.0} MiB/s direct",
            mib_s(len, ftp_up),
            mib_s(len, direct_up)
        ),
        format!(
            "ratio {ratio:.2}; server {:.0} MiB peak, {cpu:.2} CPU-s/GiB",
            usage.peak
        ),
    );
    let n = name.to_lowercase();
    r.value(&format!("{n}_upload_mib_s"), mib_s(len, ftp_up));
    r.value(&format!("{n}_direct_upload_mib_s"), mib_s(len, direct_up));
    r.value(&format!("{n}_upload_ratio"), ratio);
    r.value(&format!("{n}_upload_peak_rss_mib"), usage.peak);
    r.value(&format!("{n}_upload_cpu_s_per_gib"), cpu);
    r.target(
        &format!("{n}_upload_ratio"),
        ratio >= 0.9,
        format!("{name} upload ratio {ratio:.2} < 0.9"),
    );
    r.target(
        &format!("{n}_upload_peak_rss"),
        usage.peak <= 64.0,
        format!("{name} upload peak RSS {:.0} MiB > 64", usage.peak),
    );
    r.target(
        &format!("{n}_upload_cpu"),
        cpu <= 1.0,
        format!("{name} upload {cpu:.2} CPU-s/GiB > 1"),
    );
    if download {
        let (ftp_down, direct_down, usage) = (
            median(ftp_downs),
            median(direct_downs),
            combined(&down_usage),
        );
        let ratio = mib_s(len, ftp_down) / mib_s(len, direct_down);
        let cpu = usage.cpu / gib;
        r.row(
            &format!("W2 download {size_mib} MiB"),
            format!(
                "{:.0} MiB/s FTP, {:.0} MiB/s direct",
                mib_s(len, ftp_down),
                mib_s(len, direct_down)
            ),
            format!(
                "ratio {ratio:.2}; server {:.0} MiB peak, {cpu:.2} CPU-s/GiB",
                usage.peak
            ),
        );
        r.value("w2_download_mib_s", mib_s(len, ftp_down));
        r.value("w2_direct_download_mib_s", mib_s(len, direct_down));
        r.value("w2_download_ratio", ratio);
        r.value("w2_download_peak_rss_mib", usage.peak);
        r.value("w2_download_cpu_s_per_gib", cpu);
        r.target(
            "w2_download_ratio",
            ratio >= 0.9,
            format!("W2 ratio {ratio:.2} < 0.9"),
        );
        r.target(
            "w2_download_cpu",
            cpu <= 1.0,
            format!("W2 {cpu:.2} CPU-s/GiB > 1"),
        );
    }
    ftp.cmd("QUIT", 221).await?;
    Ok(())
}

/// W3: `rounds` rounds, each putting `files` small objects on the direct path
/// and then storing as many through FTP into another directory, after one
/// unmeasured direct pass: a fresh Garage is slow at its first thousands of
/// writes (it makes its data directories), which would favour whichever path
/// runs second.
async fn w3(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    pattern: &Pattern,
    files: usize,
    rounds: usize,
) -> Result<()> {
    let direct_pass = |dir: String| async move {
        for i in 0..files {
            let body = pattern
                .chunks(i as u64, 4096, 4096)
                .next()
                .unwrap_or_default();
            direct.put(&format!("{dir}/f{i:05}.bin"), body).await?;
        }
        Ok(())
    };
    direct_pass("warm-up".into()).await?;
    let mut ftp = Ftp::login(server.addr).await?;
    let (mut ftp_runs, mut direct_runs, mut usages) = (Vec::new(), Vec::new(), Vec::new());
    let (puts_before, lists_before) = (
        server.backend_time("PutObject"),
        server.backend_time("ListObjectsV2"),
    );
    for round in 0..rounds {
        let ((), direct_took, _) =
            measured(server, direct_pass(format!("direct-small{round}"))).await?;
        direct_runs.push(direct_took);
        // Into a directory that already exists, as an inbox does: the
        // bridge learns it from the store, not from its own MKD.
        let dir = format!("small{round}");
        direct.put(&format!("{dir}/"), Bytes::new()).await?;
        let upload = async {
            for i in 0..files {
                ftp.stor(
                    &format!("{dir}/f{i:05}.bin"),
                    pattern.chunks(i as u64, 4096, 4096),
                )
                .await?;
            }
            Ok(())
        };
        let ((), took, usage) = measured(server, upload).await?;
        ftp_runs.push(took);
        usages.push(usage);
        // The listing holds the directory's own marker too.
        let listed = direct.list(&format!("{dir}/")).await? - 1;
        if listed != files as u64 {
            return Err(format!("W3: {listed} objects stored of {files}").into());
        }
    }
    let (puts_after, lists_after) = (
        server.backend_time("PutObject"),
        server.backend_time("ListObjectsV2"),
    );
    let all = (files * rounds) as f64;
    let per_file = |before: (f64, f64), after: (f64, f64)| {
        (
            (after.0 - before.0) / all,
            (after.1 - before.1) * 1000.0 / all,
        )
    };
    let (puts, put_ms) = per_file(puts_before, puts_after);
    let (lists, list_ms) = per_file(lists_before, lists_after);
    let usage = combined(&usages);
    let (took, direct_took) = (median(ftp_runs), median(direct_runs));
    let rate = files as f64 / took.as_secs_f64();
    let direct_rate = files as f64 / direct_took.as_secs_f64();
    let cpu_ms = usage.cpu * 1000.0 / files as f64;
    r.row(
        &format!("W3 {files} x 4 KiB, one session"),
        format!("{rate:.0} files/s FTP, {direct_rate:.0} direct PUT/s"),
        format!(
            "ratio {:.2}; server {cpu_ms:.2} ms CPU per file",
            rate / direct_rate,
        ),
    );
    let file_ms = took.as_secs_f64() * 1000.0 / files as f64;
    r.row(
        "W3 where the time goes",
        format!("{file_ms:.2} ms per file"),
        format!(
            "{puts:.2} PutObject {put_ms:.2} ms; {lists:.3} ListObjectsV2 {list_ms:.3} ms; \
             the FTP exchange (EPSV, connect, STOR, 150, data, 226) the rest; \
             a direct PUT {:.2} ms",
            1000.0 / direct_rate
        ),
    );
    r.value("w3_ms_per_file", file_ms);
    r.value("w3_put_ms_per_file", put_ms);
    r.value("w3_lists_per_file", lists);
    r.value("w3_list_ms_per_file", list_ms);
    r.value("w3_files_per_s", rate);
    r.value("w3_direct_puts_per_s", direct_rate);
    r.value("w3_ratio", rate / direct_rate);
    r.value("w3_server_cpu_ms_per_file", cpu_ms);
    r.target(
        "w3_files_per_s",
        rate >= 900.0,
        format!("W3 {rate:.0} files/s < 900"),
    );
    ftp.cmd("QUIT", 221).await?;
    Ok(())
}

async fn w4(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    entries: usize,
    rounds: usize,
) -> Result<()> {
    // Fill the directory on the direct path, 64 at a time.
    futures::stream::iter(0..entries)
        .map(|i| async move {
            let key = format!("many/e{i:06}.txt");
            direct.put(&key, Bytes::from_static(b"x")).await
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await?;
    // A listing takes about 0.1 s, so single timings are mostly noise: the
    // direct walk and the three FTP listings take turns, 3 x `rounds` times,
    // and the medians are compared.
    let mut ftp = Ftp::login(server.addr).await?;
    let verbs = ["LIST", "MLSD", "NLST"];
    let mut direct_times = Vec::new();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); verbs.len()];
    let mut usages: Vec<Vec<Usage>> = verbs.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds.max(1) * 3 {
        let (n, direct_took, _) = measured(server, direct.list("many/")).await?;
        if n != entries as u64 {
            return Err(format!("W4: direct listing found {n} of {entries}").into());
        }
        direct_times.push(direct_took);
        for (v, verb) in verbs.iter().enumerate() {
            let ((_, lines), took, usage) =
                measured(server, ftp.fetch(&format!("{verb} /many"))).await?;
            if lines != entries as u64 {
                return Err(format!("W4: {verb} gave {lines} lines of {entries}").into());
            }
            times[v].push(took);
            usages[v].push(usage);
        }
    }
    let direct_took = median(direct_times);
    for (v, verb) in verbs.iter().enumerate() {
        let took = median(std::mem::take(&mut times[v]));
        let usage = combined(&usages[v]);
        let ratio = direct_took.as_secs_f64() / took.as_secs_f64();
        r.row(
            &format!("W4 {verb} of {entries}"),
            format!(
                "{:.0} ms FTP, {:.0} ms ListObjectsV2",
                took.as_secs_f64() * 1e3,
                direct_took.as_secs_f64() * 1e3
            ),
            format!(
                "speed ratio {ratio:.2}; server {:.0} MiB peak, {:.3} CPU-s",
                usage.peak, usage.cpu
            ),
        );
        let v = verb.to_lowercase();
        r.value(&format!("w4_{v}_ms"), took.as_secs_f64() * 1e3);
        r.value(&format!("w4_{v}_ratio"), ratio);
        r.value(&format!("w4_{v}_cpu_s"), usage.cpu);
    }
    r.value("w4_direct_list_ms", direct_took.as_secs_f64() * 1e3);
    ftp.cmd("QUIT", 221).await?;
    Ok(())
}

async fn w5(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    pattern: &Arc<Pattern>,
    sessions: usize,
    mib: u64,
    rounds: usize,
) -> Result<()> {
    let len = mib * MIB;
    let addr = server.addr;
    // The logins first, all at once: their argon2 verifications are CPU the
    // server spends per session, not per byte moved, so they are reported
    // apart from the uploads' CPU per GiB.
    let logins = async {
        let tasks: Vec<_> = (0..sessions)
            .map(|_| tokio::spawn(Ftp::login(addr)))
            .collect();
        let mut clients = Vec::with_capacity(sessions);
        for t in tasks {
            clients.push(t.await??);
        }
        Ok::<_, Error>(clients)
    };
    let (mut clients, login_took, login_usage) = measured(server, logins).await?;
    // `rounds` rounds on the same sessions; the median is reported (CPU per
    // GiB moves by 20-40% with contention on two shared cores).
    let (mut times, mut cpus, mut peak) = (Vec::new(), Vec::new(), login_usage.peak);
    for round in 0..rounds {
        let name = move |i: usize| format!("w5-{round}-{i:03}.bin");
        let run = async {
            let tasks: Vec<_> = std::mem::take(&mut clients)
                .into_iter()
                .enumerate()
                .map(|(i, mut ftp)| {
                    let pattern = pattern.clone();
                    tokio::spawn(async move {
                        let seed = 100 + i as u64;
                        ftp.stor(&name(i), pattern.chunks(seed, len, 256 * 1024))
                            .await?;
                        Ok::<_, Error>(ftp)
                    })
                })
                .collect();
            let mut back = Vec::with_capacity(sessions);
            for t in tasks {
                back.push(t.await??);
            }
            Ok(back)
        };
        let (back, took, usage) = measured(server, run).await?;
        clients = back;
        times.push(took);
        cpus.push(usage.cpu);
        peak = peak.max(usage.peak);
        for i in 0..sessions {
            let (size, sha) = direct.digest(&name(i)).await?;
            if size != len || sha != pattern.sha256(100 + i as u64, len) {
                return Err(
                    format!("W5: object {}: {size} bytes, sha256 {sha} differs", name(i)).into(),
                );
            }
        }
    }
    for mut ftp in clients {
        ftp.cmd("QUIT", 221).await?;
    }
    cpus.sort_by(f64::total_cmp);
    let usage = Usage {
        cpu: cpus[cpus.len() / 2],
        peak,
    };
    let took = median(times);
    let total = len * sessions as u64;
    let gib = total as f64 / (1024.0 * MIB as f64);
    let cpu = usage.cpu / gib;
    r.row(
        &format!("W5 {sessions} sessions x {mib} MiB"),
        format!(
            "{:.1} s, {:.0} MiB/s total",
            took.as_secs_f64(),
            mib_s(total, took)
        ),
        format!(
            "all {sessions} verified each round; server {:.0} MiB peak, {cpu:.2} CPU-s/GiB \
             (rounds {:.2}-{:.2}); before: {sessions} logins at once {:.2} s, {:.2} CPU-s",
            usage.peak,
            cpus[0] / gib,
            cpus[cpus.len() - 1] / gib,
            login_took.as_secs_f64(),
            login_usage.cpu
        ),
    );
    r.value("w5_login_seconds", login_took.as_secs_f64());
    r.value("w5_login_cpu_s", login_usage.cpu);
    r.target("w5_cpu", cpu <= 1.0, format!("W5 {cpu:.2} CPU-s/GiB > 1"));
    r.value("w5_seconds", took.as_secs_f64());
    r.value("w5_mib_s", mib_s(total, took));
    r.value("w5_peak_rss_mib", usage.peak);
    r.value("w5_cpu_s_per_gib", cpu);
    r.target(
        "w5_peak_rss",
        usage.peak <= 256.0,
        format!("W5 peak RSS {:.0} MiB > 256", usage.peak),
    );
    Ok(())
}

async fn idle(r: &mut Report, server: &ServerProcess, sessions: usize) -> Result<()> {
    let before = server.rss_mib();
    server.reset_peak();
    let mut open = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        open.push(Ftp::login(server.addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss, peak) = (server.rss_mib(), server.peak_mib());
    for mut ftp in open {
        ftp.cmd("NOOP", 200).await?;
    }
    r.row(
        &format!("{sessions} idle logged-in sessions"),
        format!("{rss:.1} MiB resident"),
        format!("{before:.1} MiB before, {peak:.1} MiB peak"),
    );
    r.value("idle_sessions_rss_mib", rss);
    r.value("idle_sessions_peak_mib", peak);
    r.target(
        "idle_sessions_rss",
        peak <= 40.0,
        format!("{sessions} idle sessions peak {peak:.1} MiB > 40"),
    );
    Ok(())
}

// ---------------------------------------------------------------- main

#[tokio::main]
async fn main() -> Result<()> {
    let opts = Options::parse()?;
    let s3 = s3::S3Server::external_from_env().unwrap_or_else(s3::S3Server::garage);
    let bucket = s3.fresh_bucket().await;
    let server = ServerProcess::start(&s3.mount_uri(&bucket, ""), &opts.server_env)?;
    let direct = Direct::new(&s3, &bucket);
    let pattern = Arc::new(Pattern::new());
    println!(
        "s3ftp bench: server {} (pid {}), S3 {:?} at {}, bucket {bucket}",
        server.addr,
        server.child.id(),
        s3.kind,
        s3.endpoint
    );
    println!("server at start: {:.1} MiB resident\n", server.rss_mib());
    println!("{:<34} {:<34} notes", "workload", "figure");
    let mut r = Report::default();
    r.value("server_start_rss_mib", server.rss_mib());
    if opts.runs("IDLE") {
        idle(&mut r, &server, opts.idle_sessions).await?;
    }
    if opts.runs("W1") || opts.runs("W2") {
        w1_w2(
            &mut r,
            &server,
            &direct,
            &pattern,
            opts.size_mib,
            "W1",
            opts.runs("W2"),
            opts.rounds,
        )
        .await?;
    }
    if let Some(big) = opts.big_mib {
        // One round: 4 GiB shows that memory does not grow with size.
        w1_w2(&mut r, &server, &direct, &pattern, big, "W1big", false, 1).await?;
    }
    if opts.runs("W3") {
        w3(
            &mut r,
            &server,
            &direct,
            &pattern,
            opts.small_files,
            opts.rounds,
        )
        .await?;
    }
    if opts.runs("W4") {
        w4(&mut r, &server, &direct, opts.list_entries, opts.rounds).await?;
    }
    if opts.runs("W5") {
        w5(
            &mut r,
            &server,
            &direct,
            &pattern,
            opts.sessions,
            opts.session_mib,
            opts.rounds,
        )
        .await?;
    }
    println!();
    for (name, value) in &r.values {
        println!("{name}={value}");
    }
    if r.failures.is_empty() {
        println!("\nall targets met");
    } else {
        println!("\ntargets missed:");
        for f in &r.failures {
            println!("  {f}");
        }
    }
    Ok(())
}
