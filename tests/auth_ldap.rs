//! Users from LDAP (S3FTP_LDAP_*), against a real OpenLDAP server started
//! by the tests (tests/common/ldap.rs): a bind DN template over StartTLS,
//! search-then-bind with a service account over ldaps://, groups that
//! require membership or make read-only, a disabled account, wrong and
//! empty passwords, missing users and filter injection, an untrusted
//! certificate and a server that is down (421, never let in), the login
//! cache, and curl and lftp logging in. What a user stored is read from
//! the store directly.

mod common;

use std::time::Duration;

use common::clients::{self, require, run, Server};
use common::ldap::{Slapd, PEOPLE, READ_ONLY_GROUP, SERVICE_DN, SERVICE_PASSWORD, USERS_GROUP};
use common::{Raw, Store, TestServer};

/// A server on a fresh folder whose users come from `slapd` with `extra`
/// settings (and the directory's CA trusted).
async fn server(slapd: &Slapd, extra: &[(&str, &str)]) -> TestServer {
    let ca = slapd.ca_file.display().to_string();
    let url = slapd.url();
    let mut vars: Vec<(&str, &str)> = vec![
        ("S3FTP_LDAP_URL", &url),
        ("S3FTP_AUTH_CA_FILE", &ca),
        ("S3FTP_AUTH_TIMEOUT", "2"),
        ("S3FTP_LOGIN_CACHE_SECS", "0"),
        ("S3FTP_LOGIN_FAILURES_BEFORE_BAN", "0"),
    ];
    vars.extend_from_slice(extra);
    TestServer::start(Store::folder(), &vars).await
}

const TEMPLATE: (&str, &str) = (
    "S3FTP_LDAP_BIND_DN_TEMPLATE",
    "uid={user},ou=people,dc=example,dc=org",
);

async fn pass(server: &TestServer, user: &str, password: &str) -> (Raw, u16, String) {
    let mut raw = server.raw().await;
    raw.expect(&format!("USER {user}"), 331).await;
    let (code, text) = raw.cmd(&format!("PASS {password}")).await;
    (raw, code, text)
}

#[tokio::test]
async fn bind_template_over_starttls_with_homes_from_the_entry_or_the_template() {
    let slapd = Slapd::start();
    let server = server(
        &slapd,
        &[TEMPLATE, ("S3FTP_LDAP_HOME_ATTRIBUTE", "departmentNumber")],
    )
    .await;
    let (mut raw, code, text) = pass(&server, "ann", "ann-pw").await;
    assert_eq!(code, 230, "{text}\n{}", slapd.log());
    assert_eq!(raw.upload("STOR a.txt", b"from ann").await.0, 226);
    assert_eq!(
        server.store.read("partners/ann/a.txt").await.as_deref(),
        Some(&b"from ann"[..]),
        "home from the entry's attribute"
    );
    let (mut raw, code, _) = pass(&server, "BEN", "ben-pw").await;
    assert_eq!(code, 230, "LDAP names are case-insensitive");
    assert_eq!(raw.upload("STOR b.txt", b"from ben").await.0, 226);
    assert_eq!(
        server.store.read("ben/b.txt").await.as_deref(),
        Some(&b"from ben"[..]),
        "home from the template, lower-cased name"
    );
    for (user, password) in [
        ("ann", "wrong"),
        ("nobody", "x"),
        // An entry without a password cannot bind.
        ("max", "x"),
        // An empty password would be an anonymous bind, which succeeds.
        ("ann", ""),
        ("*", "ann-pw"),
        ("ann,ou=people", "ann-pw"),
    ] {
        let (_, code, text) = pass(&server, user, password).await;
        assert_eq!(code, 530, "{user:?} / {password:?}: {text}");
    }
    assert_eq!(
        server.metric("s3ftp_logins_total{result=\"ok\"}").await,
        2.0
    );
    assert_eq!(
        server.metric("s3ftp_logins_total{result=\"failed\"}").await,
        6.0
    );
    let mut names = server.store.root_names().await;
    names.sort();
    assert_eq!(names, ["ben", "partners"], "no home for a refused login");
}

#[tokio::test]
async fn search_then_bind_over_ldaps_with_groups_and_a_disabled_account() {
    let slapd = Slapd::start();
    let url = slapd.tls_url();
    let server = server(
        &slapd,
        &[
            ("S3FTP_LDAP_URL", &url),
            ("S3FTP_LDAP_BIND_DN", SERVICE_DN),
            ("S3FTP_LDAP_BIND_PASSWORD", SERVICE_PASSWORD),
            ("S3FTP_LDAP_BASE_DN", PEOPLE),
            (
                "S3FTP_LDAP_FILTER",
                "(&(uid={user})(!(employeeType=disabled)))",
            ),
            ("S3FTP_LDAP_GROUP_BASE_DN", "ou=groups,dc=example,dc=org"),
            ("S3FTP_LDAP_REQUIRED_GROUP", USERS_GROUP),
            ("S3FTP_LDAP_READ_ONLY_GROUP", READ_ONLY_GROUP),
        ],
    )
    .await;
    let (mut raw, code, text) = pass(&server, "ann", "ann-pw").await;
    assert_eq!(code, 230, "{text}\n{}", slapd.log());
    assert_eq!(raw.upload("STOR w.txt", b"writer").await.0, 226);
    assert_eq!(
        server.store.read("ann/w.txt").await.as_deref(),
        Some(&b"writer"[..])
    );

    // cat is in the read-only group.
    std::fs::create_dir_all(server.folder_path().unwrap().join("cat")).unwrap();
    std::fs::write(server.folder_path().unwrap().join("cat/keep.txt"), b"keep").unwrap();
    let (mut raw, code, _) = pass(&server, "cat", "cat-pw").await;
    assert_eq!(code, 230);
    let data = raw.data().await;
    assert_eq!(raw.cmd("STOR new.txt").await.0, 550);
    drop(data);
    assert_eq!(raw.cmd("DELE keep.txt").await.0, 550);
    assert_eq!(raw.fetch("RETR keep.txt").await, b"keep");
    assert_eq!(server.store.read("cat/new.txt").await, None);
    assert_eq!(
        server.store.read("cat/keep.txt").await.as_deref(),
        Some(&b"keep"[..])
    );

    for (user, password, why) in [
        ("dan", "dan-pw", "not in the required group"),
        ("eve", "eve-pw", "disabled by the filter"),
        ("ben", "ann-pw", "another user's password"),
        ("ann)(uid=*", "ann-pw", "filter injection"),
        ("*", "ben-pw", "wildcard"),
    ] {
        let (_, code, text) = pass(&server, user, password).await;
        assert_eq!(code, 530, "{user}: {why}: {text}");
    }
    assert!(!server.folder_path().unwrap().join("dan").exists());
}

#[tokio::test]
async fn a_directory_that_is_down_or_untrusted_refuses_with_421() {
    let mut slapd = Slapd::start();
    // Without the test CA, StartTLS fails: never a bind in the clear.
    let untrusted = TestServer::start(
        Store::folder(),
        &[
            ("S3FTP_LDAP_URL", &slapd.url()),
            TEMPLATE,
            ("S3FTP_AUTH_TIMEOUT", "2"),
        ],
    )
    .await;
    let (mut raw, code, text) = pass(&untrusted, "ann", "ann-pw").await;
    assert_eq!(code, 421, "{text}");
    assert!(raw.try_reply().await.is_none(), "the connection closes");

    let server = server(&slapd, &[TEMPLATE]).await;
    let (_, code, _) = pass(&server, "ann", "ann-pw").await;
    assert_eq!(code, 230, "{}", slapd.log());
    // The idle connection the first login left goes dead with the server.
    slapd.stop();
    let (_, code, text) = pass(&server, "ann", "ann-pw").await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("not available"), "{text}");
    assert_eq!(
        server
            .metric("s3ftp_logins_total{result=\"unavailable\"}")
            .await,
        1.0
    );
    assert_eq!(
        server.metric("s3ftp_logins_total{result=\"failed\"}").await,
        0.0
    );

    // Plain ldap:// to loopback may skip StartTLS; the cache then answers
    // a repeated login without the directory.
    let slapd = Slapd::start();
    let url = slapd.url();
    let plain = TestServer::start(
        Store::folder(),
        &[
            ("S3FTP_LDAP_URL", &url),
            ("S3FTP_LDAP_STARTTLS", "false"),
            TEMPLATE,
            ("S3FTP_LOGIN_CACHE_SECS", "60"),
        ],
    )
    .await;
    let (_, code, _) = pass(&plain, "ben", "ben-pw").await;
    assert_eq!(code, 230);
    drop(slapd);
    let (_, code, _) = pass(&plain, "ben", "ben-pw").await;
    assert_eq!(code, 230, "from the cache");
    let (_, code, _) = pass(&plain, "ben", "other").await;
    assert_eq!(code, 421, "another password is not in the cache");
    assert_eq!(
        plain
            .metric("s3ftp_login_check_seconds_count{via=\"cache\"}")
            .await,
        1.0
    );
}

#[test]
fn curl_and_lftp_log_in_through_ldap() {
    require("curl");
    require("lftp");
    let slapd = Slapd::start();
    let server = Server::start_with(
        None,
        &[
            ("S3FTP_LDAP_URL", slapd.url()),
            ("S3FTP_AUTH_CA_FILE", slapd.ca_file.display().to_string()),
            ("S3FTP_LDAP_BIND_DN_TEMPLATE", TEMPLATE.1.to_string()),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("up.txt");
    std::fs::write(&local, b"via curl").unwrap();
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sS", "--max-time", "20", "-T"])
        .arg(&local)
        .arg(format!("ftp://127.0.0.1:{}/up.txt", server.port))
        .args(["--user", "ben:ben-pw"]);
    let r = run(curl, Duration::from_secs(30));
    clients::assert_ran("curl upload", &r, &server);
    let mut lftp = std::process::Command::new("lftp");
    lftp.args([
        "-c",
        &format!(
            "set cmd:fail-exit yes; open -u ben,ben-pw ftp://127.0.0.1:{}; cls -1",
            server.port
        ),
    ]);
    let r = run(lftp, Duration::from_secs(30));
    clients::assert_ran("lftp ls", &r, &server);
    assert!(r.stdout_text().contains("up.txt"), "{}", r.stdout_text());
    clients::block_on(async {
        assert_eq!(
            server.store.read("ben/up.txt").await.as_deref(),
            Some(&b"via curl"[..])
        );
    });
}
