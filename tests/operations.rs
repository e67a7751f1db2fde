//! The monitoring listener: Prometheus metrics that follow what clients do,
//! /healthz, and /readyz that fails when a mount is unreachable or the server
//! is shutting down.

mod common;

use std::time::Duration;

use common::{content, http_request, Store, TestServer, USER};
use tokio::io::AsyncWriteExt;

const MIB: usize = 1024 * 1024;

/// Polls until `series` reaches `want` (metrics of a session that just
/// closed are updated by its task, a moment after the client sees the close).
async fn wait_for_metric(server: &TestServer, series: &str, want: f64) {
    let mut seen = 0.0;
    for _ in 0..100 {
        seen = server.metric(series).await;
        if seen == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} is {seen}, expected {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_sessions_logins_commands_and_transfers() {
    let server = TestServer::memory().await;
    assert_eq!(server.metric("s3ftp_sessions_active").await, 0.0);

    let mut bad = server.raw().await;
    bad.expect(&format!("USER {USER}"), 331).await;
    bad.expect("PASS wrong", 530).await;
    let mut c = server.login().await;
    assert_eq!(server.metric("s3ftp_sessions_active").await, 2.0);
    assert_eq!(server.metric("s3ftp_sessions_total").await, 2.0);
    assert_eq!(
        server
            .metric(r#"s3ftp_logins_total{result="failed"}"#)
            .await,
        1.0
    );
    assert_eq!(
        server.metric(r#"s3ftp_logins_total{result="ok"}"#).await,
        1.0
    );

    assert_eq!(c.upload("STOR a.txt", b"hello").await.0, 226);
    assert_eq!(c.fetch("RETR a.txt").await, b"hello");
    c.expect("SIZE missing", 550).await;
    c.expect("FROB x", 500).await;
    c.expect("XSEN x", 502).await;
    c.expect("MDTM", 501).await;

    let (code, text) = server.http_get("/metrics").await;
    assert_eq!(code, 200);
    let m = |series: &str| common::metric_value(&text, series);
    assert_eq!(m(r#"s3ftp_commands_total{verb="STOR",code="226"}"#), 1.0);
    assert_eq!(m(r#"s3ftp_commands_total{verb="RETR",code="226"}"#), 1.0);
    assert_eq!(m(r#"s3ftp_commands_total{verb="SIZE",code="550"}"#), 1.0);
    assert_eq!(m(r#"s3ftp_commands_total{verb="PASS",code="530"}"#), 1.0);
    assert_eq!(m(r#"s3ftp_commands_total{verb="PASS",code="230"}"#), 1.0);
    // Whatever a client sends, the verb label stays in a fixed set.
    assert_eq!(m(r#"s3ftp_commands_total{verb="unknown",code="500"}"#), 1.0);
    assert_eq!(m(r#"s3ftp_commands_total{verb="XSEN",code="502"}"#), 1.0);
    assert_eq!(m(r#"s3ftp_commands_total{verb="invalid",code="501"}"#), 1.0);
    assert!(!text.contains("FROB"), "{text}");
    assert_eq!(m(r#"s3ftp_transfer_bytes_total{direction="in"}"#), 5.0);
    assert_eq!(m(r#"s3ftp_transfer_bytes_total{direction="out"}"#), 5.0);
    assert_eq!(
        m(r#"s3ftp_transfers_total{command="STOR",result="ok"}"#),
        1.0
    );
    assert_eq!(
        m(r#"s3ftp_transfers_total{command="RETR",result="ok"}"#),
        1.0
    );
    assert_eq!(
        m(r#"s3ftp_transfer_duration_seconds_count{command="STOR"}"#),
        1.0
    );

    // A download of a missing file fails; an ABORted upload is counted as such.
    let mut data = c.data().await;
    c.expect("STOR big", 150).await;
    data.write_all(&content(64 * 1024, 1)).await.expect("send");
    c.send("ABOR").await;
    assert_eq!(c.reply().await.0, 426);
    assert_eq!(c.reply().await.0, 226);
    drop(data);
    assert_eq!(
        server
            .metric(r#"s3ftp_transfers_total{command="STOR",result="aborted"}"#)
            .await,
        1.0
    );
    c.expect("SIZE big", 550).await;

    c.expect("QUIT", 221).await;
    drop(bad);
    wait_for_metric(&server, "s3ftp_sessions_active", 0.0).await;
}

#[tokio::test]
async fn connections_turned_away_are_counted_by_reason() {
    let server = TestServer::start(Store::Memory, &[("S3FTP_MAX_SESSIONS_PER_IP", "1")]).await;
    let _first = server.login().await;
    let mut second = common::Raw::connect_any(server.addr, None).await;
    assert_eq!(second.reply().await.0, 421);
    assert_eq!(
        server
            .metric(r#"s3ftp_connections_refused_total{reason="per_address"}"#)
            .await,
        1.0
    );
    assert_eq!(server.metric("s3ftp_sessions_active").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_requests_and_multipart_uploads_are_measured() {
    let server = TestServer::start(
        Store::S3 {
            bucket: common::s3::S3Server::shared().fresh_bucket().await,
        },
        &[("S3FTP_PART_SIZE_MIB", "5")],
    )
    .await;
    let mut c = server.login().await;
    let body = content(12 * MIB, 7);
    assert_eq!(c.upload("STOR big.bin", &body).await.0, 226);
    assert_eq!(c.upload("STOR small.txt", b"tiny").await.0, 226);
    c.expect("SIZE nothing-here", 550).await;

    // Three parts, then ABOR: the upload is aborted, not completed.
    let mut data = c.data().await;
    c.expect("STOR other.bin", 150).await;
    data.write_all(&content(11 * MIB, 8)).await.expect("send");
    c.send("ABOR").await;
    assert_eq!(c.reply().await.0, 426);
    assert_eq!(c.reply().await.0, 226);
    drop(data);
    server.assert_nothing_partial().await;

    let (_, text) = server.http_get("/metrics").await;
    let m = |series: &str| common::metric_value(&text, series);
    assert_eq!(m(r#"s3ftp_multipart_uploads_total{event="started"}"#), 2.0);
    assert_eq!(
        m(r#"s3ftp_multipart_uploads_total{event="completed"}"#),
        1.0
    );
    assert_eq!(m(r#"s3ftp_multipart_uploads_total{event="aborted"}"#), 1.0);
    let ok = |op: &str| {
        m(&format!(
            r#"s3ftp_backend_requests_total{{backend="s3",operation="{op}",outcome="ok"}}"#
        ))
    };
    assert!(ok("UploadPart") >= 3.0, "{text}");
    assert_eq!(ok("CompleteMultipartUpload"), 1.0, "{text}");
    assert_eq!(ok("AbortMultipartUpload"), 1.0, "{text}");
    assert_eq!(ok("PutObject"), 1.0, "{text}");
    // The missing file's HEAD is a 404: counted, but not as an error.
    assert!(
        m(
            r#"s3ftp_backend_requests_total{backend="s3",operation="HeadObject",outcome="not_found"}"#
        ) >= 1.0,
        "{text}"
    );
    assert!(!text.contains(r#"outcome="error""#), "{text}");
    assert!(
        m(r#"s3ftp_backend_request_duration_seconds_count{backend="s3",operation="UploadPart"}"#)
            >= 3.0
    );
    // The aborted upload counts what the server read before the ABOR.
    let received = m(r#"s3ftp_transfer_bytes_total{direction="in"}"#);
    assert!(
        received >= (12 * MIB + 4) as f64 && received <= (23 * MIB + 4) as f64,
        "{received}"
    );
}

#[tokio::test]
async fn health_answers_and_unknown_paths_and_methods_are_refused() {
    let server = TestServer::memory().await;
    assert_eq!(server.http_get("/healthz").await, (200, "ok\n".into()));
    let (code, text) = server.http_get("/readyz").await;
    assert_eq!(code, 200, "{text}");
    assert!(text.starts_with("ready\nok / (memory://)"), "{text}");
    assert_eq!(server.http_get("/nothing").await.0, 404);
    assert_eq!(
        http_request(server.metrics, "POST", "/metrics").await.0,
        405
    );
    // The FTP side is untouched by all that.
    let mut c = server.login().await;
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn readiness_fails_naming_the_mount_that_is_gone() {
    let server = TestServer::folder().await;
    let root = server.folder_path().expect("folder").to_path_buf();
    let moved = root.with_extension("moved");
    std::fs::rename(&root, &moved).expect("move the folder away");
    let (code, text) = server.http_get("/readyz").await;
    assert_eq!(code, 503, "{text}");
    assert!(text.starts_with("not ready\nfailed / (fs://"), "{text}");
    assert_eq!(server.http_get("/healthz").await.0, 200);
    std::fs::rename(&moved, &root).expect("move the folder back");
    assert_eq!(server.http_get("/readyz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_shutting_down_and_transfers_finish() {
    let server = TestServer::memory().await;
    let mut c = server.login().await;
    let mut data = c.data().await;
    c.expect("STOR during-shutdown.bin", 150).await;
    data.write_all(b"first half ").await.expect("send");
    server.begin_shutdown();
    let (code, text) = server.http_get("/readyz").await;
    assert_eq!((code, text.as_str()), (503, "not ready: shutting down\n"));
    assert_eq!(server.http_get("/healthz").await.0, 200);
    // New clients are no longer accepted (the listener closes)...
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(server.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the control port still accepts during shutdown");
    // ...but metrics still answer, and the transfer in flight completes.
    assert_eq!(server.metric("s3ftp_sessions_active").await, 1.0);
    data.write_all(b"second half").await.expect("send");
    data.shutdown().await.expect("close");
    drop(data);
    assert_eq!(c.reply().await.0, 226);
    assert_eq!(c.reply().await.0, 421);
}

/// A session in the middle of an upload's commands when shutdown begins
/// (logged in, PASV given, STOR not yet sent) is served on: its upload is
/// stored; then, with nothing pending, it is told 421. A session that
/// just logged in may still start one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_session_finish_the_upload_it_began() {
    let server = TestServer::folder().await;
    let mut c = server.login().await;
    let mut fresh = server.login().await;
    let mut data = c.data().await;
    server.begin_shutdown();
    c.expect("STOR begun.bin", 150).await;
    data.write_all(b"whole").await.expect("send");
    data.shutdown().await.expect("close");
    drop(data);
    assert_eq!(c.reply().await.0, 226);
    let closed = std::time::Instant::now();
    assert_eq!(c.reply().await.0, 421, "done, nothing pending: closed");
    assert!(
        closed.elapsed() < Duration::from_secs(1),
        "at once, not after the quiet time"
    );
    assert_eq!(fresh.upload("STOR fresh.bin", b"late").await.0, 226);
    assert_eq!(fresh.reply().await.0, 421);
    assert_eq!(
        server.store.read("begun.bin").await.as_deref(),
        Some(&b"whole"[..])
    );
    assert_eq!(
        server.store.read("fresh.bin").await.as_deref(),
        Some(&b"late"[..])
    );
}

// ---------------------------------------------------------------- PROXY protocol

/// A control connection that first sends `header`, as a load balancer does.
async fn proxied(server: &TestServer, header: &[u8]) -> common::Raw {
    let mut c = common::Raw::connect_any(server.addr, None).await;
    c.send_bytes(header).await;
    c
}

fn v1(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 10.0.0.1 40000 21\r\n").into_bytes()
}

#[tokio::test]
async fn proxy_headers_give_the_client_address_used_for_bans() {
    let server = TestServer::start(
        Store::Memory,
        &[
            ("S3FTP_PROXY_PROTOCOL", "control"),
            ("S3FTP_LOGIN_FAILURES_BEFORE_BAN", "2"),
            ("S3FTP_DATA_TIMEOUT", "2"),
        ],
    )
    .await;
    // Two failures from 192.0.2.7 (all connections really come from 127.0.0.1).
    for _ in 0..2 {
        let mut c = proxied(&server, &v1("192.0.2.7")).await;
        assert_eq!(c.reply().await.0, 220);
        c.expect(&format!("USER {USER}"), 331).await;
        let (code, _) = c.cmd("PASS wrong").await;
        assert!(code == 530 || code == 421, "{code}");
    }
    let mut banned = proxied(&server, &v1("192.0.2.7")).await;
    let (code, text) = banned.reply().await;
    assert_eq!(code, 421, "{text}");
    // Another client behind the same proxy is not affected, and a v2 header works.
    let header = s3ftp::datachan::proxy::encode_v2(
        "198.51.100.4:5000".parse().expect("addr"),
        "10.0.0.1:21".parse().expect("addr"),
    );
    let mut other = proxied(&server, &header).await;
    assert_eq!(other.reply().await.0, 220);
    other.login(USER, common::PASSWORD).await;
    other.expect("MKD via-proxy", 257).await;
    // In `control` mode data connections must come from the client itself;
    // this one comes from the proxy's address (127.0.0.1), so it is refused.
    let mut data = other.data().await;
    let (code, text) = other.cmd("STOR stolen.txt").await;
    assert_eq!(code, 425, "{text}");
    drop(data.shutdown().await);
    other.expect("SIZE stolen.txt", 550).await;

    // A connection without a header is closed without a word.
    let mut bare = common::Raw::connect_any(server.addr, None).await;
    bare.send("USER alice").await;
    assert_eq!(bare.try_reply().await, None);
    assert_eq!(
        server
            .metric(r#"s3ftp_connections_refused_total{reason="proxy_header"}"#)
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric(r#"s3ftp_connections_refused_total{reason="banned"}"#)
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_all_checks_the_data_connection_header_too() {
    let server = TestServer::start(
        Store::Memory,
        &[("S3FTP_PROXY_PROTOCOL", "all"), ("S3FTP_DATA_TIMEOUT", "2")],
    )
    .await;
    let mut c = proxied(&server, &v1("192.0.2.9")).await;
    assert_eq!(c.reply().await.0, 220);
    c.login(USER, common::PASSWORD).await;
    // The data connection's header names the same client: accepted.
    let addr = c.pasv().await;
    let mut data = tokio::net::TcpStream::connect(addr).await.expect("data");
    data.write_all(&v1("192.0.2.9")).await.expect("header");
    c.expect("STOR f.txt", 150).await;
    data.write_all(b"through the proxy").await.expect("send");
    data.shutdown().await.expect("close");
    drop(data);
    assert_eq!(c.reply().await.0, 226);
    // Another client's data connection (data-connection theft) is refused.
    let addr = c.pasv().await;
    let mut thief = tokio::net::TcpStream::connect(addr).await.expect("data");
    thief.write_all(&v1("192.0.2.66")).await.expect("header");
    c.send("STOR f.txt").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 425, "{text}");
    assert_eq!(
        c.fetch_proxied("RETR f.txt", &v1("192.0.2.9")).await,
        b"through the proxy"
    );
}

#[tokio::test]
async fn proxy_headers_from_untrusted_peers_are_refused() {
    let server = TestServer::start(
        Store::Memory,
        &[
            ("S3FTP_PROXY_PROTOCOL", "control"),
            ("S3FTP_PROXY_TRUSTED", "10.0.0.0/8, 192.168.1.1"),
        ],
    )
    .await;
    let mut c = proxied(&server, &v1("192.0.2.7")).await;
    assert_eq!(c.try_reply().await, None);
    let trusting = TestServer::start(
        Store::Memory,
        &[
            ("S3FTP_PROXY_PROTOCOL", "control"),
            ("S3FTP_PROXY_TRUSTED", "127.0.0.0/8"),
        ],
    )
    .await;
    let mut c = proxied(&trusting, &v1("192.0.2.7")).await;
    assert_eq!(c.reply().await.0, 220);
}
