//! The control connection's TCP socket: urgent data kept in line, reads that
//! go on past the urgent mark, and a peek at what the kernel holds.
//!
//! Urgent data: clients send ABOR (or Telnet's Synch before it) as TCP urgent
//! data (RFC 959 4.1.3). SO_OOBINLINE keeps the urgent byte in the stream,
//! but a read stops at the urgent mark, and tokio takes a short read to mean
//! the socket is drained: it would wait for the next segment, which from a
//! client waiting for its ABOR reply never comes. [`ControlSocket`] reads
//! until the kernel itself says there is nothing left.
//!
//! Before an upload is committed the session must know whether the client is
//! still there and has not sent ABOR. The runtime learns of a peer's FIN, RST
//! or new bytes only when its event loop next runs, and a client killed
//! mid-upload closes its data and control connections within microseconds of
//! each other: the data connection's end can be seen first. So the session
//! peeks at the socket itself (MSG_PEEK, non-blocking), which reflects every
//! segment the kernel has received.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A control connection's stream: a TcpStream whose reads are retried until
/// the kernel answers "would block" (see the module's doc).
#[derive(Debug)]
pub struct ControlSocket(pub TcpStream);

impl AsyncRead for ControlSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let stream = &self.get_mut().0;
        loop {
            ready!(stream.poll_read_ready(cx))?;
            // try_read forgets readiness only on WouldBlock, never after a
            // short read.
            match stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ControlSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// What the control socket holds right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// The client closed or reset the connection.
    Closed,
    /// Bytes are waiting to be read (a command, maybe ABOR).
    Sent,
    /// Connected and nothing waiting: a live client waiting for a reply.
    Quiet,
}

/// The control socket's descriptor, used only to peek and wait. It holds no
/// descriptor of its own (a dup per session doubled the descriptors a
/// server of 10,000 idle sessions needs), so it must live no longer than
/// the socket: `ControlConnection` keeps it beside the stream and drops it
/// when the stream goes. A wait on the blocking pool takes a dup of its own
/// for just that long.
#[derive(Debug)]
pub struct SocketProbe(RawFd);

impl SocketProbe {
    /// Keeps urgent data in line on `stream` (RFC 959 4.1.3: clients send
    /// ABOR, or Telnet's Synch before it, as TCP urgent data; without
    /// SO_OOBINLINE the kernel takes the urgent byte out of the stream, which
    /// cuts `ABOR\r\n` to `ABOR\r`) and returns a probe for it.
    pub fn attach(stream: &TcpStream) -> io::Result<SocketProbe> {
        let one: libc::c_int = 1;
        // SAFETY: a valid socket descriptor and a c_int option value of the
        // size given.
        let rc = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_OOBINLINE,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SocketProbe(stream.as_raw_fd()))
    }

    /// Waits at most `limit` for the client to send something or close;
    /// true if it did. Sub-millisecond, unlike the runtime's timers (which
    /// round up to the next millisecond tick): ppoll on the blocking pool.
    pub async fn wait(&self, limit: Duration) -> bool {
        // SAFETY: the socket is open while its probe exists (see the type).
        let Ok(fd) = unsafe { BorrowedFd::borrow_raw(self.0) }.try_clone_to_owned() else {
            // Out of descriptors: count it as activity, the caller looks again.
            return true;
        };
        let polled = tokio::task::spawn_blocking(move || {
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLRDHUP | libc::POLLPRI,
                revents: 0,
            };
            let timeout = libc::timespec {
                tv_sec: limit.as_secs() as libc::time_t,
                tv_nsec: limit.subsec_nanos() as libc::c_long,
            };
            // SAFETY: one pollfd we own, a valid timespec, no signal mask.
            unsafe { libc::ppoll(&mut pfd, 1, &timeout, std::ptr::null()) }
        });
        // An error (EINTR, say) counts as activity: the caller looks again.
        polled.await.map_or(true, |n| n != 0)
    }

    /// Peeks at the socket without consuming or waiting.
    pub fn state(&self) -> PeerState {
        let mut byte = 0u8;
        // SAFETY: a one-byte buffer we own; MSG_PEEK leaves the byte queued.
        let n = unsafe {
            libc::recv(
                self.0,
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match n {
            0 => PeerState::Closed,
            n if n > 0 => PeerState::Sent,
            _ => match io::Error::last_os_error().kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => PeerState::Quiet,
                _ => PeerState::Closed,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    /// The probe holds no descriptor of its own (10,000 idle sessions held
    /// 20,000 and ran out under a 20,000 limit): it is the socket's own.
    #[tokio::test]
    async fn a_probe_holds_no_descriptor() {
        let (_client, server) = pair().await;
        let probe = SocketProbe::attach(&server).unwrap();
        assert_eq!(probe.0, server.as_raw_fd());
        assert!(!probe.wait(Duration::from_micros(100)).await);
        assert_eq!(probe.state(), PeerState::Quiet);
    }

    #[tokio::test]
    async fn quiet_then_sent_then_closed() {
        let (mut client, server) = pair().await;
        let probe = SocketProbe::attach(&server).unwrap();
        assert_eq!(probe.state(), PeerState::Quiet);
        client.write_all(b"ABOR\r\n").await.unwrap();
        // Loopback delivers within the write call.
        assert_eq!(probe.state(), PeerState::Sent);
        let mut buf = [0u8; 16];
        let mut got = 0;
        while got < 6 {
            server.readable().await.unwrap();
            got += server.try_read(&mut buf).unwrap_or(0);
        }
        assert_eq!(probe.state(), PeerState::Quiet);
        drop(client);
        assert_eq!(probe.state(), PeerState::Closed);
    }

    #[tokio::test]
    async fn wait_ends_at_a_close_and_times_out_on_silence() {
        let (client, server) = pair().await;
        let probe = SocketProbe::attach(&server).unwrap();
        let started = std::time::Instant::now();
        assert!(!probe.wait(Duration::from_micros(300)).await);
        assert!(started.elapsed() < Duration::from_millis(50));
        let closer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(client);
        });
        assert!(probe.wait(Duration::from_secs(10)).await);
        assert_eq!(probe.state(), PeerState::Closed);
        closer.await.unwrap();
    }

    #[tokio::test]
    async fn reads_go_on_past_the_urgent_mark() {
        use tokio::io::AsyncReadExt;
        let (mut client, server) = pair().await;
        let _probe = SocketProbe::attach(&server).unwrap();
        let mut server = ControlSocket(server);
        // BSD ftp's ABOR: IAC IP in line, IAC urgent, then DM ABOR.
        client.write_all(b"\xff\xf4").await.unwrap();
        let urgent = unsafe {
            libc::send(
                client.as_raw_fd(),
                b"\xff".as_ptr().cast(),
                1,
                libc::MSG_OOB,
            )
        };
        assert_eq!(urgent, 1);
        client.write_all(b"\xf2ABOR\r\n").await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"\r\n") {
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), server.read(&mut buf))
                .await
                .expect("the bytes after the urgent mark are read without new data")
                .unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"\xff\xf4\xff\xf2ABOR\r\n");
    }

    #[tokio::test]
    async fn urgent_bytes_stay_in_line() {
        let (client, server) = pair().await;
        let _probe = SocketProbe::attach(&server).unwrap();
        let sent = unsafe {
            libc::send(
                client.as_raw_fd(),
                b"ABOR\r\n".as_ptr().cast(),
                6,
                libc::MSG_OOB,
            )
        };
        assert_eq!(sent, 6);
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        while got.len() < 6 {
            server.readable().await.unwrap();
            if let Ok(n) = server.try_read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(got, b"ABOR\r\n");
    }
}
