//! Events of completed actions (S3FTP_EVENTS_*), against a real webhook
//! receiver of the tests that checks every signature (tests/common/
//! receiver.rs) and against SQS and SNS on moto: every action is told once,
//! in order, with its fields, on the folder and on S3 (ETag and key read
//! back from the bucket directly); events survive a receiver that fails,
//! then is down across a SIGKILL and restart of the server, and arrive once
//! it is back; transfers are not held up meanwhile.

mod common;

use std::time::Duration;

use common::clients::{block_on, Server};
use common::receiver::Receiver;
use common::s3::S3Server;
use common::store::s3_key;
use common::{content, Raw, Store, TestServer, PASSWORD, USER};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const SECRET: &str = "whsec-test-1";
/// How long the tests wait for events to arrive.
const ARRIVE: Duration = Duration::from_secs(30);

fn event_vars(receiver: &Receiver, spool: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("S3FTP_EVENTS_WEBHOOK_URL", receiver.url()),
        ("S3FTP_EVENTS_WEBHOOK_SECRET", SECRET.into()),
        ("S3FTP_EVENTS_SPOOL", spool.display().to_string()),
        ("S3FTP_EVENTS_RETRY_MAX_SECS", "1".into()),
        ("S3FTP_EVENTS_TIMEOUT", "2".into()),
        ("S3FTP_UPLOAD_DIGESTS", "crc32,sha256".into()),
    ]
}

async fn upload(raw: &mut Raw, command: &str, data: &[u8]) {
    let (code, text) = raw.upload(command, data).await;
    assert_eq!(code, 226, "{command}: {text}");
}

/// Every kind of action, in this order, and what each event must say.
async fn every_action(store: Store) {
    let receiver = Receiver::start(SECRET);
    let spool = tempfile::tempdir().unwrap();
    let vars = event_vars(&receiver, spool.path());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = TestServer::start(store, &vars).await;
    let mut raw = server.login().await;
    let a = content(100_000, 1);
    upload(&mut raw, "STOR a.csv", &a).await;
    upload(&mut raw, "APPE a.csv", b"more").await;
    assert_eq!(raw.fetch("RETR a.csv").await.len(), 100_004);
    raw.expect("MKD d", 257).await;
    upload(&mut raw, "STOR d/x.bin.filepart", b"staged").await;
    raw.expect("RNFR d/x.bin.filepart", 350).await;
    raw.expect("RNTO d/x.bin", 250).await;
    raw.expect("RNFR a.csv", 350).await;
    raw.expect("RNTO b.csv", 250).await;
    // An upload the client aborts, and one whose data connection is reset.
    let mut data = raw.data().await;
    raw.expect("STOR aborted.bin", 150).await;
    data.write_all(&content(64 * 1024, 2)).await.unwrap();
    let (code, _) = raw.cmd("ABOR").await;
    assert!(code == 426 || code == 226, "{code}");
    if code == 426 {
        assert_eq!(raw.reply().await.0, 226);
    }
    drop(data);
    let data = raw.data().await;
    raw.expect("STOR reset.bin", 150).await;
    let std = data.into_std().unwrap();
    socket_reset(std);
    let (code, text) = raw.reply().await;
    assert!(code == 426 || code == 451, "{text}");
    raw.expect("DELE d/x.bin", 250).await;
    raw.expect("RMD d", 250).await;
    raw.expect("DELE b.csv", 250).await;

    let expected = [
        ("upload.completed", "STOR", "/a.csv"),
        ("upload.completed", "APPE", "/a.csv"),
        ("download.completed", "RETR", "/a.csv"),
        ("dir.created", "MKD", "/d"),
        ("upload.completed", "RNTO", "/d/x.bin"),
        ("file.renamed", "RNTO", "/b.csv"),
        ("upload.aborted", "STOR", "/aborted.bin"),
        ("upload.failed", "STOR", "/reset.bin"),
        ("file.deleted", "DELE", "/d/x.bin"),
        ("dir.removed", "RMD", "/d"),
        ("file.deleted", "DELE", "/b.csv"),
    ];
    let events = tokio::task::spawn_blocking({
        let n = expected.len();
        move || {
            let events = receiver.wait_for(n, ARRIVE);
            (events, receiver.duplicates(), receiver.bad_signatures())
        }
    })
    .await
    .unwrap();
    let (events, _duplicates, bad) = events;
    assert_eq!(bad, 0, "every signature holds");
    let got: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["command"].as_str().unwrap(),
                e["path"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected, "in the order they happened");
    for e in &events {
        assert_eq!(e["schema"], "s3ftp.event.v1");
        assert_eq!(e["user"], USER);
        assert_eq!(e["client_ip"], "127.0.0.1");
        assert!(e["session"].as_u64().is_some_and(|s| s > 0), "{e}");
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(e["mount"], "/");
        assert!(e["store"]["kind"].is_string(), "{e}");
    }
    let ids: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "unique ids");

    // The first upload: size, checksums, where it is, and its ETag.
    let first = &events[0];
    assert_eq!(first["size"], 100_000);
    assert_eq!(
        first["checksums"]["crc32"],
        format!("{:08x}", crc32fast::hash(&a))
    );
    assert_eq!(first["checksums"]["sha256"], common::sha256(&a));
    assert!(first["duration_ms"].as_u64().is_some());
    match &server.store {
        Store::S3 { bucket } => {
            assert_eq!(first["store"]["kind"], "s3");
            assert_eq!(first["store"]["bucket"], bucket.as_str());
            assert_eq!(first["store"]["key"], s3_key("a.csv"));
            // A single PutObject's ETag is the body's MD5, as the store
            // answered it.
            use md5::Digest;
            let md5: String = md5::Md5::digest(&a)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(first["etag"], format!("\"{md5}\""), "{first}");
            let staged = &events[4];
            let md5: String = md5::Md5::digest(b"staged")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(staged["etag"], format!("\"{md5}\""), "{staged}");
        }
        Store::Folder(dir) => {
            assert_eq!(first["store"]["kind"], "folder");
            let path = first["store"]["path"].as_str().unwrap();
            assert!(
                path.ends_with("/a.csv")
                    && path.starts_with(&*dir.path().canonicalize().unwrap().to_string_lossy()),
                "{path}"
            );
            assert!(first["etag"].is_null());
        }
        Store::Memory => unreachable!(),
    }
    assert_eq!(events[1]["size"], 100_004, "APPE: the whole file");
    assert_eq!(events[2]["size"], 100_004, "RETR: bytes sent");
    assert_eq!(events[4]["size"], 6);
    assert_eq!(events[4]["user_path"], "/d/x.bin");
    assert_eq!(events[5]["from_path"], "/a.csv");
    assert!(events[5]["from_store"]["kind"].is_string());
    assert!(
        events[6]["reply"].as_str().unwrap().starts_with("426"),
        "{}",
        events[6]
    );
    assert!(events[7]["reply"].is_string());
    // Nothing half-written from the aborted and reset uploads.
    assert_eq!(server.store.read("aborted.bin").await, None);
    assert_eq!(server.store.read("reset.bin").await, None);
    assert_eq!(
        server
            .metric("s3ftp_events_total{sink=\"webhook\",outcome=\"delivered\"}")
            .await as usize,
        expected.len() + _duplicates
    );
    assert_eq!(
        server
            .metric("s3ftp_events_pending{sink=\"webhook\"}")
            .await,
        0.0
    );
}

/// Closes a socket with a reset (SO_LINGER 0), as a crashing client's
/// kernel does.
fn socket_reset(stream: std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a linger struct of the size given.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_is_told_once_in_order_on_the_folder() {
    every_action(Store::folder()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_is_told_once_in_order_on_s3() {
    every_action(Store::s3().await).await;
}

/// The receiver answers 500 for a while, then is down while the server is
/// SIGKILLed and restarted on the same spool; once it is back, every event
/// arrives. Uploads meanwhile all complete, before any event is delivered.
#[test]
fn events_survive_a_failing_receiver_and_a_killed_server() {
    let mut receiver = Receiver::start(SECRET);
    let spool = tempfile::tempdir().unwrap();
    receiver.fail_next(500, 1_000_000);
    let mut server = Server::with_alice_and(&event_vars(&receiver, spool.path()));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let upload_all = |addr, names: std::ops::Range<usize>| {
        block_on(async move {
            let mut raw = Raw::connect(addr).await;
            raw.login(USER, PASSWORD).await;
            for i in names {
                upload(
                    &mut raw,
                    &format!("STOR f{i}.txt"),
                    format!("file {i}").as_bytes(),
                )
                .await;
            }
        })
    };
    upload_all(addr, 0..5);
    // The receiver said 500 to every attempt: nothing delivered, nothing
    // lost, and the uploads did not wait for it.
    assert!(receiver.events().is_empty());
    receiver.stop();
    upload_all(addr, 5..10);
    server.kill_hard();
    server.restart();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    upload_all(addr, 10..12);
    assert!(receiver.events().is_empty());
    receiver.fail_next(200, 0);
    receiver.resume();
    let events = receiver.wait_for(12, ARRIVE);
    let mut paths: Vec<String> = events
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    let in_order = paths.clone();
    paths.sort_by_key(|p| {
        p.trim_start_matches("/f")
            .trim_end_matches(".txt")
            .parse::<u32>()
            .unwrap()
    });
    assert_eq!(
        in_order, paths,
        "in the order of the uploads, across the restart"
    );
    assert_eq!(paths.len(), 12);
    assert_eq!(receiver.bad_signatures(), 0);
    assert!(receiver.requests() > 12, "the 500s were real attempts");
    for i in 0..12 {
        server.assert_file(&format!("f{i}.txt"), format!("file {i}").as_bytes());
    }
}

/// The AWS SDK's configuration for moto.
async fn moto_config(moto: &S3Server) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new(moto.region.clone()))
        .credentials_provider(aws_credential_types::Credentials::new(
            &moto.access_key,
            &moto.secret_key,
            None,
            None,
            "test",
        ))
        .load()
        .await
}

/// Through SQS and SNS on moto: a queue receives each event; a topic
/// delivers to a queue subscribed to it.
#[test]
fn events_reach_sqs_and_sns_on_moto() {
    let moto = S3Server::shared_moto();
    let (queue_url, topic_arn, topic_queue_url) = block_on(async {
        let config = moto_config(moto).await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let sns = aws_sdk_sns::Client::new(&config);
        let queue = sqs
            .create_queue()
            .queue_name("s3ftp-events")
            .send()
            .await
            .unwrap();
        let topic_queue = sqs
            .create_queue()
            .queue_name("s3ftp-topic")
            .send()
            .await
            .unwrap();
        let topic = sns
            .create_topic()
            .name("s3ftp-events")
            .send()
            .await
            .unwrap();
        let topic_queue_url = topic_queue.queue_url().unwrap().to_string();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&topic_queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        let queue_arn =
            attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
        sns.subscribe()
            .topic_arn(topic.topic_arn().unwrap())
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .unwrap();
        (
            queue.queue_url().unwrap().to_string(),
            topic.topic_arn().unwrap().to_string(),
            topic_queue_url,
        )
    });
    let spool = tempfile::tempdir().unwrap();
    let mut vars: Vec<(&str, String)> = vec![
        ("S3FTP_EVENTS_SQS_QUEUE_URL", queue_url.clone()),
        ("S3FTP_EVENTS_SNS_TOPIC_ARN", topic_arn),
        ("S3FTP_EVENTS_SPOOL", spool.path().display().to_string()),
        ("S3FTP_EVENTS_TYPES", "upload.*,file.deleted".into()),
        ("S3FTP_EVENTS_RETRY_MAX_SECS", "1".into()),
    ];
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", moto.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", moto.secret_key.clone()),
        ("AWS_REGION", moto.region.clone()),
        ("AWS_ENDPOINT_URL_SQS", moto.endpoint.clone()),
        ("AWS_ENDPOINT_URL_SNS", moto.endpoint.clone()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ] {
        vars.push((k, v));
    }
    let server = Server::with_alice_and(&vars);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    block_on(async {
        let mut raw = Raw::connect(addr).await;
        raw.login(USER, PASSWORD).await;
        upload(&mut raw, "STOR one.txt", b"1").await;
        raw.expect("MKD notsent", 257).await;
        raw.expect("DELE one.txt", 250).await;
    });
    let received = |url: &str| -> Vec<Value> {
        let url = url.to_string();
        block_on(async move {
            let config = moto_config(moto).await;
            let sqs = aws_sdk_sqs::Client::new(&config);
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + ARRIVE;
            while got.len() < 2 && std::time::Instant::now() < deadline {
                let out = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .unwrap();
                for m in out.messages() {
                    got.push(serde_json::from_str(m.body().unwrap()).unwrap());
                }
            }
            got
        })
    };
    for (name, url) in [("SQS", &queue_url), ("SNS", &topic_queue_url)] {
        let events = received(url);
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["upload.completed", "file.deleted"],
            "{name}: {events:?}"
        );
        assert_eq!(events[0]["path"], "/one.txt");
        assert_eq!(events[0]["size"], 1);
    }
}
