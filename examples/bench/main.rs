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
//! - W5L (with --only W5L) the same with a new login for every upload, as
//!   batch jobs that run curl once per file do; logins' CPU included;
//! - W8 (with --only W8) LIST, MLSD, NLST and NLST *.csv of one directory
//!   of a million objects against the direct walk: time to first byte,
//!   total, peak memory against the same listings of 10,000;
//! - W9 (with --only W9) 1,000 sessions at once from 1,000 addresses, each
//!   uploading, downloading and listing; then 10,000 idle sessions' memory;
//! - W7 (with --only W7) W1-W4 again against a store 20 ms away (a delaying
//!   proxy in front of the S3 server), the direct path through it too;
//! - the server's peak resident memory (VmHWM, reset before each workload)
//!   and CPU time (utime + stime from /proc) per workload, and its memory
//!   with 200 idle logged-in sessions.
//!
//! It prints a table, then the same figures as `name=value` lines to compare
//! runs. Run it with `scripts/bench.sh` (release build); `--help` for options.
//! Loopback only; every loop is bounded.

#[path = "../../tests/common/launch.rs"]
mod launch;
#[path = "../../tests/common/s3.rs"]
#[allow(dead_code, clippy::all)]
mod s3;

mod data;
mod delay;
mod direct;
mod ftp;
mod ftps;
mod large;
mod listing;
mod report;
mod server;
mod sessions;
mod small;

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
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf,
    WriteHalf,
};
use tokio::net::TcpStream;

use data::*;
use delay::*;
use direct::*;
use ftp::*;
use ftps::*;
use large::*;
use launch::{listening_address, Launch};
use listing::*;
use report::*;
use server::*;
use sessions::*;
use small::*;

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
    /// W8: keys in one directory.
    w8_keys: usize,
    /// W9: busy sessions at once, and idle ones.
    w9_sessions: usize,
    w9_idle: usize,
    /// W7's one-way delay to the store, in milliseconds.
    w7_one_way_ms: u64,
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
            w8_keys: 1_000_000,
            w9_sessions: 1000,
            w9_idle: 10_000,
            w7_one_way_ms: 10,
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
                "--w8-keys" => o.w8_keys = value()?.parse::<usize>()?.max(1),
                "--w9-sessions" => o.w9_sessions = value()?.parse::<usize>()?.max(1),
                "--w9-idle" => o.w9_idle = value()?.parse()?,
                "--w7-one-way-ms" => o.w7_one_way_ms = value()?.parse()?,
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
                         [--idle-sessions 200] [--w8-keys 1000000] [--w9-sessions 1000] [--w9-idle 10000] [--w7-one-way-ms 10] [--rounds 3] [--only W1,W2,W3,W4,W5,IDLE,W6,W5L,W7,W8,W9] [--quick] \
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

    /// Workloads outside the default run: only when `--only` names them.
    fn runs_extra(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_some_and(|o| o.iter().any(|n| n == name))
    }
}

// ---------------------------------------------------------------- main

/// W7: W1-W4 against the same S3 server behind a delaying proxy (10 ms each
/// way unless `--w7-one-way-ms`), a server process of its own and the direct path both through it.
async fn w7(
    r: &mut Report,
    s3: &s3::S3Server,
    opts: &Options,
    pattern: &Arc<Pattern>,
) -> Result<()> {
    let upstream: SocketAddr = s3
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("W7 needs an http://IP:PORT endpoint: {e}"))?;
    let one_way = Duration::from_millis(opts.w7_one_way_ms);
    let proxy = delay_proxy(upstream, one_way).await?;
    let endpoint = format!("http://{proxy}");
    let bucket = s3.fresh_bucket().await;
    let mount = format!(
        "s3://{bucket}?endpoint={}&path_style=true&region={}&access_key={}&secret_key={}",
        s3::encode_mount_value(&endpoint),
        s3::encode_mount_value(&s3.region),
        s3::encode_mount_value(&s3.access_key),
        s3::encode_mount_value(&s3.secret_key),
    );
    let server = ServerProcess::start(&mount, &opts.server_env)?;
    let direct = Direct::with_endpoint(s3, &bucket, &endpoint);
    println!(
        "W7: store behind {endpoint} ({} ms round trip)",
        2 * opts.w7_one_way_ms
    );
    r.prefix = "W7 ".into();
    w1_w2(
        r,
        &server,
        &direct,
        pattern,
        opts.size_mib,
        "W1",
        (true, true),
        opts.rounds,
    )
    .await?;
    w3(r, &server, &direct, pattern, opts.small_files, opts.rounds).await?;
    w4(r, &server, &direct, opts.list_entries, opts.rounds).await?;
    r.prefix.clear();
    Ok(())
}

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
            (opts.runs("W1"), opts.runs("W2")),
            opts.rounds,
        )
        .await?;
    }
    if let Some(big) = opts.big_mib {
        // One round: 4 GiB shows that memory does not grow with size.
        w1_w2(
            &mut r,
            &server,
            &direct,
            &pattern,
            big,
            "W1big",
            (true, false),
            1,
        )
        .await?;
    }
    if opts.runs_extra("W6") {
        w6(
            &mut r,
            &server,
            &direct,
            &pattern,
            opts.size_mib,
            opts.rounds,
        )
        .await?;
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
    if opts.runs_extra("W7") {
        w7(&mut r, &s3, &opts, &pattern).await?;
    }
    if opts.runs_extra("W8") {
        w8(&mut r, &server, &direct, opts.w8_keys).await?;
    }
    if opts.runs_extra("W9") {
        // Limits raised for the run: 1,000 busy plus 10,000 idle sessions.
        let mut env = opts.server_env.clone();
        env.push(("S3FTP_MAX_SESSIONS".into(), "12000".into()));
        let w9_server = ServerProcess::start(&s3.mount_uri(&bucket, ""), &env)?;
        w9(
            &mut r,
            &w9_server,
            &direct,
            &pattern,
            opts.w9_sessions,
            2,
            opts.w9_idle,
        )
        .await?;
    }
    if opts.runs_extra("W5L") {
        w5_login_each(
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
