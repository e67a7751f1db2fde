//! The accept loop: opens the mounts, binds the control listener, starts one
//! session task per connection (421 past the session limit), and on shutdown
//! stops accepting and waits for the sessions to end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::datachan::PassivePortPool;
use crate::guard::SessionSlot;
use crate::metrics::http::Probe;
use crate::metrics::Metrics;
use crate::secrets::redact;
use crate::session::{Session, Shared};
use crate::storage::s3::{upload::UploadSettings, S3Settings};
use crate::storage::{StorageSettings, Unusable};
use crate::vfs::mount::{Mount, MountTable};

const MIB: usize = 1024 * 1024;

/// How long aborted transfers get to clean up (abort multipart uploads).
const ABORT_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("S3FTP_MOUNTS: {0}")]
    Mount(String),
    #[error("{var}: cannot listen on {addr}: {source}")]
    Bind {
        var: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Events(String),
    #[error("{who}: home {home:?} cannot be stored on its mount: {why}; choose another home")]
    Home {
        who: String,
        home: String,
        why: crate::storage::KeyError,
    },
}

pub struct Server {
    shared: Arc<Shared>,
    listener: TcpListener,
    /// Implicit FTPS (TLS from the first byte), when configured.
    implicit: Option<TcpListener>,
    /// The monitoring HTTP listener, when configured: served from start-up
    /// on, so /readyz can say which mount start-up is waiting for.
    monitor: Option<Monitor>,
}

/// The monitoring endpoints, served until the server is dropped.
struct Monitor {
    addr: SocketAddr,
    probe: Arc<Probe>,
    _stop: tokio_util::sync::DropGuard,
}

impl Monitor {
    async fn start(
        addr: SocketAddr,
        metrics: &Arc<Metrics>,
        mounts: &Arc<MountTable>,
    ) -> Result<Monitor, ServerError> {
        let listener = bind("S3FTP_METRICS_LISTEN", addr).await?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            var: "S3FTP_METRICS_LISTEN",
            addr,
            source,
        })?;
        let stop = CancellationToken::new();
        let probe = Arc::new(Probe {
            metrics: metrics.clone(),
            mounts: mounts.clone(),
            shutdown: Default::default(),
        });
        tokio::spawn(crate::metrics::http::serve(
            listener,
            probe.clone(),
            stop.clone(),
        ));
        tokio::spawn(crate::metrics::http::watch_mounts(
            probe.clone(),
            stop.clone(),
        ));
        Ok(Monitor {
            addr,
            probe,
            _stop: stop.drop_guard(),
        })
    }
}

impl Server {
    /// Opens and checks every mount, then binds the listener.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let metrics = Arc::new(Metrics::new());
        let settings = StorageSettings {
            observer: metrics.clone(),
            s3: S3Settings {
                upload: UploadSettings::new(
                    config.part_size_mib * MIB,
                    config.upload_concurrency,
                    config.upload_memory_mib,
                )
                .with_download_concurrency(config.download_concurrency),
                dir_cache: config.dir_cache,
                upload_sweep_age: config.upload_sweep_age,
                clients: Default::default(),
            },
        };
        metrics.watch_upload_budget(&settings.s3.upload);
        let mounts = Arc::new(
            MountTable::open(&config.mounts, &settings)
                .await
                .map_err(ServerError::Mount)?,
        );
        let monitor = match config.metrics_listen {
            Some(addr) => Some(Monitor::start(addr, &metrics, &mounts).await?),
            None => None,
        };
        for mount in mounts.mounts() {
            await_store(mount, config.store_wait).await?;
        }
        check_homes(&config, &mounts)?;
        let tls = config
            .tls
            .as_ref()
            .map(|source| crate::tls::TlsState::new(source, config.tls_client_ca.as_deref()))
            .transpose()?;
        let listener = bind("S3FTP_LISTEN", config.listen).await?;
        let implicit = match config.tls_implicit_listen {
            Some(addr) => Some(bind("S3FTP_TLS_IMPLICIT_LISTEN", addr).await?),
            None => None,
        };
        let events = Arc::new(
            crate::events::Events::start(&config.events, &config.server_id)
                .await
                .map_err(|e| ServerError::Events(e.to_string()))?,
        );
        metrics.watch_events(events.clone());
        let shared = Shared {
            auth: Authenticator::new(config.users.clone(), &config.auth)
                .map_err(|e| ServerError::Auth(e.to_string()))?,
            mounts,
            user_trees: crate::vfs::mount::UserTrees::new(settings.clone()),
            pasv_pool: PassivePortPool::new(
                config.pasv_ports.clone(),
                config.proxy.data().then(|| config.proxy.clone()),
            ),
            tls,
            guard: crate::guard::AddressGuard::new(config.guard),
            stop_transfers: CancellationToken::new(),
            events,
            metrics,
            config,
        };
        Ok(Server {
            shared: Arc::new(shared),
            listener,
            implicit,
            monitor,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that reloads the TLS certificate (on SIGHUP) while serving.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            shared: self.shared.clone(),
        }
    }

    /// The monitoring listener's address, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.monitor.as_ref().map(|m| m.addr)
    }

    /// The implicit FTPS listener's address, when there is one.
    pub fn implicit_addr(&self) -> Option<SocketAddr> {
        self.implicit.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` is cancelled. Then it serves the connections
    /// already queued and stops accepting; sessions finish what they started
    /// (a transfer, or the commands leading to one) and are told 421 once
    /// done or quiet for two seconds; after S3FTP_SHUTDOWN_GRACE what still
    /// runs is aborted (uploads discarded), then the sessions are awaited.
    pub async fn run(self, shutdown: CancellationToken) {
        let Server {
            shared,
            listener,
            implicit,
            monitor,
        } = self;
        if let Some(monitor) = &monitor {
            // Set once: a server runs once.
            let _ = monitor.probe.shutdown.set(shutdown.clone());
        }
        let slots = Arc::new(Semaphore::new(shared.config.max_sessions));
        let tracker = TaskTracker::new();
        let mut next_id: u64 = 0;
        let mut start = |stream: TcpStream, peer: SocketAddr, implicit: bool| {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                refuse_busy(&shared, &tracker, stream, peer, implicit);
                return;
            };
            next_id += 1;
            let (id, shared, token) = (next_id, shared.clone(), shutdown.clone());
            tracker.spawn(async move {
                serve_connection(shared, id, stream, peer, implicit, token).await;
                drop(permit);
            });
        };
        const REPEAT: Duration = Duration::from_secs(60);
        let (mut refusals, mut last_said) = (0u64, None);
        loop {
            let (accepted, implicit) = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => (a, false),
                a = accept_on(&implicit) => (a, true),
            };
            match accepted {
                Ok((stream, peer)) => start(stream, peer, implicit),
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of
                    // spinning, and say so once a minute, not every pause.
                    refusals += 1;
                    if last_said.is_none_or(|t: tokio::time::Instant| t.elapsed() >= REPEAT) {
                        let advice = if e.raw_os_error() == Some(libc::EMFILE) {
                            "the process is out of file descriptors: raise its open-files \
                             limit (ulimit -n, LimitNOFILE=, the container's nofile) or lower \
                             S3FTP_MAX_SESSIONS"
                        } else {
                            "new connections wait in the backlog until it clears"
                        };
                        tracing::warn!(error = %e, times = refusals, "cannot accept connections: {advice}");
                        last_said = Some(tokio::time::Instant::now());
                        refusals = 0;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        // Connections the kernel completed before the listener closes are
        // served (draining, as the others), not reset: a balancer counts
        // them as established and would not send them elsewhere.
        for (listener, implicit) in [(Some(listener), false), (implicit, true)] {
            for (stream, peer) in backlog(listener) {
                start(stream, peer, implicit);
            }
        }
        // The listeners are closed: new clients get "connection refused" at
        // once instead of waiting for a server that is leaving.
        // The monitoring listener outlives the FTP one: /readyz says 503
        // (since `shutdown`) while transfers drain, and /metrics shows them
        // finishing.
        drain(&shared, tracker).await;
        drop(monitor);
    }
}

/// Answers a connection over the session limit with 421 (or just closes an
/// implicit-TLS one, which could not read a plain reply).
fn refuse_busy(
    shared: &Shared,
    tracker: &TaskTracker,
    mut stream: TcpStream,
    peer: SocketAddr,
    implicit: bool,
) {
    tracing::warn!(%peer, "too many sessions, refusing connection");
    shared.metrics.connection_refused("max_sessions");
    if implicit {
        return;
    }
    tracker.spawn(async move {
        let _ = stream
            .write_all(b"421 Too many connections, try again later.\r\n")
            .await;
        let _ = stream.shutdown().await;
    });
}

/// One accepted control connection: admission (PROXY header, per-address
/// limits), socket options, then the session.
async fn serve_connection(
    shared: Arc<Shared>,
    id: u64,
    mut stream: TcpStream,
    peer: SocketAddr,
    implicit: bool,
    shutdown: CancellationToken,
) {
    let Some((peer, address_slot)) = admit(&shared, &mut stream, peer, implicit).await else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let probe = crate::session::control_socket::SocketProbe::attach(&stream)
        .map_err(|e| tracing::warn!(error = %e, "control socket options"))
        .ok();
    let session = Session::new(shared, id, peer, local);
    let stream = crate::session::control_socket::ControlSocket(stream);
    session
        .run(Box::new(stream), probe, shutdown, implicit)
        .await;
    drop(address_slot);
}

/// Waits for the sessions to end for the grace period, then aborts their
/// transfers and waits a little more.
/// Closes `listener`, returning the connections waiting in its backlog.
fn backlog(listener: Option<TcpListener>) -> Vec<(TcpStream, SocketAddr)> {
    let Some(std) = listener.and_then(|l| l.into_std().ok()) else {
        return Vec::new();
    };
    let mut waiting = Vec::new();
    // The std listener is still non-blocking: accept until "would block".
    while let Ok((stream, peer)) = std.accept() {
        // Accepted sockets start blocking; tokio needs them non-blocking.
        if stream.set_nonblocking(true).is_err() {
            continue;
        }
        if let Ok(stream) = TcpStream::from_std(stream) {
            waiting.push((stream, peer));
        }
    }
    waiting
}

async fn drain(shared: &Shared, tracker: TaskTracker) {
    tracker.close();
    if tokio::time::timeout(shared.config.shutdown_grace, tracker.wait())
        .await
        .is_ok()
    {
        return;
    }
    tracing::warn!("transfers still running after the shutdown grace period: aborting them");
    shared.stop_transfers.cancel();
    if tokio::time::timeout(ABORT_WAIT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("sessions still open after aborting their transfers");
    }
}

/// Learns the client's address (from the PROXY header when a load balancer
/// sends one) and checks it against the per-address limits and bans. None:
/// the connection was refused (and told so when it can read a reply).
async fn admit(
    shared: &Shared,
    stream: &mut TcpStream,
    peer: SocketAddr,
    implicit: bool,
) -> Option<(SocketAddr, SessionSlot)> {
    let proxy = &shared.config.proxy;
    let client = if proxy.control() {
        match proxy.accept(stream, peer).await {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "connection refused");
                shared.metrics.connection_refused("proxy_header");
                return None;
            }
        }
    } else {
        peer
    };
    match shared.guard.admit(client.ip()) {
        Ok(slot) => Some((client, slot)),
        Err(refusal) => {
            tracing::warn!(peer = %client, ?refusal, "connection refused");
            shared.metrics.connection_refused(refusal.label());
            if !implicit {
                let line = format!("421 {}\r\n", refusal.message());
                let _ = stream.write_all(line.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
            None
        }
    }
}

/// Reloads what can change without a restart.
#[derive(Clone)]
pub struct ReloadHandle {
    shared: Arc<Shared>,
}

impl ReloadHandle {
    /// Reads the TLS certificate and key again. Ok(false): no TLS configured.
    pub fn reload_tls(&self) -> Result<bool, crate::tls::TlsError> {
        match &self.shared.tls {
            Some(tls) => tls.reload().map(|()| true),
            None => Ok(false),
        }
    }
}

async fn bind(var: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    crate::datachan::listen(addr).map_err(|source| ServerError::Bind { var, addr, source })
}

/// Accepts on an optional listener; never completes when there is none.
async fn accept_on(
    listener: &Option<TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Every home must make a valid key on its mount (not too long with the
/// mount's prefix, no name the back end keeps for itself): a bad home stops
/// the server here instead of failing each command of that user later.
fn check_homes(config: &Config, mounts: &MountTable) -> Result<(), ServerError> {
    let users = config
        .users
        .iter()
        .map(|u| (format!("user {:?}", u.name), &u.home));
    let anonymous = config
        .anonymous_home
        .iter()
        .map(|home| ("S3FTP_ANONYMOUS_HOME".to_string(), home));
    for (who, home) in users.chain(anonymous) {
        // Homes passed `check_home` when the configuration was read.
        let normal = crate::vfs::path::check_home(home).unwrap_or_else(|_| home.clone());
        if let Err(why) = mounts.locate(&normal) {
            return Err(ServerError::Home {
                who,
                home: home.clone(),
                why,
            });
        }
    }
    Ok(())
}

/// Longest one check of a store may take at start.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until `mount`'s store answers its check, retrying with backoff
/// for up to `wait` while the problem may pass (store starting, bucket not
/// created yet); a lasting one (credentials, access, region) stops at once.
async fn await_store(mount: &Mount, wait: Duration) -> Result<(), ServerError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(200);
    let mut warned = false;
    loop {
        let problem = match tokio::time::timeout(STORE_CHECK_TIMEOUT, mount.backend.check()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => Unusable::passing(format!(
                "no answer within {} s",
                STORE_CHECK_TIMEOUT.as_secs()
            )),
        };
        let now = tokio::time::Instant::now();
        if problem.lasting || now + pause > deadline {
            return Err(ServerError::Mount(format!(
                "{} ({}): {problem}",
                mount.point,
                redact(&mount.uri)
            )));
        }
        if !warned {
            tracing::warn!(
                mount = %mount.point,
                "{problem}; retrying for up to {} s (S3FTP_STORE_WAIT)",
                wait.as_secs()
            );
            warned = true;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
