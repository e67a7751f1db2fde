//! Real FTP client programs (curl, Python's ftplib, lftp, busybox, ncftp,
//! tnftp) against the built `s3ftp` binary, on loopback only, with a
//! local-folder mount so every upload can also be checked on disk. The
//! harness is tests/common/clients.rs. The round trips (login, upload,
//! listing, download, resume, rename, delete) are tests/client_matrix.rs's,
//! on both back ends; this file keeps what the matrix does not check.
//!
//! The clients must be installed: run the suite through `scripts/test.sh`,
//! which installs them when they are missing. A missing client makes these
//! tests fail, never pass silently.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::clients::{
    assert_data_command, assert_ran, assert_same, free_port, lists, path_str, require,
    require_on_path, run, run_with_input, text, tls_env, Backend, Server, Work, MIB,
};
use common::{content, sha256, PASSWORD, USER};

/// The line the binary prints when it makes up a user.
const GENERATED_PREFIX: &str = "No users configured: log in as user \"s3ftp\" with password \"";

/// A way for curl to open data connections.
struct Mode {
    /// The curl options selecting it.
    args: &'static [&'static str],
    /// The command curl must send to open data connections...
    used: &'static str,
    /// ...and the ones it must not (no silent fallback).
    not: &'static [&'static str],
}

const PORT: Mode = Mode {
    args: &["-P", "-", "--disable-eprt"],
    used: "PORT",
    not: &["EPRT", "EPSV", "PASV"],
};
/// Upload into a nested path, download, list (LIST and NLST) through one
/// curl data mode.
fn curl_round_trip(server: &Server, work: &Work, mode: &Mode, dir: &str, seed: u64) {
    let Mode {
        args: opts,
        used,
        not,
    } = mode;
    let mode = opts;
    let data = content(MIB + 4321, seed);
    let name = format!("{dir}/up.bin");
    let local = work.write(&format!("{seed}.up"), &data);
    let call = |extra: &[&str]| -> Vec<u8> {
        let args: Vec<&str> = opts.iter().chain(extra).copied().collect();
        let run = server.curl_run(USER, PASSWORD, &args);
        assert_data_command(&run, used, not);
        run.stdout
    };

    call(&["-T", &local, "--ftp-create-dirs", &server.url(&name)]);
    server.assert_file(&name, &data);
    server.assert_no_partials();

    let down = path_str(&work.path(&format!("{seed}.down")));
    call(&["-o", &down, &server.url(&name)]);
    assert_same(
        &format!("{mode:?} download"),
        &work.read(&format!("{seed}.down")),
        &data,
    );

    let listing = text(&call(&[&server.url(&format!("{dir}/"))]));
    assert!(
        lists(&listing, "up.bin") && listing.contains(&data.len().to_string()),
        "{mode:?} LIST of {dir}/ lacks up.bin and its size {}:\n{listing}",
        data.len()
    );
    let names = text(&call(&["--list-only", &server.url(&format!("{dir}/"))]));
    assert!(lists(&names, "up.bin"), "{mode:?} NLST of {dir}/:\n{names}");
}

// ---------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------

/// What the round trips in tests/client_matrix.rs do not check: the local
/// folder's staging folder is never listed (after an upload created it), and
/// downloading a deleted file is an error, not an empty download.
#[test]
fn curl_hides_the_staging_folder_and_fails_missing_downloads() {
    let server = Server::with_alice();
    let work = Work::new();
    let data = content(3 * MIB + 123, 1);
    let local = work.write("up.bin", &data);
    let url = server.url("a/b/c/file.bin");

    let up = server.curl_run(USER, PASSWORD, &["-T", &local, "--ftp-create-dirs", &url]);
    assert_data_command(&up, "EPSV", &["PASV", "EPRT", "PORT"]);
    server.assert_file("a/b/c/file.bin", &data);
    server.assert_no_partials();

    // The staging folder is never listed.
    let top = text(&server.curl(&[&server.url("")]));
    assert!(lists(&top, "a"), "LIST / lacks a:\n{top}");
    assert!(
        !top.contains(".s3ftp-partial"),
        "LIST / shows the staging folder:\n{top}"
    );
    let top = text(&server.curl(&["--list-only", &server.url("")]));
    assert!(
        !top.contains(".s3ftp-partial"),
        "NLST / shows the staging folder:\n{top}"
    );

    // Delete, then a download of the missing file is an error.
    server.curl(&["-Q", "DELE a/b/c/file.bin", &server.url("a/b/c/")]);
    server.assert_absent("a/b/c/file.bin");
    assert!(server.root().join("a/b/c").is_dir(), "a/b/c should remain");
    let down = path_str(&work.path("down.bin"));
    let r = server.curl_as(USER, PASSWORD, &["-o", &down, &url]);
    assert!(
        !r.status.success(),
        "downloading a deleted file succeeded:\n{}",
        r.stderr
    );
    server.assert_no_partials();
}

/// Active mode with PORT (--disable-eprt); curl's EPRT, EPSV and PASV round
/// trips are in tests/client_matrix.rs.
#[test]
fn curl_active_port() {
    let server = Server::with_alice();
    let work = Work::new();
    curl_round_trip(&server, &work, &PORT, "act/port", 3);
    server.assert_no_partials();
}

// ---------------------------------------------------------------------------
// The generated start-up user
// ---------------------------------------------------------------------------

/// With no users configured, the binary prints a user and password on stdout
/// and that login works with a real client (README's first command).
#[test]
fn generated_user_can_log_in() {
    let server = Server::start(None);
    let stdout = server.stdout();
    let line = stdout
        .lines()
        .find(|l| l.starts_with(GENERATED_PREFIX))
        .unwrap_or_else(|| {
            panic!(
                "stdout does not announce the generated user:\n{stdout}\nstderr:\n{}",
                server.stderr()
            )
        });
    let rest = &line[GENERATED_PREFIX.len()..];
    let password = &rest[..rest.find('"').expect("closing quote")];
    assert!(
        password.len() >= 12 && password.chars().all(|c| c.is_ascii_alphanumeric()),
        "odd generated password {password:?} in {line:?}"
    );
    assert!(
        stdout.contains(&format!(
            "s3ftp listening on ftp://127.0.0.1:{}",
            server.port
        )),
        "stdout does not give the address:\n{stdout}"
    );

    let work = Work::new();
    let data = content(256 * 1024 + 5, 5);
    let local = work.write("hello.bin", &data);
    let url = server.url("hello.bin");
    server.curl_ok("s3ftp", password, &["-T", &local, &url]);
    server.assert_file("hello.bin", &data);
    let down = path_str(&work.path("back.bin"));
    server.curl_ok("s3ftp", password, &["-o", &down, &url]);
    assert_same("generated user download", &work.read("back.bin"), &data);

    let wrong = server.curl_as("s3ftp", "not-the-password", &["-o", &down, &url]);
    assert!(
        !wrong.status.success(),
        "a wrong password was accepted:\n{}",
        wrong.stderr
    );
    server.assert_no_partials();
}

// ---------------------------------------------------------------------------
// Python ftplib
// ---------------------------------------------------------------------------

/// argv: host port user password root-folder-on-disk payload-file
const FTPLIB_SCRIPT: &str = r#"
import datetime, ftplib, io, os, re, sys

host, port, user, password, root, payload_file = sys.argv[1:7]
port = int(port)
with open(payload_file, 'rb') as f:
    payload = f.read()
half = len(payload) // 2

def check(cond, what):
    if not cond:
        raise AssertionError(what)

def disk(path):
    with open(os.path.join(root, path), 'rb') as f:
        return f.read()

def fetch(ftp, cmd, rest=None):
    buf = io.BytesIO()
    ftp.retrbinary(cmd, buf.write, rest=rest)
    return buf.getvalue()

ftp = ftplib.FTP()
ftp.connect(host, port, timeout=30)
ftp.login(user, password)
check(ftp.pwd() == '/', 'pwd after login: %r' % ftp.pwd())

# Nested folders, one level at a time.
ftp.mkd('py')
ftp.mkd('py/sub')
check(os.path.isdir(os.path.join(root, 'py', 'sub')), 'py/sub not on disk')
ftp.cwd('/py/sub')
check(ftp.pwd() == '/py/sub', 'pwd: %r' % ftp.pwd())

# Binary round trip.
ftp.storbinary('STOR big.bin', io.BytesIO(payload))
check(disk('py/sub/big.bin') == payload, 'big.bin on disk differs')
check(fetch(ftp, 'RETR big.bin') == payload, 'RETR big.bin differs')

# Listings and file facts.
facts = dict(ftp.mlsd())
check('big.bin' in facts, 'mlsd: %r' % facts)
check(facts['big.bin'].get('type') == 'file', 'mlsd type: %r' % facts['big.bin'])
check(int(facts['big.bin'].get('size', -1)) == len(payload), 'mlsd size: %r' % facts['big.bin'])
names = ftp.nlst()
check('big.bin' in names, 'nlst: %r' % names)
check(ftp.size('big.bin') == len(payload), 'size: %r' % ftp.size('big.bin'))
reply = ftp.sendcmd('MDTM big.bin')
m = re.fullmatch(r'213 (\d{14})(\.\d{1,3})?', reply)
check(m is not None, 'MDTM reply: %r' % reply)
when = datetime.datetime.strptime(m.group(1), '%Y%m%d%H%M%S').replace(tzinfo=datetime.timezone.utc)
skew = abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds())
check(skew < 300, 'MDTM %r is not the upload time (UTC): %s s off' % (reply, skew))

# Rename.
ftp.rename('big.bin', 'moved.bin')
names = ftp.nlst()
check('moved.bin' in names and 'big.bin' not in names, 'nlst after rename: %r' % names)
check(disk('py/sub/moved.bin') == payload, 'moved.bin on disk differs')
check(not os.path.exists(os.path.join(root, 'py/sub/big.bin')), 'big.bin still on disk')

# Interrupted upload resumed with REST + STOR.
ftp.storbinary('STOR resumed.bin', io.BytesIO(payload[:half]))
check(ftp.size('resumed.bin') == half, 'size of the first half: %r' % ftp.size('resumed.bin'))
rest_of_it = io.BytesIO(payload)
rest_of_it.seek(half)
ftp.storbinary('STOR resumed.bin', rest_of_it, rest=half)
check(ftp.size('resumed.bin') == len(payload), 'size after resume: %r' % ftp.size('resumed.bin'))
check(disk('py/sub/resumed.bin') == payload, 'resumed.bin on disk differs')
check(fetch(ftp, 'RETR resumed.bin') == payload, 'RETR resumed.bin differs')

# Download from an offset.
offset = 123457
check(fetch(ftp, 'RETR resumed.bin', rest=offset) == payload[offset:], 'RETR with REST differs')

# Active mode once.
ftp.set_pasv(False)
check(fetch(ftp, 'RETR moved.bin') == payload, 'active RETR differs')
ftp.set_pasv(True)

# ASCII: CRLF on the wire, LF on disk.
lines = ['alpha', 'beta gamma', '', 'delta\tepsilon', 'last']
ftp.storlines('STOR text.txt', io.BytesIO(('\n'.join(lines) + '\n').encode()))
on_disk = disk('py/sub/text.txt')
check(on_disk == ('\n'.join(lines) + '\n').encode(), 'text.txt on disk: %r' % on_disk)
got = []
ftp.retrlines('RETR text.txt', got.append)
check(got == lines, 'retrlines: %r' % got)
ftp.voidcmd('TYPE A')
conn = ftp.transfercmd('RETR text.txt')
wire = b''
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    wire += chunk
conn.close()
ftp.voidresp()
check(wire == ('\r\n'.join(lines) + '\r\n').encode(), 'TYPE A RETR wire bytes: %r' % wire)
check(fetch(ftp, 'RETR text.txt') == on_disk, 'TYPE I RETR of text.txt differs')

# A file that stays, for the Rust side to check.
ftp.cwd('/')
ftp.mkd('keep')
ftp.storbinary('STOR keep/final.bin', io.BytesIO(payload))

# Clean up: delete, rmd, quit.
for name in ['py/sub/moved.bin', 'py/sub/resumed.bin', 'py/sub/text.txt']:
    ftp.delete(name)
check(ftp.nlst('py/sub') == [], 'py/sub not empty: %r' % ftp.nlst('py/sub'))
ftp.rmd('py/sub')
ftp.rmd('py')
check(not os.path.exists(os.path.join(root, 'py')), 'py still on disk')
names = ftp.nlst()
check('py' not in names and 'keep' in names, 'nlst /: %r' % names)
ftp.quit()
print('OK')
"#;

/// A whole ftplib session; the script asserts as it goes and prints OK.
#[test]
fn python_ftplib_session() {
    require("python3");
    let server = Server::with_alice();
    let work = Work::new();
    let payload = content(2 * MIB, 6);
    let payload_file = work.write("payload.bin", &payload);
    let script = work.write("session.py", FTPLIB_SCRIPT.as_bytes());

    let mut cmd = Command::new("python3");
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .arg(&script)
        .arg("127.0.0.1")
        .arg(server.port.to_string())
        .arg(USER)
        .arg(PASSWORD)
        .arg(path_str(server.root()))
        .arg(&payload_file);
    let r = run(cmd, Duration::from_secs(60));
    assert!(
        r.status.success() && r.stdout_text().contains("OK"),
        "ftplib session failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- server stderr ---\n{}",
        r.status,
        r.stdout_text(),
        r.stderr,
        server.stderr()
    );

    server.assert_file("keep/final.bin", &payload);
    server.assert_absent("py");
    server.assert_no_partials();
}

// ---------------------------------------------------------------- FTPS

#[test]
fn curl_implicit_ftps() {
    let implicit = free_port();
    let server = Server::with_alice_and(&tls_env(&[(
        "S3FTP_TLS_IMPLICIT_LISTEN",
        format!("127.0.0.1:{implicit}"),
    )]));
    let work = Work::new();
    let body = content(300_000, 12);
    let local = work.write("imp.bin", &body);
    let url = format!("ftps://127.0.0.1:{implicit}/imp.bin");
    server.curl(&["--insecure", "-T", &local, &url]);
    server.assert_file("imp.bin", &body);
    let down = server.curl(&["--insecure", &url]);
    assert_eq!(sha256(&down), sha256(&body));
}

#[test]
fn required_tls_refuses_plaintext_login_and_clear_data() {
    let server = Server::with_alice_and(&tls_env(&[("S3FTP_REQUIRE_TLS", "true".to_string())]));
    let work = Work::new();
    let local = work.write("x.bin", b"secret payload");
    // Plaintext: the login is refused with 530 and a reason, nothing is stored.
    let plain = server.curl_as(USER, PASSWORD, &["-T", &local, &server.url("/x.bin")]);
    assert!(!plain.status.success());
    assert!(plain.stderr.contains("530"), "{}", plain.stderr);
    assert!(plain.stderr.contains("requires TLS"), "{}", plain.stderr);
    server.assert_absent("x.bin");
    // With TLS it works.
    server.curl(&[
        "--ssl-reqd",
        "--insecure",
        "-T",
        &local,
        &server.url("/x.bin"),
    ]);
    server.assert_file("x.bin", b"secret payload");
    // TLS on the control connection but PROT C: transfers are refused with 521.
    let script = format!(
        r#"
{preamble}ftp.prot_c()
try:
    ftp.retrbinary("RETR x.bin", lambda b: None)
    raise SystemExit("clear data connection was allowed")
except ftplib.error_perm as e:
    assert str(e).startswith("521"), e
ftp.prot_p()
got = bytearray()
ftp.retrbinary("RETR x.bin", got.extend)
assert bytes(got) == b"secret payload", got
ftp.quit()
print("OK")
"#,
        preamble = ftps_preamble(server.port)
    );
    python_ok(&work, &script);
}

#[test]
fn python_ftplib_over_explicit_ftps() {
    let server = Server::with_alice_and(&tls_env(&[]));
    let work = Work::new();
    let script = format!(
        r#"
import io, hashlib
{preamble}ftp.prot_p()
payload = bytes(range(256)) * 4096
ftp.mkd("sec")
ftp.storbinary("STOR sec/p.bin", io.BytesIO(payload))
got = bytearray()
ftp.retrbinary("RETR sec/p.bin", got.extend)
assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
names = [n for n, _ in ftp.mlsd("sec")]
assert names == ["p.bin"], names
assert "AUTH TLS" in ftp.sendcmd("FEAT")
try:
    ftp.sendcmd("CCC")
    raise SystemExit("CCC accepted")
except ftplib.error_perm as e:
    assert str(e).startswith("534"), e
ftp.quit()
print("OK")
"#,
        preamble = ftps_preamble(server.port)
    );
    python_ok(&work, &script);
    server.assert_no_partials();
}

#[test]
fn lftp_over_explicit_and_implicit_ftps() {
    require("lftp");
    let implicit = free_port();
    let server = Server::with_alice_and(&tls_env(&[(
        "S3FTP_TLS_IMPLICIT_LISTEN",
        format!("127.0.0.1:{implicit}"),
    )]));
    let work = Work::new();
    let body = content(400_000, 13);
    let local = work.write("l.bin", &body);
    let back = work.path("back.bin");
    let settings = "set ssl:verify-certificate no; set ftp:ssl-force true; \
                    set ftp:ssl-protect-data true; set net:max-retries 1; set net:timeout 10";
    for (url, name) in [
        (format!("ftp://127.0.0.1:{}", server.port), "explicit.bin"),
        (format!("ftps://127.0.0.1:{implicit}"), "implicit.bin"),
    ] {
        let commands = format!(
            "{settings}; open -u {USER},{PASSWORD} {url}; put {local} -o {name}; \
             get {name} -o {back}; cls -1; bye",
            back = path_str(&back)
        );
        let mut cmd = Command::new("lftp");
        cmd.arg("-c").arg(&commands);
        let r = run(cmd, Duration::from_secs(60));
        assert!(
            r.status.success(),
            "lftp {url} failed: {}\n{}\nserver: {}",
            r.status,
            r.stderr,
            server.stderr()
        );
        assert!(
            String::from_utf8_lossy(&r.stdout).contains(name),
            "listing shows {name}"
        );
        server.assert_file(name, &body);
        assert_eq!(sha256(&fs::read(&back).expect("downloaded")), sha256(&body));
        fs::remove_file(&back).expect("remove");
    }
}

/// Python lines that connect to `port` with FTP_TLS (certificate not
/// checked: it is self-signed) and log in as alice: `ftp` is the client.
fn ftps_preamble(port: u16) -> String {
    format!(
        r#"import ftplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ftp = ftplib.FTP_TLS(context=ctx)
ftp.connect("127.0.0.1", {port}, timeout=20)
ftp.login("{USER}", "{PASSWORD}")
"#
    )
}

/// Runs a Python script that must print OK.
fn python_ok(work: &Work, script: &str) {
    require("python3");
    let path = work.write("script.py", script.as_bytes());
    let mut cmd = Command::new("python3");
    cmd.arg(path);
    let r = run(cmd, Duration::from_secs(60));
    assert!(
        r.status.success() && String::from_utf8_lossy(&r.stdout).contains("OK"),
        "python failed: {}\nstdout: {}\nstderr: {}",
        r.status,
        String::from_utf8_lossy(&r.stdout),
        r.stderr
    );
}

/// Writes a fresh self-signed certificate and key; returns the SHA-256 of the
/// certificate (what a client sees).
fn write_certificate(cert: &Path, key: &Path) -> String {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("generate");
    fs::write(cert, generated.cert.pem()).expect("write cert");
    fs::write(key, generated.signing_key.serialize_pem()).expect("write key");
    sha256(generated.cert.der())
}

/// The SHA-256 of the certificate the server presents after AUTH TLS.
fn presented_certificate(work: &Work, port: u16) -> String {
    require("python3");
    let script = format!(
        r#"
import ftplib, hashlib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ftp = ftplib.FTP_TLS(context=ctx)
ftp.connect("127.0.0.1", {port}, timeout=20)
ftp.auth()
print("CERT", hashlib.sha256(ftp.sock.getpeercert(binary_form=True)).hexdigest())
ftp.quit()
"#
    );
    let path = work.write("cert.py", script.as_bytes());
    let mut cmd = Command::new("python3");
    cmd.arg(path);
    let r = run(cmd, Duration::from_secs(30));
    let out = String::from_utf8_lossy(&r.stdout).to_string();
    assert!(r.status.success(), "python: {out}\n{}", r.stderr);
    out.split_whitespace()
        .skip_while(|w| *w != "CERT")
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_sessions() {
    let work = Work::new();
    let (cert, key) = (work.path("cert.pem"), work.path("key.pem"));
    let first = write_certificate(&cert, &key);
    let server = Server::with_alice_and(&[
        ("S3FTP_TLS_CERT", path_str(&cert)),
        ("S3FTP_TLS_KEY", path_str(&key)),
    ]);
    assert_eq!(presented_certificate(&work, server.port), first);
    // A session open across the reload.
    let mut open = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(open.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    assert!(line.starts_with("220"), "{line}");

    let second = write_certificate(&cert, &key);
    assert_ne!(first, second);
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while presented_certificate(&work, server.port) != second {
        assert!(Instant::now() < deadline, "certificate not reloaded");
        thread::sleep(Duration::from_millis(100));
    }
    std::io::Write::write_all(&mut open, b"NOOP\r\n").expect("send");
    line.clear();
    reader.read_line(&mut line).expect("reply");
    assert!(line.starts_with("200"), "the open session survived: {line}");

    // A broken certificate file: the reload fails, the old one stays.
    fs::write(&cert, b"not a certificate").expect("break cert");
    Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(presented_certificate(&work, server.port), second);
    assert!(
        server.stderr().contains("TLS reload failed"),
        "{}",
        server.stderr()
    );
}

#[test]
fn required_tls_session_reuse_admits_resuming_clients_only() {
    let server =
        Server::with_alice_and(&tls_env(&[("S3FTP_TLS_REQUIRE_REUSE", "true".to_string())]));
    let work = Work::new();
    let body = content(200_000, 14);
    let local = work.write("r.bin", &body);
    // curl resumes the control connection's TLS session on data connections.
    server.curl(&[
        "--ssl-reqd",
        "--insecure",
        "-T",
        &local,
        &server.url("/r.bin"),
    ]);
    server.assert_file("r.bin", &body);
    // Python's ftplib does not: its data connection is refused, nothing stored.
    let script = format!(
        r#"
import io
{preamble}ftp.prot_p()
try:
    ftp.storbinary("STOR py.bin", io.BytesIO(b"x" * 1000))
    raise SystemExit("a data connection without session reuse was accepted")
except (ftplib.error_temp, OSError) as e:
    reply = str(e)
    if not reply.startswith("425"):
        # The data connection broke first; the 425 follows on the control one.
        try:
            ftp.getresp()
        except ftplib.error_temp as e2:
            reply = str(e2)
    assert reply.startswith("425") and "reuse" in reply, reply
ftp.close()
print("OK")
"#,
        preamble = ftps_preamble(server.port)
    );
    python_ok(&work, &script);
    server.assert_absent("py.bin");
    server.assert_no_partials();
}

/// A minimal blocking control connection for tests that race a signal.
struct StdControl {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl StdControl {
    fn login(port: u16) -> StdControl {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let mut c = StdControl {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        };
        assert!(c.reply().starts_with("220"));
        assert!(c.cmd(&format!("USER {USER}")).starts_with("331"));
        assert!(c.cmd(&format!("PASS {PASSWORD}")).starts_with("230"));
        c
    }

    fn reply(&mut self) -> String {
        let mut line = String::new();
        let _ = self.reader.read_line(&mut line);
        line
    }

    fn cmd(&mut self, line: &str) -> String {
        std::io::Write::write_all(&mut self.writer, format!("{line}\r\n").as_bytes())
            .expect("send");
        self.reply()
    }

    /// PASV, connect, and start an upload; returns the data connection.
    fn start_upload(&mut self, name: &str) -> TcpStream {
        let pasv = self.cmd("PASV");
        let inner = &pasv[pasv.find('(').expect("(") + 1..pasv.find(')').expect(")")];
        let n: Vec<u16> = inner
            .split(',')
            .map(|x| x.trim().parse().expect("number"))
            .collect();
        let data = TcpStream::connect(("127.0.0.1", n[4] * 256 + n[5])).expect("data");
        assert!(self.cmd(&format!("STOR {name}")).starts_with("150"));
        data
    }
}

/// SIGTERM with a grace period that is long for one upload and short for
/// another: the first completes, the second is aborted (nothing partial).
fn sigterm_lets_transfers_finish_within_the_grace_period_then_aborts_the_rest(backend: Backend) {
    let mut server = Server::alice_on(backend, &[("S3FTP_SHUTDOWN_GRACE", "2".to_string())]);
    let mut idle = StdControl::login(server.port);
    let mut quick = StdControl::login(server.port);
    let mut slow = StdControl::login(server.port);
    let mut quick_data = quick.start_upload("done.bin");
    let mut slow_data = slow.start_upload("slow.bin");
    let chunk = vec![7u8; 100_000];
    std::io::Write::write_all(&mut quick_data, &chunk).expect("quick data");
    std::io::Write::write_all(&mut slow_data, &chunk).expect("slow data");

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    // A transfer that ends within the grace period completes.
    std::io::Write::write_all(&mut quick_data, &chunk).expect("quick data");
    drop(quick_data);
    assert!(
        quick.reply().starts_with("226"),
        "finished within the grace period"
    );
    // One that goes on past it is aborted.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        if std::io::Write::write_all(&mut slow_data, &chunk[..10_000]).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    let aborted = slow.reply();
    assert!(aborted.starts_with("426"), "{aborted}");
    assert!(slow.reply().starts_with("421"));
    // A quiet session was told 421 meanwhile (after two quiet seconds, or
    // at the latest when the grace period ended).
    assert!(idle.reply().starts_with("421"), "idle session told 421");
    // The process exits by itself, cleanly.
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}\n{}", server.stderr());
    server.assert_file("done.bin", &[chunk.clone(), chunk.clone()].concat());
    server.assert_absent("slow.bin");
    server.assert_no_partials();
}

#[test]
fn json_logs_carry_one_audit_record_per_transfer_and_no_password() {
    let server = Server::with_alice_and(&[
        ("S3FTP_LOG_FORMAT", "json".to_string()),
        ("S3FTP_LOG", "info".to_string()),
    ]);
    let work = Work::new();
    let local = work.write("j.bin", &content(12_345, 15));
    server.curl(&["-T", &local, &server.url("/j.bin")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let record = loop {
        let logs = server.stderr();
        let records: Vec<serde_json::Value> = logs
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect();
        assert!(!logs.contains(PASSWORD), "a password was logged");
        assert!(!logs.contains("argon2id"), "a password hash was logged");
        if let Some(r) = records.iter().find(|r| r["message"] == "transfer") {
            // The start-up self-check logged the variables that differ from
            // their defaults, and one line for the rest, before serving.
            let config = |name: &str| {
                records
                    .iter()
                    .find(|r| r["message"] == "config" && r["variable"] == name)
                    .unwrap_or_else(|| panic!("no config record for {name} in:\n{logs}"))
                    .clone()
            };
            assert_eq!(config("S3FTP_LOG_FORMAT")["value"], "json");
            assert_eq!(config("S3FTP_USERS")["value"], "(set, not shown)");
            assert!(
                !records.iter().any(|r| r["variable"] == "S3FTP_BAN_SECONDS"),
                "a default was logged:\n{logs}"
            );
            assert!(
                records.iter().any(|r| r["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("other variables at their defaults"))),
                "no line for the defaults:\n{logs}"
            );
            break r.clone();
        }
        assert!(Instant::now() < deadline, "no transfer record in:\n{logs}");
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(record["command"], "STOR");
    assert_eq!(record["path"], "/j.bin");
    assert_eq!(record["bytes"], 12_345);
    assert_eq!(record["user"], USER);
    assert_eq!(record["reply"], "226");
    assert!(record["peer"]
        .as_str()
        .is_some_and(|p| p.starts_with("127.0.0.1:")));
    assert!(record["ms"].is_u64() && record["session"].is_u64());
}

// ---------------------------------------------------------------------------
// Legacy clients: busybox (embedded devices, old scanners) and an
// active-mode-only client driven like Windows ftp.exe (tnftp with passive off)
// ---------------------------------------------------------------------------

/// busybox's round trip is in tests/client_matrix.rs; here, an upload into a
/// folder that does not exist: busybox reports the failure, and nothing is
/// stored.
#[test]
fn busybox_ftpput_into_a_missing_folder_fails() {
    require_on_path("busybox");
    let server = Server::with_alice();
    let work = Work::new();
    let body = content(2 * MIB + 77, 21);
    let local = work.write("scan.pdf", &body);
    let port = server.port.to_string();
    let login = ["-u", USER, "-p", PASSWORD, "-P", port.as_str(), "127.0.0.1"];
    let mut put = Command::new("busybox");
    put.arg("ftpput")
        .args(login)
        .args(["missing/scan.pdf", &local]);
    let r = run(put, Duration::from_secs(30));
    assert!(
        !r.status.success(),
        "upload into a missing folder succeeded"
    );
    assert!(!server.root().join("missing").exists());
}

#[test]
fn active_mode_only_client_like_windows_ftp_exe() {
    require_on_path("tnftp");
    let server = Server::with_alice();
    let work = Work::new();
    let body = content(700_000, 23);
    let local = work.write("batch.txt", &body);
    let back = path_str(&work.path("batch.back"));
    // -A: active mode only (PORT), -n: log in from the script, as a batch
    // file for ftp.exe does; plain `ls` output is what such scripts parse.
    let script = format!(
        "open 127.0.0.1 {port}\nuser {USER} {PASSWORD}\nbinary\nmkdir out\ncd out\n\
         put {local} batch.txt\nls\nget batch.txt {back}\nrename batch.txt done.txt\n\
         delete done.txt\ncd ..\nrmdir out\nquit\n",
        port = server.port
    );
    let mut cmd = Command::new("tnftp");
    cmd.args(["-A", "-n", "-v"]);
    let r = run_with_input(cmd, &script, Duration::from_secs(60));
    assert_ran("tnftp -A", &r, &server);
    let out = r.stdout_text();
    assert!(
        out.contains("PORT command successful") || out.contains("EPRT command successful"),
        "active mode (PORT or EPRT) was not used:\n{out}"
    );
    assert!(out.contains("batch.txt"), "ls shows the file:\n{out}");
    assert!(
        !out.contains("EPSV") && !out.contains("227 "),
        "passive was used:\n{out}"
    );
    assert_eq!(sha256(&fs::read(&back).expect("downloaded")), sha256(&body));
    assert!(
        !server.root().join("out").exists(),
        "RMD removed the folder"
    );
}

on_folder_and_s3! {
    sigterm_lets_transfers_finish_within_the_grace_period_then_aborts_the_rest:
        sigterm_lets_transfers_finish_within_the_grace_period_then_aborts_the_rest(),
}

// ---------------------------------------------------------------------------
// Protocol gaps real clients hit: LIST -R, SITE CHMOD, EPRT's reply, MLSD
// times of directories
// ---------------------------------------------------------------------------

/// lftp's `mirror -R` sends SITE CHMOD after each upload and `chmod` sends
/// it directly; curl asks for `LIST -R` and sends EPRT in active mode; MLSD
/// gives directories a `modify` fact. On the local folder and on S3.
#[test]
fn lftp_chmod_and_curl_recursive_listing_eprt_and_mlsd() {
    require("lftp");
    require("curl");
    for backend in [Backend::Folder, Backend::S3] {
        let server = Server::alice_on(backend, &[]);
        let work = Work::new();
        let tree = work.path("tree");
        fs::create_dir_all(tree.join("sub")).expect("local tree");
        fs::write(tree.join("top.txt"), b"top").expect("file");
        fs::write(tree.join("sub/inner.txt"), b"inner").expect("file");
        let url = format!("ftp://127.0.0.1:{}", server.port);
        let commands = format!(
            "set net:max-retries 1; set net:timeout 10; open -u {USER},{PASSWORD} {url}; \
             mirror -R --verbose {} up; chmod 600 up/top.txt; bye",
            path_str(&tree)
        );
        let mut cmd = Command::new("lftp");
        cmd.arg("-c").arg(&commands);
        let r = run(cmd, Duration::from_secs(60));
        assert!(
            r.status.success() && !r.stderr.contains("chmod"),
            "lftp on {}: {}\n{}\nserver: {}",
            backend.name(),
            r.status,
            r.stderr,
            server.stderr()
        );
        server.assert_file("up/top.txt", b"top");
        server.assert_file("up/sub/inner.txt", b"inner");

        let listing = text(&server.curl(&["--request", "LIST -R", &format!("{url}/up/")]))
            .replace("\r\n", "\n");
        // curl changes into up/ first, then sends a bare LIST -R.
        assert!(listing.starts_with(".:\n"), "{listing}");
        assert!(listing.contains("\n\n./sub:\n"), "{listing}");
        assert!(
            lists(&listing, "inner.txt") && lists(&listing, "top.txt"),
            "{listing}"
        );

        let active = server.curl_run(
            USER,
            PASSWORD,
            &["--ftp-port", "127.0.0.1", &format!("{url}/up/top.txt")],
        );
        assert_eq!(active.stdout, b"top");
        assert!(
            active.stderr.contains("EPRT command successful"),
            "{}",
            active.stderr
        );

        let mlsd = text(&server.curl(&["--request", "MLSD", &format!("{url}/up/")]));
        let sub = mlsd
            .lines()
            .find(|l| l.ends_with(" sub"))
            .unwrap_or_else(|| panic!("{mlsd}"));
        assert!(
            sub.contains("type=dir;") && sub.contains("modify="),
            "{sub}"
        );
    }
}

// ---------------------------------------------------------------------------
// Checksums as clients ask for them
// ---------------------------------------------------------------------------

/// The first word of a coreutils checksum tool's output for `path`.
fn sum_of(tool: &str, path: &str) -> String {
    let mut cmd = Command::new(tool);
    cmd.arg(path);
    let r = run(cmd, Duration::from_secs(30));
    assert!(r.status.success(), "{tool}: {}", r.stderr);
    r.stdout_text()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// curl -Q (XSHA256, XSHA1, XSHA512), Python ftplib (OPTS HASH, HASH, RANG)
/// and lftp `quote` (XMD5, XCRC) after an upload, compared with sha256sum,
/// sha1sum, sha512sum, md5sum and Python's zlib.crc32 of the local file, on
/// the local folder and on S3.
#[test]
fn clients_checksums_match_the_local_tools() {
    require("curl");
    require("lftp");
    require("python3");
    for backend in [Backend::Folder, Backend::S3] {
        let server = Server::alice_on(backend, &[]);
        let work = Work::new();
        let body = content(3 * MIB + 17, 21);
        let local = work.write("local.bin", &body);
        let url = format!("ftp://127.0.0.1:{}", server.port);
        server.curl(&[
            "-T",
            &local,
            &format!("{url}/sums/f.bin"),
            "--ftp-create-dirs",
        ]);
        server.assert_file("sums/f.bin", &body);

        // curl: each -Q command's reply is in the verbose log.
        let r = server.curl_run(
            USER,
            PASSWORD,
            &[
                "-Q",
                "XSHA256 sums/f.bin",
                "-Q",
                "XSHA1 sums/f.bin",
                "-Q",
                "XSHA512 sums/f.bin",
                "--list-only",
                &format!("{url}/"),
            ],
        );
        for (tool, verb) in [
            ("sha256sum", "XSHA256"),
            ("sha1sum", "XSHA1"),
            ("sha512sum", "XSHA512"),
        ] {
            let expected = sum_of(tool, &local).to_uppercase();
            assert!(
                r.stderr.contains(&format!("< 250 {expected}")),
                "{verb} on {}: want {expected}\n{}",
                backend.name(),
                r.stderr
            );
        }

        // ftplib: HASH in the session's algorithm, and with a range.
        let head_sha256 = sha256(&body[..1000]);
        let whole_sha256 = sum_of("sha256sum", &local);
        let md5 = sum_of("md5sum", &local);
        python_ok(
            &work,
            &format!(
                "import ftplib\n\
                 ftp = ftplib.FTP()\n\
                 ftp.connect('127.0.0.1', {port})\n\
                 ftp.login('{USER}', '{PASSWORD}')\n\
                 assert 'HASH SHA-1;SHA-256*;' in ftp.sendcmd('FEAT')\n\
                 r = ftp.sendcmd('HASH sums/f.bin')\n\
                 assert r == '213 SHA-256 0-{len} {whole_sha256} sums/f.bin', r\n\
                 assert ftp.sendcmd('OPTS HASH MD5') == '200 MD5'\n\
                 r = ftp.sendcmd('HASH sums/f.bin')\n\
                 assert r.split()[3] == '{md5}', r\n\
                 ftp.sendcmd('OPTS HASH SHA-256')\n\
                 assert ftp.sendcmd('RANG 0 999').startswith('350')\n\
                 r = ftp.sendcmd('HASH sums/f.bin')\n\
                 assert r.split()[2:4] == ['0-1000', '{head_sha256}'], r\n\
                 ftp.quit()\n\
                 print('OK')\n",
                port = server.port,
                len = body.len(),
            ),
        );

        // lftp quote: XMD5 and XCRC (checked against zlib.crc32).
        let crc = python_crc32(&work, &local);
        let commands = format!(
            "set net:max-retries 1; set net:timeout 10; open -u {USER},{PASSWORD} {url}; \
             quote XMD5 sums/f.bin; quote XCRC sums/f.bin; bye"
        );
        let mut cmd = Command::new("lftp");
        cmd.arg("-c").arg(&commands);
        let r = run(cmd, Duration::from_secs(60));
        let out = r.stdout_text();
        assert!(r.status.success(), "lftp: {}\n{out}", r.stderr);
        assert!(
            out.contains(&format!("250 {}", md5.to_uppercase())),
            "{out}"
        );
        assert!(out.contains(&format!("250 {crc}")), "{out}");
        server.assert_file("sums/f.bin", &body);
    }
}

/// zlib's CRC-32 of a local file, as 8 upper-case hex digits.
fn python_crc32(work: &Work, path: &str) -> String {
    let script = work.write(
        "crc.py",
        format!(
            "import zlib\nprint('%08X' % (zlib.crc32(open('{path}', 'rb').read()) & 0xffffffff))\n"
        )
        .as_bytes(),
    );
    let mut cmd = Command::new("python3");
    cmd.arg(script);
    let r = run(cmd, Duration::from_secs(30));
    assert!(r.status.success(), "python: {}", r.stderr);
    r.stdout_text().trim().to_string()
}

// ---------------------------------------------------------------------------
// Login by client certificate (S3FTP_TLS_CLIENT_CA)
// ---------------------------------------------------------------------------

/// A certificate and key for `name` (common name, and a DNS alternative
/// name when `san`), signed by `issuer`, written to `<file>.pem` and
/// `<file>.key`; returns the two paths.
fn client_cert(
    work: &Work,
    file: &str,
    name: &str,
    san: bool,
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let sans = if san {
        vec![name.to_string()]
    } else {
        Vec::new()
    };
    let mut params = rcgen::CertificateParams::new(sans).expect("params");
    if !san {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
    }
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer).expect("sign");
    (
        work.write(&format!("{file}.pem"), cert.pem().as_bytes()),
        work.write(&format!("{file}.key"), key.serialize_pem().as_bytes()),
    )
}

/// A certificate authority: its PEM file and an issuer for client certs.
fn certificate_authority(
    work: &Work,
    file: &str,
) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{file} test CA"));
    let cert = params.self_signed(&key).expect("self-sign");
    let path = work.write(&format!("{file}.pem"), cert.pem().as_bytes());
    (path, rcgen::Issuer::new(params, key))
}

/// curl over explicit FTPS presenting a client certificate: a certificate
/// naming a user (common name, or alternative name) logs that user in at
/// USER with 232, without a password; a `cert_required` user cannot log in
/// by password alone; a certificate of another CA fails the handshake; one
/// naming no user changes nothing. On the local folder.
#[test]
fn curl_logs_in_by_client_certificate() {
    require("curl");
    let work = Work::new();
    let (ca, issuer) = certificate_authority(&work, "ca");
    let (_, stranger_issuer) = certificate_authority(&work, "other");
    let alice = client_cert(&work, "alice", USER, false, &issuer);
    let carol = client_cert(&work, "carol", "carol", true, &issuer);
    let mallory = client_cert(&work, "mallory", "mallory", false, &issuer);
    let forged = client_cert(&work, "forged", USER, false, &stranger_issuer);
    let users = format!(
        r#"[{{"name":"{USER}","password":"{h}"}},{{"name":"carol","password":"{h}","cert_required":true}}]"#,
        h = common::cheap_hash(PASSWORD),
    );
    let server = Server::start_with(
        Some(&users),
        &tls_env(&[("S3FTP_TLS_CLIENT_CA", ca.clone())]),
    );
    let url = format!("ftp://127.0.0.1:{}/", server.port);
    let with_cert = |user: &str, password: &str, cert: Option<&(String, String)>| {
        let mut args = vec!["--ssl-reqd", "--insecure", "--list-only"];
        if let Some((pem, key)) = cert {
            args.extend(["--cert", pem.as_str(), "--key", key.as_str()]);
        }
        args.push(&url);
        server.curl_as(user, password, &args)
    };
    server.curl(&[
        "-T",
        &work.write("f.txt", b"x"),
        &url,
        "--ssl-reqd",
        "--insecure",
    ]);

    // The certificate is the proof: a wrong password is never even sent.
    let r = with_cert(USER, "not-the-password", Some(&alice));
    assert!(r.status.success(), "{}", r.stderr);
    assert!(r.stderr.contains("< 232 "), "{}", r.stderr);
    assert!(!r.stderr.contains("> PASS"), "{}", r.stderr);
    assert!(lists(&r.stdout_text(), "f.txt"), "{}", r.stdout_text());

    // cert_required: the password alone is refused; the certificate works
    // (here through its DNS alternative name).
    let r = with_cert("carol", PASSWORD, None);
    assert!(
        !r.status.success() && r.stderr.contains("< 530"),
        "{}",
        r.stderr
    );
    let r = with_cert("carol", "", Some(&carol));
    assert!(
        r.status.success() && r.stderr.contains("< 232 "),
        "{}",
        r.stderr
    );

    // Signed by another CA: no TLS session, and the server goes on.
    let r = with_cert(USER, PASSWORD, Some(&forged));
    assert!(!r.status.success(), "{}", r.stderr);
    // Naming no user: the password decides, as without a certificate.
    let r = with_cert(USER, PASSWORD, Some(&mallory));
    assert!(
        r.status.success() && r.stderr.contains("< 230 "),
        "{}",
        r.stderr
    );
    let r = with_cert(USER, "wrong", Some(&mallory));
    assert!(
        !r.status.success() && r.stderr.contains("< 530"),
        "{}",
        r.stderr
    );
    server.assert_file("f.txt", b"x");
}

/// A client certificate naming a user the auth hook knows: the hook is
/// asked with the certificate's names and no password, and its 200 logs
/// the user in at USER (232). A certificate naming someone the hook does
/// not know leaves the password to decide, and the hook then refuses it.
#[test]
fn curl_logs_in_by_client_certificate_through_the_auth_hook() {
    require("curl");
    let work = Work::new();
    let (ca, issuer) = certificate_authority(&work, "ca");
    let acme = client_cert(&work, "acme", "acme", true, &issuer);
    let stranger = client_cert(&work, "stranger", "stranger", false, &issuer);
    let hook = common::hook::Hook::start();
    hook.add(
        "acme",
        "unused-password",
        serde_json::json!({"home": "/acme"}),
    );
    let server = Server::start_with(
        None,
        &tls_env(&[
            ("S3FTP_TLS_CLIENT_CA", ca.clone()),
            ("S3FTP_AUTH_URL", hook.url()),
        ]),
    );
    let url = format!("ftp://127.0.0.1:{}/c.txt", server.port);
    let file = work.write("c.txt", b"by certificate");
    let r = server.curl_as(
        "acme",
        "",
        &[
            "--ssl-reqd",
            "--insecure",
            "--cert",
            &acme.0,
            "--key",
            &acme.1,
            "-T",
            &file,
            &url,
        ],
    );
    assert!(
        r.status.success() && r.stderr.contains("< 232 "),
        "{}",
        r.stderr
    );
    server.assert_file("acme/c.txt", b"by certificate");
    let asked = hook.received();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let names = asked[0].body["certificate_names"].as_array().cloned();
    assert!(
        names.is_some_and(|n| n.contains(&serde_json::json!("acme"))),
        "{asked:?}"
    );
    assert!(asked[0].body.get("password").is_none());
    assert_eq!(asked[0].body["tls"], true);

    let r = server.curl_as(
        "stranger",
        "guess",
        &[
            "--ssl-reqd",
            "--insecure",
            "--cert",
            &stranger.0,
            "--key",
            &stranger.1,
            "--list-only",
            &url,
        ],
    );
    assert!(
        !r.status.success() && r.stderr.contains("< 530"),
        "{}",
        r.stderr
    );
    // Asked twice: with the certificate at USER, with the password at PASS.
    let asked = hook.received();
    assert_eq!(hook.asked_for("stranger"), 2, "{asked:?}");
    assert!(asked[1].body.get("password").is_none());
    assert_eq!(asked[2].body["password"], "guess");
}
