//! Data transfers through the real server on the memory and local-folder back
//! ends: round trips with checksums, restarts and appends, TYPE A, ABOR and
//! disconnects in the middle of a transfer (the previous file must survive and
//! nothing partial may appear), commands sent during a transfer, parallel
//! sessions, and the data-channel timeouts.

mod common;

use std::time::Duration;

use common::{content, sha256, Raw, Store, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

on_every_backend!(
    round_trips_with_checksums,
    restart_append_and_unique_names,
    ascii_mode_converts_line_endings,
    abort_during_download,
    abort_during_upload_keeps_the_old_file,
    control_disconnect_mid_upload_keeps_the_old_file,
    data_reset_mid_upload_keeps_the_old_file,
    commands_during_a_transfer_are_answered_in_order,
    quit_during_a_transfer_waits_for_its_reply,
    twenty_parallel_sessions,
);

/// Names in the root, sorted.
async fn names(c: &mut Raw) -> Vec<String> {
    let data = c.fetch("NLST").await;
    let mut names: Vec<String> = String::from_utf8_lossy(&data)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

async fn round_trips_with_checksums(server: TestServer) {
    let mut ftp = server.client().await;
    for (i, len) in [0usize, 1, 5 * 1024 * 1024 + 123].into_iter().enumerate() {
        let body = content(len, i as u64);
        let name = format!("file{i}.bin");
        let sent = ftp
            .put_file(&name, &mut body.as_slice())
            .await
            .expect("upload");
        assert_eq!(sent as usize, len);
        assert_eq!(ftp.size(&name).await.expect("SIZE"), len);
        let mut download = ftp.retr_as_stream(&name).await.expect("RETR");
        let mut back = Vec::new();
        download.read_to_end(&mut back).await.expect("read");
        download.finish().await.expect("226");
        assert_eq!(sha256(&back), sha256(&body), "{len} bytes");
    }
    ftp.quit().await.expect("QUIT");
    server.assert_nothing_partial().await;
    if let Some(bucket) = server.bucket() {
        // The files really are objects under the mount's prefix.
        let keys = common::s3::S3Server::shared()
            .list_keys(bucket, common::S3_PREFIX)
            .await;
        for i in 0..3 {
            let key = format!("{}/file{i}.bin", common::S3_PREFIX);
            assert!(keys.contains(&key), "{key} not in {keys:?}");
        }
    }
}

async fn restart_append_and_unique_names(server: TestServer) {
    let mut c = server.login().await;
    let body = content(1000, 1);
    assert_eq!(c.upload("STOR f", &body).await.0, 226);
    c.expect("REST 400", 350).await;
    assert_eq!(c.fetch("RETR f").await, &body[400..]);
    // REST applies to one transfer only.
    assert_eq!(c.fetch("RETR f").await, body);
    let more = content(100, 2);
    assert_eq!(c.upload("APPE f", &more).await.0, 226);
    assert_eq!(c.expect("SIZE f", 213).await, "213 1100\r\n");
    let mut expected = body.clone();
    expected.extend_from_slice(&more);
    assert_eq!(c.fetch("RETR f").await, expected);
    // REST n + STOR keeps the first n bytes and writes after them.
    let tail = content(50, 3);
    c.expect("REST 500", 350).await;
    assert_eq!(c.upload("STOR f", &tail).await.0, 226);
    let mut expected = body[..500].to_vec();
    expected.extend_from_slice(&tail);
    assert_eq!(c.fetch("RETR f").await, expected);
    // Past the end: refused, file unchanged.
    let data = c.data().await;
    c.expect("REST 5000", 350).await;
    c.expect("RETR f", 554).await;
    c.expect("REST 5000", 350).await;
    c.expect("STOR f", 554).await;
    drop(data);
    assert_eq!(c.fetch("RETR f").await, expected);
    // APPE creates a missing file.
    assert_eq!(c.upload("APPE new", b"abc").await.0, 226);
    assert_eq!(c.fetch("RETR new").await, b"abc");
    // STOU never overwrites.
    let mut data = c.data().await;
    let opening = c.expect("STOU", 150).await;
    assert!(opening.contains("FILE: upload"), "{opening}");
    data.write_all(b"first").await.expect("write");
    drop(data);
    let done = c.reply().await;
    assert_eq!(done.0, 226, "{done:?}");
    let mut data = c.data().await;
    let opening = c.expect("STOU", 150).await;
    assert!(opening.contains("FILE: upload.1"), "{opening}");
    data.write_all(b"second").await.expect("write");
    drop(data);
    assert_eq!(c.reply().await.0, 226);
    assert_eq!(c.fetch("RETR upload").await, b"first");
    assert_eq!(c.fetch("RETR upload.1").await, b"second");
}

async fn ascii_mode_converts_line_endings(server: TestServer) {
    let mut c = server.login().await;
    c.expect("TYPE A", 200).await;
    assert_eq!(
        c.upload("STOR t.txt", b"one\r\ntwo\r\n\r\nlast").await.0,
        226
    );
    assert_eq!(c.expect("SIZE t.txt", 213).await, "213 13\r\n");
    assert_eq!(c.fetch("RETR t.txt").await, b"one\r\ntwo\r\n\r\nlast");
    c.expect("TYPE I", 200).await;
    assert_eq!(c.fetch("RETR t.txt").await, b"one\ntwo\n\nlast");
    if let Some(root) = server.folder_path() {
        assert_eq!(
            std::fs::read(root.join("t.txt")).expect("on disk"),
            b"one\ntwo\n\nlast"
        );
    }
}

/// Big enough that it cannot all sit in socket buffers.
const BIG: usize = 48 * 1024 * 1024;

async fn upload_big(c: &mut Raw, name: &str) {
    let body = vec![0x5a; BIG];
    assert_eq!(c.upload(&format!("STOR {name}"), &body).await.0, 226);
}

async fn abort_during_download(server: TestServer) {
    let mut c = server.login().await;
    upload_big(&mut c, "big").await;
    let mut data = c.data().await;
    c.expect("RETR big", 150).await;
    let mut first = vec![0u8; 64 * 1024];
    data.read_exact(&mut first).await.expect("some data");
    // What clients send: Telnet IP and Synch, then ABOR.
    c.send_bytes(b"\xff\xf4\xff\xf2ABOR\r\n").await;
    assert_eq!(c.reply().await.0, 426);
    assert_eq!(c.reply().await.0, 226);
    c.expect("NOOP", 200).await;
    assert_eq!(c.expect("SIZE big", 213).await, format!("213 {BIG}\r\n"));
}

async fn abort_during_upload_keeps_the_old_file(server: TestServer) {
    let mut c = server.login().await;
    c.upload("STOR f", b"old content").await;
    let mut data = c.data().await;
    c.expect("STOR f", 150).await;
    data.write_all(&vec![1u8; 1024 * 1024])
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.send("ABOR").await;
    assert_eq!(c.reply().await.0, 426);
    assert_eq!(c.reply().await.0, 226);
    drop(data);
    assert_eq!(c.fetch("RETR f").await, b"old content");
    assert_eq!(names(&mut c).await, ["f"]);
    server.assert_nothing_partial().await;
}

async fn control_disconnect_mid_upload_keeps_the_old_file(server: TestServer) {
    let mut c = server.login().await;
    c.upload("STOR f", b"old content").await;
    let mut gone = server.login().await;
    let mut data = gone.data().await;
    gone.expect("STOR f", 150).await;
    data.write_all(&vec![1u8; 1024 * 1024])
        .await
        .expect("write");
    // The client dies: control connection first, then the data connection.
    // The data connection stays open until the abort is visible, because a
    // clean close of it alone would look like the end of the file.
    drop(gone);
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.assert_nothing_partial().await;
    assert_eq!(c.fetch("RETR f").await, b"old content");
    drop(data);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(c.fetch("RETR f").await, b"old content");
    assert_eq!(names(&mut c).await, ["f"]);
    server.assert_nothing_partial().await;
}

async fn data_reset_mid_upload_keeps_the_old_file(server: TestServer) {
    let mut c = server.login().await;
    c.upload("STOR f", b"old content").await;
    let mut data = c.data().await;
    c.expect("STOR f", 150).await;
    data.write_all(&vec![1u8; 512 * 1024]).await.expect("write");
    // An abortive close (RST) is an error, not an end of file.
    data.set_zero_linger().expect("linger");
    drop(data);
    let (code, text) = c.reply().await;
    assert_eq!(code, 426, "{text}");
    c.expect("NOOP", 200).await;
    assert_eq!(c.fetch("RETR f").await, b"old content");
    assert_eq!(names(&mut c).await, ["f"]);
    server.assert_nothing_partial().await;
}

async fn commands_during_a_transfer_are_answered_in_order(server: TestServer) {
    let mut c = server.login().await;
    upload_big(&mut c, "big").await;
    let mut data = c.data().await;
    c.expect("RETR big", 150).await;
    let mut first = vec![0u8; 1024];
    data.read_exact(&mut first).await.expect("some data");
    // STAT answers at once with the progress...
    let stat = c.expect("STAT", 213).await;
    assert!(stat.contains("RETR"), "{stat}");
    // ...other commands wait for the transfer.
    c.send_bytes(b"NOOP\r\nPWD\r\n").await;
    let mut rest = Vec::new();
    data.read_to_end(&mut rest).await.expect("rest of data");
    assert_eq!(rest.len() + first.len(), BIG);
    assert_eq!(c.reply().await.0, 226);
    assert_eq!(c.reply().await.0, 200);
    assert_eq!(c.reply().await.0, 257);
}

async fn quit_during_a_transfer_waits_for_its_reply(server: TestServer) {
    let mut c = server.login().await;
    upload_big(&mut c, "big").await;
    let mut data = c.data().await;
    c.expect("RETR big", 150).await;
    c.send("QUIT").await;
    let mut all = Vec::new();
    data.read_to_end(&mut all).await.expect("data");
    assert_eq!(all.len(), BIG);
    assert_eq!(c.reply().await.0, 226);
    assert_eq!(c.reply().await.0, 221);
    assert!(c.try_reply().await.is_none());
}

async fn twenty_parallel_sessions(server: TestServer) {
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut ftp = common::client(addr).await;
            let body = content(200 * 1024 + i as usize, i);
            let name = format!("p{i:02}");
            ftp.put_file(&name, &mut body.as_slice())
                .await
                .expect("upload");
            let mut download = ftp.retr_as_stream(&name).await.expect("RETR");
            let mut back = Vec::new();
            download.read_to_end(&mut back).await.expect("read");
            download.finish().await.expect("226");
            assert_eq!(sha256(&back), sha256(&body), "session {i}");
            ftp.quit().await.expect("QUIT");
        }));
    }
    for t in tasks {
        t.await.expect("session task");
    }
    let mut c = server.login().await;
    let expected: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
    assert_eq!(names(&mut c).await, expected);
}

#[tokio::test]
async fn idle_control_connection_gets_421() {
    let server = TestServer::start(Store::Memory, &[("S3FTP_IDLE_TIMEOUT", "1")]).await;
    let mut c = server.login().await;
    let (code, _) = c.reply().await;
    assert_eq!(code, 421);
    assert!(c.try_reply().await.is_none(), "closed after 421");
}

#[tokio::test]
async fn data_connection_that_never_arrives_gets_425() {
    let server = TestServer::start(Store::Memory, &[("S3FTP_DATA_TIMEOUT", "1")]).await;
    let mut c = server.login().await;
    c.upload("STOR f", b"keep").await;
    c.pasv().await;
    c.expect("RETR f", 425).await;
    c.pasv().await;
    c.expect("STOR f", 425).await;
    c.pasv().await;
    c.expect("STOR g", 425).await;
    c.expect("NOOP", 200).await;
    assert_eq!(c.fetch("RETR f").await, b"keep");
    c.expect("SIZE g", 550).await;
}

#[tokio::test]
async fn passive_connection_from_another_address_is_refused() {
    let server = TestServer::start(Store::Memory, &[("S3FTP_DATA_TIMEOUT", "1")]).await;
    let mut c = server.login().await;
    c.upload("STOR f", b"secret").await;
    let addr = c.pasv().await;
    // Someone else (127.0.0.2) races to the passive port.
    let thief = TcpSocket::new_v4().expect("socket");
    thief
        .bind("127.0.0.2:0".parse().expect("addr"))
        .expect("bind 127.0.0.2");
    let mut thief = thief.connect(addr).await.expect("connect");
    c.expect("RETR f", 425).await;
    let mut stolen = Vec::new();
    let _ = thief.read_to_end(&mut stolen).await;
    assert!(stolen.is_empty(), "no data went to another address");
    // The rightful client still gets its file on the next try.
    assert_eq!(c.fetch("RETR f").await, b"secret");
}

#[tokio::test]
async fn session_limit_answers_421() {
    let server = TestServer::start(Store::Memory, &[("S3FTP_MAX_SESSIONS", "2")]).await;
    let _a = server.login().await;
    let _b = server.login().await;
    let mut extra = TcpStream::connect(server.addr).await.expect("connect");
    let mut greeting = String::new();
    extra
        .read_to_string(&mut greeting)
        .await
        .expect("read until close");
    assert!(greeting.starts_with("421 "), "{greeting:?}");
    drop(_a);
    let mut again = common::login_when_a_slot_frees(&server).await;
    again.expect("NOOP", 200).await;
}

/// On the local folder, the checksums computed during an upload are kept in
/// the file's `user.s3ftp.digests` extended attribute with the size and time
/// they hold for; a file changed by another program is hashed anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_keeps_upload_checksums_in_an_extended_attribute() {
    let server = TestServer::start(
        common::Store::folder(),
        &[("S3FTP_UPLOAD_DIGESTS", "crc32,sha256")],
    )
    .await;
    let root = server.folder_path().expect("folder").to_path_buf();
    let mut c = server.login().await;
    let body = common::content(300_000, 4);
    c.upload("STOR f", &body).await;
    let kept = xattr::get(root.join("f"), "user.s3ftp.digests")
        .expect("extended attributes work on the test folder")
        .expect("checksums kept");
    let kept = String::from_utf8(kept).expect("utf-8");
    let crc = format!("{:08x}", crc32fast::hash(&body));
    assert!(kept.contains(&format!(";crc32={crc}")), "{kept}");
    assert!(
        kept.contains(&format!(";sha256={}", common::sha256(&body))),
        "{kept}"
    );
    let answer = c.expect("XCRC f", 250).await;
    assert!(answer.contains(&crc.to_uppercase()), "{answer}");
    // Another program rewrites the file: the kept values no longer hold.
    std::fs::write(root.join("f"), b"changed elsewhere").expect("write");
    let answer = c.expect("XCRC f", 250).await;
    let fresh = format!("{:08X}", crc32fast::hash(b"changed elsewhere"));
    assert!(answer.contains(&fresh), "{answer}");
}
