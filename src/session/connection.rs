//! The control connection: reads command lines (CRLF or bare LF, Telnet
//! sequences removed) and writes replies. A line longer than the limit is
//! discarded as it arrives and reported once, so an endless line costs at most
//! the limit in memory.
//!
//! Urgent data: Python's ftplib sends `ABOR\r\n` as TCP urgent data, which
//! marks its last byte urgent. The server's own socket keeps urgent bytes in
//! line (SO_OOBINLINE, set on accept), but a load balancer's may take the LF
//! out of the stream: so when the line is `ABOR`, a CR followed by anything
//! but LF also ends it, even at the end of what has arrived (the client is
//! waiting for its reply). Any other bare CR stays part of the line.

use std::io;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::control_socket::{PeerState, SocketProbe};
use crate::datachan::BoxedStream;
use crate::protocol::telnet::strip_telnet;
use crate::protocol::Reply;

/// Longest command line accepted, in bytes (verb, argument and CRLF): room for
/// a 1,024-byte key in a long path, and small enough to bound a session's buffer.
pub const MAX_LINE: usize = 4096;

/// What the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Line(Vec<u8>),
    /// A line over [`MAX_LINE`], already discarded.
    TooLong,
}

pub struct ControlConnection {
    stream: BoxedStream,
    buf: BytesMut,
    /// Inside an overlong line: drop bytes until its end.
    discarding: bool,
    /// How replies put names on the wire.
    names: crate::protocol::names::NameEncoding,
    /// The last line ended at a bare CR: an LF that follows belongs to it.
    after_bare_cr: bool,
    /// The socket under `stream`, for asking the kernel what has arrived.
    probe: Option<SocketProbe>,
}

impl ControlConnection {
    /// A connection over `stream`; `probe`, when given, peeks at its socket.
    pub fn with_probe(stream: BoxedStream, probe: Option<SocketProbe>) -> Self {
        ControlConnection {
            probe,
            ..ControlConnection::new(stream)
        }
    }

    pub fn new(stream: BoxedStream) -> Self {
        ControlConnection {
            stream,
            buf: BytesMut::with_capacity(1024),
            discarding: false,
            names: Default::default(),
            after_bare_cr: false,
            probe: None,
        }
    }

    pub fn set_names(&mut self, names: crate::protocol::names::NameEncoding) {
        self.names = names;
    }

    /// The next frame, or `None` at end of stream. Cancel-safe: bytes already
    /// read stay in the buffer, so it can be raced against other events.
    pub async fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.take_frame() {
                return Ok(Some(frame));
            }
            self.buf.reserve(1024);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    fn take_frame(&mut self) -> Option<Frame> {
        if std::mem::take(&mut self.after_bare_cr) {
            match self.buf.first() {
                Some(b'\n') => self.buf.advance(1),
                Some(_) => {}
                None => self.after_bare_cr = true,
            }
        }
        match line_end(&self.buf) {
            Some(end) => {
                self.after_bare_cr = self.buf[end.content] == b'\r';
                let line = self.buf.split_to(end.content + 1);
                if std::mem::take(&mut self.discarding) || line.len() > MAX_LINE {
                    return Some(Frame::TooLong);
                }
                let mut line = &line[..end.content];
                if let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                Some(Frame::Line(strip_telnet(line).into_owned()))
            }
            None => {
                if self.buf.len() > MAX_LINE {
                    self.buf.advance(self.buf.len());
                    self.discarding = true;
                }
                None
            }
        }
    }

    /// Waits at most `limit` for the client to send or close; false if it
    /// stayed quiet. Without a socket to ask, waits for a whole frame.
    pub async fn wait_for_peer(&mut self, limit: std::time::Duration) -> bool {
        match &self.probe {
            Some(probe) => probe.wait(limit).await,
            None => tokio::time::timeout(limit, async {
                while self.buf.is_empty() {
                    self.buf.reserve(1024);
                    if !matches!(self.stream.read_buf(&mut self.buf).await, Ok(n) if n > 0) {
                        break;
                    }
                }
            })
            .await
            .is_ok(),
        }
    }

    /// What the client has sent that no frame has taken yet: bytes already
    /// read, else what the kernel holds (Quiet when there is no socket to ask).
    pub fn pending(&self) -> PeerState {
        if !self.buf.is_empty() {
            return PeerState::Sent;
        }
        self.probe
            .as_ref()
            .map_or(PeerState::Quiet, SocketProbe::state)
    }

    /// Switches the connection to TLS (AUTH TLS, or implicit FTPS at connect).
    /// Switches to TLS; returns the names a verified client certificate
    /// vouches for (none without one).
    pub async fn upgrade(
        &mut self,
        acceptor: &tokio_rustls::TlsAcceptor,
    ) -> io::Result<Vec<String>> {
        // Bytes that arrived after AUTH but before the handshake would be
        // plaintext injected into the protected session: they are dropped.
        self.buf.clear();
        self.discarding = false;
        let plain = std::mem::replace(&mut self.stream, Box::new(tokio::io::empty()));
        // A failed handshake closes the socket: its probe goes with it.
        let probe = self.probe.take();
        let tls = acceptor.accept(plain).await?;
        self.probe = probe;
        let identities = crate::tls::client_identities(tls.get_ref().1);
        self.stream = Box::new(tls);
        Ok(identities)
    }

    pub async fn write_reply(&mut self, reply: &Reply) -> io::Result<()> {
        let wire = reply.to_wire();
        match std::str::from_utf8(&wire) {
            Ok(text) if self.names.is_legacy() => self.write_text(text).await,
            _ => self.write_raw(&wire).await,
        }
    }

    /// Writes text, with names in the session's encoding.
    pub async fn write_text(&mut self, text: &str) -> io::Result<()> {
        let bytes = self.names.encode(text);
        self.write_raw(&bytes).await
    }

    async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// Where a line ends in `buf`: `content` is the index of its terminator
/// (the LF, or a bare CR).
struct LineEnd {
    content: usize,
}

fn line_end(buf: &[u8]) -> Option<LineEnd> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\n' || b == b'\r') {
        let i = from + i;
        if buf[i] == b'\n' {
            return Some(LineEnd { content: i });
        }
        match buf.get(i + 1) {
            Some(b'\n') => from = i + 1,
            _ if is_abor(&buf[..i]) => return Some(LineEnd { content: i }),
            Some(_) => from = i + 1,
            None => return None,
        }
    }
    None
}

fn is_abor(line: &[u8]) -> bool {
    strip_telnet(line)
        .trim_ascii()
        .eq_ignore_ascii_case(b"ABOR")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn frames(input: Vec<u8>) -> Vec<Frame> {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            client.write_all(&input).await.unwrap();
            client.shutdown().await.unwrap();
        });
        let mut conn = ControlConnection::new(Box::new(server));
        let mut out = Vec::new();
        while let Some(f) = conn.read_frame().await.unwrap() {
            out.push(f);
        }
        writer.await.unwrap();
        out
    }

    #[tokio::test]
    async fn pipelined_lines_in_one_write() {
        let f = frames(b"USER a\r\nPASS b\r\nNOOP\n".to_vec()).await;
        assert_eq!(
            f,
            [
                Frame::Line(b"USER a".to_vec()),
                Frame::Line(b"PASS b".to_vec()),
                Frame::Line(b"NOOP".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn overlong_line_is_reported_once_and_the_next_line_survives() {
        let mut input = vec![b'A'; MAX_LINE * 3];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let f = frames(input).await;
        assert_eq!(f, [Frame::TooLong, Frame::Line(b"NOOP".to_vec())]);
    }

    #[tokio::test]
    async fn abor_whose_urgent_lf_was_lost_ends_at_its_cr() {
        // ftplib's ABOR through a socket that dropped the urgent LF.
        let f = frames(b"ABOR\rNOOP\r\n".to_vec()).await;
        assert_eq!(
            f,
            [Frame::Line(b"ABOR".to_vec()), Frame::Line(b"NOOP".to_vec())]
        );
        let f = frames(b"ABOR\r".to_vec()).await;
        assert_eq!(f, [Frame::Line(b"ABOR".to_vec())]);
    }

    #[tokio::test]
    async fn crlf_split_across_reads_is_one_line_end() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut conn = ControlConnection::new(Box::new(server));
        client.write_all(b"ABOR\r").await.unwrap();
        let first = conn.read_frame().await.unwrap();
        assert_eq!(first, Some(Frame::Line(b"ABOR".to_vec())));
        client.write_all(b"\nNOOP\r\n").await.unwrap();
        client.shutdown().await.unwrap();
        assert_eq!(
            conn.read_frame().await.unwrap(),
            Some(Frame::Line(b"NOOP".to_vec()))
        );
        assert_eq!(conn.read_frame().await.unwrap(), None);
    }

    #[tokio::test]
    async fn other_bare_crs_stay_inside_the_line() {
        let f = frames(b"STOR a\r\0b\rc\r\n".to_vec()).await;
        assert_eq!(f, [Frame::Line(b"STOR a\r\0b\rc".to_vec())]);
    }

    #[tokio::test]
    async fn telnet_interrupt_before_abor_is_stripped() {
        let f = frames(b"\xff\xf4\xff\xf2ABOR\r\n".to_vec()).await;
        assert_eq!(f, [Frame::Line(b"ABOR".to_vec())]);
    }
}
