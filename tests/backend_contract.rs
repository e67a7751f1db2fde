//! The storage contract: the same test bodies run against every back end, so a
//! client sees no difference between a local folder, memory and an object store.
//! Bodies use the `Backend` trait only; back-end-specific checks live in the
//! `local_only` module at the end.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use s3ftp::storage::opendal::OpendalBackend;
use s3ftp::storage::s3::upload::UploadSettings;
use s3ftp::storage::s3::{S3Backend, S3Uri};
use s3ftp::storage::{
    Backend, EntryKind, Key, KeyError, KeyRules, Metadata, NamedKey, StorageError, StorageSettings,
    Times, WriteOptions,
};

// ---------------------------------------------------------------- helpers

/// Asserts that a result is an error matching a pattern.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            Err(other) => panic!("expected {}, got error {other:?}", stringify!($pattern)),
            Ok(_) => panic!("expected {}, got Ok", stringify!($pattern)),
        }
    };
}

/// A key as the vfs builds it (the keys here obey every back end's rules).
fn k(key: &str) -> Key {
    Key::new(key, &KeyRules::default()).expect("a valid key")
}

/// A key that names something: never the root.
fn n(key: &str) -> NamedKey {
    k(key).into_named().expect("not the root")
}

async fn put_with(b: &dyn Backend, key: &str, data: &[u8], options: WriteOptions) -> u64 {
    let mut sink = b.write(&n(key), options).await.expect("start write");
    for chunk in data.chunks(7000) {
        sink.write(Bytes::copy_from_slice(chunk))
            .await
            .expect("write chunk");
    }
    sink.commit().await.expect("commit").size
}

async fn put(b: &dyn Backend, key: &str, data: &[u8]) {
    let size = put_with(b, key, data, WriteOptions::default()).await;
    assert_eq!(size, data.len() as u64, "committed size of {key}");
}

async fn get_from(b: &dyn Backend, key: &str, offset: u64) -> Vec<u8> {
    let mut stream = b.read(&n(key), offset).await.expect("start read");
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("read chunk"));
    }
    out
}

async fn get(b: &dyn Backend, key: &str) -> Vec<u8> {
    get_from(b, key, 0).await
}

/// The children of `dir` as (name, metadata), sorted by name, each name once.
async fn entries(b: &dyn Backend, dir: &str) -> Vec<(String, Metadata)> {
    let mut pages = b.list(&k(dir)).await.expect("list");
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for e in page.expect("list page") {
            out.push((e.name, e.meta));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let mut names: Vec<&String> = out.iter().map(|(n, _)| n).collect();
    names.dedup();
    assert_eq!(names.len(), out.len(), "a name listed twice in {dir:?}");
    out
}

/// The children of `dir` as (name, kind), sorted.
async fn names(b: &dyn Backend, dir: &str) -> Vec<(String, EntryKind)> {
    entries(b, dir)
        .await
        .into_iter()
        .map(|(n, m)| (n, m.kind))
        .collect()
}

fn file(name: &str) -> (String, EntryKind) {
    (name.to_string(), EntryKind::File)
}

fn dir(name: &str) -> (String, EntryKind) {
    (name.to_string(), EntryKind::Dir)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .expect("time after 1970")
        .as_secs()
}

/// Bytes that are not all the same, so offsets and truncation show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

async fn assert_missing(b: &dyn Backend, key: &str) {
    assert_err!(b.stat(&k(key)).await, StorageError::NotFound);
}

// ---------------------------------------------------------------- bodies

async fn root_is_an_empty_dir(b: &dyn Backend) {
    let root = b.stat(&Key::ROOT).await.expect("stat root");
    assert!(root.is_dir());
    assert!(names(b, "").await.is_empty());
    b.check().await.expect("check");
    // Creating, reading or removing the root cannot even be asked: those
    // operations take a `NamedKey`, which the root is not (the vfs answers
    // for a mount point, see `vfs::tests`).
    assert!(Key::ROOT.into_named().is_none());
}

async fn write_then_read(b: &dyn Backend) {
    put(b, "hello.txt", b"hello, world").await;
    assert_eq!(get(b, "hello.txt").await, b"hello, world");
    let meta = b.stat(&k("hello.txt")).await.expect("stat");
    assert_eq!(meta.kind, EntryKind::File);
    assert_eq!(meta.size, 12);
    assert!(meta.modified.is_some(), "a file has a modification time");

    put(b, "hello.txt", b"bye").await;
    assert_eq!(get(b, "hello.txt").await, b"bye");
    assert_eq!(b.stat(&k("hello.txt")).await.expect("stat").size, 3);

    put(b, "empty", b"").await;
    assert_eq!(b.stat(&k("empty")).await.expect("stat").size, 0);
    assert!(get(b, "empty").await.is_empty());
    assert_eq!(names(b, "").await, vec![file("empty"), file("hello.txt")]);
}

async fn large_write_in_many_chunks(b: &dyn Backend) {
    let data = pattern(3 * 1024 * 1024 + 17);
    let mut sink = b
        .write(&n("big.bin"), WriteOptions::default())
        .await
        .expect("write");
    let mut rest = &data[..];
    let mut step = 1;
    while !rest.is_empty() {
        // Uneven chunk sizes, from one byte to 64 KiB.
        let n = step.min(rest.len());
        sink.write(Bytes::copy_from_slice(&rest[..n]))
            .await
            .expect("chunk");
        rest = &rest[n..];
        step = (step * 3 + 1) % 65_536 + 1;
    }
    assert_eq!(sink.commit().await.expect("commit").size, data.len() as u64);
    assert_eq!(
        b.stat(&k("big.bin")).await.expect("stat").size,
        data.len() as u64
    );
    let back = get(b, "big.bin").await;
    assert_eq!(back.len(), data.len());
    assert!(back == data, "content differs");
}

async fn read_from_offset(b: &dyn Backend) {
    let data = pattern(100_000);
    put(b, "f", &data).await;
    assert_eq!(get_from(b, "f", 0).await, data);
    assert_eq!(get_from(b, "f", 5).await, &data[5..]);
    assert_eq!(get_from(b, "f", 99_999).await, &data[99_999..]);
    assert!(get_from(b, "f", 100_000).await.is_empty());
    assert!(get_from(b, "f", 1_000_000).await.is_empty());
    assert_err!(b.read(&n("missing"), 0).await, StorageError::NotFound);
    b.mkdir(&n("d")).await.expect("mkdir");
    assert_err!(b.read(&n("d"), 0).await, StorageError::IsDirectory);
}

async fn write_checks_parent_and_target(b: &dyn Backend) {
    assert_err!(
        b.write(&n("nodir/f"), WriteOptions::default()).await,
        StorageError::NotFound
    );
    b.mkdir(&n("d")).await.expect("mkdir");
    assert_err!(
        b.write(&n("d"), WriteOptions::default()).await,
        StorageError::IsDirectory
    );
    put(b, "f", b"x").await;
    assert_err!(
        b.write(&n("f/g"), WriteOptions::default()).await,
        StorageError::NotDirectory
    );
    assert_err!(
        b.write(
            &n("missing"),
            WriteOptions {
                keep_prefix: 1,
                ..Default::default()
            }
        )
        .await,
        StorageError::NotFound
    );
    // Nothing was created by the refused writes.
    assert_eq!(names(b, "").await, vec![dir("d"), file("f")]);
    assert!(names(b, "d").await.is_empty());
    assert_eq!(get(b, "f").await, b"x");
}

async fn invisible_until_commit(b: &dyn Backend) {
    let mut sink = b
        .write(&n("new"), WriteOptions::default())
        .await
        .expect("write");
    sink.write(Bytes::from_static(b"data"))
        .await
        .expect("chunk");
    assert_missing(b, "new").await;
    assert!(names(b, "").await.is_empty());
    assert_eq!(sink.commit().await.expect("commit").size, 4);
    assert_eq!(get(b, "new").await, b"data");
}

async fn abort_keeps_previous_content(b: &dyn Backend) {
    put(b, "f", b"old content").await;
    let mut sink = b
        .write(&n("f"), WriteOptions::default())
        .await
        .expect("write");
    sink.write(Bytes::from_static(b"new content that is longer"))
        .await
        .expect("chunk");
    sink.abort().await.expect("abort");
    assert_eq!(get(b, "f").await, b"old content");
    assert_eq!(b.stat(&k("f")).await.expect("stat").size, 11);
    assert_eq!(names(b, "").await, vec![file("f")]);

    // An aborted new file leaves nothing at all.
    let mut sink = b
        .write(&n("g"), WriteOptions::default())
        .await
        .expect("write");
    sink.write(Bytes::from_static(b"abc")).await.expect("chunk");
    sink.abort().await.expect("abort");
    assert_missing(b, "g").await;
    // Aborting before any data was written is fine too.
    let sink = b
        .write(&n("h"), WriteOptions::default())
        .await
        .expect("write");
    sink.abort().await.expect("abort");
    assert_missing(b, "h").await;
    assert_eq!(names(b, "").await, vec![file("f")]);
}

async fn dropped_sink_leaves_nothing(b: &dyn Backend) {
    put(b, "kept", b"previous").await;
    {
        let mut sink = b
            .write(&n("kept"), WriteOptions::default())
            .await
            .expect("write");
        sink.write(Bytes::from_static(b"partial"))
            .await
            .expect("chunk");
        let mut other = b
            .write(&n("gone"), WriteOptions::default())
            .await
            .expect("write");
        other
            .write(Bytes::from_static(b"partial"))
            .await
            .expect("chunk");
        // Both dropped here, neither committed nor aborted.
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(b, "kept").await, b"previous");
    assert_missing(b, "gone").await;
    assert_eq!(names(b, "").await, vec![file("kept")]);
}

async fn keep_prefix_appends(b: &dyn Backend) {
    put(b, "f", b"hello world").await;
    let opts = WriteOptions {
        keep_prefix: 5,
        ..Default::default()
    };
    assert_eq!(put_with(b, "f", b", there", opts).await, 12);
    assert_eq!(get(b, "f").await, b"hello, there");

    // APPE: keep everything.
    let opts = WriteOptions {
        keep_prefix: 12,
        ..Default::default()
    };
    assert_eq!(put_with(b, "f", b"!", opts).await, 13);
    assert_eq!(get(b, "f").await, b"hello, there!");

    // A prefix larger than one read chunk.
    let data = pattern(1_500_000);
    put(b, "big", &data).await;
    let opts = WriteOptions {
        keep_prefix: 1_200_001,
        ..Default::default()
    };
    let tail = b"the end";
    put_with(b, "big", tail, opts).await;
    let mut expected = data[..1_200_001].to_vec();
    expected.extend_from_slice(tail);
    assert!(get(b, "big").await == expected, "appended content differs");

    // An aborted append leaves the file as it was.
    let mut sink = b
        .write(
            &n("f"),
            WriteOptions {
                keep_prefix: 13,
                ..Default::default()
            },
        )
        .await
        .expect("write");
    sink.write(Bytes::from_static(b"xxx")).await.expect("chunk");
    sink.abort().await.expect("abort");
    assert_eq!(get(b, "f").await, b"hello, there!");
    assert_eq!(names(b, "").await, vec![file("big"), file("f")]);
}

async fn list_shows_direct_children(b: &dyn Backend) {
    b.mkdir(&n("d")).await.expect("mkdir d");
    b.mkdir(&n("d/sub")).await.expect("mkdir d/sub");
    b.mkdir(&n("d/empty")).await.expect("mkdir d/empty");
    put(b, "d/f1", b"12345").await;
    put(b, "d/sub/x", b"x").await;
    put(b, "top", b"t").await;

    assert_eq!(names(b, "").await, vec![dir("d"), file("top")]);
    assert_eq!(
        names(b, "d").await,
        vec![dir("empty"), file("f1"), dir("sub")]
    );
    assert_eq!(names(b, "d/sub").await, vec![file("x")]);
    assert!(names(b, "d/empty").await.is_empty());

    let listed = entries(b, "d").await;
    let (_, f1) = &listed[1];
    assert_eq!(f1.size, 5);
    assert!(f1.modified.is_some(), "listing gives files a time");
    let (_, sub) = &listed[2];
    assert_eq!(sub.size, 0);

    assert!(b.stat(&k("d")).await.expect("stat").is_dir());
    assert!(b.stat(&k("d/empty")).await.expect("stat").is_dir());
    assert_err!(b.list(&k("top")).await, StorageError::NotDirectory);
    assert_err!(b.list(&k("missing")).await, StorageError::NotFound);
    assert_err!(b.list(&k("d/missing")).await, StorageError::NotFound);
}

async fn list_many_entries(b: &dyn Backend) {
    b.mkdir(&n("many")).await.expect("mkdir");
    for i in 0..1_100 {
        put(b, &format!("many/f{i:04}"), b"").await;
    }
    let listed = names(b, "many").await;
    assert_eq!(listed.len(), 1_100);
    assert_eq!(listed[0], file("f0000"));
    assert_eq!(listed[1_099], file("f1099"));
}

async fn mkdir_rules(b: &dyn Backend) {
    b.mkdir(&n("d")).await.expect("mkdir");
    assert!(b.stat(&k("d")).await.expect("stat").is_dir());
    assert_err!(b.mkdir(&n("d")).await, StorageError::AlreadyExists);
    put(b, "f", b"x").await;
    assert_err!(b.mkdir(&n("f")).await, StorageError::AlreadyExists);
    assert_err!(b.mkdir(&n("missing/d")).await, StorageError::NotFound);
    assert_err!(b.mkdir(&n("f/d")).await, StorageError::NotDirectory);
    b.mkdir(&n("d/e")).await.expect("nested mkdir");
    assert_eq!(names(b, "d").await, vec![dir("e")]);
    assert_eq!(get(b, "f").await, b"x");
}

async fn rmdir_rules(b: &dyn Backend) {
    b.mkdir(&n("d")).await.expect("mkdir");
    put(b, "d/f", b"keep me").await;
    assert_err!(b.rmdir(&n("d")).await, StorageError::NotEmpty);
    assert_eq!(get(b, "d/f").await, b"keep me");
    assert_eq!(names(b, "d").await, vec![file("f")]);

    b.mkdir(&n("d/sub")).await.expect("mkdir");
    b.delete(&n("d/f")).await.expect("delete");
    assert_err!(b.rmdir(&n("d")).await, StorageError::NotEmpty);
    b.rmdir(&n("d/sub")).await.expect("rmdir sub");
    assert!(b.stat(&k("d")).await.expect("stat").is_dir(), "still there");
    b.rmdir(&n("d")).await.expect("rmdir");
    assert_missing(b, "d").await;

    put(b, "f", b"x").await;
    assert_err!(b.rmdir(&n("f")).await, StorageError::NotDirectory);
    assert_err!(b.rmdir(&n("missing")).await, StorageError::NotFound);
    assert_eq!(names(b, "").await, vec![file("f")]);
}

async fn delete_rules(b: &dyn Backend) {
    b.mkdir(&n("d")).await.expect("mkdir");
    put(b, "d/f", b"x").await;
    assert_err!(b.delete(&n("d")).await, StorageError::IsDirectory);
    assert_err!(b.delete(&n("missing")).await, StorageError::NotFound);
    b.delete(&n("d/f")).await.expect("delete");
    assert_missing(b, "d/f").await;
    assert!(
        b.stat(&k("d")).await.expect("stat").is_dir(),
        "parent survives"
    );
    assert!(names(b, "d").await.is_empty());
}

async fn remove_all_removes_tree(b: &dyn Backend) {
    b.mkdir(&n("d")).await.expect("mkdir");
    b.mkdir(&n("d/sub")).await.expect("mkdir");
    b.mkdir(&n("d/sub/deeper")).await.expect("mkdir");
    put(b, "d/a", b"a").await;
    put(b, "d/sub/b", b"b").await;
    put(b, "d/sub/deeper/c", b"c").await;
    b.mkdir(&n("d2"))
        .await
        .expect("mkdir sibling with a common prefix");
    put(b, "d2/keep", b"k").await;
    put(b, "f", b"x").await;

    assert_err!(b.remove_all(&n("f")).await, StorageError::NotDirectory);
    assert_err!(b.remove_all(&n("missing")).await, StorageError::NotFound);
    b.remove_all(&n("d")).await.expect("remove_all");
    assert_missing(b, "d").await;
    assert_missing(b, "d/sub/b").await;
    assert_eq!(names(b, "").await, vec![dir("d2"), file("f")]);
    assert_eq!(get(b, "d2/keep").await, b"k");
}

async fn rename_file(b: &dyn Backend) {
    put(b, "a", b"content a").await;
    b.rename(&n("a"), &n("b")).await.expect("rename");
    assert_missing(b, "a").await;
    assert_eq!(get(b, "b").await, b"content a");

    // Over an existing file: replaced.
    put(b, "c", b"content c").await;
    b.rename(&n("c"), &n("b")).await.expect("rename over file");
    assert_eq!(get(b, "b").await, b"content c");
    assert_missing(b, "c").await;
    assert_eq!(names(b, "").await, vec![file("b")]);

    // Into a directory.
    b.mkdir(&n("d")).await.expect("mkdir");
    b.rename(&n("b"), &n("d/b2"))
        .await
        .expect("rename into dir");
    assert_eq!(get(b, "d/b2").await, b"content c");
    assert_eq!(names(b, "").await, vec![dir("d")]);

    assert_err!(
        b.rename(&n("missing"), &n("x")).await,
        StorageError::NotFound
    );
    assert_err!(
        b.rename(&n("d/b2"), &n("nodir/x")).await,
        StorageError::NotFound
    );
    b.mkdir(&n("e")).await.expect("mkdir");
    assert_err!(
        b.rename(&n("d/b2"), &n("e")).await,
        StorageError::IsDirectory
    );
    put(b, "f", b"f").await;
    assert_err!(
        b.rename(&n("d/b2"), &n("f/x")).await,
        StorageError::NotDirectory
    );
    // Nothing moved by the refused renames.
    assert_eq!(get(b, "d/b2").await, b"content c");
    assert_eq!(names(b, "").await, vec![dir("d"), dir("e"), file("f")]);
}

async fn rename_directory(b: &dyn Backend) {
    b.mkdir(&n("d")).await.expect("mkdir");
    b.mkdir(&n("d/sub")).await.expect("mkdir");
    b.mkdir(&n("d/empty")).await.expect("mkdir");
    put(b, "d/a", b"a").await;
    put(b, "d/sub/b", b"b").await;
    b.mkdir(&n("dd"))
        .await
        .expect("mkdir sibling with a common prefix");
    put(b, "dd/keep", b"k").await;

    b.rename(&n("d"), &n("e")).await.expect("rename dir");
    assert_missing(b, "d").await;
    assert_missing(b, "d/a").await;
    assert_eq!(names(b, "").await, vec![dir("dd"), dir("e")]);
    assert_eq!(
        names(b, "e").await,
        vec![file("a"), dir("empty"), dir("sub")]
    );
    assert_eq!(get(b, "e/a").await, b"a");
    assert_eq!(get(b, "e/sub/b").await, b"b");
    assert!(b.stat(&k("e/empty")).await.expect("stat").is_dir());
    assert_eq!(get(b, "dd/keep").await, b"k");

    // Into another directory.
    b.rename(&n("e"), &n("dd/e"))
        .await
        .expect("rename into dir");
    assert_eq!(get(b, "dd/e/sub/b").await, b"b");

    // Refusals.
    assert_err!(
        b.rename(&n("dd"), &n("dd/e/x")).await,
        StorageError::InvalidName(_)
    );
    b.mkdir(&n("other")).await.expect("mkdir");
    assert_err!(
        b.rename(&n("dd"), &n("other")).await,
        StorageError::AlreadyExists
    );
    put(b, "f", b"f").await;
    assert_err!(
        b.rename(&n("dd"), &n("f")).await,
        StorageError::AlreadyExists
    );
    assert_eq!(get(b, "dd/e/sub/b").await, b"b");
    assert_eq!(get(b, "f").await, b"f");
    assert_eq!(names(b, "").await, vec![dir("dd"), file("f"), dir("other")]);
}

async fn times_are_kept(b: &dyn Backend) {
    let t = UNIX_EPOCH + Duration::from_secs(981_173_106); // 2001-02-03 04:05:06 UTC
    put(b, "f", b"data").await;
    b.set_times(
        &n("f"),
        Times {
            modified: Some(t),
            created: None,
        },
    )
    .await
    .expect("set_times");
    let meta = b.stat(&k("f")).await.expect("stat");
    assert_eq!(meta.modified.map(secs), Some(secs(t)));
    let listed = entries(b, "").await;
    assert_eq!(listed[0].1.modified.map(secs), Some(secs(t)));
    assert_eq!(get(b, "f").await, b"data", "content untouched");

    // Given with the upload.
    let t2 = UNIX_EPOCH + Duration::from_secs(1_234_567_890);
    let opts = WriteOptions {
        modified: Some(t2),
        ..Default::default()
    };
    put_with(b, "g", b"x", opts).await;
    assert_eq!(
        b.stat(&k("g")).await.expect("stat").modified.map(secs),
        Some(secs(t2))
    );

    // Kept across a rename.
    b.rename(&n("g"), &n("h")).await.expect("rename");
    assert_eq!(
        b.stat(&k("h")).await.expect("stat").modified.map(secs),
        Some(secs(t2))
    );

    // Creation time: optional, but when accepted it is reported.
    let created = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    match b
        .set_times(
            &n("f"),
            Times {
                modified: None,
                created: Some(created),
            },
        )
        .await
    {
        Ok(()) => {
            let meta = b.stat(&k("f")).await.expect("stat");
            assert_eq!(meta.created.map(secs), Some(secs(created)));
            assert_eq!(meta.modified.map(secs), Some(secs(t)), "modified untouched");
        }
        Err(StorageError::Unsupported(_)) => {}
        Err(e) => panic!("set created: {e:?}"),
    }

    assert_err!(
        b.set_times(
            &n("missing"),
            Times {
                modified: Some(t),
                created: None
            }
        )
        .await,
        StorageError::NotFound
    );
}

async fn special_names(b: &dyn Backend) {
    let names_in = [
        "with space.txt",
        "ünïcödé ✓ 日本.txt",
        "a+b=c&d.txt",
        "percent %20 #hash",
    ];
    b.mkdir(&n("my dir + ü")).await.expect("mkdir");
    for n in names_in {
        put(b, &format!("my dir + ü/{n}"), n.as_bytes()).await;
    }
    let mut expected: Vec<_> = names_in.iter().map(|n| file(n)).collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(names(b, "my dir + ü").await, expected);
    for n in names_in {
        assert_eq!(get(b, &format!("my dir + ü/{n}")).await, n.as_bytes());
    }
    b.rename(&n("my dir + ü/a+b=c&d.txt"), &n("my dir + ü/x + y.txt"))
        .await
        .expect("rename");
    assert_eq!(get(b, "my dir + ü/x + y.txt").await, b"a+b=c&d.txt");
    b.rename(&n("my dir + ü"), &n("other dir ✓"))
        .await
        .expect("rename dir");
    assert_eq!(
        get(b, "other dir ✓/with space.txt").await,
        b"with space.txt"
    );
    assert_eq!(names(b, "").await, vec![dir("other dir ✓")]);
}

// ---------------------------------------------------------------- runners

/// One `#[tokio::test]` per body and back end.
macro_rules! contract {
    ($($body:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $body() {
                    let backend = super::OpendalBackend::memory();
                    super::$body(&backend).await;
                }
            )*
        }
        mod local {
            $(
                #[tokio::test]
                async fn $body() {
                    let tmp = tempfile::tempdir().expect("tempdir");
                    let backend = super::OpendalBackend::local(tmp.path()).expect("local");
                    super::$body(&backend).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    let backend = super::s3_backend().await;
                    super::$body(&backend).await;
                }
            )*
        }
    };
}

/// An S3 back end on a fresh bucket of the shared test server, under a prefix.
async fn s3_backend() -> S3Backend {
    let server = common::s3::S3Server::shared();
    let bucket = server.fresh_bucket().await;
    let uri = S3Uri::parse(&server.mount_uri(&bucket, "contract/prefix")).expect("mount URI");
    S3Backend::open(
        &uri,
        &StorageSettings::new(UploadSettings::new(5 << 20, 4, 64)),
    )
    .await
}

contract!(
    root_is_an_empty_dir,
    write_then_read,
    large_write_in_many_chunks,
    read_from_offset,
    write_checks_parent_and_target,
    invisible_until_commit,
    abort_keeps_previous_content,
    dropped_sink_leaves_nothing,
    keep_prefix_appends,
    list_shows_direct_children,
    list_many_entries,
    mkdir_rules,
    rmdir_rules,
    delete_rules,
    remove_all_removes_tree,
    rename_file,
    rename_directory,
    times_are_kept,
    special_names,
);

// ---------------------------------------------------------------- OpenDAL only

mod opendal_only {
    use super::*;

    const PARTIAL: &str = ".s3ftp-partial";

    fn partial_files(root: &std::path::Path) -> Vec<String> {
        crate::common::staging_files(root)
    }

    #[tokio::test]
    async fn local_uploads_leave_no_temp_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let b = OpendalBackend::local(tmp.path()).expect("local");
        assert!(tmp.path().join(PARTIAL).is_dir(), "partial folder created");

        put(&b, "f", b"old").await;
        let mut sink = b
            .write(&n("f"), WriteOptions::default())
            .await
            .expect("write");
        sink.write(Bytes::from_static(b"new")).await.expect("chunk");
        assert_eq!(
            partial_files(tmp.path()).len(),
            1,
            "temp file while uploading"
        );
        sink.abort().await.expect("abort");
        assert!(
            partial_files(tmp.path()).is_empty(),
            "abort removes temp file"
        );
        assert_eq!(std::fs::read(tmp.path().join("f")).expect("read"), b"old");

        // Dropped: cleaned up in the background.
        {
            let mut sink = b
                .write(&n("g"), WriteOptions::default())
                .await
                .expect("write");
            sink.write(Bytes::from_static(b"new")).await.expect("chunk");
        }
        let mut waited = 0;
        while !partial_files(tmp.path()).is_empty() && waited < 100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        assert!(
            partial_files(tmp.path()).is_empty(),
            "drop removes temp file"
        );
        assert!(!tmp.path().join("g").exists());

        // The partial folder is never listed and its name is reserved.
        assert_eq!(names(&b, "").await, vec![file("f")]);
        // No key names it (the vfs builds keys with these rules).
        let rules = b.key_rules();
        for key in [PARTIAL.to_string(), format!("{PARTIAL}/x")] {
            assert!(
                matches!(Key::new(key.as_str(), &rules), Err(KeyError::Reserved(_))),
                "{key}"
            );
        }
    }

    #[tokio::test]
    async fn local_sees_files_made_outside() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("a/b")).expect("mkdir");
        std::fs::write(tmp.path().join("a/b/c.txt"), b"outside").expect("write");
        let b = OpendalBackend::local(tmp.path()).expect("local");
        assert_eq!(names(&b, "a").await, vec![dir("b")]);
        assert_eq!(get(&b, "a/b/c.txt").await, b"outside");
        put(&b, "a/b/d.txt", b"inside").await;
        assert_eq!(
            std::fs::read(tmp.path().join("a/b/d.txt")).expect("read"),
            b"inside"
        );
        let t = UNIX_EPOCH + Duration::from_secs(981_173_106);
        b.set_times(
            &n("a/b/d.txt"),
            Times {
                modified: Some(t),
                created: None,
            },
        )
        .await
        .expect("set_times");
        let mtime = std::fs::metadata(tmp.path().join("a/b/d.txt"))
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(secs(mtime), secs(t), "real file mtime");
    }

    /// A process killed mid-upload leaves its staging files; the next start
    /// removes them, but not those of a live process sharing the folder.
    #[tokio::test]
    async fn start_removes_only_dead_processes_staging_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let area = tmp.path().join(PARTIAL);
        let make = |rel: &str| {
            let path = area.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, b"half an upload").expect("write");
        };
        // Dead: a lock nobody holds; an instance with no lock file at all;
        // a loose file of the older flat layout.
        make("111-dead/a.txt.r1");
        make("111-dead/b.txt.r2");
        make("111-dead.lock");
        make("222-nolock/c.txt.r3");
        make("d.txt.r4");
        // Live: another process's lock, held here through a second handle.
        make("333-live/e.txt.r5");
        make("333-live.lock");
        let live = std::fs::File::open(area.join("333-live.lock")).expect("open lock");
        live.try_lock().expect("hold the live lock");

        let b = OpendalBackend::local(tmp.path()).expect("local");
        let swept = b.swept_at_start().expect("a folder sweeps");
        assert_eq!((swept.instances, swept.files), (2, 4));
        assert_eq!(partial_files(tmp.path()), vec!["333-live/e.txt.r5"]);
        assert!(area.join("333-live.lock").exists());
        assert!(!area.join("111-dead.lock").exists());

        // Its own uploads stage beside the live one and still commit, and
        // the staging area stays hidden.
        put(&b, "f", b"new").await;
        assert_eq!(partial_files(tmp.path()), vec!["333-live/e.txt.r5"]);
        assert_eq!(names(&b, "").await, vec![file("f")]);

        // Once that process is gone, the next start removes its files too.
        drop(live);
        let again = OpendalBackend::local(tmp.path()).expect("local");
        assert_eq!(again.swept_at_start().map(|s| s.files), Some(1));
        assert!(partial_files(tmp.path()).is_empty());
        assert_eq!(get(&again, "f").await, b"new");
        // A clean exit leaves no directory or lock of its own.
        drop(b);
        drop(again);
        let left: Vec<_> = std::fs::read_dir(&area).expect("area").flatten().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn local_creates_missing_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("not/yet");
        let b = OpendalBackend::local(&root).expect("local");
        assert!(root.is_dir());
        b.check().await.expect("check");
    }

    #[tokio::test]
    async fn keys_opendal_would_change_cannot_be_made() {
        for b in [
            OpendalBackend::memory(),
            OpendalBackend::local(tempfile::tempdir().expect("tempdir").path()).expect("local"),
        ] {
            let rules = b.key_rules();
            for key in [" lead", "trail ", "a//b", "/abs", "a/", "a/../b", "."] {
                assert!(Key::new(key, &rules).is_err(), "{key:?}");
            }
            // Their own staging folder is no key of theirs either.
            assert!(matches!(
                Key::new(".s3ftp-partial/x", &rules),
                Err(KeyError::Reserved(_))
            ));
        }
    }

    #[tokio::test]
    async fn memory_keeps_created_time_and_drops_it_on_delete() {
        let b = OpendalBackend::memory();
        put(&b, "f", b"x").await;
        let created = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        b.set_times(
            &n("f"),
            Times {
                modified: None,
                created: Some(created),
            },
        )
        .await
        .expect("set_times");
        assert_eq!(
            b.stat(&k("f")).await.expect("stat").created.map(secs),
            Some(secs(created))
        );
        b.delete(&n("f")).await.expect("delete");
        put(&b, "f", b"y").await;
        assert_eq!(b.stat(&k("f")).await.expect("stat").created, None);
    }
}
