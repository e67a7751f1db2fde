//! Property tests of the code that reads what clients send: the command
//! parser, Telnet stripping, line framing and the path normaliser. Random
//! inputs (a fixed number of cases, so the run is bounded) and a seed corpus of
//! hostile inputs (tests/corpus: NUL, invalid UTF-8, Telnet IAC, traversal,
//! bad arguments; plus a generated 1 MiB line) must never panic, every parse
//! error must map to a 5xx reply, and no path may leave the root.

use proptest::prelude::*;
use s3ftp::protocol::telnet::strip_telnet;
use s3ftp::protocol::{parse, ParseError};
use s3ftp::session::connection::{ControlConnection, Frame, MAX_LINE};
use s3ftp::vfs::path::{resolve, resolve_new};

/// Random cases per property; with 6 properties about 24,000 inputs a run.
const CASES: u32 = 4000;

/// Checks one command line the way the session sees it.
fn check_line(line: &[u8]) {
    let stripped = strip_telnet(line);
    assert!(stripped.len() <= line.len());
    match parse(&stripped) {
        Ok(cmd) => assert!(!cmd.verb().is_empty()),
        Err(ParseError::Empty) => {}
        Err(e) => {
            let reply = e.reply();
            let code = reply.code.as_u16();
            assert!((500..600).contains(&code), "{e:?} gave {code}");
            let wire = reply.to_wire();
            // One line, CRLF-terminated, nothing injected.
            assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1, "{wire:?}");
        }
    }
}

/// A virtual path is absolute, normalised, and inside the root.
fn check_path(cwd: &str, arg: &str) {
    if let Ok(p) = resolve(cwd, arg) {
        assert!(p.starts_with('/'), "{p}");
        assert!(p == "/" || !p.ends_with('/'), "{p}");
        for segment in p.split('/').skip(1).filter(|_| p != "/") {
            assert!(!matches!(segment, "" | "." | ".."), "{cwd} + {arg} -> {p}");
            assert!(!segment.contains('\0'));
        }
    }
    if let Ok(p) = resolve_new(cwd, arg, true) {
        assert_ne!(p, "/", "a new name is never the root");
    }
}

/// Frames a byte stream split into the given chunks; returns the frames.
fn frames(chunks: Vec<Vec<u8>>) -> Vec<Frame> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for chunk in chunks {
                if client.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = client.shutdown().await;
        });
        let mut conn = ControlConnection::new(Box::new(server));
        let mut out = Vec::new();
        while let Ok(Some(frame)) = conn.read_frame().await {
            if let Frame::Line(line) = &frame {
                assert!(line.len() <= MAX_LINE);
                check_line(line);
            }
            out.push(frame);
        }
        let _ = writer.await;
        out
    })
}

fn verbs() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "USER", "PASS", "CWD", "MKD", "RETR", "STOR", "PORT", "EPRT", "LPRT", "EPSV", "REST",
        "TYPE", "MODE", "STRU", "MFMT", "MFF", "OPTS", "SITE", "LIST", "NLST", "MLSD", "AUTH",
        "PROT", "PBSZ", "ALLO", "HELP", "STAT", "RNTO", "xpwd", "Feat",
    ])
    .prop_map(str::to_string)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(line in prop::collection::vec(any::<u8>(), 0..600)) {
        check_line(&line);
    }

    #[test]
    fn known_verbs_with_arbitrary_arguments(verb in verbs(), arg in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut line = verb.into_bytes();
        line.push(b' ');
        line.extend_from_slice(&arg);
        check_line(&line);
    }

    #[test]
    fn known_verbs_with_printable_arguments(verb in verbs(), arg in "[ -~]{0,200}") {
        check_line(format!("{verb} {arg}").as_bytes());
    }

    #[test]
    fn paths_stay_inside_the_root(
        cwd in prop::collection::vec("[a-z.]{1,4}", 0..5),
        arg in "[a-z./\\\\ %]{0,40}",
    ) {
        let cwd = format!("/{}", cwd.into_iter().filter(|s| s != "." && s != "..").collect::<Vec<_>>().join("/"));
        check_path(&cwd, &arg);
    }

    #[test]
    fn dot_dot_chains_never_escape(ups in 1usize..40, tail in "[a-z/]{0,20}") {
        let arg = format!("{}{tail}", "../".repeat(ups));
        let p = resolve("/a/b/c", &arg).expect("valid path");
        prop_assert!(p.starts_with('/'));
        check_path("/a/b/c", &arg);
    }

    #[test]
    fn framing_survives_any_chunking(
        chunks in prop::collection::vec(prop::collection::vec(
            prop::sample::select(vec![b'a', b'\r', b'\n', 0xff, 0xf4, 0xf2, b' ', 0, 0xc3]), 0..200), 0..20),
    ) {
        let total: usize = chunks.iter().map(Vec::len).sum();
        let frames = frames(chunks);
        prop_assert!(frames.len() <= total + 1);
    }
}

#[test]
fn seed_corpus_of_hostile_inputs() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("corpus") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        for line in bytes.split(|&b| b == b'\n') {
            check_line(line.strip_suffix(b"\r").unwrap_or(line));
            if let Ok(text) = std::str::from_utf8(line) {
                check_path("/x", text);
            }
        }
        frames(vec![bytes]);
        seen += 1;
    }
    assert!(seen >= 6, "corpus has {seen} files");
}

#[test]
fn a_one_mib_line_is_one_refusal_and_the_next_line_survives() {
    let mut input = b"STOR ".to_vec();
    input.extend(std::iter::repeat_n(b'A', 1 << 20));
    input.extend_from_slice(b"\r\nNOOP\r\n");
    let chunks = input.chunks(7919).map(<[u8]>::to_vec).collect();
    let frames = frames(chunks);
    assert_eq!(frames, [Frame::TooLong, Frame::Line(b"NOOP".to_vec())]);
}
