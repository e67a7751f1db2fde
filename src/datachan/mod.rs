//! Data connections: passive ports shared by sessions of different client
//! addresses, active connections back to the client, and the stream type
//! transfers run over. Both directions accept only the control connection's
//! peer address, which is what stops FTP bounce attacks and data-connection
//! theft.

pub mod ascii;
pub mod proxy;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

use proxy::ProxyPolicy;

/// Anything a transfer can read and write: TCP now, TLS over TCP later.
pub trait DataStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> DataStream for T {}

pub type BoxedStream = Box<dyn DataStream>;

/// Connections the kernel queues for a listener before it accepts them
/// (capped by `net.core.somaxconn`). The default of 128 overflowed when a
/// thousand clients connected at once: the kernel dropped the last ACK of
/// their handshakes, so those clients thought they were connected and
/// waited for a greeting that never came.
pub const BACKLOG: u32 = 4096;

/// A listener on `addr` with a backlog of [`BACKLOG`].
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Passive ports, shared by sessions whose clients have different
/// addresses. A port's listener hands each incoming data connection to the
/// session waiting for that client address (read from the connection, or
/// from its PROXY header), and refuses (logs, closes) one no session waits
/// for. Sessions from the same address wait on different ports, so a range
/// of N ports serves any number of clients with N waiting sessions each.
/// Listeners are opened on demand and closed with their last waiter.
#[derive(Clone, Debug)]
pub struct PassivePortPool {
    inner: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    range: Option<RangeInclusive<u16>>,
    /// Where the next search starts, so consecutive sessions spread over the range.
    next: AtomicUsize,
    /// PROXY headers expected on data connections.
    proxy: Option<ProxyPolicy>,
    /// Open listeners by local address.
    ports: Mutex<HashMap<SocketAddr, SharedPort>>,
}

/// Client address -> the waiter's number and where its connection goes.
type Waiting = HashMap<IpAddr, (u64, oneshot::Sender<TcpStream>)>;

/// Numbers waiters, so one removes only its own entry.
static WAITERS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
struct SharedPort {
    /// The session waiting for each client address (canonical form).
    waiting: Arc<Mutex<Waiting>>,
    /// The accept loop; stopped when the port closes.
    accept: tokio::task::JoinHandle<()>,
}

impl PassivePortPool {
    /// Ports from `range` (or any free port); data connections start with
    /// a PROXY header when `proxy` is given.
    pub fn new(range: Option<RangeInclusive<u16>>, proxy: Option<ProxyPolicy>) -> Self {
        PassivePortPool {
            inner: Arc::new(Pool {
                range,
                next: AtomicUsize::new(0),
                proxy,
                ports: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A port on `ip` where the next data connection from `client` will be
    /// handed to the returned [`Waiter`]: an open port of the range no one
    /// from `client` waits on, or a newly opened one.
    pub async fn wait_for(&self, ip: IpAddr, client: IpAddr) -> io::Result<Waiter> {
        let client = client.to_canonical();
        let Some(range) = &self.inner.range else {
            let listener = listen(SocketAddr::new(ip, 0))?;
            return self.open(listener, client);
        };
        let (lo, hi) = (*range.start() as usize, *range.end() as usize);
        let len = hi - lo + 1;
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..len {
            let local = SocketAddr::new(ip, (lo + (start + i) % len) as u16);
            match self.join(local, client) {
                Joined::Waiting(waiter) => return Ok(waiter),
                Joined::Taken => continue,
                Joined::NotOpen => {}
            }
            match listen(local) {
                Ok(listener) => return self.open(listener, client),
                // Another process's, or opened by another session meanwhile.
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    if let Joined::Waiting(waiter) = self.join(local, client) {
                        return Ok(waiter);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("all passive ports {lo}-{hi} are in use for clients from {client}"),
        ))
    }

    /// Waits on the open port `local`, if it is open and no one from
    /// `client` waits there.
    fn join(&self, local: SocketAddr, client: IpAddr) -> Joined {
        let ports = lock(&self.inner.ports);
        let Some(port) = ports.get(&local) else {
            return Joined::NotOpen;
        };
        let mut waiting = lock(&port.waiting);
        if waiting.contains_key(&client) {
            return Joined::Taken;
        }
        let (id, tx, rx) = channel();
        waiting.insert(client, (id, tx));
        Joined::Waiting(self.waiter(local, client, id, rx))
    }

    /// Serves a newly bound listener, with `client` its first waiter.
    fn open(&self, listener: TcpListener, client: IpAddr) -> io::Result<Waiter> {
        let local = listener.local_addr()?;
        let (id, tx, rx) = channel();
        let waiting = Arc::new(Mutex::new(HashMap::from([(client, (id, tx))])));
        let accept = tokio::spawn(dispatch(
            listener,
            waiting.clone(),
            Arc::downgrade(&self.inner),
        ));
        let mut ports = lock(&self.inner.ports);
        // A listener of another session's for this address would have
        // failed our bind: any entry is a closed one's, still to be removed.
        if let Some(old) = ports.insert(local, SharedPort { waiting, accept }) {
            old.accept.abort();
        }
        Ok(self.waiter(local, client, id, rx))
    }

    fn waiter(
        &self,
        local: SocketAddr,
        client: IpAddr,
        id: u64,
        rx: oneshot::Receiver<TcpStream>,
    ) -> Waiter {
        Waiter {
            rx,
            id,
            local,
            client,
            pool: self.inner.clone(),
        }
    }

    /// Ports open now (tests, status).
    pub fn open_ports(&self) -> usize {
        lock(&self.inner.ports).len()
    }
}

fn channel() -> (
    u64,
    oneshot::Sender<TcpStream>,
    oneshot::Receiver<TcpStream>,
) {
    let (tx, rx) = oneshot::channel();
    (WAITERS.fetch_add(1, Ordering::Relaxed), tx, rx)
}

enum Joined {
    Waiting(Waiter),
    /// Someone from the same address waits there.
    Taken,
    NotOpen,
}

/// A session's place on a passive port: receives its data connection.
/// Dropping it leaves the port, which closes with its last waiter.
#[derive(Debug)]
pub struct Waiter {
    rx: oneshot::Receiver<TcpStream>,
    id: u64,
    local: SocketAddr,
    client: IpAddr,
    pool: Arc<Pool>,
}

impl Waiter {
    pub fn port(&self) -> u16 {
        self.local.port()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut ports = lock(&self.pool.ports);
        let Some(port) = ports.get(&self.local) else {
            return;
        };
        let empty = {
            let mut waiting = lock(&port.waiting);
            // Only our own entry: a later waiter from the same address
            // (after ours was served) is not ours to remove.
            if waiting
                .get(&self.client)
                .is_some_and(|(id, _)| *id == self.id)
            {
                waiting.remove(&self.client);
            }
            waiting.is_empty()
        };
        // An ephemeral port closes with its waiter; a port of the range
        // stays open for the next sessions and closes when idle (`dispatch`):
        // closing it now would race the next PASV's bind of the same port.
        if empty && self.pool.range.is_none() {
            if let Some(port) = ports.remove(&self.local) {
                port.accept.abort();
            }
        }
    }
}

/// How long a port of the range may have no waiter (checked twice) before
/// it closes.
const IDLE_CLOSE: Duration = Duration::from_secs(60);

/// The accept loop of one shared port: each connection (after its PROXY
/// header, read in a task of its own so a slow one blocks no other) goes to
/// the session waiting for its client address, or is refused.
async fn dispatch(listener: TcpListener, waiting: Arc<Mutex<Waiting>>, pool: Weak<Pool>) {
    let local = listener.local_addr().ok();
    let port = local.map_or(0, |a| a.port());
    let proxy = pool.upgrade().and_then(|p| p.proxy.clone());
    let mut idle = tokio::time::interval_at(Instant::now() + IDLE_CLOSE, IDLE_CLOSE);
    let mut was_empty = false;
    let mut listener = listener;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => Some(accepted),
            _ = idle.tick() => None,
        };
        let Some(accepted) = accepted else {
            let empty = lock(&waiting).is_empty();
            if empty && was_empty {
                match close_if_idle(&pool, local, &waiting, listener) {
                    None => return,
                    Some(still_open) => listener = still_open,
                }
            }
            was_empty = empty;
            continue;
        };
        let (mut stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(port, error = %e, "passive accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (waiting, proxy) = (waiting.clone(), proxy.clone());
        tokio::spawn(async move {
            let from = match &proxy {
                None => peer,
                Some(policy) => match policy.accept(&mut stream, peer).await {
                    Ok(client) => client,
                    Err(e) => {
                        tracing::warn!(from = %peer, port, error = %e, "refused a passive data connection");
                        return;
                    }
                },
            };
            let session = lock(&waiting).remove(&from.ip().to_canonical());
            match session {
                Some((_, tx)) => {
                    // A session that stopped waiting just now drops it.
                    let _ = tx.send(stream);
                }
                None => tracing::warn!(
                    %from, port,
                    "refused a passive data connection: no session waits for this address on this port"
                ),
            }
        });
    }
}

/// Closes an idle port: removes it from the pool and drops its listener
/// while holding the pool's lock, so no new waiter can find the port
/// between the two (it will bind it afresh). Gives the listener back when
/// someone waits on it after all.
fn close_if_idle(
    pool: &Weak<Pool>,
    local: Option<SocketAddr>,
    waiting: &Mutex<Waiting>,
    listener: TcpListener,
) -> Option<TcpListener> {
    let (Some(pool), Some(local)) = (pool.upgrade(), local) else {
        return None;
    };
    let mut ports = lock(&pool.ports);
    if !lock(waiting).is_empty() {
        return Some(listener);
    }
    ports.remove(&local);
    drop(listener);
    None
}

/// A poisoned lock still holds consistent maps (no code panics while
/// holding one mid-update), so its data is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the next data connection will be made (set by PASV/EPSV/PORT/EPRT...).
#[derive(Debug)]
pub enum DataSetup {
    /// On a passive port, for the control connection's peer address only.
    Passive(Waiter),
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
    /// Opens the data connection: takes the client's (passive) or connects
    /// to it (active), waiting at most `timeout`.
    pub async fn open(self, timeout: Duration) -> Result<TcpStream, DataError> {
        let deadline = Instant::now() + timeout;
        let stream = match self {
            DataSetup::Passive(mut waiter) => tokio::time::timeout_at(deadline, &mut waiter.rx)
                .await
                .map_err(|_| DataError::Timeout)?
                .map_err(|_| io::Error::other("the passive port closed"))?,
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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    async fn free_port() -> u16 {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        probe.local_addr().unwrap().port()
    }

    /// Connects from `from` to `port` on 127.0.0.1.
    async fn connect(from: &str, port: u16) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(ip(from), 0)).unwrap();
        socket
            .connect(SocketAddr::new(ip("127.0.0.1"), port))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn one_port_serves_clients_of_different_addresses_and_closes_after_them() {
        let port = free_port().await;
        let pool = PassivePortPool::new(Some(port..=port), None);
        let local = ip("127.0.0.1");
        let a = pool.wait_for(local, ip("127.0.0.2")).await.unwrap();
        let b = pool.wait_for(local, ip("::ffff:127.0.0.3")).await.unwrap();
        assert_eq!((a.port(), b.port()), (port, port));
        // A second session from the same address needs another port.
        let err = pool.wait_for(local, ip("127.0.0.2")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(pool.open_ports(), 1);

        let to_b = connect("127.0.0.3", port).await;
        let to_a = connect("127.0.0.2", port).await;
        let got_a = DataSetup::Passive(a)
            .open(Duration::from_secs(5))
            .await
            .unwrap();
        let got_b = DataSetup::Passive(b)
            .open(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got_a.peer_addr().unwrap(), to_a.local_addr().unwrap());
        assert_eq!(got_b.peer_addr().unwrap(), to_b.local_addr().unwrap());
        // Both waiters are served: the port stays open for the next
        // sessions (it closes when idle), refusing whoever comes meanwhile.
        assert_eq!(pool.open_ports(), 1);
        let mut late = connect("127.0.0.2", port).await;
        let mut buf = [0u8; 1];
        let read = tokio::io::AsyncReadExt::read(&mut late, &mut buf).await;
        assert!(matches!(read, Ok(0) | Err(_)), "closed by the server");
    }

    #[tokio::test]
    async fn a_connection_no_one_waits_for_is_refused_and_the_waiter_keeps_waiting() {
        let pool = PassivePortPool::new(None, None);
        let waiter = pool
            .wait_for(ip("127.0.0.1"), ip("127.0.0.2"))
            .await
            .unwrap();
        let port = waiter.port();
        let mut stranger = connect("127.0.0.4", port).await;
        let mut buf = [0u8; 1];
        let read = tokio::io::AsyncReadExt::read(&mut stranger, &mut buf).await;
        assert!(matches!(read, Ok(0) | Err(_)), "closed by the server");
        let mine = connect("127.0.0.2", port).await;
        let got = DataSetup::Passive(waiter)
            .open(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got.peer_addr().unwrap(), mine.local_addr().unwrap());
    }

    #[tokio::test]
    async fn a_waiter_times_out_and_leaving_frees_the_address() {
        let port = free_port().await;
        let pool = PassivePortPool::new(Some(port..=port), None);
        let waiter = pool
            .wait_for(ip("127.0.0.1"), ip("127.0.0.2"))
            .await
            .unwrap();
        let result = DataSetup::Passive(waiter)
            .open(Duration::from_millis(50))
            .await;
        assert!(matches!(result, Err(DataError::Timeout)));
        // The timed-out waiter left: the same client may wait there again.
        let again = pool
            .wait_for(ip("127.0.0.1"), ip("127.0.0.2"))
            .await
            .unwrap();
        assert_eq!(again.port(), port);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_port_of_the_range_closes() {
        let port = free_port().await;
        let pool = PassivePortPool::new(Some(port..=port), None);
        drop(
            pool.wait_for(ip("127.0.0.1"), ip("127.0.0.2"))
                .await
                .unwrap(),
        );
        assert_eq!(pool.open_ports(), 1);
        tokio::time::sleep(IDLE_CLOSE * 3).await;
        assert_eq!(pool.open_ports(), 0);
        // And opens again for the next session.
        let again = pool
            .wait_for(ip("127.0.0.1"), ip("127.0.0.2"))
            .await
            .unwrap();
        assert_eq!((again.port(), pool.open_ports()), (port, 1));
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
