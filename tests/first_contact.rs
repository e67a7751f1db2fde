//! First contact, as a new operator meets the server: the real binary
//! pointed at stores that cannot be used (no credentials, a wrong secret or
//! key, a missing bucket, a closed port) stops with one line that says what
//! is wrong and what to try; a store that comes up late is waited for, with
//! /readyz naming it meanwhile; a default start logs what differs from the
//! defaults and no library noise; `s3ftp check` passes a working mount and
//! fails a broken one naming the step. All against the test S3 server.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::clients::{block_on, free_port, require, run, Run};
use common::launch::{listening_address, Launch};
use common::s3::S3Server;

/// The AWS variables and files a developer's shell may have: none reaches
/// the binary, so "no credentials" means none, and nothing asks a cloud
/// metadata service (traffic stays on loopback).
fn isolated(launch: &Launch) -> Command {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    let home = HOME.get_or_init(|| tempfile::tempdir().expect("tempdir"));
    let mut cmd = launch.command(Path::new(env!("CARGO_BIN_EXE_s3ftp")));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&name);
        }
    }
    // An empty home: no ~/.aws profile.
    cmd.env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_BACKTRACE", "0");
    cmd
}

/// Where a started binary (standard output piped) listens, once it says.
fn listening(child: &mut std::process::Child) -> Option<SocketAddr> {
    let stdout = child.stdout.take()?;
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| listening_address(&line))
}

/// Starts the binary on `mount` expecting it to stop at once; returns its
/// standard error.
fn refused_start(mount: &str) -> String {
    let launch = Launch::new(format!("/={mount}")).var("S3FTP_STORE_WAIT", "0");
    let out = run(isolated(&launch), Duration::from_secs(60));
    assert!(!out.status.success(), "started on {mount}");
    out.stderr
}

/// The error is the last line, alone, short and free of the SDK's Debug
/// dumps; before it, nothing but the start-up lines.
fn assert_one_line(stderr: &str, expected: &[&str]) {
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("Error: S3FTP_MOUNTS: / ("), "{stderr}");
    for part in expected {
        assert!(last.contains(part), "{part:?} not in {last:?}");
    }
    for noise in [
        "IMDS",
        "DispatchFailure",
        "ConnectorError",
        "{ source",
        "WARN aws",
    ] {
        assert!(!stderr.contains(noise), "{noise:?} in:\n{stderr}");
    }
    assert!(last.len() < 400, "{} characters: {last}", last.len());
}

#[test]
fn no_credentials_says_where_to_put_them() {
    let s3 = S3Server::shared();
    let mount = s3.mount_uri_without_credentials(&s3.bucket, "");
    let stderr = refused_start(&mount);
    assert_one_line(
        &stderr,
        &[
            "no AWS credentials found",
            "AWS_ACCESS_KEY_ID",
            "access_key=",
        ],
    );
}

#[test]
fn a_wrong_secret_or_key_id_is_credentials_rejected() {
    let s3 = S3Server::shared();
    let plain = s3.mount_uri_without_credentials(&s3.bucket, "");
    let wrong_secret = format!(
        "{plain}&access_key={}&secret_key=wrong{}",
        s3.access_key, s3.secret_key
    );
    let stderr = refused_start(&wrong_secret);
    assert_one_line(&stderr, &["credentials rejected"]);
    assert!(!stderr.contains(&s3.secret_key), "secret shown:\n{stderr}");
    let unknown_key = format!(
        "{plain}&access_key=GK00000000000000000000dead&secret_key={}",
        s3.secret_key
    );
    assert_one_line(&refused_start(&unknown_key), &["credentials rejected"]);
}

#[test]
fn a_missing_bucket_is_named() {
    let s3 = S3Server::shared();
    let mount = s3.mount_uri("s3ftp-no-such-bucket", "");
    assert_one_line(
        &refused_start(&mount),
        &["bucket s3ftp-no-such-bucket does not exist", "create it"],
    );
}

#[test]
fn a_closed_port_is_connection_refused() {
    let s3 = S3Server::shared();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mount = s3.mount_uri(&s3.bucket, "").replace(&s3.endpoint, &closed);
    assert_one_line(
        &refused_start(&mount),
        &[&format!("cannot connect to {closed}"), "connection refused"],
    );
}

/// A GET of the monitoring listener: status and body.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    block_on(async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await.ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        Some((status, body))
    })
}

/// `docker compose up` starts the server and the store together: a bucket
/// that appears a little later is waited for, /readyz saying which mount
/// is not there yet, and then the server starts.
#[test]
fn a_bucket_that_appears_later_is_waited_for() {
    let s3 = S3Server::shared();
    let bucket = s3.fresh_bucket_blocking();
    block_on(s3.delete_bucket(&bucket));
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let launch = Launch::new(format!("/={}", s3.mount_uri(&bucket, "")))
        .var("S3FTP_STORE_WAIT", "60")
        .var("S3FTP_METRICS_LISTEN", metrics.to_string());
    let mut child = isolated(&launch)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start s3ftp");
    let deadline = Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        if let Some((503, body)) = http_get(metrics, "/readyz") {
            break body;
        }
        assert!(Instant::now() < deadline, "/readyz never said 503");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(waiting.contains("failed / ("), "{waiting}");
    assert!(
        waiting.contains(&format!("bucket {bucket} does not exist")),
        "{waiting}"
    );
    assert_eq!(http_get(metrics, "/healthz").map(|r| r.0), Some(200));

    block_on(s3.create_bucket(&bucket));
    assert!(listening(&mut child).is_some(), "never listened");
    let (status, body) = http_get(metrics, "/readyz").expect("readyz");
    assert_eq!(status, 200, "{body}");
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    // One warning while waiting, not one per retry.
    assert_eq!(stderr.matches("does not exist").count(), 1, "{stderr}");
}

/// A default start says what differs from the defaults, once, and an FTPS
/// client connecting by IP address (lftp sends it as SNI) adds no line
/// from rustls.
#[test]
fn a_default_start_is_quiet() {
    require("lftp");
    let launch = Launch::new("/=memory://")
        .var("S3FTP_LOG", "info")
        .var("S3FTP_TLS_SELF_SIGNED", "true")
        .users(Some(&format!(
            r#"[{{"name":"u","password":"{}"}}]"#,
            common::cheap_hash("p")
        )));
    let mut child = isolated(&launch)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start s3ftp");
    let addr = listening(&mut child).expect("listening");
    // lftp sends the IP address as SNI, which rustls warns about.
    let mut lftp = Command::new("lftp");
    lftp.arg("-e")
        .arg(
            "set ssl:verify-certificate no; set ftp:ssl-force true; \
             set ftp:ssl-protect-data true; set net:max-retries 1; ls; quit",
        )
        .args(["-u", "u,p"])
        .arg(format!("{}:{}", addr.ip(), addr.port()));
    let listed: Run = run(lftp, Duration::from_secs(30));
    assert!(listed.status.success(), "lftp: {}", listed.stderr);
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    let config_lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" config ")).collect();
    assert_eq!(config_lines.len(), 5, "{stderr}");
    for set in [
        "S3FTP_LISTEN",
        "S3FTP_MOUNTS",
        "S3FTP_USERS",
        "S3FTP_TLS_SELF_SIGNED",
    ] {
        assert!(
            config_lines.iter().any(|l| l.contains(set)),
            "{set}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("other variables at their defaults"),
        "{stderr}"
    );
    assert!(!stderr.contains("SNI"), "{stderr}");
    assert!(!stderr.contains("WARN rustls"), "{stderr}");
}

fn check(mounts: &str) -> Run {
    let launch = Launch::new(mounts);
    let mut cmd = isolated(&launch);
    cmd.arg("check");
    run(cmd, Duration::from_secs(60))
}

#[test]
fn check_passes_a_working_mount_and_names_the_failing_step() {
    let s3 = S3Server::shared();
    let bucket = s3.fresh_bucket_blocking();
    let good = check(&format!("/={}", s3.mount_uri(&bucket, "in")));
    let text = good.stdout_text();
    assert!(good.status.success(), "{text}\n{}", good.stderr);
    for step in [
        "ok       reachable, credentials accepted",
        "ok       write a probe object",
        "ok       read it back",
        "ok       multipart upload (create, part, abort)",
        "ok       server-side copy (CopyObject)",
        "ok       part copy (UploadPartCopy)",
        "ok       delete it",
        "all 8 checks passed",
    ] {
        assert!(text.contains(step), "{step:?} not in\n{text}");
    }
    // The probe and its uploads are gone.
    assert!(block_on(s3.list_keys(&bucket, "")).is_empty());
    assert!(block_on(s3.list_multipart_uploads(&bucket)).is_empty());

    let plain = s3.mount_uri_without_credentials(&bucket, "");
    let broken = format!(
        "/=memory://,/bad={plain}&access_key={}&secret_key=wrong",
        s3.access_key
    );
    let bad = check(&broken);
    let text = bad.stdout_text();
    assert!(!bad.status.success(), "{text}");
    assert!(
        text.contains("FAILED   reachable, credentials accepted: credentials rejected"),
        "{text}"
    );
    assert!(text.contains("skipped  write a probe object"), "{text}");
    // The memory mount's 5 steps passed; the S3 mount's 5 did not.
    assert!(
        bad.stderr.contains("5 of 10 checks did not pass"),
        "{}",
        bad.stderr
    );
    assert!(!text.contains("wrong&"), "secret shown: {text}");
}

#[test]
fn a_wrong_region_is_named() {
    let s3 = S3Server::shared();
    let mount = s3
        .mount_uri(&s3.bucket, "")
        .replace(&format!("region={}", s3.region), "region=us-west-2");
    let stderr = refused_start(&mount);
    assert_one_line(&stderr, &["wrong region"]);
}

#[test]
fn access_denied_names_the_operation_and_the_bucket() {
    let s3 = S3Server::shared();
    let Some((id, secret)) = s3.key_without_access() else {
        eprintln!("an external S3 server: no key without access can be made here");
        return;
    };
    let plain = s3.mount_uri_without_credentials(&s3.bucket, "in");
    let mount = format!("{plain}&access_key={id}&secret_key={secret}");
    assert_one_line(
        &refused_start(&mount),
        &[
            "access denied",
            &format!("ListObjectsV2 on bucket {} prefix in/", s3.bucket),
        ],
    );
}

/// An HTTPS endpoint whose certificate no one vouches for: s3ftp's own
/// implicit FTPS listener, self-signed, stands in for such a store (the
/// TLS handshake fails before any HTTP is spoken).
#[test]
fn an_untrusted_certificate_is_named() {
    let s3 = S3Server::shared();
    let port = free_port();
    let tls = Launch::new("/=memory://")
        .var("S3FTP_TLS_SELF_SIGNED", "true")
        .var("S3FTP_TLS_IMPLICIT_LISTEN", format!("127.0.0.1:{port}"));
    let mut store = isolated(&tls)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the TLS listener");
    assert!(
        listening(&mut store).is_some(),
        "the TLS listener did not start"
    );
    let https = format!("https://127.0.0.1:{port}");
    let mount = s3.mount_uri(&s3.bucket, "").replace(&s3.endpoint, &https);
    let stderr = refused_start(&mount);
    let _ = store.kill();
    let _ = store.wait();
    assert_one_line(
        &stderr,
        &["TLS certificate", "not trusted", "AWS_CA_BUNDLE"],
    );
}
