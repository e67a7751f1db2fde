//! Several replicas behind a real load balancer (issue 14): three processes
//! of the built binary sharing one bucket on the test S3 server, HAProxy in
//! front (tests/common/haproxy.rs), and real clients (curl, lftp, Python's
//! ftplib) through the balancer only. What the store holds is read from the
//! bucket directly, never through a replica.
//!
//! Loopback only: the balancer has its own address (127.0.0.10) and each
//! replica its own (127.0.0.11 to .13). Control connections are balanced
//! round-robin with a PROXY v2 header and a `/readyz` check of each
//! replica's monitoring port; each replica's passive range (fixed, distinct)
//! is forwarded by the balancer, on the same port numbers, to that replica
//! only, with a PROXY v2 header too. Every replica advertises the
//! balancer's address (`S3FTP_PASV_ADDRESS`), trusts only it
//! (`S3FTP_PROXY_TRUSTED`) and checks that data connections come from the
//! control connection's client (`S3FTP_PROXY_PROTOCOL=all`); FTPS data
//! connections must resume the control connection's TLS session
//! (`S3FTP_TLS_REQUIRE_REUSE`), so every FTPS transfer that succeeds shows
//! session reuse working through the balancer.
//!
//! Which replica served what is read from the replicas' own JSON logs
//! (`session start`, `login`, `transfer` records); HAProxy's view from its
//! admin socket. The tests run one at a time (each has its own cluster and
//! bucket): the machines have two cores.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::clients::{assert_data_command, block_on, path_str, require, run, Run, Work, MIB};
use common::haproxy::{Balancer, Target};
use common::launch::{listening_address, Launch};
use common::s3::S3Server;
use common::{cheap_hash, content, lines, metric_value, sha256, Raw, Store, PASSWORD, USER};
use serde_json::Value;

/// The balancer's address: clients connect here only.
const BALANCER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);
/// The replicas' names (HAProxy server names, S3FTP_SERVER_ID) and addresses.
const REPLICAS: [(&str, Ipv4Addr); 3] = [
    ("r1", Ipv4Addr::new(127, 0, 0, 11)),
    ("r2", Ipv4Addr::new(127, 0, 0, 12)),
    ("r3", Ipv4Addr::new(127, 0, 0, 13)),
];
/// Passive ports per replica.
const PASSIVE_PORTS: u16 = 20;
/// How long a replica may take to say where it listens.
const START_WAIT: Duration = Duration::from_secs(20);
/// Bound of any one client program.
const CLIENT_LIMIT: Duration = Duration::from_secs(70);
/// Users besides alice, one per client where a test must tell which
/// replica served whom: `u00` to `u39`, all with [`PASSWORD`].
const NAMED_USERS: usize = 40;

/// One test at a time: each starts four servers and a dozen clients.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn user(i: usize) -> String {
    format!("u{i:02}")
}

fn users_json() -> String {
    let hash = cheap_hash(PASSWORD);
    let names = std::iter::once(USER.to_string()).chain((0..NAMED_USERS).map(user));
    let entries: Vec<String> = names
        .map(|name| format!(r#"{{"name":"{name}","password":"{hash}"}}"#))
        .collect();
    format!("[{}]", entries.join(","))
}

/// A port of `ip` that was free a moment ago.
fn free_port_on(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap_or_else(|e| panic!("bind {ip}:0: {e}"))
        .local_addr()
        .expect("local addr")
        .port()
}

/// One passive range per replica, free on the replica's address and on the
/// balancer's. Below the kernel's default ephemeral ports (32768 to 60999),
/// so no outgoing connection holds one.
fn passive_ranges() -> Vec<RangeInclusive<u16>> {
    use rand::Rng;
    let free = |ip: Ipv4Addr, port: u16| TcpListener::bind((ip, port)).is_ok();
    for _ in 0..50 {
        let base = rand::thread_rng().gen_range(20_000..32_000 - 3 * PASSIVE_PORTS);
        let ranges: Vec<RangeInclusive<u16>> = (0..3)
            .map(|i| {
                let lo = base + i * PASSIVE_PORTS;
                lo..=lo + PASSIVE_PORTS - 1
            })
            .collect();
        let all_free = ranges.iter().zip(REPLICAS).all(|(range, (_, ip))| {
            range
                .clone()
                .all(|port| free(ip, port) && free(BALANCER, port))
        });
        if all_free {
            return ranges;
        }
    }
    panic!("no free passive ranges found below 32000");
}

/// One HTTP/1.1 GET: status and body; None when nothing answers.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Polls `done` every 20 ms until it holds; how long that took, or None
/// after `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if done() {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

// ---------------------------------------------------------------------------
// A replica
// ---------------------------------------------------------------------------

/// One s3ftp process on its own loopback address, with fixed control,
/// monitoring and passive ports, so that it can be started again alike.
/// Each run logs (JSON) to a file of its own.
struct Replica {
    name: &'static str,
    ip: Ipv4Addr,
    port: u16,
    metrics: u16,
    passive: RangeInclusive<u16>,
    launch: Launch,
    child: Child,
    /// Runs started so far (1 after the first start).
    runs: usize,
    dir: tempfile::TempDir,
}

impl Replica {
    /// Starts the first run (without waiting for it to listen).
    fn spawn(
        (name, ip): (&'static str, Ipv4Addr),
        passive: RangeInclusive<u16>,
        store: &Store,
        users: &str,
        extra: &[(&str, String)],
    ) -> Replica {
        let (port, metrics) = (free_port_on(ip), free_port_on(ip));
        let launch = Launch::new(store.mount())
            .users(Some(users))
            .var("S3FTP_LISTEN", format!("{ip}:{port}"))
            .var("S3FTP_METRICS_LISTEN", format!("{ip}:{metrics}"))
            .var(
                "S3FTP_PASV_PORTS",
                format!("{}-{}", passive.start(), passive.end()),
            )
            .var("S3FTP_PASV_ADDRESS", BALANCER.to_string())
            .var("S3FTP_PROXY_PROTOCOL", "all")
            .var("S3FTP_PROXY_TRUSTED", format!("{BALANCER}/32"))
            .var("S3FTP_TLS_SELF_SIGNED", "true")
            .var("S3FTP_TLS_REQUIRE_REUSE", "true")
            .var("S3FTP_SERVER_ID", name)
            .var("S3FTP_LOG", "info")
            .var("S3FTP_LOG_FORMAT", "json")
            .var("S3FTP_DATA_TIMEOUT", "10")
            .var("S3FTP_LOGIN_FAIL_DELAY_MS", "20")
            .var("S3FTP_SHUTDOWN_GRACE", "10")
            .var("S3FTP_PART_SIZE_MIB", "5")
            .vars(extra);
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Replica::start_run(&launch, &dir, 1);
        Replica {
            name,
            ip,
            port,
            metrics,
            passive,
            launch,
            child,
            runs: 1,
            dir,
        }
    }

    fn start_run(launch: &Launch, dir: &tempfile::TempDir, run: usize) -> Child {
        let file = |kind: &str| {
            fs::File::create(dir.path().join(format!("{kind}.{run}"))).expect("log file")
        };
        launch
            .command(std::path::Path::new(env!("CARGO_BIN_EXE_s3ftp")))
            .stdout(file("stdout"))
            .stderr(file("stderr"))
            .spawn()
            .expect("start the s3ftp binary")
    }

    /// Waits until the current run says it listens, on its fixed address.
    fn await_listening(&mut self) {
        let started = Instant::now();
        let out = self.dir.path().join(format!("stdout.{}", self.runs));
        loop {
            let text = fs::read_to_string(&out).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(listening_address) {
                assert_eq!(addr, self.control(), "{} listens elsewhere", self.name);
                return;
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "{} exited with {status} before listening:\n{}",
                    self.name,
                    self.log(self.runs)
                );
            }
            assert!(
                started.elapsed() < START_WAIT,
                "{} did not say where it listens within {START_WAIT:?}:\n{}",
                self.name,
                self.log(self.runs)
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a new run with the same variables (and `extra`), once the
    /// previous one is gone; waits until it listens.
    fn restart(&mut self, extra: &[(&str, String)]) {
        assert!(
            self.child.try_wait().expect("try_wait").is_some(),
            "{} still runs",
            self.name
        );
        self.runs += 1;
        self.child = Replica::start_run(&self.launch.clone().vars(extra), &self.dir, self.runs);
        self.await_listening();
    }

    fn control(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.port))
    }

    fn target(&self) -> Target {
        Target {
            name: self.name.to_string(),
            control: self.control(),
            health_port: self.metrics,
            passive: self.passive.clone(),
        }
    }

    /// GET on the monitoring listener; None when nothing answers.
    fn http(&self, path: &str) -> Option<(u16, String)> {
        http_get(SocketAddr::from((self.ip, self.metrics)), path)
    }

    /// A metric of the current run; None when it does not answer.
    fn metric(&self, series: &str) -> Option<f64> {
        self.http("/metrics")
            .filter(|(code, _)| *code == 200)
            .map(|(_, text)| metric_value(&text, series))
    }

    /// Sends `signal` to the current run: SIGTERM as an orchestrator's
    /// rolling restart does, SIGKILL as a crash or the OOM killer (no
    /// clean-up of any kind). The process is reaped by [`Replica::wait_exit`].
    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child, not reaped yet (so the pid is its).
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {pid}");
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "{} did not exit within {limit:?} of SIGTERM:\n{}",
                self.name,
                self.log(self.runs)
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log (standard error) of run `run`.
    fn log(&self, run: usize) -> String {
        fs::read_to_string(self.dir.path().join(format!("stderr.{run}"))).unwrap_or_default()
    }

    /// The JSON records of run `run`'s log.
    fn records(&self, run: usize) -> Vec<Value> {
        self.log(run)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Records of every run with this message.
    fn all(&self, message: &str) -> Vec<Value> {
        (1..=self.runs)
            .flat_map(|run| self.records(run))
            .filter(|r| r["message"] == message)
            .collect()
    }

    /// Users who logged in during run `run`.
    fn logged_in(&self, run: usize) -> BTreeSet<String> {
        self.records(run)
            .iter()
            .filter(|r| r["message"] == "login")
            .filter_map(|r| r["user"].as_str().map(str::to_string))
            .collect()
    }

    /// The last lines of every run's log, for failure messages.
    fn tail(&self) -> String {
        let mut out = String::new();
        for run in 1..=self.runs {
            let log = self.log(run);
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(25);
            out.push_str(&format!(
                "--- {} run {run} (last {} lines) ---\n{}\n",
                self.name,
                lines.len() - from,
                lines[from..].join("\n")
            ));
        }
        out
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------

struct Cluster {
    store: Store,
    replicas: Vec<Replica>,
    balancer: Balancer,
}

impl Cluster {
    /// Three replicas on a fresh bucket, each with `extra` variables, and
    /// HAProxy in front once they listen.
    fn start(extra: &[(&str, String)]) -> Cluster {
        require("curl");
        let store = Store::S3 {
            bucket: S3Server::shared().fresh_bucket_blocking(),
        };
        let users = users_json();
        let mut replicas: Vec<Replica> = REPLICAS
            .into_iter()
            .zip(passive_ranges())
            .map(|(replica, passive)| Replica::spawn(replica, passive, &store, &users, extra))
            .collect();
        for replica in &mut replicas {
            replica.await_listening();
        }
        let targets: Vec<Target> = replicas.iter().map(Replica::target).collect();
        let balancer = Balancer::start(BALANCER, free_port_on(BALANCER), &targets);
        Cluster {
            store,
            replicas,
            balancer,
        }
    }

    /// A URL through the balancer.
    fn url(&self, path: &str) -> String {
        format!("ftp://{}/{path}", self.balancer.addr())
    }

    /// `s3ftp_sessions_total` of each replica's current run.
    fn sessions_now(&self) -> Vec<f64> {
        self.replicas
            .iter()
            .map(|r| r.metric("s3ftp_sessions_total").unwrap_or(0.0))
            .collect()
    }

    /// Sessions each replica has served, over all its runs (from its logs).
    fn sessions_served(&self) -> Vec<usize> {
        self.replicas
            .iter()
            .map(|r| r.all("session start").len())
            .collect()
    }

    /// Data transfers each replica has finished, over all its runs.
    fn transfers_served(&self) -> Vec<usize> {
        self.replicas
            .iter()
            .map(|r| r.all("transfer").len())
            .collect()
    }

    fn read(&self, path: &str) -> Option<Vec<u8>> {
        block_on(self.store.read(path))
    }

    /// Every file and directory in the bucket (see `Store::tree`).
    fn tree(&self) -> Vec<String> {
        block_on(self.store.tree())
    }

    /// Keys of the multipart uploads in progress in the bucket.
    fn uploads_in_progress(&self) -> Vec<String> {
        block_on(self.store.partials())
    }

    /// Asserts the bucket holds `path` with exactly `len` bytes hashing to
    /// `sha`.
    fn assert_stored(&self, path: &str, len: usize, sha: &str) {
        let got = self
            .read(path)
            .unwrap_or_else(|| panic!("{path} is not in the bucket\n{}", self.report()));
        assert_eq!(
            (got.len(), sha256(&got).as_str()),
            (len, sha),
            "{path} in the bucket differs from what was uploaded"
        );
    }

    /// HAProxy's log and the end of each replica's, for failure messages.
    fn report(&self) -> String {
        let mut out = format!("--- haproxy ---\n{}\n", self.balancer.log());
        for r in &self.replicas {
            out.push_str(&r.tail());
        }
        out
    }

    fn assert_ok(&self, what: &str, r: &Run) {
        assert!(
            r.status.success(),
            "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
            r.status,
            r.stdout_text(),
            r.stderr,
            self.report()
        );
    }

    /// The index of the replica a fresh control connection reached: the
    /// one whose session count went up (nothing else connects meanwhile).
    fn replica_of_new_session(&self, before: &[f64]) -> usize {
        let mut found = None;
        wait_until(Duration::from_secs(5), || {
            let now = self.sessions_now();
            found = now.iter().zip(before).position(|(n, b)| n > b);
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no replica counted the new session\n{}", self.report()))
    }

    /// A logged-in control connection through the balancer on a replica
    /// other than `not`; which replica it reached.
    async fn login_elsewhere(&self, not: Option<usize>) -> (Raw, usize) {
        for _ in 0..6 {
            let before = self.sessions_now();
            let mut raw = Raw::connect(self.balancer.addr()).await;
            let on = self.replica_of_new_session(&before);
            if Some(on) != not {
                raw.login(USER, PASSWORD).await;
                return (raw, on);
            }
        }
        panic!(
            "every connection reached replica {not:?}\n{}",
            self.report()
        );
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// Runs curl as `user`, bounded; the caller checks the outcome.
fn curl(user: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new("curl");
    // -q first: ignore any ~/.curlrc. -v: the FTP exchange, shown on failure.
    cmd.args(["-q", "--silent", "--show-error", "--verbose"])
        .args(["--noproxy", "*", "--max-time", "60"])
        .arg("--user")
        .arg(format!("{user}:{PASSWORD}"))
        .args(args);
    run(cmd, CLIENT_LIMIT)
}

/// The last lines of a client's standard error.
fn stderr_tail(r: &Run) -> String {
    let lines: Vec<&str> = r.stderr.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

/// Uploads a file with Python's ftplib through PASV (ftplib's default for
/// IPv4) or EPSV (asked for by posing as an IPv6 client: ftplib then sends
/// EPSV and connects to the control connection's peer), checks SIZE, reads
/// it back and compares. Prints the FTP exchange (debug level 1) and OK.
const FTPLIB_UPLOAD: &str = r#"
import ftplib, hashlib, os, socket, sys
host, port, user, password, mode, local, remote = sys.argv[1:8]
ftp = ftplib.FTP()
ftp.set_debuglevel(1)
ftp.connect(host, int(port), timeout=30)
ftp.login(user, password)
if mode == "epsv":
    ftp.af = socket.AF_INET6
with open(local, "rb") as f:
    body = f.read()
ftp.storbinary("STOR " + remote, open(local, "rb"))
assert ftp.size(remote) == len(body), ftp.size(remote)
got = hashlib.sha256()
ftp.retrbinary("RETR " + remote, got.update)
assert got.hexdigest() == hashlib.sha256(body).hexdigest(), "downloaded copy differs"
ftp.quit()
print("OK")
"#;

/// A client job of the spread test: what it ran and what it uploaded.
struct Job {
    what: String,
    run: Run,
    /// Checks of the client's own output (data command used, TLS...).
    check: fn(&Run) -> Result<(), String>,
}

fn curl_pasv(r: &Run) -> Result<(), String> {
    data_command(r, "PASV", &["EPSV", "PORT", "EPRT"])
}
fn curl_epsv(r: &Run) -> Result<(), String> {
    data_command(r, "EPSV", &["PASV", "PORT", "EPRT"])
}
fn curl_ftps_pasv(r: &Run) -> Result<(), String> {
    tls(r).and_then(|()| curl_pasv(r))
}
fn curl_ftps_epsv(r: &Run) -> Result<(), String> {
    tls(r).and_then(|()| curl_epsv(r))
}
fn tls(r: &Run) -> Result<(), String> {
    let sent = |cmd: &str| r.stderr.lines().any(|l| l.starts_with(&format!("> {cmd}")));
    // curl asks AUTH SSL first, which the server takes as AUTH TLS.
    if (sent("AUTH TLS") || sent("AUTH SSL")) && sent("PROT P") {
        Ok(())
    } else {
        Err("curl did not use AUTH and PROT P".into())
    }
}
fn data_command(r: &Run, used: &str, not: &[&str]) -> Result<(), String> {
    std::panic::catch_unwind(|| assert_data_command(r, used, not))
        .map_err(|_| format!("curl did not use {used} only"))
}
fn ftplib_pasv(r: &Run) -> Result<(), String> {
    ftplib_used(r, "PASV", "EPSV")
}
fn ftplib_epsv(r: &Run) -> Result<(), String> {
    ftplib_used(r, "EPSV", "PASV")
}
fn ftplib_used(r: &Run, used: &str, not: &str) -> Result<(), String> {
    let out = r.stdout_text();
    let sent = |cmd: &str| out.contains(&format!("*cmd* '{cmd}'"));
    if sent(used) && !sent(not) && out.contains("OK") {
        Ok(())
    } else {
        Err(format!("ftplib did not use {used} only"))
    }
}
fn nothing(_: &Run) -> Result<(), String> {
    Ok(())
}

/// lftp with one command line, bounded; TLS (with session reuse required
/// by the replicas) when `tls`.
fn lftp(cluster: &Cluster, tls: bool, commands: &str) -> Run {
    let mut settings = String::from(
        "set net:max-retries 1; set net:timeout 15; set cmd:fail-exit true; \
         set xfer:clobber true; ",
    );
    if tls {
        settings.push_str(
            "set ssl:verify-certificate no; set ftp:ssl-force true; \
             set ftp:ssl-protect-data true; ",
        );
    } else {
        settings.push_str("set ftp:ssl-allow no; ");
    }
    let script = format!(
        "{settings}open -u {USER},{PASSWORD} ftp://{}; {commands}; bye",
        cluster.balancer.addr()
    );
    let mut cmd = Command::new("lftp");
    cmd.arg("-c").arg(script);
    run(cmd, CLIENT_LIMIT)
}

// ---------------------------------------------------------------------------
// Many sessions spread over the replicas
// ---------------------------------------------------------------------------

/// Two dozen concurrent sessions through the balancer: curl in PASV and
/// EPSV, plain and FTPS; lftp `mirror -R --parallel=4` over FTPS; ftplib in
/// PASV and EPSV; then lftp `pget -n 4` of a file ftplib uploaded. Every
/// replica serves sessions, sees the clients' own address (PROXY headers on
/// control and data connections), and the bucket holds exactly what was
/// uploaded, whole, with no multipart upload left.
#[test]
fn sessions_spread_over_every_replica_in_every_mode() {
    let _serial = serial();
    require("lftp");
    require("python3");
    let cluster = Cluster::start(&[]);
    let work = Work::new();
    let (host, port) = (BALANCER.to_string(), cluster.balancer.port.to_string());
    let mut expected: BTreeMap<String, (usize, String)> = BTreeMap::new();

    // curl: 12 sessions, 3 of each mode.
    type Check = fn(&Run) -> Result<(), String>;
    let modes: [(&str, &[&str], Check); 4] = [
        ("pasv", &["--ftp-pasv", "--disable-epsv"], curl_pasv),
        ("epsv", &["--ftp-pasv"], curl_epsv),
        (
            "ftps-pasv",
            &["--ftp-pasv", "--disable-epsv", "--ssl-reqd", "--insecure"],
            curl_ftps_pasv,
        ),
        (
            "ftps-epsv",
            &["--ftp-pasv", "--ssl-reqd", "--insecure"],
            curl_ftps_epsv,
        ),
    ];
    let mut curl_jobs = Vec::new();
    for i in 0..12 {
        let (mode, args, check) = modes[i % modes.len()];
        let data = content(MIB / 2 + i * 150_000 + i, i as u64);
        let name = format!("curl-{mode}-{i}.bin");
        let local = work.write(&name, &data);
        expected.insert(name.clone(), (data.len(), sha256(&data)));
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(["-T".to_string(), local, cluster.url(&name)]);
        curl_jobs.push((format!("curl {mode} {name}"), args, check));
    }

    // lftp: mirror -R of 8 files with 4 connections, over FTPS.
    let tree = work.path("tree");
    fs::create_dir_all(&tree).expect("local tree");
    for i in 0..8 {
        let data = content(256 * 1024 + i * 1000, 100 + i as u64);
        fs::write(tree.join(format!("m{i}.bin")), &data).expect("write");
        expected.insert(format!("mirror/m{i}.bin"), (data.len(), sha256(&data)));
    }

    // ftplib: 4 sessions, PASV and EPSV; one uploads the file pget reads.
    let script = work.write("ftplib_upload.py", FTPLIB_UPLOAD.as_bytes());
    let big = content(8 * MIB, 200);
    let mut ftplib_jobs = Vec::new();
    for i in 0..4 {
        let (mode, check): (&str, Check) = if i % 2 == 0 {
            ("pasv", ftplib_pasv)
        } else {
            ("epsv", ftplib_epsv)
        };
        let data = if i == 0 {
            big.clone()
        } else {
            content(MIB + i * 7777, 300 + i as u64)
        };
        let name = if i == 0 {
            "big.bin".to_string()
        } else {
            format!("ftplib-{mode}-{i}.bin")
        };
        let local = work.write(&format!("py-{i}.bin"), &data);
        expected.insert(name.clone(), (data.len(), sha256(&data)));
        ftplib_jobs.push((format!("ftplib {mode} {name}"), mode, local, name, check));
    }

    let started = Instant::now();
    let jobs: Vec<Job> = thread::scope(|s| {
        let mut handles = Vec::new();
        for (what, args, check) in &curl_jobs {
            handles.push(s.spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Job {
                    what: what.clone(),
                    run: curl(USER, &args),
                    check: *check,
                }
            }));
        }
        for (what, mode, local, name, check) in &ftplib_jobs {
            let (host, port, script) = (&host, &port, &script);
            handles.push(s.spawn(move || {
                let mut cmd = Command::new("python3");
                cmd.env("PYTHONDONTWRITEBYTECODE", "1")
                    .arg(script)
                    .args([host, port, USER, PASSWORD, mode, local, name]);
                Job {
                    what: what.clone(),
                    run: run(cmd, CLIENT_LIMIT),
                    check: *check,
                }
            }));
        }
        let (cluster, tree) = (&cluster, &tree);
        handles.push(s.spawn(move || Job {
            what: "lftp mirror -R --parallel=4 over FTPS".into(),
            run: lftp(
                cluster,
                true,
                &format!("mirror -R --parallel=4 {} mirror", path_str(tree)),
            ),
            check: nothing,
        }));
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let concurrent = started.elapsed();
    for job in &jobs {
        cluster.assert_ok(&job.what, &job.run);
        if let Err(e) = (job.check)(&job.run) {
            panic!(
                "{}: {e}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                job.what,
                job.run.stdout_text(),
                job.run.stderr
            );
        }
    }

    // lftp pget: 4 connections reading one file in segments, plain FTP.
    let back = work.path("big.back");
    let pget = lftp(
        &cluster,
        false,
        &format!(
            "set pget:min-chunk-size 1M; pget -n 4 big.bin -o {}",
            path_str(&back)
        ),
    );
    cluster.assert_ok("lftp pget -n 4", &pget);
    let got = fs::read(&back).expect("pget's file");
    assert_eq!(
        (got.len(), sha256(&got)),
        (big.len(), sha256(&big)),
        "lftp pget -n 4 read back something else"
    );

    // What the bucket holds: exactly the uploads, whole, nothing partial.
    let mut want: Vec<String> = expected.keys().cloned().collect();
    want.push("mirror/".into());
    want.sort();
    assert_eq!(cluster.tree(), want, "the bucket holds something else");
    for (name, (len, sha)) in &expected {
        cluster.assert_stored(name, *len, sha);
    }
    assert_eq!(cluster.uploads_in_progress(), Vec::<String>::new());

    // Every replica served sessions and transfers, and saw the client's own
    // address, never the balancer's.
    let sessions = cluster.sessions_served();
    let transfers = cluster.transfers_served();
    for (i, r) in cluster.replicas.iter().enumerate() {
        assert!(
            sessions[i] >= 2 && transfers[i] >= 2,
            "{} served {} sessions and {} transfers: the balancer does not spread them\n{}",
            r.name,
            sessions[i],
            transfers[i],
            cluster.report()
        );
        for record in r.all("transfer") {
            let peer = record["peer"].as_str().unwrap_or_default();
            assert!(
                peer.starts_with("127.0.0.1:"),
                "{} logged a transfer from {peer}, not the client's address: {record}",
                r.name
            );
            // lftp's pget closes each segment's data connection once it
            // has its part, so those RETRs end aborted (426).
            if record["command"] != "RETR" {
                assert_eq!(record["reply"], "226", "{}: {record}", r.name);
            }
        }
    }
    let stats: Vec<_> = REPLICAS
        .iter()
        .map(|(name, _)| cluster.balancer.server(name).total)
        .collect();
    eprintln!(
        "replicas spread: {} sessions ({:?} per replica; HAProxy counted {:?} control connections), \
         {} transfers ({:?}), {} uploads checked in the bucket; concurrent clients took {:.1} s",
        sessions.iter().sum::<usize>(),
        sessions,
        stats,
        transfers.iter().sum::<usize>(),
        transfers,
        expected.len(),
        concurrent.as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// One client, two replicas
// ---------------------------------------------------------------------------

/// A client with two control connections that reached different replicas
/// sees each change made on one at once on the other: MKD on one and STOR
/// into it on the other (after the other listed the parent, so it holds
/// what it saw of it), rename on one and LIST on the other, a directory
/// renamed on one and used under its new name on the other, DELE on one
/// and SIZE/RETR on the other; each checked in the bucket too.
#[test]
fn one_client_on_two_replicas_sees_its_own_changes_at_once() {
    let _serial = serial();
    let cluster = Cluster::start(&[]);
    let one = content(300_000, 1);
    let two = content(200_000, 2);
    block_on(async {
        let (mut a, on_a) = cluster.login_elsewhere(None).await;
        let (mut b, on_b) = cluster.login_elsewhere(Some(on_a)).await;
        assert_ne!(on_a, on_b);
        let names = |data: &[u8]| lines(data);

        // b learns the root (empty) and its subdirectories (none).
        assert_eq!(names(&b.fetch("NLST /").await), Vec::<String>::new());

        // MKD on a, STOR into it on b.
        a.expect("MKD /shared", 257).await;
        let (code, text) = b.upload("STOR /shared/one.bin", &one).await;
        assert_eq!(
            code, 226,
            "STOR into a directory made on the other replica: {text}"
        );
        assert_eq!(
            cluster.store.read("shared/one.bin").await,
            Some(one.clone())
        );
        b.expect("CWD /shared", 250).await;
        assert_eq!(names(&b.fetch("NLST").await), ["one.bin"]);

        // Rename on a, list on b.
        a.expect("RNFR /shared/one.bin", 350).await;
        a.expect("RNTO /shared/renamed.bin", 250).await;
        assert_eq!(names(&b.fetch("NLST").await), ["renamed.bin"]);
        let listing = String::from_utf8_lossy(&b.fetch("LIST").await).into_owned();
        assert!(
            listing.contains("renamed.bin") && !listing.contains("one.bin"),
            "{listing}"
        );
        assert_eq!(b.fetch("RETR renamed.bin").await, one);
        assert_eq!(cluster.store.read("shared/one.bin").await, None);

        // A directory renamed on a: b lists and uses the new name at once.
        a.expect("RNFR /shared", 350).await;
        a.expect("RNTO /moved", 250).await;
        let root = names(&b.fetch("NLST /").await);
        assert_eq!(root, ["/moved"], "b's listing of / after a's rename");
        b.expect("CWD /moved", 250).await;
        let (code, text) = b.upload("STOR /moved/two.bin", &two).await;
        assert_eq!(code, 226, "{text}");
        assert_eq!(
            sorted(names(&a.fetch("NLST /moved").await)),
            ["/moved/renamed.bin", "/moved/two.bin"]
        );

        // MKD on b, STOR into it on a.
        b.expect("MKD /fromb", 257).await;
        let (code, text) = a.upload("STOR /fromb/three.bin", &two).await;
        assert_eq!(code, 226, "{text}");

        // DELE on a: gone for b.
        a.expect("DELE /moved/renamed.bin", 250).await;
        b.expect("SIZE /moved/renamed.bin", 550).await;
        let data = b.data().await;
        b.expect("RETR /moved/renamed.bin", 550).await;
        drop(data);
        assert_eq!(
            b.expect("SIZE /moved/two.bin", 213).await.trim(),
            "213 200000"
        );
    });
    assert_eq!(
        cluster.tree(),
        ["fromb/", "fromb/three.bin", "moved/", "moved/two.bin"]
    );
    assert_eq!(cluster.read("moved/two.bin"), Some(two.clone()));
    assert_eq!(cluster.read("fromb/three.bin"), Some(two));
    assert_eq!(cluster.uploads_in_progress(), Vec::<String>::new());
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// A replica killed with SIGKILL
// ---------------------------------------------------------------------------

/// Six 20 MiB uploads at 4 MiB/s spread over the replicas; once each is a
/// multipart upload in the bucket, one replica is killed with SIGKILL. Its
/// clients fail (curl exits non-zero) and nothing of their files appears;
/// the others' uploads finish whole. Sessions started at once after the
/// kill (before the health check has noticed) and after HAProxy marked the
/// replica down all succeed on the others. The killed replica's multipart
/// uploads stay in the bucket until a restarted replica's sweeper
/// (`S3FTP_UPLOAD_SWEEP_AGE=2`) aborts them; HAProxy then sends it
/// sessions again.
#[test]
fn a_replica_killed_mid_upload_fails_only_its_sessions_and_is_cleaned_up_later() {
    let _serial = serial();
    let mut cluster = Cluster::start(&[]);
    let work = Work::new();
    let base = content(20 * MIB, 400);
    let mut uploads = Vec::new();
    for i in 0..6 {
        let mut data = base.clone();
        data[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let name = format!("big-{i}.bin");
        let local = work.write(&name, &data);
        uploads.push((user(i), name, local, data.len(), sha256(&data)));
    }
    let small = content(MIB, 401);
    let small_local = work.write("small.bin", &small);
    let small_sha = sha256(&small);
    let balancer = cluster.balancer.addr();
    let small_upload = |name: &str| {
        curl(
            USER,
            &["-T", &small_local, &format!("ftp://{balancer}/{name}")],
        )
    };

    let (big_runs, after_runs, taken_out, victim, on_victim) = thread::scope(|s| {
        let big: Vec<_> = uploads
            .iter()
            .map(|(user, name, local, ..)| {
                let url = cluster.url(name);
                s.spawn(move || curl(user, &["--limit-rate", "4M", "-T", local, &url]))
            })
            .collect();
        let all_multipart = wait_until(Duration::from_secs(30), || {
            cluster.uploads_in_progress().len() == uploads.len()
        });
        assert!(
            all_multipart.is_some(),
            "the six uploads did not all become multipart uploads: {:?}\n{}",
            cluster.uploads_in_progress(),
            cluster.report()
        );
        // The victim: the replica with the most of them (round-robin gives
        // each two).
        let (victim, on_victim) = (0..cluster.replicas.len())
            .map(|i| (i, cluster.replicas[i].logged_in(1)))
            .max_by_key(|(_, users)| users.len())
            .expect("replicas");

        let killed_at = Instant::now();
        cluster.replicas[victim].signal(libc::SIGKILL);
        // Once its listener is gone (the process is dead), new sessions at
        // once, before the health check has noticed: the balancer's connect
        // is refused and redispatched.
        wait_until(Duration::from_secs(5), || {
            TcpStream::connect(cluster.replicas[victim].control()).is_err()
        })
        .expect("the killed replica's port still accepts");
        let mut after: Vec<_> = (0..5)
            .map(|i| {
                let upload = &small_upload;
                s.spawn(move || upload(&format!("after-{i}.bin")))
            })
            .collect();
        cluster.balancer.wait_server(
            cluster.replicas[victim].name,
            "down",
            Duration::from_secs(5),
            |s| s.is_down(),
        );
        let taken_out = killed_at.elapsed();
        after.extend((5..10).map(|i| {
            let upload = &small_upload;
            s.spawn(move || upload(&format!("after-{i}.bin")))
        }));
        let join = |h: thread::ScopedJoinHandle<'_, Run>| h.join().expect("client thread");
        (
            big.into_iter().map(join).collect::<Vec<_>>(),
            after.into_iter().map(join).collect::<Vec<_>>(),
            taken_out,
            victim,
            on_victim,
        )
    });
    let reaped = cluster.replicas[victim].wait_exit(Duration::from_secs(5));
    assert_eq!(reaped.code(), None, "killed by a signal");

    // Sessions on the killed replica failed, the others' uploads are whole,
    // and nothing of a failed upload is visible.
    let mut killed = Vec::new();
    let mut stored = Vec::new();
    for ((user, name, _, len, sha), r) in uploads.iter().zip(&big_runs) {
        if on_victim.contains(user) {
            assert!(
                !r.status.success(),
                "{name} went to the killed replica, yet curl succeeded:\n{}",
                r.stderr
            );
            assert_eq!(cluster.read(name), None, "part of {name} is visible");
            killed.push((name.clone(), r.status.code()));
        } else {
            cluster.assert_ok(&format!("upload of {name} on a surviving replica"), r);
            cluster.assert_stored(name, *len, sha);
            stored.push(name.clone());
        }
    }
    for (i, r) in after_runs.iter().enumerate() {
        cluster.assert_ok(&format!("session {i} after the kill"), r);
        cluster.assert_stored(&format!("after-{i}.bin"), small.len(), &small_sha);
    }

    // The killed replica's multipart uploads are left behind...
    let mut left = cluster.uploads_in_progress();
    left.sort();
    let mut want: Vec<String> = killed
        .iter()
        .map(|(name, _)| common::clients::s3_key(name))
        .collect();
    want.sort();
    assert_eq!(left, want, "multipart uploads left by the killed replica");
    // ...until a restarted replica's sweeper aborts them.
    let restarted_at = Instant::now();
    cluster.replicas[victim].restart(&[("S3FTP_UPLOAD_SWEEP_AGE", "2".to_string())]);
    wait_until(Duration::from_secs(20), || {
        cluster.uploads_in_progress().is_empty()
    })
    .unwrap_or_else(|| {
        panic!(
            "the restarted replica did not sweep {:?}\n{}",
            cluster.uploads_in_progress(),
            cluster.report()
        )
    });
    let swept = restarted_at.elapsed();
    let swept_count = cluster.replicas[victim]
        .metric(r#"s3ftp_multipart_uploads_total{event="swept"}"#)
        .unwrap_or(0.0);
    assert_eq!(swept_count as usize, killed.len(), "swept uploads counted");

    // HAProxy sends it sessions again.
    let name = cluster.replicas[victim].name;
    cluster
        .balancer
        .wait_server(name, "up", Duration::from_secs(10), |s| s.is_up());
    let back_up = restarted_at.elapsed();
    let mut back = Vec::new();
    for i in 0..6 {
        let file = format!("back-{i}.bin");
        cluster.assert_ok(
            &format!("session {i} after the restart"),
            &small_upload(&file),
        );
        back.push(file);
        if cluster.replicas[victim]
            .metric("s3ftp_sessions_total")
            .is_some_and(|n| n >= 1.0)
        {
            break;
        }
    }
    assert!(
        cluster.replicas[victim].metric("s3ftp_sessions_total") >= Some(1.0),
        "the restarted replica got no session\n{}",
        cluster.report()
    );
    for file in &back {
        cluster.assert_stored(file, small.len(), &small_sha);
    }
    let mut want: Vec<String> = stored
        .into_iter()
        .chain((0..10).map(|i| format!("after-{i}.bin")))
        .chain(back.iter().cloned())
        .collect();
    want.sort();
    assert_eq!(cluster.tree(), want, "the bucket holds something else");

    let stat = cluster.balancer.server(name);
    let why = cluster
        .balancer
        .transitions()
        .into_iter()
        .find(|t| t.contains(&format!("/{name} is DOWN")))
        .unwrap_or_default();
    let why = why
        .split(", check duration")
        .next()
        .unwrap_or_default()
        .to_string();
    let (retries, redispatches): (u64, u64) = REPLICAS
        .iter()
        .map(|(n, _)| cluster.balancer.server(n))
        .fold((0, 0), |(a, b), s| (a + s.retries, b + s.redispatches));
    eprintln!(
        "replica killed: {name} (SIGKILL) held {} of {} uploads of 20 MiB, which failed \
         (curl exit codes {:?}); HAProxy marked it down {} after the kill ({why}); {} sessions \
         during and after all succeeded ({retries} connects retried, {redispatches} \
         redispatched); the replica started again swept {} multipart uploads within {} \
         and was up again in HAProxy {} after the start; sessions served {:?}, HAProxy total {} to {name}",
        killed.len(),
        uploads.len(),
        killed.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        ms(taken_out),
        after_runs.len() + back.len(),
        swept_count,
        ms(swept),
        ms(back_up),
        cluster.sessions_served(),
        stat.total,
    );
}

// ---------------------------------------------------------------------------
// A session between two commands when its replica drains
// ---------------------------------------------------------------------------

/// A client that has logged in through the balancer and opened its passive
/// data connection when its replica gets SIGTERM, and sends STOR a moment
/// later (any client between two commands: over a WAN each command takes a
/// round trip), is on a draining replica and must be let finish, as the
/// rolling restart asks (issue 14: no upload lost, no client error).
///
/// Today the server tells every session that waits for its next command
/// `421 Server shutting down.` at SIGTERM and closes it, logged in or not,
/// data connection open or not (README: "Idle sessions are told 421 at
/// once"). Under load this fails real uploads: with the rolling restart
/// below run by 8 curl clients uploading 2 MiB without a rate limit, 1 to 6
/// uploads (of 76 to 130) failed with that 421 in 21 of 22 runs, answered
/// to EPSV's next command, TYPE I, PASS or STOR itself. The rolling restart
/// test's gentler load (3 clients at 4 MiB/s, so a session spends ~1% of
/// its time between commands on loopback) rarely meets it; clients over a
/// WAN, where every command costs a round trip, would meet it often.
#[test]
fn a_session_between_commands_when_its_replica_drains_still_uploads() {
    let _serial = serial();
    let cluster = Cluster::start(&[]);
    let body = content(300_000, 7);
    let replica = block_on(async {
        let (mut c, on) = cluster.login_elsewhere(None).await;
        let mut data = c.data().await;
        let replica = &cluster.replicas[on];
        replica.signal(libc::SIGTERM);
        // SIGTERM taken: /readyz says 503, or the process is already gone.
        wait_until(Duration::from_secs(5), || {
            matches!(replica.http("/readyz"), Some((503, _)) | None)
        })
        .expect("/readyz still 200 after SIGTERM");
        let sent =
            tokio::io::AsyncWriteExt::write_all(&mut c.writer, b"STOR between.bin\r\n").await;
        let answer = match sent {
            Ok(()) => c.try_reply().await,
            Err(_) => None,
        };
        assert!(
            matches!(answer, Some((150, _))),
            "a logged-in session with its data connection open, on a replica that had just \
             got SIGTERM, was answered {answer:?} to its STOR instead of being let finish its \
             upload (sessions between two commands are told 421 and closed at SIGTERM)\n{}",
            replica.tail()
        );
        tokio::io::AsyncWriteExt::write_all(&mut data, &body)
            .await
            .expect("send the upload");
        tokio::io::AsyncWriteExt::shutdown(&mut data)
            .await
            .expect("end the upload");
        drop(data);
        let (code, text) = c.reply().await;
        assert_eq!(code, 226, "{text}");
        on
    });
    let status = {
        let mut cluster = cluster;
        let status = cluster.replicas[replica].wait_exit(Duration::from_secs(20));
        assert_eq!(cluster.read("between.bin"), Some(body));
        status
    };
    assert!(status.success(), "{status}");
}

// ---------------------------------------------------------------------------
// A rolling restart under load
// ---------------------------------------------------------------------------

/// One client upload of the rolling restart.
struct Attempt {
    name: String,
    len: usize,
    sha: String,
    started: Instant,
    ended: Instant,
    run: Run,
}

/// Uploads 2 MiB files at 4 MiB/s with curl, one login each, until `stop`.
fn uploader(
    addr: SocketAddr,
    client: usize,
    work: &Work,
    stop: &AtomicBool,
    done: &std::sync::atomic::AtomicUsize,
) -> Vec<Attempt> {
    let base = content(2 * MIB, 500 + client as u64);
    let mut attempts = Vec::new();
    // Staggered, so that uploads end about every 180 ms, not three at once.
    thread::sleep(Duration::from_millis(180) * client as u32);
    for seq in 0u64.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut data = base.clone();
        data[..8].copy_from_slice(&seq.to_le_bytes());
        let name = format!("roll-{client}-{seq:03}.bin");
        let local = work.write(&format!("roll-{client}.bin"), &data);
        let url = format!("ftp://{addr}/{name}");
        let started = Instant::now();
        let run = curl(USER, &["--limit-rate", "4M", "-T", &local, &url]);
        if run.status.success() {
            done.fetch_add(1, Ordering::SeqCst);
        }
        attempts.push(Attempt {
            name,
            len: data.len(),
            sha: sha256(&data),
            started,
            ended: Instant::now(),
            run,
        });
    }
    attempts
}

/// What one replica's restart looked like, from its SIGTERM.
struct Restart {
    name: &'static str,
    /// An upload was streaming on it when SIGTERM was sent.
    busy: bool,
    /// When /readyz answered 503 (None: the process was gone first).
    not_ready: Option<Duration>,
    down: Duration,
    exited: Duration,
    listening: Duration,
    up: Duration,
    traffic: Duration,
    /// Uploads its old process finished after SIGTERM.
    drained: usize,
}

/// SIGTERM to `replica` (once an upload streams on it), /readyz 503, the
/// balancer taking it out, its exit, a new process, the balancer taking it
/// back and sending it a session.
fn roll(replica: &mut Replica, balancer: &Balancer) -> Restart {
    let limit = Duration::from_secs(10);
    let busy = wait_until(Duration::from_secs(5), || {
        replica.metric("s3ftp_upload_budget_used_bytes") > Some(0.0)
    })
    .is_some();
    let run = replica.runs;
    let t0 = Instant::now();
    replica.signal(libc::SIGTERM);
    let mut not_ready = None;
    wait_until(limit, || match replica.http("/readyz") {
        Some((503, _)) => {
            not_ready = Some(t0.elapsed());
            true
        }
        None => true,
        Some(_) => false,
    })
    .expect("/readyz still 200 after SIGTERM");
    balancer.wait_server(replica.name, "down", limit, |s| s.is_down());
    let down = t0.elapsed();
    let exit = replica.wait_exit(Duration::from_secs(20));
    let exited = t0.elapsed();
    assert!(
        exit.success(),
        "{} exited with {exit} after SIGTERM:\n{}",
        replica.name,
        replica.log(run)
    );
    replica.restart(&[]);
    let listening = t0.elapsed();
    balancer.wait_server(replica.name, "up", limit, |s| s.is_up());
    let up = t0.elapsed();
    wait_until(limit, || {
        replica.metric("s3ftp_sessions_total") >= Some(1.0)
    })
    .expect("the restarted replica got no session");
    let traffic = t0.elapsed();
    let records = replica.records(run);
    let drained = records
        .iter()
        .skip_while(|r| r["message"] != "shutting down")
        .filter(|r| r["message"] == "transfer" && r["command"] == "STOR" && r["reply"] == "226")
        .count();
    Restart {
        name: replica.name,
        busy,
        not_ready,
        down,
        exited,
        listening,
        up,
        traffic,
        drained,
    }
}

/// Three clients upload 2 MiB files at 4 MiB/s (a new login each) without
/// pause while each replica in turn gets SIGTERM (once an upload streams on
/// it), drains, exits and is started again. No upload fails, every one is
/// whole in the bucket, the draining replicas finish the uploads they had,
/// and the interruption clients see (the longest time without a finished
/// upload, and the slowest upload) is printed with each replica's timeline.
/// Sessions caught between two commands are the subject of
/// `a_session_between_commands_when_its_replica_drains_still_uploads`.
#[test]
fn a_rolling_restart_under_load_loses_no_upload_and_fails_no_client() {
    let _serial = serial();
    let mut cluster = Cluster::start(&[]);
    let work = Work::new();
    let addr = cluster.balancer.addr();
    let stop = AtomicBool::new(false);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let Cluster {
        replicas, balancer, ..
    } = &mut cluster;
    let (attempts, restarts, window) = thread::scope(|s| {
        let clients: Vec<_> = (0..3)
            .map(|client| {
                let (work, stop, done) = (&work, &stop, &done);
                s.spawn(move || uploader(addr, client, work, stop, done))
            })
            .collect();
        wait_until(Duration::from_secs(30), || done.load(Ordering::SeqCst) >= 6)
            .expect("the clients' first uploads did not finish");
        let first = Instant::now();
        let restarts: Vec<Restart> = replicas.iter_mut().map(|r| roll(r, balancer)).collect();
        let last = Instant::now();
        // Some more uploads on the restarted cluster, then stop.
        let more = done.load(Ordering::SeqCst) + 3;
        wait_until(Duration::from_secs(20), || {
            done.load(Ordering::SeqCst) >= more
        });
        stop.store(true, Ordering::SeqCst);
        let attempts: Vec<Attempt> = clients
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect();
        (attempts, restarts, (first, last))
    });

    let failed: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| !a.run.status.success())
        .collect();
    let mut ends: Vec<Instant> = attempts
        .iter()
        .filter(|a| a.run.status.success())
        .map(|a| a.ended)
        .collect();
    ends.sort();
    let gap = |from: Instant, to: Instant| {
        ends.windows(2)
            .filter(|w| w[1] >= from && w[0] <= to)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default()
    };
    let (first, last) = window;
    let interruption = gap(first, last);
    let before = gap(ends[0], first);
    let mut durations: Vec<Duration> = attempts
        .iter()
        .filter(|a| a.ended >= first && a.started <= last)
        .map(|a| a.ended - a.started)
        .collect();
    durations.sort();
    let (slowest, median) = (
        durations.last().copied().unwrap_or_default(),
        durations
            .get(durations.len() / 2)
            .copied()
            .unwrap_or_default(),
    );
    let (retries, redispatches): (u64, u64) = REPLICAS
        .iter()
        .map(|(n, _)| cluster.balancer.server(n))
        .fold((0, 0), |(a, b), s| (a + s.retries, b + s.redispatches));
    for r in &restarts {
        eprintln!(
            "rolling restart: {}: SIGTERM {}; /readyz 503 after {}; HAProxy marked it down \
             after {}; exited after {} ({} uploads finished while draining); new process \
             listening after {}; up after {}; first session after {}",
            r.name,
            if r.busy {
                "during an upload"
            } else {
                "with no upload streaming"
            },
            r.not_ready.map_or("(exited first)".into(), ms),
            ms(r.down),
            ms(r.exited),
            r.drained,
            ms(r.listening),
            ms(r.up),
            ms(r.traffic),
        );
    }
    for t in cluster.balancer.transitions() {
        if t.contains(" is DOWN") {
            let t = t.split(", check duration").next().unwrap_or(&t);
            eprintln!("rolling restart: HAProxy: {t}");
        }
    }
    eprintln!(
        "rolling restart: {} uploads of 2 MiB by 3 clients, {} failed, over {:.1} s; \
         the restart took {:.1} s; longest gap between finished uploads during it {} \
         ({} before it); uploads running during it took {} (median) to {} (slowest); \
         HAProxy retried {retries} connects and redispatched {redispatches}; sessions \
         served {:?}",
        attempts.len(),
        failed.len(),
        (attempts.iter().map(|a| a.ended).max().unwrap() - attempts[0].started).as_secs_f64(),
        (last - first).as_secs_f64(),
        ms(interruption),
        ms(before),
        ms(median),
        ms(slowest),
        cluster.sessions_served(),
    );

    assert!(
        failed.is_empty(),
        "{} uploads failed during the rolling restart:\n{}\n{}",
        failed.len(),
        failed
            .iter()
            .map(|a| format!(
                "--- {} ({}) ---\n{}",
                a.name,
                a.run.status,
                stderr_tail(&a.run)
            ))
            .collect::<Vec<_>>()
            .join("\n"),
        cluster.report()
    );
    assert!(
        restarts.iter().map(|r| r.drained).sum::<usize>() >= 1,
        "no draining replica finished an upload it had"
    );
    for r in restarts.iter().filter(|r| r.busy && r.drained > 0) {
        assert!(
            r.not_ready.is_some(),
            "{}: /readyz never said 503 while it drained",
            r.name
        );
    }
    let mut want: Vec<String> = attempts.iter().map(|a| a.name.clone()).collect();
    want.sort();
    assert_eq!(cluster.tree(), want, "the bucket holds something else");
    for a in &attempts {
        cluster.assert_stored(&a.name, a.len, &a.sha);
    }
    assert_eq!(cluster.uploads_in_progress(), Vec::<String>::new());
}
