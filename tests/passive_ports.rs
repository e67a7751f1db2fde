//! Passive ports shared by sessions of different client addresses: a range
//! of two ports serves twenty concurrent uploads from twenty addresses
//! (127.0.0.x), each file whole in the store; a second session from the
//! same address takes the other port; a connection from an address no
//! session waits for is refused and logged, and the waiting session still
//! gets its own.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::clients::{block_on, Server};
use common::{content, Raw, Store, TestServer, PASSWORD, USER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Two consecutive free loopback ports.
fn two_free_ports() -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = first.local_addr().expect("addr").port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free ports");
}

/// A data connection from `from` to `port` of the server.
async fn connect_from(from: &str, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(from.parse().expect("ip"), 0))
        .expect("bind");
    socket
        .connect(SocketAddr::new("127.0.0.1".parse().expect("ip"), port))
        .await
        .expect("data connect")
}

async fn login_from(server: SocketAddr, from: &str) -> Raw {
    let mut raw = Raw::connect_any(server, Some(from)).await;
    assert_eq!(raw.reply().await.0, 220);
    raw.login(USER, PASSWORD).await;
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ports_serve_twenty_clients_at_once() {
    let low = two_free_ports();
    let range = format!("{low}-{}", low + 1);
    let server = TestServer::start(Store::folder(), &[("S3FTP_PASV_PORTS", &range)]).await;
    let mut sessions = Vec::new();
    for i in 0..20u8 {
        let from = format!("127.0.0.{}", i + 2);
        let mut raw = login_from(server.addr, &from).await;
        let port = raw.pasv().await.port();
        sessions.push((from, raw, port));
    }
    let ports: BTreeSet<u16> = sessions.iter().map(|(_, _, p)| *p).collect();
    assert!(
        ports.iter().all(|p| (low..=low + 1).contains(p)),
        "{ports:?} in {range}"
    );
    // All twenty wait at once, then all upload at once.
    let uploads = sessions
        .into_iter()
        .enumerate()
        .map(|(i, (from, mut raw, port))| {
            tokio::spawn(async move {
                let mut data = connect_from(&from, port).await;
                raw.expect(&format!("STOR f{i}.bin"), 150).await;
                data.write_all(&content(64 * 1024 + i, i as u64))
                    .await
                    .expect("send");
                data.shutdown().await.expect("close");
                raw.reply().await
            })
        });
    for (i, upload) in futures::future::join_all(uploads)
        .await
        .into_iter()
        .enumerate()
    {
        let (code, text) = upload.expect("upload task");
        assert_eq!(code, 226, "client {i}: {text}");
    }
    for i in 0..20 {
        assert_eq!(
            server.store.read(&format!("f{i}.bin")).await,
            Some(content(64 * 1024 + i, i as u64)),
            "f{i}.bin whole"
        );
    }
    server.assert_nothing_partial().await;
}

#[tokio::test]
async fn sessions_from_one_address_take_different_ports() {
    let low = two_free_ports();
    let range = format!("{low}-{}", low + 1);
    let server = TestServer::start(Store::folder(), &[("S3FTP_PASV_PORTS", &range)]).await;
    let mut a = login_from(server.addr, "127.0.0.2").await;
    let mut b = login_from(server.addr, "127.0.0.2").await;
    let mut c = login_from(server.addr, "127.0.0.2").await;
    let (pa, pb) = (a.pasv().await.port(), b.pasv().await.port());
    assert_ne!(pa, pb, "one waiting session per address and port");
    // The range is full for this address: the third session is told so,
    // and keeps its session.
    let (code, text) = c.cmd("PASV").await;
    assert_eq!(code, 425, "{text}");
    c.expect("NOOP", 200).await;
    // Once b's transfer is done, its port serves c.
    let mut data = connect_from("127.0.0.2", pb).await;
    b.expect("LIST", 150).await;
    data.read_to_end(&mut Vec::new()).await.expect("listing");
    assert_eq!(b.reply().await.0, 226);
    assert_eq!(c.pasv().await.port(), pb);
    drop(a);
}

/// Against the binary, so its log can be read: a stranger's connection to
/// a port where sessions wait is closed and logged; the session's own
/// connection then arrives as usual.
#[test]
fn a_connection_no_session_waits_for_is_refused_and_logged() {
    let low = two_free_ports();
    let server = Server::with_alice_and(&[
        ("S3FTP_PASV_PORTS", format!("{low}-{low}")),
        ("S3FTP_LOG", "warn".into()),
    ]);
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().expect("addr");
    block_on(async {
        let mut raw = login_from(addr, "127.0.0.2").await;
        let port = raw.pasv().await.port();
        let mut stranger = connect_from("127.0.0.99", port).await;
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), stranger.read(&mut buf))
            .await
            .expect("the stranger is answered");
        assert!(matches!(read, Ok(0) | Err(_)), "closed: {read:?}");
        let mut data = connect_from("127.0.0.2", port).await;
        raw.expect("STOR mine.txt", 150).await;
        data.write_all(b"mine").await.expect("send");
        data.shutdown().await.expect("close");
        assert_eq!(raw.reply().await.0, 226);
    });
    server.assert_file("mine.txt", b"mine");
    let log = server.stderr();
    assert!(
        log.contains("no session waits for this address") && log.contains("127.0.0.99"),
        "{log}"
    );
}
