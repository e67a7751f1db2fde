//! Guards against hostile clients: slower answers to repeated failed logins,
//! a temporary ban of an address after too many, and a limit on sessions per
//! address. Each test checks the reply code, that other clients and correct
//! logins are unaffected, and that stored data survives.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, Store, TestServer, PASSWORD, USER};

async fn failed_login(c: &mut Raw) -> (u16, String) {
    c.expect(&format!("USER {USER}"), 331).await;
    c.cmd("PASS wrong").await
}

#[tokio::test]
async fn failed_logins_are_answered_ever_more_slowly() {
    let server = TestServer::start(
        Store::Memory,
        &[
            ("S3FTP_LOGIN_FAIL_DELAY_MS", "150"),
            ("S3FTP_LOGIN_FAILURES_BEFORE_BAN", "0"),
        ],
    )
    .await;
    let mut c = server.raw().await;
    let mut waits = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(failed_login(&mut c).await.0, 530);
        waits.push(started.elapsed());
    }
    // Lower bounds only: the server sleeps at least this long.
    assert!(waits[0] >= Duration::from_millis(150), "{waits:?}");
    assert!(waits[1] >= Duration::from_millis(300), "{waits:?}");
    assert!(waits[2] >= Duration::from_millis(450), "{waits:?}");
    // The right password still works on the same connection.
    c.login(USER, PASSWORD).await;
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn an_address_is_banned_after_repeated_failures_others_are_not() {
    let server = TestServer::start(
        Store::Memory,
        &[
            ("S3FTP_LOGIN_FAILURES_BEFORE_BAN", "3"),
            ("S3FTP_BAN_SECONDS", "60"),
        ],
    )
    .await;
    let mut owner = server.login().await;
    owner.upload("STOR keep", b"safe").await;
    let mut attacker = server.raw().await;
    assert_eq!(failed_login(&mut attacker).await.0, 530);
    assert_eq!(failed_login(&mut attacker).await.0, 530);
    let (code, text) = failed_login(&mut attacker).await;
    assert_eq!(code, 421, "{text}");
    assert!(attacker.try_reply().await.is_none(), "closed after the ban");
    // A new connection from the banned address is refused at once.
    let mut again = Raw::connect_any(server.addr, None).await;
    let (code, text) = again.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("failed logins"), "{text}");
    // Another address logs in normally, and the sessions already open go on.
    let mut other = Raw::connect_any(server.addr, Some("127.0.0.2")).await;
    assert_eq!(other.reply().await.0, 220);
    other.login(USER, PASSWORD).await;
    assert_eq!(other.fetch("RETR keep").await, b"safe");
    owner.expect("NOOP", 200).await;
}

#[tokio::test]
async fn failures_below_the_limit_leave_logins_alone() {
    let server =
        TestServer::start(Store::Memory, &[("S3FTP_LOGIN_FAILURES_BEFORE_BAN", "3")]).await;
    let mut c = server.raw().await;
    assert_eq!(failed_login(&mut c).await.0, 530);
    assert_eq!(failed_login(&mut c).await.0, 530);
    c.login(USER, PASSWORD).await;
    let mut fresh = server.login().await;
    fresh.expect("NOOP", 200).await;
}

#[tokio::test]
async fn sessions_per_address_are_limited() {
    let server = TestServer::start(Store::Memory, &[("S3FTP_MAX_SESSIONS_PER_IP", "2")]).await;
    let first = server.login().await;
    let _second = server.login().await;
    let mut third = Raw::connect_any(server.addr, None).await;
    let (code, text) = third.reply().await;
    assert_eq!(code, 421, "{text}");
    // Another address is not affected.
    let mut other = Raw::connect_any(server.addr, Some("127.0.0.2")).await;
    assert_eq!(other.reply().await.0, 220);
    // A slot frees when a session ends.
    drop(first);
    let mut again = common::login_when_a_slot_frees(&server).await;
    again.expect("NOOP", 200).await;
}

#[tokio::test]
async fn a_client_that_never_logs_in_is_cut_off() {
    let server = TestServer::start(Store::Memory, &[("S3FTP_LOGIN_TIMEOUT", "1")]).await;
    let mut logged_in = server.login().await;
    let mut lurker = server.raw().await;
    // Keeping the line busy does not help.
    let started = Instant::now();
    let code = loop {
        let (code, _) = lurker.cmd("NOOP").await;
        if code != 200 {
            break code;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never cut off");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(code, 421);
    assert!(lurker.try_reply().await.is_none(), "closed");
    // A logged-in session is not subject to it.
    logged_in.expect("NOOP", 200).await;
}

#[tokio::test]
async fn fast_command_streams_are_slowed_not_dropped() {
    let server = TestServer::start(Store::Memory, &[("S3FTP_MAX_COMMANDS_PER_SECOND", "10")]).await;
    let mut c = server.login().await;
    let started = Instant::now();
    c.send_bytes("NOOP\r\n".repeat(30).as_bytes()).await;
    for _ in 0..30 {
        assert_eq!(c.reply().await.0, 200);
    }
    // 30 commands at 10 a second (the first window already had the login's).
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    c.expect("PWD", 257).await;
}

#[tokio::test]
async fn users_can_come_from_a_toml_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("users.toml");
    let text = format!(
        "[[users]]\nname = \"tom\"\npassword = '{}'\nhome = \"/tom\"\n",
        common::cheap_hash("from toml")
    );
    std::fs::write(&file, text).expect("write users.toml");
    let path = file.display().to_string();
    let server = TestServer::start(Store::Memory, &[("S3FTP_USERS_FILE", path.as_str())]).await;
    let mut c = server.raw().await;
    c.login("tom", "from toml").await;
    assert!(c.expect("PWD", 257).await.contains("\"/\""));
    // Users from S3FTP_USERS still work beside them.
    let mut alice = server.login().await;
    assert_eq!(alice.fetch("NLST").await, b"tom\r\n");
}
