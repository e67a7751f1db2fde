//! HAProxy (Debian's `haproxy` package, installed by scripts/test.sh) in
//! front of several s3ftp replicas, as tests/replicas.rs runs it: one TCP
//! frontend for the control port, balanced round-robin over the replicas
//! with a PROXY v2 header and an HTTP check of each replica's `/readyz`, and
//! one frontend per replica for its passive port range, forwarded to that
//! replica only (same port numbers), with a PROXY v2 header too. Every
//! connection to a replica leaves from the balancer's own address, so the
//! replicas can trust that address alone.
//!
//! HAProxy runs in the foreground (`-db`) as a child process, killed when
//! the [`Balancer`] is dropped; its configuration, its log (TCP log lines on
//! standard error) and its admin socket live in a temporary folder. The
//! admin socket's `show stat` says what HAProxy thinks of each replica
//! ([`Balancer::server`]). A missing `haproxy` fails the test with a message
//! saying to run scripts/test.sh; nothing is skipped.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::ops::RangeInclusive;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The backend that balances control connections (a name in `show stat`).
pub const CONTROL_BACKEND: &str = "replicas";
/// How long HAProxy may take to start and see every replica healthy.
const START_WAIT: Duration = Duration::from_secs(15);
/// Interval of the `/readyz` checks: a replica is out after two failed
/// checks and back after one good one.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// One replica as the balancer sees it.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its server name in HAProxy (`r1`).
    pub name: String,
    /// Its control listener.
    pub control: SocketAddr,
    /// The port of its monitoring listener (same address), for `/readyz`.
    pub health_port: u16,
    /// Its passive port range (`S3FTP_PASV_PORTS`): the balancer listens on
    /// the same ports and forwards them to this replica only.
    pub passive: RangeInclusive<u16>,
}

/// What `show stat` says of one server.
#[derive(Clone, Debug, Default)]
pub struct ServerStat {
    /// `UP`, `DOWN`, `UP 1/2` (going down), `DOWN 1/1` (going up), `MAINT`...
    pub status: String,
    /// The last check's result (`L7OK`, `L7STS` for a 503, `L4CON`...).
    pub check_status: String,
    /// Connections open to it now, and in all.
    pub current: u64,
    pub total: u64,
    /// Connection attempts to it that were retried, and redispatched to
    /// another server.
    pub retries: u64,
    pub redispatches: u64,
}

impl ServerStat {
    pub fn is_up(&self) -> bool {
        self.status == "UP"
    }

    pub fn is_down(&self) -> bool {
        self.status == "DOWN"
    }
}

/// Fails (never skips) when HAProxy is missing.
pub fn haproxy_bin() -> PathBuf {
    let on_path = Command::new("sh")
        .args(["-c", "command -v haproxy"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let bin = on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/haproxy"));
    let works = Command::new(&bin)
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        works,
        "`haproxy` is needed by the load-balancer tests but is missing or does not run; \
         run the test suite through scripts/test.sh, which installs it"
    );
    bin
}

/// The HAProxy configuration: the control frontend on `address:port`
/// balanced over `targets`, and each target's passive range on `address`.
pub fn config(address: Ipv4Addr, port: u16, targets: &[Target], admin_socket: &Path) -> String {
    let mut cfg = format!(
        "global
    maxconn 4096
    stats socket {socket} mode 600 level admin
    log stderr format raw local0 info

defaults
    mode tcp
    log global
    option tcplog
    # Longer than any transfer of the tests: a control connection is quiet
    # while its upload runs.
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A refused connect (a replica that stopped listening before its check
    # failed) is retried at once on another replica.
    retries 3
    option redispatch 1

frontend ftp
    bind {address}:{port}
    default_backend {CONTROL_BACKEND}

backend {CONTROL_BACKEND}
    balance roundrobin
    source {address}
    option httpchk GET /readyz
    # No on-marked-down shutdown-sessions: a replica taken out drains.
    default-server inter {inter}ms fall 2 rise 1 send-proxy-v2
",
        socket = admin_socket.display(),
        inter = CHECK_INTERVAL.as_millis(),
    );
    for t in targets {
        let _ = writeln!(
            cfg,
            "    server {} {} check port {}",
            t.name, t.control, t.health_port
        );
    }
    for t in targets {
        let _ = write!(
            cfg,
            "
frontend pasv_{name}
    bind {address}:{lo}-{hi}
    default_backend pasv_{name}

backend pasv_{name}
    source {address}
    # No port: the one the client connected to.
    server {name} {ip} send-proxy-v2
",
            name = t.name,
            lo = t.passive.start(),
            hi = t.passive.end(),
            ip = t.control.ip(),
        );
    }
    cfg
}

/// HAProxy running in the foreground.
pub struct Balancer {
    pub address: Ipv4Addr,
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Balancer {
    /// Writes the configuration, checks it (`haproxy -c`), starts HAProxy
    /// and waits until every target has passed a health check.
    pub fn start(address: Ipv4Addr, port: u16, targets: &[Target]) -> Balancer {
        let bin = haproxy_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg_path = dir.path().join("haproxy.cfg");
        let text = config(address, port, targets, &dir.path().join("admin.sock"));
        fs::write(&cfg_path, &text).expect("write haproxy.cfg");
        let check = Command::new(&bin)
            .arg("-c")
            .arg("-f")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .output()
            .expect("run haproxy -c");
        assert!(
            check.status.success(),
            "haproxy -c refused the configuration ({}):\n{}{}\n--- haproxy.cfg ---\n{text}",
            check.status,
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr),
        );
        let log = fs::File::create(dir.path().join("haproxy.log")).expect("log file");
        let child = Command::new(&bin)
            .arg("-f")
            .arg(&cfg_path)
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        let mut balancer = Balancer {
            address,
            port,
            child,
            dir,
        };
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(status) = balancer.child.try_wait().expect("try_wait") {
                panic!("haproxy exited with {status}:\n{}", balancer.log());
            }
            let ready = balancer.try_servers().is_some_and(|servers| {
                targets.iter().all(|t| {
                    servers
                        .iter()
                        .any(|(name, s)| *name == t.name && s.is_up() && s.check_status == "L7OK")
                })
            });
            if ready && TcpStream::connect((address, port)).is_ok() {
                return balancer;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy did not see every replica healthy within {START_WAIT:?}: {:?}\n{}",
                balancer.try_servers(),
                balancer.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The control address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.address, self.port))
    }

    /// HAProxy's log: one line per connection once it ends (client address,
    /// frontend, backend/server, timings, bytes, termination state), and
    /// its notices (servers going down and up).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    /// HAProxy's notices of servers going down and up, in order
    /// (`Server replicas/r1 is DOWN, reason: Layer7 wrong status, code: 503,
    /// ...`).
    pub fn transitions(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                l.starts_with("Server ") && (l.contains(" is DOWN") || l.contains(" is UP"))
            })
            .map(str::to_string)
            .collect()
    }

    /// `show stat` for the servers of the control backend, by name; None
    /// when the admin socket does not answer (yet).
    fn try_servers(&self) -> Option<Vec<(String, ServerStat)>> {
        let mut socket = UnixStream::connect(self.dir.path().join("admin.sock")).ok()?;
        socket.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        socket.write_all(b"show stat\n").ok()?;
        let mut out = String::new();
        socket.read_to_string(&mut out).ok()?;
        let mut lines = out.lines();
        let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        let column = |name: &str| header.iter().position(|h| *h == name);
        let (px, sv, status, check) = (
            column("pxname")?,
            column("svname")?,
            column("status")?,
            column("check_status")?,
        );
        let (scur, stot, wretr, wredis) = (
            column("scur")?,
            column("stot")?,
            column("wretr")?,
            column("wredis")?,
        );
        let number = |fields: &[&str], i: usize| -> u64 {
            fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        Some(
            lines
                .map(|l| l.split(',').collect::<Vec<_>>())
                .filter(|f| f.get(px) == Some(&CONTROL_BACKEND))
                .filter(|f| !matches!(f.get(sv), Some(&"BACKEND") | Some(&"FRONTEND") | None))
                .map(|f| {
                    let text = |i: usize| f.get(i).unwrap_or(&"").to_string();
                    let stat = ServerStat {
                        status: text(status),
                        check_status: text(check),
                        current: number(&f, scur),
                        total: number(&f, stot),
                        retries: number(&f, wretr),
                        redispatches: number(&f, wredis),
                    };
                    (text(sv), stat)
                })
                .collect(),
        )
    }

    /// What HAProxy thinks of the control server `name` now.
    pub fn server(&self, name: &str) -> ServerStat {
        self.try_servers()
            .and_then(|servers| servers.into_iter().find(|(n, _)| n == name))
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("haproxy's stats do not show {name}:\n{}", self.log()))
    }

    /// Waits until `pred` holds for server `name`; how long that took.
    pub fn wait_server(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        pred: impl Fn(&ServerStat) -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let stat = self.server(name);
            if pred(&stat) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "haproxy did not see {name} {what} within {limit:?} (last: {stat:?})\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
