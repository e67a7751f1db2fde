//! Every command of the core server over a real TCP control connection, on the
//! memory and the local-folder back ends: the reply code of each, and for each
//! refusal, that the session goes on and the stored data is unchanged.

mod common;

use common::{content, Raw, TestServer, JAILED, PASSWORD, READER, USER};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_every_backend!(
    login_and_access_control,
    reply_codes_of_every_command,
    directories_follow_object_store_rules,
    rename_and_delete,
    listings,
    modification_times,
    hostile_paths_stay_inside_the_root,
    home_directory_is_the_users_root,
    read_only_user_cannot_change_anything,
    overlong_and_pipelined_lines,
    data_channel_guards,
    active_mode_transfer,
    recursive_size_and_removal,
    upload_then_rename_to_the_final_name,
    client_habits,
    control_characters_in_new_names_are_refused,
    recursive_listing,
    site_chmod_is_accepted_and_changes_nothing,
    directories_carry_a_modify_fact,
    checksums,
);

async fn login_and_access_control(server: TestServer) {
    let mut c = server.raw().await;
    c.expect("PWD", 530).await;
    c.expect("LIST", 530).await;
    c.expect("MKD x", 530).await;
    c.expect("PASS nobody", 503).await;
    c.expect(&format!("USER {USER}"), 331).await;
    c.expect("PASS wrong", 530).await;
    // A failed login leaves the session usable.
    c.expect("NOOP", 200).await;
    c.expect("USER nosuchuser", 331).await;
    c.expect(&format!("PASS {PASSWORD}"), 530).await;
    c.login(USER, PASSWORD).await;
    c.expect("PASS again", 202).await;
    c.expect("ACCT x", 202).await;
    c.expect("PWD", 257).await;
    c.expect("REIN", 220).await;
    c.expect("PWD", 530).await;
    c.login(USER, PASSWORD).await;
    c.expect("QUIT", 221).await;
    assert!(
        c.try_reply().await.is_none(),
        "connection closed after QUIT"
    );
}

async fn reply_codes_of_every_command(server: TestServer) {
    let mut pre = server.raw().await;
    for (line, code) in [
        ("HOST localhost", 220),
        ("SYST", 215),
        ("FEAT", 211),
        ("HELP", 214),
        ("STAT", 211),
        ("LANG EN", 200),
        ("CSID Name=test; Version=1;", 200),
        ("CWD /", 530),
        ("RETR x", 530),
        ("SIZE x", 530),
    ] {
        pre.expect(line, code).await;
    }
    let mut c = server.login().await;
    c.upload("STOR f", b"hello").await;
    for (line, code) in [
        ("NOOP", 200),
        ("SYST", 215),
        ("OPTS UTF8 ON", 200),
        ("OPTS MLST type;size;", 200),
        ("OPTS BOGUS", 501),
        ("HELP RETR", 214),
        ("HELP BOGUS", 501),
        ("STAT", 211),
        ("SITE HELP", 214),
        ("SITE BOGUS", 500),
        ("ALLO 100", 202),
        ("TYPE A", 200),
        ("TYPE L 8", 200),
        ("TYPE I", 200),
        ("TYPE E", 504),
        ("TYPE X", 501),
        ("MODE S", 200),
        ("MODE B", 504),
        ("STRU F", 200),
        ("STRU R", 504),
        ("HOST localhost", 503),
        ("LANG FR", 504),
        ("CLNT curl", 200),
        ("SIZE f", 213),
        ("MDTM f", 213),
        ("DSIZ", 213),
        ("SMNT /x", 502),
        ("THMB f", 502),
        ("XRCP x", 502),
        ("XRSQ x", 502),
        ("XSEM x", 502),
        ("XSEN x", 502),
        ("ADAT x", 502),
        ("CONF x", 502),
        ("ENC x", 502),
        ("MIC x", 502),
        ("AUTH TLS", 502),
        ("CCC", 503),
        ("PBSZ 0", 503),
        ("PROT P", 503),
        ("BOGUS", 500),
        ("RETR", 501),
        ("REST abc", 501),
        ("PORT 1,2,3", 501),
        ("EPRT |3|x|1|", 522),
        ("EPSV 3", 522),
        ("EPSV 2", 522),
        ("MFMT 2020 f", 501),
        ("XPWD", 257),
        ("XMKD z", 257),
        ("XCWD z", 250),
        ("XCUP", 250),
        ("XRMD z", 250),
        ("RNTO x", 503),
        ("ABOR", 226),
        ("PASV", 227),
        ("ABOR", 225),
        ("EPSV", 229),
        ("LPSV", 228),
        ("SPSV", 227),
        ("EPSV 1", 229),
        ("REST 2", 350),
        ("MLST f", 250),
        ("MFMT 20200102030405 f", 213),
        ("MFF modify=20210102030405; f", 213),
        ("MFF unix.mode=0777; f", 504),
    ] {
        c.expect(line, code).await;
    }
    // An empty line and a lone space are syntax errors, not disconnects.
    c.expect("", 500).await;
    c.expect(" ", 500).await;
    let feat = c.expect("FEAT", 211).await;
    for ext in [
        "MLST type*;size*;modify*",
        "MFMT",
        "SIZE",
        "REST STREAM",
        "EPSV",
        "UTF8",
    ] {
        assert!(feat.contains(ext), "FEAT lacks {ext}: {feat}");
    }
    let mut again = Raw::connect(server.addr).await;
    again.login(USER, PASSWORD).await;
    let data = again.fetch("RETR f").await;
    assert_eq!(data, b"hello", "the file survived all of the above");
}

async fn directories_follow_object_store_rules(server: TestServer) {
    let mut c = server.login().await;
    let created = c.expect("MKD a", 257).await;
    assert!(created.contains("\"/a\""), "{created}");
    c.expect("MKD a", 550).await;
    c.expect("CWD a", 250).await;
    assert!(c.expect("PWD", 257).await.contains("\"/a\""));
    c.expect("MKD b", 257).await;
    c.expect("MKD b/c/d", 550).await; // parents are not created implicitly
    c.expect("CDUP", 250).await;
    assert!(c.expect("PWD", 257).await.contains("\"/\""));
    c.expect("RMD a", 550).await; // not empty
    c.expect("CWD a/b", 250).await;
    c.expect("RMD /a/b", 550).await; // the working directory
    c.expect("CWD /", 250).await;
    c.expect("CWD missing", 550).await;
    // STOR into a missing parent and onto a directory are refused up front.
    let data = c.data().await;
    c.expect("STOR missing/f", 550).await;
    c.expect("STOR a", 550).await;
    drop(data);
    c.upload("STOR a/file", b"x").await;
    c.expect("CWD a/file", 550).await;
    c.expect("MKD a/file", 550).await;
    c.expect("RMD a/file", 550).await;
    c.expect("DELE a/file", 250).await;
    c.expect("RMD a/b", 250).await;
    c.expect("RMD a", 250).await;
    c.expect("CWD a", 550).await;
    let listing = common::lines(&c.fetch("NLST").await);
    assert!(listing.is_empty(), "{listing:?}");
}

async fn rename_and_delete(server: TestServer) {
    let mut c = server.login().await;
    c.upload("STOR f", b"one").await;
    c.upload("STOR g", b"two").await;
    c.expect("RNFR missing", 550).await;
    c.expect("RNFR f", 350).await;
    c.expect("RNTO g", 250).await; // replaces, as FTP servers do
    c.expect("SIZE f", 550).await;
    assert_eq!(c.fetch("RETR g").await, b"one");
    c.expect("RNFR g", 350).await;
    c.expect("NOOP", 200).await;
    c.expect("RNTO h", 503).await; // RNTO must follow RNFR directly
    c.expect("MKD d", 257).await;
    c.expect("MKD d/e", 257).await;
    c.upload("STOR d/e/deep", b"deep").await;
    c.expect("RNFR d", 350).await;
    c.expect("RNTO d/e/inside", 553).await;
    c.expect("RNFR d", 350).await;
    c.expect("RNTO moved", 250).await;
    assert_eq!(c.fetch("RETR moved/e/deep").await, b"deep");
    c.expect("CWD d", 550).await;
    c.expect("RNFR g", 350).await;
    c.expect("RNTO nodir/g", 550).await;
    assert_eq!(
        c.fetch("RETR g").await,
        b"one",
        "failed rename kept the file"
    );
    c.expect("DELE g", 250).await;
    c.expect("DELE g", 550).await;
    c.expect("DELE moved", 550).await; // a directory
}

async fn listings(server: TestServer) {
    let mut c = server.login().await;
    for name in ["a.csv", "b.csv", "c.txt"] {
        c.upload(&format!("STOR {name}"), b"12345").await;
    }
    c.expect("MKD d", 257).await;
    let list = common::lines(&c.fetch("LIST").await);
    assert_eq!(list.len(), 4, "{list:?}");
    assert!(
        list.iter().any(|l| l.starts_with('d') && l.ends_with(" d")),
        "{list:?}"
    );
    assert!(
        list.iter()
            .any(|l| l.starts_with('-') && l.contains(" 5 ") && l.ends_with(" a.csv")),
        "{list:?}"
    );
    assert_eq!(common::lines(&c.fetch("LIST -la").await).len(), 4);
    assert_eq!(common::lines(&c.fetch("LIST -a -l /").await).len(), 4);
    let mut names = common::lines(&c.fetch("NLST").await);
    names.sort();
    assert_eq!(names, ["a.csv", "b.csv", "c.txt", "d"]);
    let mut csv = common::lines(&c.fetch("NLST *.csv").await);
    csv.sort();
    assert_eq!(csv, ["a.csv", "b.csv"]);
    assert_eq!(common::lines(&c.fetch("LIST c.txt").await).len(), 1);
    // With a directory in the argument, NLST names come back with it, so
    // that `mget dir/*.csv` can RETR each one.
    c.upload("STOR d/in.csv", b"in").await;
    assert_eq!(common::lines(&c.fetch("NLST d/*.csv").await), ["d/in.csv"]);
    assert_eq!(common::lines(&c.fetch("NLST d").await), ["d/in.csv"]);
    assert_eq!(common::lines(&c.fetch("NLST d/").await), ["d/in.csv"]);
    assert_eq!(
        common::lines(&c.fetch("NLST /d/in.csv").await),
        ["/d/in.csv"]
    );
    assert_eq!(common::lines(&c.fetch("NLST c.txt").await), ["c.txt"]);
    assert_eq!(c.fetch("RETR d/in.csv").await, b"in");
    c.expect("DELE d/in.csv", 250).await;
    // A real name that looks like a pattern is found literally.
    c.upload("STOR x[1].txt", b"1").await;
    assert_eq!(common::lines(&c.fetch("NLST x[1].txt").await), ["x[1].txt"]);
    c.expect("DELE x[1].txt", 250).await;
    assert!(common::lines(&c.fetch("LIST d").await).is_empty());
    let mlsd = common::lines(&c.fetch("MLSD").await);
    assert_eq!(mlsd.len(), 4, "{mlsd:?}");
    assert!(
        mlsd.iter()
            .any(|l| l.contains("type=dir;") && l.ends_with("; d")),
        "{mlsd:?}"
    );
    assert!(
        mlsd.iter()
            .any(|l| l.contains("type=file;") && l.contains("size=5;") && l.ends_with("; c.txt")),
        "{mlsd:?}"
    );
    let data = c.data().await;
    c.expect("MLSD c.txt", 501).await;
    drop(data);
    let mlst = c.expect("MLST a.csv", 250).await;
    assert!(
        mlst.contains(" type=file;size=5;") && mlst.contains("; /a.csv\r\n"),
        "{mlst}"
    );
    c.expect("MLST missing", 550).await;
    let stat = c.expect("STAT .", 213).await;
    assert_eq!(stat.lines().count(), 6, "{stat}");
    assert!(stat.contains(" a.csv\r\n"), "{stat}");
    assert!(c.expect("STAT c.txt", 213).await.contains("c.txt"));
    c.expect("STAT missing", 550).await;
    c.expect("OPTS MLST size;", 200).await;
    let only_size = common::lines(&c.fetch("MLSD").await);
    assert!(
        only_size.iter().all(|l| !l.contains("type=")),
        "{only_size:?}"
    );
}

async fn modification_times(server: TestServer) {
    let mut c = server.login().await;
    c.upload("STOR f", b"content").await;
    let mfmt = c.expect("MFMT 20200102030405 f", 213).await;
    assert!(mfmt.contains("Modify=20200102030405"), "{mfmt}");
    assert_eq!(c.expect("MDTM f", 213).await, "213 20200102030405\r\n");
    let mlsd = common::lines(&c.fetch("MLSD").await);
    assert!(mlsd[0].contains("modify=20200102030405;"), "{mlsd:?}");
    let list = common::lines(&c.fetch("LIST").await);
    assert!(list[0].contains("Jan 02  2020"), "{list:?}");
    c.expect("MFMT 20200102030405 missing", 550).await;
    c.expect("MDTM missing", 550).await;
    // SITE UTIME, as older clients send it, in both forms.
    c.upload("STOR old client.txt", b"u").await;
    c.expect("SITE UTIME 20190304050607 old client.txt", 200)
        .await;
    assert_eq!(
        c.expect("MDTM old client.txt", 213).await,
        "213 20190304050607\r\n"
    );
    c.expect(
        "SITE UTIME old client.txt 20220101000000 20180708091011 20220101000000 UTC",
        200,
    )
    .await;
    assert_eq!(
        c.expect("MDTM old client.txt", 213).await,
        "213 20180708091011\r\n"
    );
    let mlsd = common::lines(&c.fetch("MLSD").await);
    assert!(
        mlsd.iter()
            .any(|l| l.contains("modify=20180708091011;") && l.ends_with(" old client.txt")),
        "{mlsd:?}"
    );
    c.expect("SITE UTIME 20190304050607 missing", 550).await;
    c.expect("SITE UTIME yesterday f", 501).await;
    c.expect("SITE UTIME", 501).await;
    assert_eq!(
        c.expect("MDTM old client.txt", 213).await,
        "213 20180708091011\r\n",
        "a refused SITE UTIME changes nothing"
    );
    c.expect("MKD d", 257).await;
    c.expect("MDTM d", 550).await;
    assert_eq!(c.fetch("RETR f").await, b"content");
}

/// Objects copied so far (0 when the back end is not S3).
async fn copies(server: &TestServer) -> f64 {
    let mut n = 0.0;
    for op in ["CopyObject", "UploadPartCopy"] {
        n += server
            .metric(&format!(
                r#"s3ftp_backend_requests_total{{backend="s3",operation="{op}",outcome="ok"}}"#
            ))
            .await;
    }
    n
}

/// WinSCP's `.filepart` habit (S3FTP_TEMP_SUFFIXES): the upload goes straight
/// to the final name, so the rename copies nothing, and every other use of the
/// temporary name sees exactly what a plain upload would have left.
async fn upload_then_rename_to_the_final_name(server: TestServer) {
    let mut c = server.login().await;
    let mut other = server.login().await;
    // Larger than a part: a multipart upload on S3.
    let big = content(9 * 1024 * 1024 + 5, 7);
    c.upload("STOR old.txt", b"old").await;
    assert_eq!(c.upload("STOR big.bin.filepart", &big).await.0, 226);
    // Not visible under either name until the rename.
    other.expect("SIZE big.bin", 550).await;
    other.expect("SIZE big.bin.filepart", 550).await;
    c.expect("TYPE I", 200).await; // harmless commands keep it waiting
    let mfmt = c.expect("MFMT 20200102030405 big.bin.filepart", 213).await;
    assert!(mfmt.contains("Modify=20200102030405"), "{mfmt}");
    let before = copies(&server).await;
    c.expect("RNFR big.bin.filepart", 350).await;
    c.expect("RNTO big.bin", 250).await;
    assert_eq!(
        c.expect("SIZE big.bin", 213).await,
        format!("213 {}\r\n", big.len())
    );
    c.expect("SIZE big.bin.filepart", 550).await;
    assert_eq!(
        c.expect("MDTM big.bin", 213).await,
        "213 20200102030405\r\n"
    );
    assert!(c.fetch("RETR big.bin").await == big, "big.bin differs");
    if server.bucket().is_some() {
        // The rename itself copied nothing (MFMT is a copy in place on S3).
        assert!(
            copies(&server).await - before <= 1.0,
            "rename copied the object"
        );
    }
    let names = common::sorted_lines(&c.fetch("NLST").await);
    assert_eq!(names, ["big.bin", "old.txt"]);

    // Any other command first gives the upload its temporary name.
    assert_eq!(c.upload("STOR a.csv.filepart", b"a-data").await.0, 226);
    assert_eq!(c.expect("SIZE a.csv.filepart", 213).await, "213 6\r\n");
    c.expect("SIZE a.csv", 550).await;
    assert_eq!(c.fetch("RETR a.csv.filepart").await, b"a-data");

    // A rename to another name: the file ends up there, nothing else left.
    assert_eq!(c.upload("STOR b.filepart", b"b-data").await.0, 226);
    c.expect("RNFR b.filepart", 350).await;
    c.expect("RNTO elsewhere", 250).await;
    assert_eq!(c.fetch("RETR elsewhere").await, b"b-data");
    c.expect("SIZE b", 550).await;
    c.expect("SIZE b.filepart", 550).await;

    // Replacing an existing file: the old content stays readable until the
    // rename (the upload then goes to the temporary name, as without staging).
    assert_eq!(c.upload("STOR old.txt.filepart", b"new").await.0, 226);
    assert_eq!(other.fetch("RETR old.txt").await, b"old");
    c.expect("RNFR old.txt.filepart", 350).await;
    c.expect("RNTO old.txt", 250).await;
    assert_eq!(other.fetch("RETR old.txt").await, b"new");
    other.expect("SIZE old.txt.filepart", 550).await;

    // A failed upload to a temporary name leaves nothing behind.
    let mut data = c.data().await;
    c.expect("STOR cut.filepart", 150).await;
    data.write_all(b"partial").await.expect("write");
    c.send("ABOR").await;
    assert_eq!(c.reply().await.0, 426);
    assert_eq!(c.reply().await.0, 226);
    drop(data);
    c.expect("SIZE cut.filepart", 550).await;
    c.expect("SIZE cut", 550).await;

    // A client that leaves right after the upload: the file keeps the name
    // it was sent to.
    assert_eq!(c.upload("STOR gone.filepart", b"g-data").await.0, 226);
    drop(c);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (code, _) = other.cmd("SIZE gone.filepart").await;
        if code == 213 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gone.filepart never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(other.fetch("RETR gone.filepart").await, b"g-data");
    other.expect("SIZE gone", 550).await;
    server.assert_nothing_partial().await;
}

/// Habits of real clients: the data connection opened before the command,
/// PASV sent twice, TYPE between commands, no QUIT at the end.
async fn client_habits(server: TestServer) {
    let mut c = server.login().await;
    c.upload("STOR f.csv", b"1,2\n").await;
    // PASV twice: the second port is the one that serves.
    let first = c.pasv().await;
    let second = c.pasv().await;
    let mut data = tokio::net::TcpStream::connect(second)
        .await
        .expect("connect");
    c.expect("TYPE A", 200).await;
    c.expect("TYPE I", 200).await;
    c.expect("RETR f.csv", 150).await;
    let mut out = Vec::new();
    data.read_to_end(&mut out).await.expect("read");
    assert_eq!(c.reply().await.0, 226);
    assert_eq!(out, b"1,2\n");
    if first.port() != second.port() {
        // The first listener was closed, or at least serves nothing any more.
        if let Ok(Ok(mut stale)) = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            tokio::net::TcpStream::connect(first),
        )
        .await
        {
            let mut buf = [0u8; 1];
            let n =
                tokio::time::timeout(std::time::Duration::from_secs(1), stale.read(&mut buf)).await;
            assert!(!matches!(n, Ok(Ok(1))), "the stale passive port sent data");
        }
    }
    // An upload then no QUIT: the session just goes away; the file stays and
    // the session's slot is freed.
    assert_eq!(c.upload("STOR kept.csv", b"k").await.0, 226);
    drop(c);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.metric("s3ftp_sessions_active").await > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "session never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut c = server.login().await;
    assert_eq!(c.fetch("RETR kept.csv").await, b"k");
}

async fn hostile_paths_stay_inside_the_root(server: TestServer) {
    let mut c = server.login().await;
    c.expect("CWD ../../..", 250).await;
    assert!(c.expect("PWD", 257).await.contains("\"/\""));
    let (code, _) = c.upload("STOR ../../../escape.txt", b"esc").await;
    assert_eq!(code, 226);
    if let Some(root) = server.folder_path() {
        assert!(root.join("escape.txt").exists(), "stored inside the root");
        let parent = root.parent().expect("parent");
        assert!(
            !parent.join("escape.txt").exists(),
            "nothing written outside"
        );
    }
    c.send_bytes(b"MKD a\0b\r\n").await;
    assert_eq!(c.reply().await.0, 553);
    // Transfers need a data connection before their path is looked at.
    let data = c.data().await;
    for (line, code) in [
        ("MKD .", 553),
        ("MKD ..", 553),
        ("MKD /", 553),
        ("STOR .", 553),
        ("STOR dir/", 553),
        ("APPE ..", 553),
        ("RMD /", 550),
        ("DELE /", 550),
        ("RNFR /", 550),
        ("CWD /etc", 550),
        ("RETR /etc/passwd", 550),
        ("RETR ../../../../etc/passwd", 550),
        ("SIZE ....//....//etc/passwd", 550),
        // Encoded forms are names, not escapes: nothing is decoded.
        ("RETR %2e%2e/%2e%2e/etc/passwd", 550),
        ("RETR ..%2f..%2fetc%2fpasswd", 550),
        ("CWD ..\\..\\etc", 550),
    ] {
        c.expect(line, code).await;
    }
    drop(data);
    let long = "x".repeat(1100);
    let data = c.data().await;
    c.expect(&format!("STOR {long}"), 553).await;
    c.expect(&format!("MKD {long}"), 553).await;
    drop(data);
    if server.folder_path().is_some() {
        // The upload staging folder is not part of the tree.
        c.expect("CWD .s3ftp-partial", 553).await;
        c.expect("MKD .s3ftp-partial", 553).await;
    }
    let names = common::lines(&c.fetch("NLST").await);
    assert_eq!(names, ["escape.txt"], "nothing else was created");
}

/// Names with C0 controls or DEL break listings, terminals and logs: none
/// can be created (553), the session goes on and the store is unchanged. A
/// file that another tool stored under such a name can still be read and
/// deleted.
async fn control_characters_in_new_names_are_refused(server: TestServer) {
    let mut c = server.login().await;
    assert_eq!(c.upload("STOR keep.txt", b"kept").await.0, 226);
    c.expect("MKD dir", 257).await;
    // Transfers need a data connection before their path is looked at.
    let data = c.data().await;
    for line in [
        "STOR a\x01b",
        "APPE a\x1fb",
        "STOU x\x7fy",
        "STOR dir/t\tab",
    ] {
        let text = c.expect(line, 553).await;
        assert!(text.contains("control character"), "{line:?}: {text}");
        assert!(!text.contains(|ch: char| ch.is_control() && ch != '\r' && ch != '\n'));
    }
    drop(data);
    c.expect("MKD x\x1by", 553).await;
    c.expect("MKD dir/\x0c/", 553).await;
    c.expect("RNFR keep.txt", 350).await;
    c.expect("RNTO kept\x0c.txt", 553).await;
    c.expect("NOOP", 200).await;
    assert_eq!(
        common::sorted_lines(&c.fetch("NLST").await),
        ["dir", "keep.txt"]
    );
    assert!(c.fetch("NLST dir").await.is_empty());
    assert_eq!(c.fetch("RETR keep.txt").await, b"kept");
    let Some(root) = server.folder_path() else {
        return;
    };
    let mut on_disk: Vec<String> = std::fs::read_dir(root)
        .expect("read root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".s3ftp-partial")
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, ["dir", "keep.txt"]);
    assert_eq!(std::fs::read_dir(root.join("dir")).expect("dir").count(), 0);
    // Written by another tool: still readable and removable.
    std::fs::write(root.join("odd\x01name"), b"odd").expect("write odd name");
    assert_eq!(c.fetch("RETR odd\x01name").await, b"odd");
    c.expect("DELE odd\x01name", 250).await;
    assert!(!root.join("odd\x01name").exists());
}

async fn home_directory_is_the_users_root(server: TestServer) {
    let mut alice = server.login().await;
    alice.upload("STOR secret", b"alice only").await;
    let mut bob = server.raw().await;
    bob.login(JAILED, PASSWORD).await;
    assert!(bob.expect("PWD", 257).await.contains("\"/\""));
    bob.upload("STOR mine", b"bob's").await;
    let data = bob.data().await;
    bob.expect("RETR ../secret", 550).await;
    drop(data);
    bob.expect("CWD ..", 250).await;
    assert!(bob.expect("PWD", 257).await.contains("\"/\""));
    bob.expect("SIZE /secret", 550).await;
    assert_eq!(common::lines(&bob.fetch("NLST").await), ["mine"]);
    // In the whole tree, bob's files are under /bob.
    assert_eq!(alice.fetch("RETR /bob/mine").await, b"bob's");
    assert_eq!(alice.fetch("RETR secret").await, b"alice only");
}

async fn read_only_user_cannot_change_anything(server: TestServer) {
    let mut alice = server.login().await;
    alice.upload("STOR f", b"keep").await;
    alice.expect("MKD d", 257).await;
    let mut r = server.raw().await;
    r.login(READER, PASSWORD).await;
    assert_eq!(r.fetch("RETR f").await, b"keep");
    let data = r.data().await;
    for (line, code) in [
        ("STOR f", 550),
        ("APPE f", 550),
        ("STOR new", 550),
        ("DELE f", 550),
        ("MKD x", 550),
        ("RMD d", 550),
        ("RNFR f", 350),
        ("RNTO g", 550),
        ("MFMT 20200101000000 f", 550),
        ("RMDA d", 550),
    ] {
        r.expect(line, code).await;
    }
    drop(data);
    let mlsd = common::lines(&r.fetch("MLSD").await);
    assert!(mlsd.iter().any(|l| l.contains("perm=r;")), "{mlsd:?}");
    assert_eq!(alice.fetch("RETR f").await, b"keep");
    let mut names = common::lines(&alice.fetch("NLST").await);
    names.sort();
    assert_eq!(names, ["d", "f"]);
}

async fn overlong_and_pipelined_lines(server: TestServer) {
    let mut c = server.raw().await;
    // Several commands in one TCP write are answered in order.
    c.send_bytes(format!("USER {USER}\r\nPASS {PASSWORD}\r\nPWD\r\nNOOP\r\n").as_bytes())
        .await;
    for code in [331, 230, 257, 200] {
        assert_eq!(c.reply().await.0, code);
    }
    let long = format!("NOOP {}\r\n", "x".repeat(10_000));
    c.send_bytes(long.as_bytes()).await;
    assert_eq!(c.reply().await.0, 500);
    c.expect("NOOP", 200).await;
    // A megabyte without a line end, then a real command.
    c.send_bytes(&vec![b'A'; 1 << 20]).await;
    c.send_bytes(b"\r\nNOOP\r\n").await;
    assert_eq!(c.reply().await.0, 500);
    assert_eq!(c.reply().await.0, 200);
    // Bare LF line ends and lower-case verbs are accepted.
    c.send_bytes(b"noop\n").await;
    assert_eq!(c.reply().await.0, 200);
    // Telnet IP/DM in front of a command are stripped.
    c.send_bytes(b"\xff\xf4\xff\xf2NOOP\r\n").await;
    assert_eq!(c.reply().await.0, 200);
    // Invalid UTF-8 in a path is refused, the session goes on.
    c.send_bytes(b"MKD \xc3\x28\r\n").await;
    assert_eq!(c.reply().await.0, 553);
    c.expect("NOOP", 200).await;
}

async fn data_channel_guards(server: TestServer) {
    let mut c = server.login().await;
    c.upload("STOR f", b"data").await;
    c.expect("PORT 127,0,0,1,0,80", 504).await;
    c.expect("PORT 10,1,2,3,200,10", 500).await;
    c.expect("EPRT |1|127.0.0.1|80|", 504).await;
    c.expect("EPRT |1|10.0.0.1|5000|", 500).await;
    c.expect("LPRT 4,4,10,0,0,1,2,19,136", 500).await;
    // A refused PORT leaves no data connection behind.
    c.expect("RETR f", 425).await;
    c.expect("LIST", 425).await;
    c.expect("EPSV ALL", 200).await;
    c.expect("PASV", 503).await;
    c.expect("PORT 127,0,0,1,200,10", 503).await;
    let text = c.expect("EPSV", 229).await;
    let port: u16 = text
        .split("|||")
        .nth(1)
        .and_then(|rest| rest.split('|').next())
        .and_then(|p| p.parse().ok())
        .expect("EPSV port");
    let addr = SocketAddr::new(server.addr.ip(), port);
    let mut data = tokio::net::TcpStream::connect(addr).await.expect("connect");
    c.expect("RETR f", 150).await;
    let mut out = Vec::new();
    data.read_to_end(&mut out).await.expect("read");
    assert_eq!(c.reply().await.0, 226);
    assert_eq!(out, b"data");
}

async fn active_mode_transfer(server: TestServer) {
    let mut c = server.login().await;
    let body = content(300_000, 7);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    c.expect(
        &format!("PORT 127,0,0,1,{},{}", port / 256, port % 256),
        200,
    )
    .await;
    c.expect("STOR active.bin", 150).await;
    let (mut data, _) = listener.accept().await.expect("server connects");
    tokio::io::AsyncWriteExt::write_all(&mut data, &body)
        .await
        .expect("send");
    drop(data);
    assert_eq!(c.reply().await.0, 226);
    let eprt = c.expect(&format!("EPRT |1|127.0.0.1|{port}|"), 200).await;
    assert!(eprt.contains("EPRT command successful"), "{eprt}");
    c.expect("RETR active.bin", 150).await;
    let (mut data, _) = listener.accept().await.expect("server connects");
    let mut out = Vec::new();
    data.read_to_end(&mut out).await.expect("read");
    assert_eq!(c.reply().await.0, 226);
    assert_eq!(common::sha256(&out), common::sha256(&body));
}

async fn recursive_size_and_removal(server: TestServer) {
    let mut c = server.login().await;
    c.expect("MKD t", 257).await;
    c.expect("MKD t/u", 257).await;
    c.upload("STOR t/a", &[1u8; 100]).await;
    c.upload("STOR t/u/b", &[2u8; 250]).await;
    c.upload("STOR keep", b"k").await;
    assert_eq!(c.expect("DSIZ t", 213).await, "213 350\r\n");
    c.expect("DSIZ keep", 550).await;
    c.expect("RMDA keep", 550).await;
    c.expect("RMDA t", 250).await;
    c.expect("CWD t", 550).await;
    assert_eq!(common::lines(&c.fetch("NLST").await), ["keep"]);
}

#[tokio::test]
async fn rename_onto_an_existing_file_can_be_refused_by_policy() {
    let server = TestServer::start(
        common::Store::Memory,
        &[("S3FTP_RENAME_OVERWRITE", "false")],
    )
    .await;
    let mut c = server.login().await;
    c.upload("STOR a", b"first").await;
    c.upload("STOR b", b"second").await;
    c.expect("RNFR a", 350).await;
    c.expect("RNTO b", 550).await;
    assert_eq!(c.fetch("RETR a").await, b"first");
    assert_eq!(c.fetch("RETR b").await, b"second");
    c.expect("RNFR a", 350).await;
    c.expect("RNTO c", 250).await;
    assert_eq!(c.fetch("RETR c").await, b"first");
}

#[tokio::test]
async fn symbolic_links_cannot_lead_out_of_the_local_folder() {
    let server = TestServer::folder().await;
    let root = server.folder_path().expect("folder").to_path_buf();
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("secret"), b"outside").expect("secret");
    std::fs::create_dir(root.join("real")).expect("real dir");
    std::fs::write(root.join("real/file"), b"inside").expect("inside file");
    std::os::unix::fs::symlink(outside.path(), root.join("out")).expect("link out");
    std::os::unix::fs::symlink(outside.path().join("secret"), root.join("secret-link"))
        .expect("file link out");
    std::os::unix::fs::symlink(root.join("real"), root.join("alias")).expect("link in");
    let mut c = server.login().await;
    let data = c.data().await;
    for (line, code) in [
        ("CWD out", 550),
        ("RETR out/secret", 550),
        ("RETR secret-link", 550),
        ("SIZE secret-link", 550),
        ("STOR out/planted", 550),
        ("MKD out/dir", 550),
        ("DELE out/secret", 550),
        ("RNFR real/file", 350),
        ("RNTO out/file", 550),
    ] {
        c.expect(line, code).await;
    }
    drop(data);
    c.expect("MLST out", 550).await;
    // Nothing outside was read, written or removed.
    assert_eq!(
        std::fs::read(outside.path().join("secret")).expect("kept"),
        b"outside"
    );
    assert!(!outside.path().join("planted").exists());
    assert!(!outside.path().join("dir").exists());
    assert!(!outside.path().join("file").exists());
    // A link that stays inside the folder works.
    c.expect("CWD alias", 250).await;
    assert_eq!(c.fetch("RETR file").await, b"inside");
}

/// S3FTP_LEGACY_ENCODING=latin1: a client sending raw Latin-1 bytes stores
/// UTF-8 names, reads them back in Latin-1, and a UTF-8 client sees UTF-8.
async fn legacy_filename_encoding(store: common::Store) {
    let server = TestServer::start(store, &[("S3FTP_LEGACY_ENCODING", "latin1")]).await;
    let mut legacy = server.login().await;
    // STOR café.txt in Latin-1.
    let mut data = legacy.data().await;
    legacy.send_bytes(b"STOR caf\xe9.txt\r\n").await;
    assert!(legacy.reply_bytes().await.starts_with(b"150 "));
    data.write_all(b"latin").await.expect("write");
    drop(data);
    assert!(legacy.reply_bytes().await.starts_with(b"226 "));
    legacy.send_bytes(b"MKD r\xe9sum\xe9\r\n").await;
    assert_eq!(
        legacy.reply_bytes().await,
        b"257 \"/r\xe9sum\xe9\" created.\r\n",
        "names in replies go out in Latin-1"
    );

    // A UTF-8 client sees UTF-8 names, and its own names stay UTF-8.
    let mut modern = server.login().await;
    modern.expect("OPTS UTF8 ON", 200).await;
    assert_eq!(
        common::sorted_lines(&modern.fetch("NLST").await),
        ["café.txt", "résumé"]
    );
    assert_eq!(modern.fetch("RETR café.txt").await, b"latin");
    modern.upload("STOR 日本.txt", b"nihon").await;
    if let Some(dir) = server.folder_path() {
        assert_eq!(
            std::fs::read(dir.join("café.txt")).expect("on disk"),
            b"latin"
        );
        assert!(dir.join("résumé").is_dir());
    }

    // The legacy client lists in Latin-1; what Latin-1 lacks comes as UTF-8,
    // and either form can be sent back.
    let listing = legacy.fetch("NLST").await;
    let mut names: Vec<&[u8]> = listing
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [&b"caf\xe9.txt"[..], b"r\xe9sum\xe9", "日本.txt".as_bytes()]
    );
    let mut data = legacy.data().await;
    legacy.send_bytes(b"RETR caf\xe9.txt\r\n").await;
    assert!(legacy.reply_bytes().await.starts_with(b"150 "));
    let mut got = Vec::new();
    data.read_to_end(&mut got).await.expect("read");
    assert!(legacy.reply_bytes().await.starts_with(b"226 "));
    assert_eq!(got, b"latin");
    assert_eq!(legacy.fetch("RETR 日本.txt").await, b"nihon");
    // OPTS UTF8 ON switches the legacy client to UTF-8 replies.
    legacy.expect("OPTS UTF8 ON", 200).await;
    legacy.expect("CWD résumé", 250).await;
    assert_eq!(
        legacy.expect("PWD", 257).await,
        "257 \"/résumé\" is the current directory.\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_filename_encoding_on_a_folder() {
    legacy_filename_encoding(common::Store::folder()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_filename_encoding_on_s3() {
    let bucket = common::s3::S3Server::shared().fresh_bucket().await;
    legacy_filename_encoding(common::Store::S3 { bucket }).await;
}

/// `LIST -R` lists in `ls -lR` form: a `path:` header per directory, its
/// lines, a blank line before the next; depth first, in name order.
async fn recursive_listing(server: TestServer) {
    let mut c = server.login().await;
    c.expect("MKD top", 257).await;
    c.expect("MKD top/b", 257).await;
    c.expect("MKD top/a", 257).await;
    c.expect("MKD top/a/deep", 257).await;
    c.upload("STOR top/f.txt", b"12345").await;
    c.upload("STOR top/a/x", b"x").await;
    c.upload("STOR top/a/deep/y", b"yy").await;
    let text = String::from_utf8(c.fetch("LIST -R top").await).expect("utf-8");
    let blocks: Vec<&str> = text.split("\r\n\r\n").collect();
    let headers: Vec<&str> = blocks
        .iter()
        .map(|b| b.lines().next().unwrap_or_default())
        .collect();
    assert_eq!(
        headers,
        ["top:", "top/a:", "top/a/deep:", "top/b:"],
        "{text}"
    );
    let names = |block: &str| {
        let mut n: Vec<String> = block
            .lines()
            .skip(1)
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(blocks[0]), ["a", "b", "f.txt"], "{text}");
    assert_eq!(names(blocks[1]), ["deep", "x"], "{text}");
    assert_eq!(names(blocks[2]), ["y"], "{text}");
    assert!(names(blocks[3]).is_empty(), "{text}");
    assert!(blocks[2].contains(" 2 "), "sizes are shown: {text}");
    // `-lR` is the same; without a path, `.` is the first header.
    c.expect("CWD top/a", 250).await;
    let here = String::from_utf8(c.fetch("LIST -lR").await).expect("utf-8");
    assert!(here.starts_with(".:\r\n"), "{here}");
    assert!(here.contains("\r\n\r\n./deep:\r\n"), "{here}");
    // A file or a pattern is listed as without -R.
    assert_eq!(common::lines(&c.fetch("LIST -R x").await).len(), 1);
    c.expect("CWD /", 250).await;
    let root = String::from_utf8(c.fetch("LIST -R /").await).expect("utf-8");
    assert!(root.starts_with("/:\r\n"), "{root}");
    assert!(root.contains("\r\n/top/a/deep:\r\n"), "{root}");
    // Listing changed nothing.
    assert_eq!(c.fetch("RETR top/a/deep/y").await, b"yy");
}

/// SITE CHMOD (lftp `mirror -R` and WinSCP send it after uploads) is
/// accepted for an existing path and changes nothing; bad modes and missing
/// paths are refused, and the session goes on.
async fn site_chmod_is_accepted_and_changes_nothing(server: TestServer) {
    let mut pre = server.raw().await;
    pre.expect("SITE CHMOD 644 f", 530).await;
    let mut c = server.login().await;
    c.upload("STOR f", b"kept").await;
    let ok = c.expect("SITE CHMOD 644 f", 200).await;
    assert!(ok.contains("nothing changed"), "{ok}");
    c.expect("SITE CHMOD 0755 f", 200).await;
    c.expect("SITE CHMOD 999 f", 501).await;
    c.expect("SITE CHMOD rwx f", 501).await;
    c.expect("SITE CHMOD 644", 501).await;
    c.expect("SITE CHMOD", 501).await;
    c.expect("SITE CHMOD 644 missing", 550).await;
    let help = c.expect("SITE HELP", 214).await;
    assert!(help.contains("CHMOD"), "{help}");
    assert_eq!(c.fetch("RETR f").await, b"kept");
    assert_eq!(server.names().await, ["f"]);
}

/// MLSD and MLST give directories a `modify` fact, as LIST prints a date
/// for them: the directory's own time where the store keeps one, else the
/// documented stand-in (the Unix epoch, the same at every listing).
async fn directories_carry_a_modify_fact(server: TestServer) {
    let mut c = server.login().await;
    c.expect("MKD d", 257).await;
    c.upload("STOR d/f", b"1").await;
    let mlsd = common::lines(&c.fetch("MLSD").await);
    let dir = mlsd
        .iter()
        .find(|l| l.ends_with("; d"))
        .unwrap_or_else(|| panic!("{mlsd:?}"));
    assert!(
        dir.contains("type=dir;") && dir.contains("modify="),
        "{dir}"
    );
    let again = common::lines(&c.fetch("MLSD").await);
    assert!(again.contains(dir), "the same at every listing: {again:?}");
    let mlst = c.expect("MLST d", 250).await;
    let modify = mlst
        .split(';')
        .find_map(|f| f.trim().strip_prefix("modify="))
        .unwrap_or_else(|| panic!("{mlst}"));
    // MKD made the directory: a marker on S3 and a folder on disk keep its
    // own time; the memory store keeps none, so it gets the stand-in.
    if matches!(server.store, common::Store::Memory) {
        assert_eq!(modify, "19700101000000", "{mlst}");
    } else {
        assert!(modify.starts_with("20"), "{mlst}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HASH (with OPTS HASH and RANG) and XCRC, XMD5, XSHA1, XSHA256, XSHA512
/// (with offsets), compared with digests computed here by other crates;
/// refusals keep the session and the stored file.
async fn checksums(server: TestServer) {
    use md5::Digest as _;
    let mut c = server.login().await;
    let body = content(100_000, 11);
    c.upload("STOR f.bin", &body).await;
    c.upload("STOR name with 12 34", b"spaced").await;
    let sha256 = |d: &[u8]| hex(&sha2::Sha256::digest(d));
    let md5 = |d: &[u8]| hex(&md5::Md5::digest(d));
    let crc = |d: &[u8]| format!("{:08x}", crc32fast::hash(d));

    let feat = c.expect("FEAT", 211).await;
    assert!(
        feat.contains(" HASH SHA-1;SHA-256*;SHA-512;MD5;CRC32"),
        "{feat}"
    );
    assert!(
        feat.contains(" XSHA256") && feat.contains(" RANG STREAM"),
        "{feat}"
    );
    let text = said(&mut c, "HASH f.bin", 213).await;
    assert_eq!(text, format!("SHA-256 0-100000 {} f.bin", sha256(&body)));
    c.expect("OPTS HASH MD5", 200).await;
    assert_eq!(said(&mut c, "OPTS HASH", 200).await, "MD5");
    let text = said(&mut c, "HASH f.bin", 213).await;
    assert_eq!(text, format!("MD5 0-100000 {} f.bin", md5(&body)));
    c.expect("OPTS HASH SHA-3", 501).await;
    c.expect("OPTS HASH crc32", 200).await;
    // A range applies to the next HASH only.
    c.expect("RANG 10 19", 350).await;
    let text = said(&mut c, "HASH f.bin", 213).await;
    assert_eq!(text, format!("CRC32 10-20 {} f.bin", crc(&body[10..20])));
    let text = said(&mut c, "HASH f.bin", 213).await;
    assert_eq!(text, format!("CRC32 0-100000 {} f.bin", crc(&body)));
    c.expect("RANG 5 2", 501).await;
    c.expect("RANG 1 0", 350).await;

    let x = |verb: &str, arg: &str| format!("{verb} {arg}");
    assert_eq!(
        said(&mut c, &x("XCRC", "f.bin"), 250).await,
        crc(&body).to_uppercase()
    );
    assert_eq!(
        said(&mut c, &x("XMD5", "f.bin"), 250).await,
        md5(&body).to_uppercase()
    );
    assert_eq!(
        said(&mut c, &x("XSHA1", "f.bin"), 250).await,
        hex(&sha1::Sha1::digest(&body)).to_uppercase()
    );
    assert_eq!(
        said(&mut c, &x("XSHA256", "f.bin"), 250).await,
        sha256(&body).to_uppercase()
    );
    assert_eq!(
        said(&mut c, &x("XSHA512", "f.bin"), 250).await,
        hex(&sha2::Sha512::digest(&body)).to_uppercase()
    );
    // Offsets: start, or start and (exclusive) end; quoted paths.
    assert_eq!(
        said(&mut c, "XCRC f.bin 100 200", 250).await,
        crc(&body[100..200]).to_uppercase()
    );
    assert_eq!(
        said(&mut c, "XCRC \"f.bin\" 99000", 250).await,
        crc(&body[99_000..]).to_uppercase()
    );
    // A name that ends in numbers is taken whole when it exists.
    assert_eq!(
        said(&mut c, "XSHA256 name with 12 34", 250).await,
        sha256(b"spaced").to_uppercase()
    );
    // Replaced by content of the same size within the same second: the
    // remembered checksum is not given for the new content.
    c.upload("STOR same", b"aaaa").await;
    assert_eq!(
        said(&mut c, "XCRC same", 250).await,
        crc(b"aaaa").to_uppercase()
    );
    c.upload("STOR same", b"bbbb").await;
    assert_eq!(
        said(&mut c, "XCRC same", 250).await,
        crc(b"bbbb").to_uppercase()
    );
    c.expect("RNFR same", 350).await;
    c.expect("RNTO moved", 250).await;
    assert_eq!(
        said(&mut c, "XCRC moved", 250).await,
        crc(b"bbbb").to_uppercase()
    );
    c.expect("XCRC same", 550).await;
    c.expect("DELE moved", 250).await;
    // APPE and REST+STOR keep existing bytes: a checksum kept with the old
    // content must not be given for the new one.
    c.upload("STOR grow", b"abc").await;
    assert_eq!(
        said(&mut c, "XCRC grow", 250).await,
        crc(b"abc").to_uppercase()
    );
    c.upload("APPE grow", b"def").await;
    assert_eq!(
        said(&mut c, "XCRC grow", 250).await,
        crc(b"abcdef").to_uppercase()
    );
    c.expect("REST 2", 350).await;
    c.upload("STOR grow", b"XY").await;
    assert_eq!(
        said(&mut c, "XCRC grow", 250).await,
        crc(b"abXY").to_uppercase()
    );
    // Refusals: the session goes on, the files stay.
    c.expect("HASH missing", 550).await;
    c.expect("XMD5 missing", 550).await;
    c.expect("MKD d", 257).await;
    c.expect("HASH d", 550).await;
    c.expect("XCRC f.bin 200000", 501).await;
    // Unquoted, `f.bin x y` is a name (none such); quoted, bad offsets.
    c.expect("XCRC f.bin x y", 550).await;
    c.expect("XCRC \"f.bin\" x y", 501).await;
    c.expect("HASH", 501).await;
    c.expect("NOOP", 200).await;
    assert_eq!(sha256(&c.fetch("RETR f.bin").await), sha256(&body));
    assert_eq!(server.stored("f.bin").await.as_deref(), Some(&body[..]));
}

/// The text of a reply after its code, for comparing whole answers.
async fn said(c: &mut Raw, line: &str, code: u16) -> String {
    let text = c.expect(line, code).await;
    text.trim_end().get(4..).unwrap_or_default().to_string()
}
