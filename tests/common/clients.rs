//! Harness for real FTP client programs (tests/real_clients.rs and
//! tests/client_matrix.rs): the built `s3ftp` binary as a child process on a
//! local folder or a fresh S3 bucket, a process runner that kills what
//! outlives its time limit, a client-side scratch folder, and checks of what
//! the store holds, read from the folder or the bucket directly (never
//! through the server under test).
//!
//! A missing client program fails the test with a message saying to run
//! scripts/test.sh, which installs it; nothing is skipped silently.

#![allow(dead_code)]

use std::fs;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::launch::{listening_address, Launch};
use super::s3::S3Server;
#[allow(unused_imports)]
pub use super::store::{s3_key, Store, STAGING};
use super::{cheap_hash, sha256, PASSWORD, USER};

pub const MIB: usize = 1024 * 1024;
/// How long the binary may take to accept connections.
pub const START_WAIT: Duration = Duration::from_secs(10);
/// How long the store may take to drop a staged upload once idle.
pub const PARTIAL_WAIT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------
// Client programs
// ---------------------------------------------------------------------------

/// Fails (never skips) when a client program is missing or does not run
/// `--version`.
pub fn require(tool: &str) {
    let works = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        works,
        "`{tool}` is needed by the real-client tests but is missing or does not run; \
         run the test suite through scripts/test.sh, which installs it"
    );
}

/// Fails (never skips) when `tool` is not on PATH (for programs without a
/// `--version`).
pub fn require_on_path(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is needed by the real-client tests but is not on PATH; run the test suite \
         through scripts/test.sh, which installs it"
    );
}

/// A finished child process.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    })
}

/// Runs `cmd` to completion, killing it if it outlives `limit`.
pub fn run(cmd: Command, limit: Duration) -> Run {
    run_fed(cmd, Stdio::null(), limit)
}

/// [`run`] with `stdin` as the program's standard input.
pub fn run_fed(mut cmd: Command, stdin: Stdio, limit: Duration) -> Run {
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!("{shown} still running after {limit:?}; killed. stderr:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    }
}

/// Runs `cmd` with `input` on its standard input, killing it after `limit`.
pub fn run_with_input(cmd: Command, input: &str, limit: Duration) -> Run {
    let work = Work::new();
    let path = work.write("stdin.txt", input.as_bytes());
    let file = fs::File::open(path).expect("open input");
    run_fed(cmd, Stdio::from(file), limit)
}

/// Asserts a client program succeeded; the message holds its output and the
/// server's log.
pub fn assert_ran(what: &str, r: &Run, server: &Server) {
    assert!(
        r.status.success(),
        "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- server stderr ---\n{}",
        r.status,
        r.stdout_text(),
        r.stderr,
        server.stderr()
    );
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Runs each listed `name: run(args...)` as two tests, `folder::name` and
/// `s3::name`, calling `run(args..., Backend::Folder)` and
/// `run(args..., Backend::S3)`: the process-server twin of `on_every_backend!`.
#[macro_export]
macro_rules! on_folder_and_s3 {
    ($($name:ident: $run:ident($($arg:expr),* $(,)?)),* $(,)?) => {
        mod folder {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    super::$run($($arg,)* $crate::common::clients::Backend::Folder)
                }
            )*
        }
        mod s3 {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    super::$run($($arg,)* $crate::common::clients::Backend::S3)
                }
            )*
        }
    };
}

/// Runs a future to completion on a runtime shared by the test binary (for
/// the async S3 helpers and async clients from synchronous tests). Never
/// call it from inside another `block_on`.
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("tokio runtime")
        })
        .block_on(future)
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// Which store the server under test writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A fresh temporary folder: `S3FTP_MOUNTS=/=fs://FOLDER`.
    Folder,
    /// A fresh bucket on the shared loopback S3 server (Garage, or the one
    /// named by S3FTP_TEST_S3_ENDPOINT), mounted under [`S3_PREFIX`].
    S3,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Folder => "the local folder",
            Backend::S3 => "S3",
        }
    }
}

/// The `s3ftp` binary running as a child process.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub store: Store,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    /// Its variables, to start it again alike.
    launch: Launch,
    _tmp: tempfile::TempDir,
}

/// S3FTP_USERS with alice as the only user.
fn alice() -> String {
    format!(
        r#"[{{"name":"{USER}","password":"{}"}}]"#,
        cheap_hash(PASSWORD)
    )
}

impl Server {
    /// A server on a fresh local folder whose only user is alice (password
    /// [`PASSWORD`]).
    pub fn with_alice() -> Server {
        Server::start(Some(&alice()))
    }

    /// A server on a fresh local folder whose only user is alice, with extra
    /// S3FTP_* variables.
    pub fn with_alice_and(extra: &[(&str, String)]) -> Server {
        Server::start_with(Some(&alice()), extra)
    }

    /// A server on `backend` whose only user is alice, with extra variables.
    pub fn alice_on(backend: Backend, extra: &[(&str, String)]) -> Server {
        Server::launch(backend, Some(&alice()), extra)
    }

    /// `users` is the value of S3FTP_USERS, or None to leave it unset.
    pub fn start(users: Option<&str>) -> Server {
        Server::start_with(users, &[])
    }

    pub fn start_with(users: Option<&str>, extra: &[(&str, String)]) -> Server {
        Server::launch(Backend::Folder, users, extra)
    }

    pub fn launch(backend: Backend, users: Option<&str>, extra: &[(&str, String)]) -> Server {
        let store = match backend {
            Backend::Folder => Store::folder(),
            Backend::S3 => Store::S3 {
                bucket: S3Server::shared().fresh_bucket_blocking(),
            },
        };
        Server::on(store, users, extra)
    }

    /// A server on `store` (one a server used before, say).
    fn on(store: Store, users: Option<&str>, extra: &[(&str, String)]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let launch = Launch::new(store.mount()).users(users).vars(extra);
        let (stdout_path, stderr_path) = (tmp.path().join("stdout"), tmp.path().join("stderr"));
        let mut server = Server {
            child: spawn(&launch, &stdout_path, &stderr_path),
            port: 0,
            store,
            stdout_path,
            stderr_path,
            launch,
            _tmp: tmp,
        };
        server.await_listening(0);
        server
    }

    /// Kills the process with SIGKILL (it cleans up nothing) and starts a
    /// new one, with alice and `extra` variables, on the same bucket. Only
    /// for S3 servers ([`Server::restart`] works on any store).
    pub fn kill_and_restart(&mut self, extra: &[(&str, String)]) {
        assert!(
            matches!(self.store, Store::S3 { .. }),
            "kill_and_restart keeps only an S3 store"
        );
        self.kill_hard();
        *self = Server::on(self.store.clone(), Some(&alice()), extra);
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would:
    /// no clean-up of any kind runs.
    pub fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// Starts the binary again on the same store and variables (on a fresh
    /// port), after [`Server::kill_hard`] or an exit. Output is appended,
    /// so the log files hold every run.
    pub fn restart(&mut self) {
        let seen = fs::metadata(&self.stdout_path).map_or(0, |m| m.len());
        self.child = spawn(&self.launch, &self.stdout_path, &self.stderr_path);
        self.await_listening(seen);
    }

    /// Waits for the run that wrote past `seen` bytes of standard output
    /// to say where it listens and to greet there.
    fn await_listening(&mut self, seen: u64) {
        self.port = self.reported_port(seen).port();
        if let Err(e) = self.wait_ready() {
            panic!("{e}");
        }
    }

    /// The address this run printed, past the first `seen` bytes of its
    /// standard output.
    fn reported_port(&mut self, seen: u64) -> SocketAddr {
        let deadline = Instant::now() + START_WAIT;
        loop {
            let out = fs::read(&self.stdout_path).unwrap_or_default();
            let this_run = String::from_utf8_lossy(out.get(seen as usize..).unwrap_or_default());
            if let Some(addr) = this_run.lines().find_map(listening_address) {
                return addr;
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "s3ftp exited with {status} before listening; stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "s3ftp did not say where it listens within {START_WAIT:?}; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the port answers with a 220 greeting.
    fn wait_ready(&mut self) -> Result<(), String> {
        let addr = self.addr();
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!(
                    "s3ftp exited with {status} before accepting connections; stderr:\n{}",
                    self.stderr()
                ));
            }
            if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("read timeout");
                let mut greeting = String::new();
                let _ = BufReader::new(stream).read_line(&mut greeting);
                if greeting.starts_with("220") {
                    return Ok(());
                }
                return Err(format!(
                    "port {} answered {greeting:?} instead of a 220 greeting; stderr:\n{}",
                    self.port,
                    self.stderr()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "s3ftp did not accept connections on {addr} within {START_WAIT:?}; \
                     stderr:\n{}",
                    self.stderr()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn url(&self, path: &str) -> String {
        format!("ftp://127.0.0.1:{}/{path}", self.port)
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The mounted folder (`/` of the FTP tree) of a local-folder server.
    pub fn root(&self) -> &Path {
        self.store
            .folder_path()
            .unwrap_or_else(|| panic!("the server stores in {}, not a folder", self.describe()))
    }

    // -- What the store holds ------------------------------------------------

    /// The bytes of the file at `path` of the FTP tree, read from the folder
    /// or the bucket; None when there is no such file.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        block_on(self.store.read(path))
    }

    /// Whether `path` is a directory in the store (S3: a marker or any key
    /// under its prefix).
    pub fn is_dir(&self, path: &str) -> bool {
        block_on(self.store.is_dir(path))
    }

    /// Asserts the file at `path` holds exactly `expected`.
    pub fn assert_file(&self, path: &str, expected: &[u8]) {
        let got = self
            .read(path)
            .unwrap_or_else(|| panic!("{path} is not stored in {}", self.describe()));
        assert_eq!(
            (got.len(), sha256(&got)),
            (expected.len(), sha256(expected)),
            "{path} in {} differs from what was uploaded",
            self.describe()
        );
    }

    /// Asserts nothing (no file, no directory) is stored at `path`.
    pub fn assert_absent(&self, path: &str) {
        assert!(
            self.read(path).is_none(),
            "{path} should not exist any more in {}",
            self.describe()
        );
        assert!(
            !self.is_dir(path),
            "directory {path} should not exist any more in {}",
            self.describe()
        );
    }

    pub fn assert_dir(&self, path: &str) {
        assert!(
            self.is_dir(path),
            "directory {path} is not in {}",
            self.describe()
        );
    }

    /// Every file (`a/b.txt`) and directory (`a/`) of the store, sorted (see
    /// [`Store::tree`]).
    pub fn tree(&self) -> Vec<String> {
        block_on(self.store.tree())
    }

    /// Asserts the store holds exactly `expected` (see [`Server::tree`]):
    /// nothing stray, temporary or half-written.
    pub fn assert_tree(&self, expected: &[&str]) {
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(
            self.tree(),
            want,
            "{} does not hold exactly the expected files and folders",
            self.describe()
        );
    }

    /// Nothing half-written is left: the local folder's staging area holds no
    /// staging file ([`super::staging_files`]), the bucket has no multipart upload in progress. Waits a
    /// little for the clean-up of an aborted upload.
    pub fn assert_no_partials(&self) {
        let deadline = Instant::now() + PARTIAL_WAIT;
        loop {
            let left = block_on(self.store.partials());
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "partial uploads left in {} after {PARTIAL_WAIT:?}: {left:?}",
                self.describe()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Names the store in messages.
    pub fn describe(&self) -> String {
        self.store.describe()
    }

    // -- curl ------------------------------------------------------------------

    /// Runs curl as `user`; the caller checks the outcome.
    pub fn curl_as(&self, user: &str, password: &str, args: &[&str]) -> Run {
        require("curl");
        let mut cmd = Command::new("curl");
        // -q first: ignore any ~/.curlrc. -v: the FTP exchange, shown on failure.
        cmd.args(["-q", "--silent", "--show-error", "--verbose"])
            .args(["--noproxy", "*", "--max-time", "30"])
            .arg("--user")
            .arg(format!("{user}:{password}"))
            .args(args);
        run(cmd, Duration::from_secs(40))
    }

    /// Runs curl as alice and asserts it succeeded; returns its stdout.
    pub fn curl(&self, args: &[&str]) -> Vec<u8> {
        self.curl_ok(USER, PASSWORD, args)
    }

    pub fn curl_ok(&self, user: &str, password: &str, args: &[&str]) -> Vec<u8> {
        self.curl_run(user, password, args).stdout
    }

    /// Runs curl and asserts it succeeded; returns the whole run (stderr holds
    /// the verbose FTP exchange).
    pub fn curl_run(&self, user: &str, password: &str, args: &[&str]) -> Run {
        let r = self.curl_as(user, password, args);
        assert!(
            r.status.success(),
            "curl {args:?} failed with {}\n--- curl stderr ---\n{}\n--- server stderr ---\n{}",
            r.status,
            r.stderr,
            self.stderr()
        );
        r
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `launch`'s variables. Output is appended, so
/// after a restart the files hold both runs.
fn spawn(launch: &Launch, stdout: &Path, stderr: &Path) -> Child {
    let append = |path: &Path| {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("log file")
    };
    launch
        .command(Path::new(env!("CARGO_BIN_EXE_s3ftp")))
        .stdout(append(stdout))
        .stderr(append(stderr))
        .spawn()
        .expect("start the s3ftp binary")
}

/// Variables for a server with a self-signed certificate (FTPS).
pub fn tls_env(extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![("S3FTP_TLS_SELF_SIGNED", "true".to_string())];
    env.extend_from_slice(extra);
    env
}

// ---------------------------------------------------------------------------
// The client side
// ---------------------------------------------------------------------------

/// A scratch folder for the client side, with a file helper.
pub struct Work(tempfile::TempDir);

impl Work {
    pub fn new() -> Work {
        Work(tempfile::tempdir().expect("tempdir"))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// Writes `data` to `name` (parent folders created); returns the path.
    pub fn write(&self, name: &str, data: &[u8]) -> String {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create local folder");
        }
        fs::write(&path, data).expect("write local file");
        path_str(&path)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name))
            .unwrap_or_else(|e| panic!("read local file {}: {e}", self.path(name).display()))
    }
}

impl Default for Work {
    fn default() -> Work {
        Work::new()
    }
}

pub fn path_str(path: &Path) -> String {
    path.to_str().expect("UTF-8 temp path").to_string()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// True if some `ls -l`-style (or NLST) line names `name`.
pub fn lists(listing: &str, name: &str) -> bool {
    listing
        .lines()
        .any(|l| l.trim_end() == name || l.trim_end().ends_with(&format!(" {name}")))
}

/// Asserts curl's verbose log shows it opened data connections with `used`
/// and never fell back to any of `not`.
pub fn assert_data_command(run: &Run, used: &str, not: &[&str]) {
    let sent = |cmd: &str| {
        run.stderr
            .lines()
            .any(|l| l.starts_with(&format!("> {cmd}")))
    };
    assert!(sent(used), "curl did not send {used}:\n{}", run.stderr);
    for other in not {
        assert!(!sent(other), "curl fell back to {other}:\n{}", run.stderr);
    }
}

pub fn assert_same(what: &str, got: &[u8], expected: &[u8]) {
    assert_eq!(
        (got.len(), sha256(got)),
        (expected.len(), sha256(expected)),
        "{what}: content differs"
    );
}
