//! The fault suite: uploads interrupted in every way a client can interrupt
//! them, many times at random cut points, on every back end. After each trial
//! the store is read directly: the name holds its previous content or the
//! complete new content (never a truncated one), and which of the two matches
//! the reply the client got; nothing partial is left; the server still serves.
//!
//! The seed is printed; `S3FTP_FAULT_SEED` repeats a run and
//! `S3FTP_FAULT_TRIALS` (default 4 per kind) runs more trials.

mod common;

use std::time::Duration;

use common::{content, sha256, Raw, TestServer};
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

on_every_backend!(
    data_reset_at_random_points,
    control_dropped_at_random_points,
    client_dies_at_random_points,
    plain_abor_at_random_points,
    urgent_abor_at_random_points,
    telnet_synch_abor_at_random_points,
);

/// Size of each new upload: over one 5 MiB part, so S3 trials cut both
/// single-request and multipart uploads.
const NEW_LEN: usize = 6 * 1024 * 1024 + 77;

/// How a trial interrupts the upload once `cut` bytes are sent.
#[derive(Clone, Copy, Debug)]
enum Interrupt {
    /// The data connection is reset (RST).
    DataReset,
    /// The control connection closes, then the data connection ends cleanly.
    ControlDropped,
    /// What a killed client's kernel does: the data connection ends cleanly
    /// and the control connection closes right after.
    ClientDies,
    /// `ABOR\r\n` in line, then the data connection closes.
    PlainAbor,
    /// `ABOR\r\n` in one urgent send, as Python's ftplib does.
    UrgentAbor,
    /// Telnet IP in line, IAC as urgent data, then DM ABOR, as BSD ftp does.
    TelnetSynchAbor,
}

/// One test per way of interrupting, each a loop of random trials.
macro_rules! interrupted_at_random_points {
    ($($name:ident => $kind:ident),* $(,)?) => {
        $(
            async fn $name(server: TestServer) {
                trials(server, Interrupt::$kind).await
            }
        )*
    };
}

interrupted_at_random_points!(
    data_reset_at_random_points => DataReset,
    control_dropped_at_random_points => ControlDropped,
    client_dies_at_random_points => ClientDies,
    plain_abor_at_random_points => PlainAbor,
    urgent_abor_at_random_points => UrgentAbor,
    telnet_synch_abor_at_random_points => TelnetSynchAbor,
);

async fn trials(server: TestServer, kind: Interrupt) {
    let (mut rng, seed, count) = common::fault_plan(&format!("{kind:?}"), 4);
    let new = content(NEW_LEN, seed);
    for n in 0..count {
        let name = format!("t{n}.bin");
        let old = content(1000 + n, seed ^ n as u64);
        let cut = rng.gen_range(0..NEW_LEN);
        let what = format!("{kind:?} trial {n} (seed {seed}) cut at {cut} bytes");
        let mut c = server.login().await;
        assert_eq!(c.upload(&format!("STOR {name}"), &old).await.0, 226);
        let mut data = c.data().await;
        c.expect(&format!("STOR {name}"), 150).await;
        data.write_all(&new[..cut]).await.expect("send data");
        let told = interrupt(kind, c, data).await;
        wait_for_sessions_to_end(&server).await;
        let stored = server.stored(&name).await;
        match told {
            // Aborted uploads must leave the previous file; a client that
            // died was told nothing, and nothing of its upload may show.
            Some(code) if code < 300 => panic!("{what}: the upload was not aborted ({code})"),
            _ => assert_eq!(
                stored.as_deref().map(sha256),
                Some(sha256(&old)),
                "{what}: the previous content must be intact"
            ),
        }
        assert_eq!(server.names().await, expected_names(n), "{what}");
        server.assert_nothing_partial().await;
    }
    // Still serving: a whole upload and download on a fresh session.
    let mut c = server.login().await;
    assert_eq!(c.upload("STOR whole.bin", &new).await.0, 226);
    assert_eq!(sha256(&c.fetch("RETR whole.bin").await), sha256(&new));
    assert_eq!(
        server.stored("whole.bin").await.as_deref().map(sha256),
        Some(sha256(&new))
    );
}

fn expected_names(last: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..=last).map(|i| format!("t{i}.bin")).collect();
    names.sort();
    names
}

/// Interrupts the upload; returns the transfer's reply code when the client
/// was still there to read one.
async fn interrupt(kind: Interrupt, mut c: Raw, mut data: TcpStream) -> Option<u16> {
    match kind {
        Interrupt::DataReset => {
            data.set_zero_linger().expect("linger");
            drop(data);
            let (code, text) = c.reply().await;
            assert_eq!(code, 426, "{text}");
            c.expect("NOOP", 200).await;
            Some(code)
        }
        Interrupt::ControlDropped => {
            drop(c);
            let _ = data.shutdown().await;
            None
        }
        Interrupt::ClientDies => {
            let _ = data.shutdown().await;
            drop(data);
            drop(c);
            None
        }
        Interrupt::PlainAbor | Interrupt::UrgentAbor | Interrupt::TelnetSynchAbor => {
            match kind {
                Interrupt::PlainAbor => c.send_bytes(b"ABOR\r\n").await,
                Interrupt::UrgentAbor => c.send_urgent(b"ABOR\r\n"),
                _ => {
                    c.send_bytes(b"\xff\xf4").await;
                    c.send_urgent(b"\xff");
                    c.send_bytes(b"\xf2ABOR\r\n").await;
                }
            }
            let _ = data.shutdown().await;
            drop(data);
            let (code, text) = c.reply().await;
            assert_eq!(code, 426, "ABOR during an upload: {text}");
            let (done, text) = c.reply().await;
            assert_eq!(done, 226, "ABOR's own reply: {text}");
            // The session goes on: the next command gets the next reply.
            c.expect("NOOP", 200).await;
            Some(code)
        }
    }
}

/// Waits until the server has closed every session (so whatever it decided
/// about an interrupted upload is done and visible in the store).
async fn wait_for_sessions_to_end(server: &TestServer) {
    for _ in 0..200 {
        if server.metric("s3ftp_sessions_active").await == 0.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("sessions still open 5 s after their clients left");
}
