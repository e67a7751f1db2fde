//! Data connections: passive listeners taken from a port range, active
//! connections back to the client, and the stream type transfers run over.
//! Both directions accept only the control connection's peer address, which
//! is what stops FTP bounce attacks and data-connection theft.

pub mod ascii;
pub mod proxy;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use proxy::ProxyPolicy;

/// Anything a transfer can read and write: TCP now, TLS over TCP later.
pub trait DataStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> DataStream for T {}

pub type BoxedStream = Box<dyn DataStream>;

/// Hands out passive listeners, from a configured range or any free port.
#[derive(Debug)]
pub struct PassivePortPool {
    range: Option<RangeInclusive<u16>>,
    /// Where the next search starts, so consecutive sessions spread over the range.
    next: AtomicUsize,
}

impl PassivePortPool {
    pub fn new(range: Option<RangeInclusive<u16>>) -> Self {
        PassivePortPool {
            range,
            next: AtomicUsize::new(0),
        }
    }

    /// Binds a listener on `ip` at a free port of the range.
    pub async fn bind(&self, ip: IpAddr) -> io::Result<TcpListener> {
        let Some(range) = &self.range else {
            return TcpListener::bind(SocketAddr::new(ip, 0)).await;
        };
        let (lo, hi) = (*range.start() as usize, *range.end() as usize);
        let len = hi - lo + 1;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..len {
            let port = (lo + (start + i) % len) as u16;
            match TcpListener::bind(SocketAddr::new(ip, port)).await {
                Ok(listener) => return Ok(listener),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("all passive ports {lo}-{hi} are in use"),
        ))
    }
}

/// How the next data connection will be made (set by PASV/EPSV/PORT/EPRT...).
#[derive(Debug)]
pub enum DataSetup {
    Passive {
        listener: TcpListener,
        /// Only this address may connect: the control connection's peer.
        peer_ip: IpAddr,
        /// Set when data connections start with a PROXY header, whose
        /// source is then what must match `peer_ip`.
        proxy: Option<ProxyPolicy>,
    },
    Active {
        addr: SocketAddr,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("timed out waiting for the data connection")]
    Timeout,
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl DataSetup {
    /// Opens the data connection: accepts the client's (passive) or connects
    /// to it (active), waiting at most `timeout`.
    pub async fn open(self, timeout: Duration) -> Result<TcpStream, DataError> {
        let deadline = Instant::now() + timeout;
        let stream = match self {
            DataSetup::Passive {
                listener,
                peer_ip,
                proxy,
            } => loop {
                let (mut stream, mut from) = tokio::time::timeout_at(deadline, listener.accept())
                    .await
                    .map_err(|_| DataError::Timeout)??;
                if let Some(policy) = &proxy {
                    let header = policy.accept(&mut stream, from);
                    match tokio::time::timeout_at(deadline, header).await {
                        Ok(Ok(client)) => from = client,
                        Ok(Err(e)) => {
                            tracing::warn!(%from, error = %e, "refused a passive data connection");
                            continue;
                        }
                        Err(_) => return Err(DataError::Timeout),
                    }
                }
                if same_host(from.ip(), peer_ip) {
                    break stream;
                }
                tracing::warn!(
                    %from, expected = %peer_ip,
                    "refused a passive data connection from another address"
                );
            },
            DataSetup::Active { addr } => {
                tokio::time::timeout_at(deadline, TcpStream::connect(addr))
                    .await
                    .map_err(|_| DataError::Timeout)??
            }
        };
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Compares addresses, treating an IPv4-mapped IPv6 address as its IPv4 form.
pub fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pool_stays_in_its_range_and_reports_exhaustion() {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let pool = PassivePortPool::new(Some(port..=port));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let first = pool.bind(ip).await.unwrap();
        assert_eq!(first.local_addr().unwrap().port(), port);
        let err = pool.bind(ip).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[tokio::test]
    async fn passive_refuses_other_hosts_then_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let setup = DataSetup::Passive {
            listener,
            // The "control peer" is another loopback address, so our connect is refused.
            peer_ip: "127.0.0.2".parse().unwrap(),
            proxy: None,
        };
        let client = tokio::spawn(async move { TcpStream::connect(addr).await });
        let result = setup.open(Duration::from_millis(300)).await;
        assert!(matches!(result, Err(DataError::Timeout)));
        assert!(client.await.unwrap().is_ok());
    }

    #[test]
    fn mapped_addresses_are_the_same_host() {
        assert!(same_host(
            "::ffff:127.0.0.1".parse().unwrap(),
            "127.0.0.1".parse().unwrap()
        ));
        assert!(!same_host(
            "127.0.0.2".parse().unwrap(),
            "127.0.0.1".parse().unwrap()
        ));
    }
}
