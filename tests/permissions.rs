//! Per-user permissions and anonymous login, on every back end: each refusal
//! is checked for its reply code and for the stored data staying as it was.

mod common;

use common::{Raw, Store, TestServer, DROP_BOX, NO_DELETE, NO_OVERWRITE, PASSWORD};

on_every_backend!(drop_box_uploads_only, no_delete_user, no_overwrite_user);

async fn as_user(server: &TestServer, user: &str) -> Raw {
    let mut c = server.raw().await;
    c.login(user, PASSWORD).await;
    c
}

async fn drop_box_uploads_only(server: TestServer) {
    let mut owner = server.login().await;
    owner.upload("STOR secret", b"not for the drop box").await;
    owner.expect("MKD in", 257).await;
    let mut d = as_user(&server, DROP_BOX).await;
    assert_eq!(d.upload("STOR in/new.csv", b"a,b\n").await.0, 226);
    // It sees nothing, reads nothing, changes nothing that exists.
    assert!(common::sorted_lines(&d.fetch("NLST").await).is_empty());
    assert!(common::sorted_lines(&d.fetch("LIST in").await).is_empty());
    let data = d.data().await;
    for (line, code) in [
        ("RETR secret", 550),
        ("RETR in/new.csv", 550),
        ("STOR secret", 550),
        ("APPE secret", 550),
        ("DELE in/new.csv", 550),
        ("RNFR in/new.csv", 350),
        ("RNTO in/moved.csv", 550),
        ("RMD in", 550),
    ] {
        d.expect(line, code).await;
    }
    drop(data);
    assert_eq!(owner.fetch("RETR secret").await, b"not for the drop box");
    assert_eq!(owner.fetch("RETR in/new.csv").await, b"a,b\n");
    assert_eq!(
        common::sorted_lines(&owner.fetch("NLST in").await),
        ["in/new.csv"]
    );
}

async fn no_delete_user(server: TestServer) {
    let mut owner = server.login().await;
    owner.upload("STOR f", b"keep me").await;
    owner.expect("MKD d", 257).await;
    let mut k = as_user(&server, NO_DELETE).await;
    assert_eq!(k.upload("STOR new", b"fresh").await.0, 226);
    let data = k.data().await;
    for (line, code) in [
        ("DELE f", 550),
        ("RMD d", 550),
        ("RMDA d", 550),
        ("STOR f", 550),
        ("RNFR new", 350),
        ("RNTO f", 550),
    ] {
        k.expect(line, code).await;
    }
    drop(data);
    k.expect("RNFR new", 350).await;
    k.expect("RNTO renamed", 250).await;
    assert_eq!(owner.fetch("RETR f").await, b"keep me");
    assert_eq!(
        common::sorted_lines(&owner.fetch("NLST").await),
        ["d", "f", "renamed"]
    );
}

async fn no_overwrite_user(server: TestServer) {
    let mut owner = server.login().await;
    owner.upload("STOR f", b"original").await;
    let mut c = as_user(&server, NO_OVERWRITE).await;
    assert_eq!(c.fetch("RETR f").await, b"original");
    let data = c.data().await;
    c.expect("STOR f", 550).await;
    c.expect("APPE f", 550).await;
    c.expect("REST 3", 350).await;
    c.expect("STOR f", 550).await;
    drop(data);
    assert_eq!(c.upload("STOR g", b"new").await.0, 226);
    c.expect("RNFR g", 350).await;
    c.expect("RNTO f", 550).await;
    c.expect("DELE g", 250).await;
    assert_eq!(owner.fetch("RETR f").await, b"original");
}

#[tokio::test]
async fn anonymous_login_is_off_by_default_and_read_only_when_on() {
    let off = TestServer::memory().await;
    let mut c = off.raw().await;
    c.expect("USER anonymous", 331).await;
    c.expect("PASS guest@example.com", 530).await;

    let on = TestServer::start(Store::Memory, &[("S3FTP_ANONYMOUS_HOME", "/pub")]).await;
    let mut owner = on.login().await;
    owner.expect("MKD pub", 257).await;
    owner.upload("STOR pub/readme.txt", b"hello").await;
    let mut anon = on.raw().await;
    anon.login("anonymous", "guest@example.com").await;
    assert_eq!(anon.fetch("RETR readme.txt").await, b"hello");
    let data = anon.data().await;
    anon.expect("STOR upload", 550).await;
    anon.expect("DELE readme.txt", 550).await;
    anon.expect("MKD x", 550).await;
    drop(data);
    // Its root is /pub: nothing above it is reachable.
    anon.expect("CWD ..", 250).await;
    assert_eq!(
        common::sorted_lines(&anon.fetch("NLST").await),
        ["readme.txt"]
    );
    let mut ftp = on.raw().await;
    ftp.login("ftp", "").await;
    assert_eq!(
        common::sorted_lines(&owner.fetch("NLST pub").await),
        ["pub/readme.txt"]
    );
}
