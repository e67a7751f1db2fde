//! Users from an HTTP auth hook (S3FTP_AUTH_URL), against a real HTTP server
//! of the tests (tests/common/hook.rs): what the hook is sent, success with
//! a home and rights, refusal (a failed login: delay, ban), a slow, down,
//! failing or malformed hook (421, never let in), the login cache, local
//! users winning over the hook, users with their own mounts on S3 and on a
//! folder, and curl and lftp logging in through it. What a user stored is
//! read from the store directly.

mod common;

use std::time::Duration;

use common::clients::{self, require, run, Server};
use common::hook::{Hook, Mode};
use common::s3::S3Server;
use common::{Raw, Store, TestServer, PASSWORD, USER};
use serde_json::json;

const PARTNER: &str = "acme";
const SECRET: &str = "acme-s3cret";
const TOKEN: &str = "hook-token-1";

/// A server on `store` whose hook is `hook`, with the login cache at
/// `cache` seconds and a one-second hook timeout.
async fn server(store: Store, hook: &Hook, cache: &str) -> TestServer {
    TestServer::start(
        store,
        &[
            ("S3FTP_AUTH_URL", &hook.url()),
            ("S3FTP_AUTH_TOKEN", TOKEN),
            ("S3FTP_AUTH_TIMEOUT", "1"),
            ("S3FTP_LOGIN_CACHE_SECS", cache),
            ("S3FTP_SERVER_ID", "ftp-test-1"),
            ("S3FTP_LOGIN_FAILURES_BEFORE_BAN", "3"),
        ],
    )
    .await
}

fn partner(hook: &Hook, answer: serde_json::Value) {
    hook.add(PARTNER, SECRET, answer);
}

/// USER and PASS: the reply to PASS.
async fn try_login(raw: &mut Raw, user: &str, password: &str) -> (u16, String) {
    raw.expect(&format!("USER {user}"), 331).await;
    raw.cmd(&format!("PASS {password}")).await
}

#[tokio::test]
async fn a_hook_user_logs_in_with_its_home_and_the_hook_is_told_who_asks() {
    let hook = Hook::start();
    partner(&hook, json!({"home": "/partners/acme"}));
    let server = server(Store::folder(), &hook, "0").await;
    let mut raw = server.raw().await;
    let (code, text) = try_login(&mut raw, PARTNER, SECRET).await;
    assert_eq!(code, 230, "{text}");
    assert_eq!(raw.upload("STOR invoice.csv", b"1,2,3\n").await.0, 226);
    assert_eq!(
        server
            .store
            .read("partners/acme/invoice.csv")
            .await
            .as_deref(),
        Some(&b"1,2,3\n"[..]),
        "stored under the hook's home"
    );
    raw.expect("CWD /..", 250).await;
    assert!(String::from_utf8_lossy(&raw.fetch("NLST").await).contains("invoice.csv"));

    let received = hook.received();
    assert_eq!(received.len(), 1);
    let body = &received[0].body;
    assert_eq!(body["version"], 1);
    assert_eq!(body["user"], PARTNER);
    assert_eq!(body["password"], SECRET);
    assert_eq!(body["client_ip"], "127.0.0.1");
    assert!(body["client_port"].as_u64().is_some_and(|p| p > 0));
    assert_eq!(body["tls"], false);
    assert_eq!(body["server_id"], "ftp-test-1");
    assert!(body.get("certificate_names").is_none());
    assert_eq!(
        received[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn rights_from_the_hook_are_enforced() {
    let hook = Hook::start();
    partner(&hook, json!({"home": "/ro", "read_only": true}));
    hook.add("dropper", "pw", json!({"home": "/in", "drop_box": true}));
    let server = server(Store::folder(), &hook, "0").await;
    std::fs::create_dir_all(server.folder_path().unwrap().join("ro")).unwrap();
    std::fs::write(server.folder_path().unwrap().join("ro/keep.txt"), b"kept").unwrap();

    let mut raw = server.raw().await;
    assert_eq!(try_login(&mut raw, PARTNER, SECRET).await.0, 230);
    let (code, text) = raw.cmd("DELE keep.txt").await;
    assert_eq!(code, 550, "{text}");
    let data = raw.data().await;
    assert_eq!(raw.cmd("STOR new.txt").await.0, 550);
    drop(data);
    assert_eq!(
        server.store.read("ro/keep.txt").await.as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(server.store.read("ro/new.txt").await, None);

    let mut raw = server.raw().await;
    assert_eq!(try_login(&mut raw, "dropper", "pw").await.0, 230);
    assert_eq!(raw.upload("STOR drop.bin", b"dropped").await.0, 226);
    let data = raw.data().await;
    let (code, _) = raw.cmd("RETR drop.bin").await;
    assert_eq!(code, 550, "a drop box cannot read back");
    drop(data);
    assert_eq!(
        server.store.read("in/drop.bin").await.as_deref(),
        Some(&b"dropped"[..])
    );
}

#[tokio::test]
async fn a_refusal_is_a_failed_login_with_its_delay_and_ban() {
    let hook = Hook::start();
    partner(&hook, json!({}));
    let server = server(Store::folder(), &hook, "60").await;
    for _ in 0..2 {
        let mut raw = server.raw().await;
        let (code, text) = try_login(&mut raw, PARTNER, "wrong").await;
        assert_eq!(code, 530, "{text}");
        // The session goes on: a right password still works on it.
        let (code, text) = try_login(&mut raw, PARTNER, SECRET).await;
        assert_eq!(code, 230, "{text}");
    }
    // Unknown to the hook: refused too, and the third failure bans.
    let mut raw = server.raw().await;
    let (code, text) = try_login(&mut raw, "nobody", "x").await;
    assert_eq!(code, 421, "third failure from the address bans it: {text}");
    assert_eq!(
        server.metric("s3ftp_logins_total{result=\"failed\"}").await,
        3.0
    );
    assert_eq!(hook.asked_for("nobody"), 1);
    assert_eq!(
        server.store.root_names().await,
        Vec::<String>::new(),
        "no home made"
    );
}

/// A hook that does not answer usably refuses the login with 421 (the
/// connection closes), never lets it in, and counts no failure against
/// the address.
#[tokio::test]
async fn a_slow_failing_or_malformed_hook_refuses_with_421() {
    let mut hook = Hook::start();
    partner(&hook, json!({"home": "/acme"}));
    let server = server(Store::folder(), &hook, "0").await;
    let broken = [
        Mode::Slow(Duration::from_millis(2500)),
        Mode::Status(500),
        Mode::Status(400),
        Mode::Body("not json".into()),
        Mode::Body(r#"{"home":"/acme","readonly":true}"#.into()),
        Mode::Body(r#"{"home":"acme"}"#.into()),
        Mode::Body(r#"{"home":"/acme/.."}"#.into()),
        Mode::Body(r#"{"mounts":{"/":"nowhere://x"}}"#.into()),
    ];
    for mode in broken {
        hook.set_mode(mode.clone());
        let mut raw = server.raw().await;
        raw.expect(&format!("USER {PARTNER}"), 331).await;
        raw.send(&format!("PASS {SECRET}")).await;
        let (code, text) = raw.reply().await;
        assert_eq!(code, 421, "{mode:?}: {text}");
        assert!(
            raw.try_reply().await.is_none(),
            "{mode:?}: the connection closes"
        );
    }
    hook.stop();
    let mut raw = server.raw().await;
    let (code, text) = try_login(&mut raw, PARTNER, SECRET).await;
    assert_eq!(code, 421, "hook down: {text}");
    assert!(text.contains("not available"), "{text}");

    assert_eq!(
        server.metric("s3ftp_logins_total{result=\"ok\"}").await,
        0.0
    );
    assert_eq!(
        server.metric("s3ftp_logins_total{result=\"failed\"}").await,
        0.0
    );
    assert_eq!(
        server
            .metric("s3ftp_logins_total{result=\"unavailable\"}")
            .await,
        9.0
    );
    assert_eq!(
        server.store.root_names().await,
        Vec::<String>::new(),
        "no home made"
    );
    // Not banned: local users still log in from the same address.
    let mut raw = server.raw().await;
    raw.login(USER, PASSWORD).await;
}

#[tokio::test]
async fn the_cache_answers_only_the_same_password() {
    let hook = Hook::start();
    partner(&hook, json!({"home": "/acme"}));
    let server = server(Store::folder(), &hook, "60").await;
    for _ in 0..3 {
        let mut raw = server.raw().await;
        raw.login(PARTNER, SECRET).await;
    }
    assert_eq!(hook.asked_for(PARTNER), 1, "two logins from the cache");
    assert_eq!(
        server
            .metric("s3ftp_login_check_seconds_count{via=\"cache\"}")
            .await,
        2.0
    );
    // A wrong password is never answered from the cache.
    let mut raw = server.raw().await;
    assert_eq!(try_login(&mut raw, PARTNER, "guess").await.0, 530);
    assert_eq!(hook.asked_for(PARTNER), 2);
    // A password changed at the hook: the new one is asked for and works.
    partner(&hook, json!({"home": "/acme"}));
    hook.add(PARTNER, "rotated", json!({"home": "/acme"}));
    let mut raw = server.raw().await;
    raw.login(PARTNER, "rotated").await;
    assert_eq!(hook.asked_for(PARTNER), 3);
}

#[tokio::test]
async fn local_users_win_over_the_hook() {
    let hook = Hook::start();
    // The hook would accept alice with another password and another home.
    hook.add(USER, "hook-password", json!({"home": "/elsewhere"}));
    let server = server(Store::folder(), &hook, "0").await;
    let mut raw = server.raw().await;
    assert_eq!(try_login(&mut raw, USER, "hook-password").await.0, 530);
    raw.login(USER, PASSWORD).await;
    assert_eq!(raw.upload("STOR mine.txt", b"local").await.0, 226);
    assert_eq!(
        server.store.read("mine.txt").await.as_deref(),
        Some(&b"local"[..])
    );
    assert_eq!(hook.received().len(), 0, "a local name is never sent out");
}

/// A partner's account in its own bucket and prefix: what it stores lands
/// there, not in the server's mount; two partners on one endpoint share the
/// S3 client; another partner's own folder works alike.
#[tokio::test]
async fn users_with_their_own_mounts_on_s3_and_a_folder() {
    let s3 = S3Server::shared();
    let own_bucket = s3.fresh_bucket().await;
    let folder = tempfile::tempdir().unwrap();
    let hook = Hook::start();
    partner(
        &hook,
        json!({"home": "/", "mounts": {"/": s3.mount_uri(&own_bucket, "partners/acme")}}),
    );
    hook.add(
        "globex",
        "g",
        json!({"home": "/in", "mounts": {"/": format!("fs://{}", folder.path().display())}}),
    );
    hook.add(
        "broken",
        "b",
        json!({"mounts": {"/": s3.mount_uri("no-such-bucket-s3ftp", "")}}),
    );
    let server = server(Store::folder(), &hook, "0").await;

    for _ in 0..2 {
        let mut raw = server.raw().await;
        raw.login(PARTNER, SECRET).await;
        assert_eq!(raw.upload("STOR report.txt", b"acme data").await.0, 226);
    }
    assert_eq!(
        s3.get_object(&own_bucket, "partners/acme/report.txt")
            .await
            .as_deref(),
        Some(&b"acme data"[..])
    );
    assert_eq!(
        server.store.read("report.txt").await,
        None,
        "not in the server's mount"
    );

    let mut raw = server.raw().await;
    raw.login("globex", "g").await;
    assert_eq!(raw.upload("STOR g.txt", b"globex").await.0, 226);
    assert_eq!(
        std::fs::read(folder.path().join("in/g.txt")).unwrap(),
        b"globex"
    );

    // A user whose own store cannot be used is told so, and let in nowhere.
    let mut raw = server.raw().await;
    let (code, text) = try_login(&mut raw, "broken", "b").await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("storage"), "{text}");
}

#[test]
fn curl_and_lftp_log_in_through_the_hook() {
    require("curl");
    require("lftp");
    let hook = Hook::start();
    partner(&hook, json!({"home": "/acme"}));
    let server = Server::start_with(
        None,
        &[
            ("S3FTP_AUTH_URL", hook.url()),
            ("S3FTP_AUTH_TIMEOUT", "2".into()),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("up.txt");
    std::fs::write(&local, b"via curl").unwrap();
    let r = run(
        {
            let mut c = std::process::Command::new("curl");
            c.args(["-sS", "--max-time", "20", "-T"])
                .arg(&local)
                .arg(format!("ftp://127.0.0.1:{}/up.txt", server.port))
                .args(["--user", &format!("{PARTNER}:{SECRET}")]);
            c
        },
        Duration::from_secs(30),
    );
    clients::assert_ran("curl upload", &r, &server);
    let r = run(
        {
            let mut c = std::process::Command::new("lftp");
            c.args([
                "-c",
                &format!(
                    "set cmd:fail-exit yes; open -u {PARTNER},{SECRET} ftp://127.0.0.1:{}; cls -1",
                    server.port
                ),
            ]);
            c
        },
        Duration::from_secs(30),
    );
    clients::assert_ran("lftp ls", &r, &server);
    assert!(r.stdout_text().contains("up.txt"), "{}", r.stdout_text());
    clients::block_on(async {
        assert_eq!(
            server.store.read("acme/up.txt").await.as_deref(),
            Some(&b"via curl"[..])
        );
    });
    // And a wrong password through curl is a 530, with nothing stored.
    let r = run(
        {
            let mut c = std::process::Command::new("curl");
            c.args(["-sS", "--max-time", "20", "-T"])
                .arg(&local)
                .arg(format!("ftp://127.0.0.1:{}/bad.txt", server.port))
                .args(["--user", &format!("{PARTNER}:nope")]);
            c
        },
        Duration::from_secs(30),
    );
    assert!(!r.status.success(), "curl with a wrong password fails");
    assert!(r.stderr.contains("530"), "{}", r.stderr);
    clients::block_on(async {
        assert_eq!(server.store.read("acme/bad.txt").await, None);
    });
}
