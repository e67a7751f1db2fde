//! The control connection: reads command lines (CRLF or bare LF, Telnet
//! sequences removed) and writes replies. A line longer than the limit is
//! discarded as it arrives and reported once, so an endless line costs at most
//! the limit in memory.

use std::io;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
}

impl ControlConnection {
    pub fn new(stream: BoxedStream) -> Self {
        ControlConnection {
            stream,
            buf: BytesMut::with_capacity(1024),
            discarding: false,
            names: Default::default(),
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
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let line = self.buf.split_to(end + 1);
                if std::mem::take(&mut self.discarding) || line.len() > MAX_LINE {
                    return Some(Frame::TooLong);
                }
                let mut line = &line[..end];
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

    /// Switches the connection to TLS (AUTH TLS, or implicit FTPS at connect).
    pub async fn upgrade(&mut self, acceptor: &tokio_rustls::TlsAcceptor) -> io::Result<()> {
        // Bytes that arrived after AUTH but before the handshake would be
        // plaintext injected into the protected session: they are dropped.
        self.buf.clear();
        self.discarding = false;
        let plain = std::mem::replace(&mut self.stream, Box::new(tokio::io::empty()));
        let tls = acceptor.accept(plain).await?;
        self.stream = Box::new(tls);
        Ok(())
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
    async fn telnet_interrupt_before_abor_is_stripped() {
        let f = frames(b"\xff\xf4\xff\xf2ABOR\r\n".to_vec()).await;
        assert_eq!(f, [Frame::Line(b"ABOR".to_vec())]);
    }
}
