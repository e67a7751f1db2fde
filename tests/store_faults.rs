//! Store faults must not produce wrong answers or leaks (S3): lost and
//! failed CompleteMultipartUpload answers, failing aborts, stale uploads of
//! dead servers, control characters in listed keys, attempts counted in the
//! metrics, and a loop of random cut points. Faults come from a proxy
//! between the server and Garage (`common::faultproxy`); every test reads
//! the bucket directly afterwards.

mod common;

use std::future::Future;
use std::time::Duration;

use common::clients::{s3_key, Backend, Server};
use common::faultproxy::{classify, Fault, FaultProxy, Op};
use common::s3::{encode_mount_value, S3Server};
use common::{content, sha256, Raw, Store, TestServer, S3_PREFIX};
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Three parts of 5 MiB, 5 MiB and 1 MiB.
const LARGE: usize = 11 * 1024 * 1024;
const MIB: usize = 1024 * 1024;

/// A server on a fresh bucket whose S3 requests all go through a new proxy.
async fn proxied(extra: &[(&str, &str)]) -> (TestServer, FaultProxy) {
    let s3 = S3Server::shared();
    let proxy = FaultProxy::start(&s3.endpoint).await;
    let bucket = s3.fresh_bucket().await;
    let mount = format!(
        "/={}",
        s3.mount_uri(&bucket, S3_PREFIX).replace(
            &format!("endpoint={}", encode_mount_value(&s3.endpoint)),
            &format!("endpoint={}", encode_mount_value(&proxy.endpoint())),
        )
    );
    let mut vars = vec![
        ("S3FTP_MOUNTS", mount.as_str()),
        ("S3FTP_PART_SIZE_MIB", "5"),
    ];
    vars.extend_from_slice(extra);
    let server = TestServer::start(Store::S3 { bucket }, &vars).await;
    (server, proxy)
}

fn bucket(server: &TestServer) -> String {
    server.bucket().expect("an S3 server").to_string()
}

/// Waits, polling, until `check` holds; fails after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn uploads(bucket: &str) -> Vec<String> {
    S3Server::shared().list_multipart_uploads(bucket).await
}

async fn stored_sha(bucket: &str, path: &str) -> Option<String> {
    S3Server::shared()
        .get_object(bucket, &s3_key(path))
        .await
        .map(|d| sha256(&d))
}

/// Starts a STOR and sends `first`, leaving the data connection open.
async fn start_upload(raw: &mut Raw, name: &str, first: &[u8]) -> TcpStream {
    let mut data = raw.data().await;
    raw.expect(&format!("STOR {name}"), 150).await;
    data.write_all(first).await.expect("send data");
    data
}

/// Creates a multipart upload directly; returns its upload id.
async fn create_upload(bucket: &str, key: &str) -> String {
    S3Server::shared()
        .create_multipart_upload(bucket, key)
        .await
}

async fn abort_directly(bucket: &str, key: &str, id: &str) {
    S3Server::shared()
        .abort_multipart_upload(bucket, key, id)
        .await;
}

/// The sum of every `s3ftp_backend_requests_total` series.
async fn requests_total(server: &TestServer) -> f64 {
    let (_, text) = server.http_get("/metrics").await;
    text.lines()
        .filter(|l| l.starts_with("s3ftp_backend_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn the_proxy_classifies_requests_by_method_and_query() {
    assert_eq!(classify("POST", "/b/k?uploadId=x"), Op::Complete);
    assert_eq!(classify("POST", "/b/k?uploads"), Op::CreateMultipart);
    assert_eq!(classify("DELETE", "/b/k?uploadId=x"), Op::Abort);
    assert_eq!(
        classify("PUT", "/b/k?partNumber=1&uploadId=x&x-id=UploadPart"),
        Op::UploadPart
    );
    assert_eq!(classify("PUT", "/b/k?x-id=PutObject"), Op::PutObject);
    assert_eq!(classify("GET", "/b?list-type=2&prefix=a"), Op::ListObjects);
    assert_eq!(classify("GET", "/b?uploads&prefix=a"), Op::ListUploads);
    assert_eq!(classify("HEAD", "/b/k"), Op::Head);
    assert_eq!(classify("GET", "/b/k?x-id=GetObject"), Op::GetObject);
}

/// A download read in parts (four ranged GetObjects at once) whose later
/// parts the store keeps failing ends with 451 after a prefix of the file,
/// never with 226; the session goes on, the file is untouched, and once the
/// store recovers the same download is whole. A failure the SDK's retry
/// absorbs costs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_mid_download_is_451_after_a_prefix() {
    let (server, proxy) = proxied(&[]).await;
    let bucket = bucket(&server);
    let file = content(30 * MIB + 11, 41);
    S3Server::shared()
        .put_object(&bucket, &s3_key("f.bin"), &file)
        .await;
    let mut raw = server.login().await;
    for fault in [Fault::Status500, Fault::DropResponse] {
        // The first part's GetObject passes; every later one fails.
        proxy.arm(Op::GetObject, fault, 1, 1000);
        let mut data = raw.data().await;
        raw.expect("RETR f.bin", 150).await;
        let mut got = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut data, &mut got).await;
        let (code, text) = raw.reply().await;
        proxy.disarm();
        assert_eq!(code, 451, "{fault:?}: {text}");
        assert!(got.len() < file.len(), "{fault:?}: {} bytes", got.len());
        assert!(got == file[..got.len()], "{fault:?}: a prefix of the file");
        raw.expect("NOOP", 200).await;
        assert_eq!(stored_sha(&bucket, "f.bin").await, Some(sha256(&file)));
    }
    // One failure of a later part: retried by the SDK, the download is whole.
    proxy.arm(Op::GetObject, Fault::Status500, 2, 1);
    assert_eq!(sha256(&raw.fetch("RETR f.bin").await), sha256(&file));
    assert_eq!(proxy.pending(), 0, "the fault was used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_complete_answer_is_settled_by_reading_the_key() {
    let (server, proxy) = proxied(&[]).await;
    let bucket = bucket(&server);
    let s3 = S3Server::shared();
    s3.put_object(&bucket, &s3_key("big.bin"), b"previous")
        .await;
    let new = content(LARGE, 11);
    proxy.arm(Op::Complete, Fault::DropResponse, 0, 1);
    let mut raw = server.login().await;
    let (code, text) = raw.upload("STOR big.bin", &new).await;
    assert_eq!(code, 226, "{text}");
    assert_eq!(proxy.faulted(Op::Complete), 1);
    assert_eq!(stored_sha(&bucket, "big.bin").await, Some(sha256(&new)));
    assert!(uploads(&bucket).await.is_empty());
    let confirmed = r#"s3ftp_multipart_uploads_total{event="complete_confirmed"}"#;
    assert_eq!(server.metric(confirmed).await, 1.0);
    raw.expect("NOOP", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_failures_retried_succeed_and_persistent_ones_keep_the_previous_object() {
    let (server, proxy) = proxied(&[]).await;
    let bucket = bucket(&server);
    let s3 = S3Server::shared();
    let previous = content(1000, 1);
    s3.put_object(&bucket, &s3_key("f.bin"), &previous).await;
    let mut raw = server.login().await;

    // Two 503s, then the SDK's third attempt goes through.
    let first = content(LARGE, 2);
    proxy.arm(Op::Complete, Fault::SlowDown, 0, 2);
    let (code, text) = raw.upload("STOR f.bin", &first).await;
    assert_eq!(code, 226, "{text}");
    assert_eq!(stored_sha(&bucket, "f.bin").await, Some(sha256(&first)));
    assert!(uploads(&bucket).await.is_empty());

    // Every attempt fails: 451, the object stays as it was, nothing left.
    let second = content(LARGE, 3);
    proxy.arm(Op::Complete, Fault::Status500, 0, 10);
    let (code, text) = raw.upload("STOR f.bin", &second).await;
    assert_eq!(code, 451, "{text}");
    proxy.disarm();
    assert_eq!(stored_sha(&bucket, "f.bin").await, Some(sha256(&first)));
    eventually("the upload is aborted", Duration::from_secs(20), || async {
        uploads(&bucket).await.is_empty()
    })
    .await;
    let not_stored = r#"s3ftp_multipart_uploads_total{event="complete_not_stored"}"#;
    assert_eq!(server.metric(not_stored).await, 1.0);
    raw.expect("NOOP", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_abort_is_retried_until_the_upload_is_gone() {
    let (server, proxy) = proxied(&[("S3FTP_UPLOAD_SWEEP_AGE", "0")]).await;
    let bucket = bucket(&server);
    let s3 = S3Server::shared();
    let previous = content(2000, 4);
    s3.put_object(&bucket, &s3_key("g.bin"), &previous).await;
    // More 503s than the SDK's three tries: the first abort fails as a whole.
    proxy.arm(Op::Abort, Fault::SlowDown, 0, 4);
    let mut raw = server.login().await;
    let data = start_upload(&mut raw, "g.bin", &content(6 * MIB, 5)).await;
    eventually(
        "the multipart upload starts",
        Duration::from_secs(20),
        || async { !uploads(&bucket).await.is_empty() },
    )
    .await;
    // The client aborts mid-upload (its data connection still open).
    raw.send("ABOR").await;
    let (code, text) = raw.reply().await;
    assert!(code == 426 || code == 226, "{text}");
    if code == 426 {
        let (code, text) = raw.reply().await;
        assert_eq!(code, 226, "{text}");
    }
    drop(data);
    eventually(
        "the abort is retried to the end",
        Duration::from_secs(40),
        || async { uploads(&bucket).await.is_empty() },
    )
    .await;
    assert_eq!(proxy.faulted(Op::Abort), 4);
    assert!(proxy.seen(Op::Abort) >= 5, "{}", proxy.seen(Op::Abort));
    let retried = r#"s3ftp_multipart_uploads_total{event="abort_retried"}"#;
    assert!(server.metric(retried).await >= 1.0);
    assert_eq!(stored_sha(&bucket, "g.bin").await, Some(sha256(&previous)));
    raw.expect("NOOP", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_aborts_stale_uploads_but_not_live_ones_or_outside_the_prefix() {
    let s3 = S3Server::shared();
    let bucket = s3.fresh_bucket().await;
    let outside_key = "elsewhere/outside.bin";
    let outside = create_upload(&bucket, outside_key).await;
    let server = TestServer::start(
        Store::S3 {
            bucket: bucket.clone(),
        },
        &[
            ("S3FTP_UPLOAD_SWEEP_AGE", "1"),
            ("S3FTP_PART_SIZE_MIB", "5"),
        ],
    )
    .await;
    // A live upload of this server, its first part sent.
    let mut raw = server.login().await;
    let first = content(6 * MIB, 6);
    let mut data = start_upload(&mut raw, "live.bin", &first).await;
    let live_key = s3_key("live.bin");
    eventually(
        "the live upload starts",
        Duration::from_secs(20),
        || async { uploads(&bucket).await.contains(&live_key) },
    )
    .await;
    // An abandoned one under the prefix, created after the live one: when
    // it is old enough to be swept, so is the live one.
    let stale_key = s3_key("dir/stale.bin");
    create_upload(&bucket, &stale_key).await;
    eventually(
        "the stale upload is swept",
        Duration::from_secs(20),
        || async { !uploads(&bucket).await.contains(&stale_key) },
    )
    .await;
    let swept = r#"s3ftp_multipart_uploads_total{event="swept"}"#;
    assert_eq!(server.metric(swept).await, 1.0);
    let left = uploads(&bucket).await;
    assert!(left.contains(&live_key), "{left:?}");
    assert!(left.contains(&outside_key.to_string()), "{left:?}");
    // The live upload completes normally.
    let rest = content(MIB, 7);
    data.write_all(&rest).await.expect("send the rest");
    data.shutdown().await.expect("close data");
    drop(data);
    let (code, text) = raw.reply().await;
    assert_eq!(code, 226, "{text}");
    let whole: Vec<u8> = [first, rest].concat();
    assert_eq!(stored_sha(&bucket, "live.bin").await, Some(sha256(&whole)));
    assert_eq!(uploads(&bucket).await, vec![outside_key.to_string()]);
    abort_directly(&bucket, outside_key, &outside).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_of_a_killed_server_are_swept_after_restart() {
    let mut server = tokio::task::spawn_blocking(|| {
        Server::alice_on(Backend::S3, &[("S3FTP_PART_SIZE_MIB", "5".into())])
    })
    .await
    .expect("start");
    let common::clients::Store::S3 { bucket } = server.store.clone() else {
        unreachable!("an S3 server")
    };
    let mut held = Vec::new();
    for name in ["one.bin", "two.bin"] {
        let mut raw = Raw::connect(server.addr()).await;
        raw.login(common::USER, common::PASSWORD).await;
        let data = start_upload(&mut raw, name, &content(6 * MIB, 8)).await;
        held.push((raw, data));
    }
    eventually("both uploads start", Duration::from_secs(20), || async {
        uploads(&bucket).await.len() == 2
    })
    .await;
    let restarted = tokio::task::spawn_blocking(move || {
        server.kill_and_restart(&[("S3FTP_UPLOAD_SWEEP_AGE", "1".into())]);
        server
    })
    .await
    .expect("restart");
    drop(held);
    eventually(
        "the dead server's uploads are swept",
        Duration::from_secs(30),
        || async { uploads(&bucket).await.is_empty() },
    )
    .await;
    let mut raw = Raw::connect(restarted.addr()).await;
    raw.login(common::USER, common::PASSWORD).await;
    raw.expect("NOOP", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_control_characters_are_listed() {
    let server = TestServer::s3().await;
    let bucket = bucket(&server);
    let s3 = S3Server::shared();
    let names = [
        "ctl-\u{1}-one",
        "ctl-\u{c}-two",
        "ctl-\u{1b}-three",
        "plain+name two",
    ];
    for name in names {
        s3.put_object(&bucket, &s3_key(&format!("d/{name}")), b"x")
            .await;
    }
    s3.put_object(&bucket, &s3_key("d/sub\u{1}dir/inner"), b"y")
        .await;
    let mut raw = server.login().await;
    let list = String::from_utf8_lossy(&raw.fetch("LIST d").await).into_owned();
    let nlst = String::from_utf8_lossy(&raw.fetch("NLST d").await).into_owned();
    let mlsd = String::from_utf8_lossy(&raw.fetch("MLSD d").await).into_owned();
    for (what, text) in [("LIST", &list), ("NLST", &nlst), ("MLSD", &mlsd)] {
        assert_eq!(text.lines().count(), 5, "{what}: {text:?}");
        for tail in ["-one", "-two", "-three", "plain+name two", "dir"] {
            assert!(text.contains(tail), "{what} lacks {tail:?}: {text:?}");
        }
    }
    let (code, text) = raw.cmd("STAT d").await;
    assert!(code == 211 || code == 213, "{text}");
    assert!(text.contains("-three"), "{text}");
    // Removing the directory walks the same keys.
    raw.expect("NOOP", 200).await;
    let keys = s3.list_keys(&bucket, &s3_key("d/")).await;
    assert_eq!(keys.len(), 5, "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_requests_count_every_attempt() {
    let (server, proxy) = proxied(&[("S3FTP_UPLOAD_SWEEP_AGE", "0")]).await;
    let mut raw = server.login().await;
    raw.expect("NOOP", 200).await;
    let (before, seen_before) = (requests_total(&server).await, proxy.seen_total());
    let errors =
        r#"s3ftp_backend_requests_total{backend="s3",operation="PutObject",outcome="error"}"#;
    proxy.arm(Op::PutObject, Fault::SlowDown, 0, 2);
    proxy.arm(Op::ListObjects, Fault::Status500, 0, 1);
    let (code, text) = raw.upload("STOR small.txt", b"hello").await;
    assert_eq!(code, 226, "{text}");
    raw.fetch("LIST").await;
    assert_eq!(proxy.faulted_total(), 3);
    let counted = requests_total(&server).await - before;
    let sent = (proxy.seen_total() - seen_before) as f64;
    assert_eq!(counted, sent, "metric increase vs requests the proxy saw");
    assert_eq!(server.metric(errors).await, 2.0);
}

/// A small deterministic generator, so a failing seed can be replayed.
/// Random faults on UploadPart, Complete and PutObject: whatever happens,
/// the reply matches what is stored, and nothing is left behind.
/// S3FTP_FAULT_TRIALS raises the number of trials; S3FTP_FAULT_SEED replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_cut_points_never_lie_or_leak() {
    let (mut rng, seed, trials) = common::fault_plan("random_cut_points", 12);
    let (server, proxy) = proxied(&[("S3FTP_UPLOAD_SWEEP_AGE", "0")]).await;
    let bucket = bucket(&server);
    let s3 = S3Server::shared();
    let mut raw = server.login().await;
    let faults = [
        Fault::Status500,
        Fault::SlowDown,
        Fault::DropRequest,
        Fault::DropResponse,
    ];
    let ops = [Op::UploadPart, Op::Complete, Op::PutObject];
    for trial in 0..trials as u64 {
        let op = ops[(trial % 3) as usize];
        let fault = faults[((trial / 3 + rng.gen_range(0..4)) % 4) as usize];
        let count = 1 + rng.gen_range(0..3) as usize;
        let skip = if op == Op::UploadPart {
            rng.gen_range(0..3) as usize
        } else {
            0
        };
        let size = if op == Op::PutObject { 100_000 } else { LARGE };
        let name = format!("t{trial}.bin");
        let previous = content(3000, seed ^ trial);
        s3.put_object(&bucket, &s3_key(&name), &previous).await;
        let new = content(size, seed.wrapping_add(trial));
        proxy.arm(op, fault, skip, count);
        let (code, text) = raw.upload(&format!("STOR {name}"), &new).await;
        proxy.disarm();
        let stored = stored_sha(&bucket, &name).await;
        let case =
            format!("trial {trial} (seed {seed}): {op:?} {fault:?} skip {skip} x{count}: {text}");
        println!("{case}");
        if (200..300).contains(&code) {
            assert_eq!(stored, Some(sha256(&new)), "{case}");
        } else {
            assert!(code >= 400, "{case}");
            assert_eq!(stored, Some(sha256(&previous)), "{case}");
        }
        eventually(&case, Duration::from_secs(20), || async {
            uploads(&bucket).await.is_empty()
        })
        .await;
        raw.expect("NOOP", 200).await;
    }
    let listing = raw.fetch("NLST").await;
    assert_eq!(common::lines(&listing).len(), trials);
}
