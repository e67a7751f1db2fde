//! The S3 test harness itself (tests/common/s3.rs): the shared server (Garage,
//! or the external one from S3FTP_TEST_S3_ENDPOINT) and moto start, give each
//! test its own bucket, and store and return objects byte for byte.

#[path = "common/s3.rs"]
mod s3;

use std::time::Instant;

use s3::{S3Kind, S3Server};

/// Two fresh buckets on `server`: distinct, empty, isolated from each other,
/// and objects (with awkward keys) round-trip through each.
async fn two_buckets_round_trip(server: &S3Server) {
    let started = Instant::now();
    let a = server.fresh_bucket().await;
    eprintln!("{:?}: fresh bucket in {:?}", server.kind, started.elapsed());
    let b = server.fresh_bucket().await;
    assert_ne!(a, b);
    assert!(server.list_keys(&a, "").await.is_empty());
    assert!(server.list_keys(&b, "").await.is_empty());

    let key = "dir/sub dir/a+b & c=d%20é.txt";
    let in_a: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let in_b = b"bucket b\r\n\0binary".to_vec();
    server.put_object(&a, key, &in_a).await;
    server.put_object(&b, key, &in_b).await;
    server.put_object(&a, "dir/", b"").await;

    assert_eq!(server.get_object(&a, key).await.as_deref(), Some(&in_a[..]));
    assert_eq!(server.get_object(&b, key).await.as_deref(), Some(&in_b[..]));
    assert_eq!(server.get_object(&b, "dir/").await, None);
    assert_eq!(server.get_object(&a, "missing").await, None);

    let head = server
        .head_object(&a, key)
        .await
        .expect("HEAD finds the object");
    assert_eq!(head.header("content-length"), Some("70000"));
    assert!(head.header("etag").is_some_and(|e| e.len() > 2));

    assert_eq!(
        server.list_keys(&a, "dir/").await,
        vec!["dir/".to_string(), key.to_string()]
    );
    assert_eq!(server.list_keys(&b, "").await, vec![key.to_string()]);
    assert!(server
        .list_keys(&a, "dir/sub dir/a+")
        .await
        .contains(&key.to_string()));

    assert!(server.list_multipart_uploads(&a).await.is_empty());
    let created = server.create_multipart_upload(&a, "big").await;
    assert!(!created.is_empty());
    assert_eq!(
        server.list_multipart_uploads(&a).await,
        vec!["big".to_string()]
    );
    assert!(server.list_multipart_uploads(&b).await.is_empty());

    server.delete_object(&a, key).await;
    assert_eq!(server.get_object(&a, key).await, None);
    assert_eq!(server.get_object(&b, key).await.as_deref(), Some(&in_b[..]));

    let uri = server.mount_uri(&a, "/some/prefix/");
    assert_eq!(
        uri,
        format!(
            "s3://{a}/some/prefix?endpoint={}&path_style=true&region={}&access_key={}&secret_key={}",
            server.endpoint,
            server.region,
            s3::encode_mount_value(&server.access_key),
            s3::encode_mount_value(&server.secret_key),
        )
    );
    assert!(server.endpoint.starts_with("http://") || server.kind == S3Kind::External);
    assert_eq!(
        server.mount_uri_without_credentials(&b, ""),
        format!(
            "s3://{b}?endpoint={}&path_style=true&region={}",
            server.endpoint, server.region
        )
    );
    assert_eq!(
        s3::encode_mount_value("a+b,c&d=e/f:g h"),
        "a%2Bb%2Cc%26d%3De/f:g%20h"
    );
    let env = server.credentials_env();
    assert!(env.contains(&("AWS_ACCESS_KEY_ID".into(), server.access_key.clone())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_server_gives_isolated_buckets() {
    let started = Instant::now();
    let server = S3Server::shared();
    eprintln!("{:?}: ready in {:?}", server.kind, started.elapsed());
    if std::env::var_os("S3FTP_TEST_S3_ENDPOINT").is_none() {
        assert_eq!(server.kind, S3Kind::Garage);
        assert!(server.endpoint.starts_with("http://127.0.0.1:"));
    }
    // The default bucket exists and starts empty.
    assert!(
        server.list_keys(&server.bucket, "").await.is_empty() || server.kind == S3Kind::External
    );
    two_buckets_round_trip(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_gives_isolated_buckets() {
    let started = Instant::now();
    let server = S3Server::shared_moto();
    eprintln!("moto: ready in {:?}", started.elapsed());
    assert_eq!(server.kind, S3Kind::Moto);
    two_buckets_round_trip(server).await;
}

/// Garage checks signatures (moto does not): curl's own `--aws-sigv4` with
/// the server's key reads a bucket the harness filled, and a wrong secret is
/// refused, so the harness's keys above were checked for real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_checks_signatures() {
    let server = S3Server::shared();
    if server.kind != S3Kind::Garage {
        return;
    }
    let bucket = server.fresh_bucket().await;
    server.put_object(&bucket, "k", b"signed").await;
    let curl = |secret: &str| {
        let output = std::process::Command::new("curl")
            .args(["-s", "-w", "%{http_code}", "--aws-sigv4"])
            .arg(format!("aws:amz:{}:s3", server.region))
            .arg("--user")
            .arg(format!("{}:{secret}", server.access_key))
            // Garage requires it; curl 7.x does not send it by itself.
            .args(["-H", &format!("x-amz-content-sha256: {}", EMPTY_SHA256)])
            .arg(format!("{}/{bucket}/k", server.endpoint))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(curl(&server.secret_key), "signed200");
    assert!(curl("wrong-secret-0123456789").ends_with("403"));
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A server of its own stops when dropped: its port closes and its directory
/// is removed.
#[test]
fn dedicated_garage_stops_on_drop() {
    let started = Instant::now();
    let server = S3Server::garage();
    eprintln!("dedicated Garage: ready in {:?}", started.elapsed());
    let addr = server.endpoint.trim_start_matches("http://").to_string();
    let dir = server.server_dir().expect("started here").to_path_buf();
    assert!(dir.join("server.log").exists());
    assert!(server.bucket_exists_blocking(&server.bucket));
    drop(server);
    let connect = std::net::TcpStream::connect(&addr);
    assert!(
        connect.is_err(),
        "Garage at {addr} still answers after drop"
    );
}
