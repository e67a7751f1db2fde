//! The binary as a process: killed with SIGKILL in the middle of uploads and
//! started again on the same folder, and what its text log makes of control
//! characters that clients send.

mod common;

use std::time::{Duration, Instant};

use common::clients::{block_on, Server};
use common::{content, sha256, staging_files, Raw, PASSWORD, USER};
use tokio::io::AsyncWriteExt;

/// Uploads in flight when the server is killed.
const IN_FLIGHT: usize = 4;
/// Bytes each of them has sent: enough to reach the staging file, never
/// finished.
const SENT: usize = 256 * 1024;

/// Polls `done` every 20 ms for at most 10 s; false if it never held.
fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn killed_mid_upload_then_restarted_leaves_old_content_and_no_staging_files() {
    let mut server = Server::with_alice_and(&[("S3FTP_LOG", "info".to_string())]);
    let root = server.root().to_path_buf();
    // Half the targets hold a previous version, half do not exist yet.
    let targets: Vec<(String, Option<Vec<u8>>)> = (0..IN_FLIGHT)
        .map(|i| {
            let old = (i % 2 == 0).then(|| content(10_000 + i, i as u64));
            (format!("target{i}.bin"), old)
        })
        .collect();
    for (name, old) in &targets {
        if let Some(old) = old {
            std::fs::write(root.join(name), old).expect("previous version");
        }
    }

    // Each upload sends data, then stalls: the control and data connections
    // stay open until the process dies.
    let addr = server.addr();
    let stalled = block_on(async {
        let mut open = Vec::new();
        for (name, _) in &targets {
            let mut c = Raw::connect(addr).await;
            c.login(USER, PASSWORD).await;
            let mut data = c.data().await;
            c.expect(&format!("STOR {name}"), 150).await;
            data.write_all(&content(SENT, 7)).await.expect("send data");
            open.push((c, data));
        }
        open
    });
    let staged = |n: usize| {
        staging_files(&root).len() == n
            && walk_sizes(&root.join(".s3ftp-partial"))
                .iter()
                .all(|&size| size > 0)
    };
    assert!(
        wait_for(|| staged(IN_FLIGHT)),
        "every upload reached its staging file: {:?}",
        staging_files(&root)
    );
    server.kill_hard();
    drop(stalled);
    assert_eq!(
        staging_files(&root).len(),
        IN_FLIGHT,
        "a killed server cleans nothing up"
    );

    server.restart();
    let left = staging_files(&root);
    assert!(
        left.is_empty(),
        "staging files left after restart: {left:?}"
    );
    let log = server.stderr();
    assert!(
        log.contains("removed the staging files") && log.contains(&format!("files={IN_FLIGHT}")),
        "the sweep is logged with its count:\n{log}"
    );
    for (name, old) in &targets {
        match old {
            Some(old) => server.assert_file(name, old),
            None => server.assert_absent(name),
        }
    }

    // The restarted server serves.
    let fresh = content(300_000, 42);
    let addr = server.addr();
    let back = block_on(async {
        let mut c = Raw::connect(addr).await;
        c.login(USER, PASSWORD).await;
        let (code, text) = c.upload("STOR after.bin", &fresh).await;
        assert_eq!(code, 226, "{text}");
        c.fetch("RETR after.bin").await
    });
    assert_eq!(sha256(&back), sha256(&fresh));
    server.assert_file("after.bin", &fresh);
    server.assert_no_partials();
}

/// Sizes of the files under `dir`, at any depth (lock files included: they
/// hold a pid, so they are never empty either).
fn walk_sizes(dir: &std::path::Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => walk_sizes(&e.path()),
            _ => vec![e.metadata().map(|m| m.len()).unwrap_or(0)],
        })
        .collect()
}

#[test]
fn text_log_escapes_control_characters_from_clients() {
    let server = Server::with_alice_and(&[
        ("S3FTP_LOG", "info".to_string()),
        ("S3FTP_LOGIN_FAIL_DELAY_MS", "1".to_string()),
    ]);
    // A name with controls, stored by another tool, then downloaded: the
    // transfer record carries the path.
    let odd = "r\rFORGED\x1b[2Kx";
    std::fs::write(server.root().join(odd), b"odd").expect("odd file");
    let addr = server.addr();
    block_on(async {
        let mut c = Raw::connect(addr).await;
        c.send_bytes(b"USER a\rFORGED\x1b[2K\x00\r\n").await;
        assert_eq!(c.reply().await.0, 331);
        c.expect("PASS wrong", 530).await;
        c.login(USER, PASSWORD).await;
        assert_eq!(c.fetch(&format!("RETR {odd}")).await, b"odd");
        c.expect("QUIT", 221).await;
    });
    assert!(
        wait_for(|| server.stderr().contains("transfer")),
        "no transfer record:\n{}",
        server.stderr()
    );
    let log = server.stderr();
    for line in log.split_terminator('\n') {
        assert!(
            !line.contains(['\r', '\x1b', '\0']),
            "raw control character in a log line: {line:?}"
        );
    }
    assert!(
        log.contains(r"a\rFORGED\x1b[2K\0"),
        "the user name, escaped:\n{log}"
    );
    assert!(
        log.contains(r"/r\rFORGED\x1b[2Kx"),
        "the path, escaped:\n{log}"
    );
}
