//! The accept loop: opens the mounts, binds the control listener, starts one
//! session task per connection (421 past the session limit), and on shutdown
//! stops accepting and waits for the sessions to end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::UserStore;
use crate::config::Config;
use crate::datachan::PassivePortPool;
use crate::session::{Session, Shared};
use crate::storage::s3::redact;
use crate::storage::s3::upload::UploadSettings;
use crate::storage::StorageSettings;
use crate::vfs::mount::MountTable;

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
}

pub struct Server {
    shared: Arc<Shared>,
    listener: TcpListener,
    /// Implicit FTPS (TLS from the first byte), when configured.
    implicit: Option<TcpListener>,
}

impl Server {
    /// Opens and checks every mount, then binds the listener.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let settings = StorageSettings {
            upload: UploadSettings::new(
                config.part_size_mib * MIB,
                config.upload_concurrency,
                config.upload_memory_mib,
            ),
        };
        let mounts = MountTable::open(&config.mounts, &settings)
            .await
            .map_err(ServerError::Mount)?;
        for mount in mounts.mounts() {
            mount.backend.check().await.map_err(|e| {
                ServerError::Mount(format!(
                    "{} ({}) is not reachable: {e}",
                    mount.point,
                    redact(&mount.uri)
                ))
            })?;
        }
        let tls = config
            .tls
            .as_ref()
            .map(crate::tls::TlsState::new)
            .transpose()?;
        let listener = bind("S3FTP_LISTEN", config.listen).await?;
        let implicit = match config.tls_implicit_listen {
            Some(addr) => Some(bind("S3FTP_TLS_IMPLICIT_LISTEN", addr).await?),
            None => None,
        };
        let shared = Shared {
            users: UserStore::new(config.users.clone()),
            mounts: Arc::new(mounts),
            pasv_pool: PassivePortPool::new(config.pasv_ports.clone()),
            tls,
            guard: crate::guard::AddressGuard::new(config.guard),
            stop_transfers: CancellationToken::new(),
            config,
        };
        Ok(Server {
            shared: Arc::new(shared),
            listener,
            implicit,
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

    /// The implicit FTPS listener's address, when there is one.
    pub fn implicit_addr(&self) -> Option<SocketAddr> {
        self.implicit.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` is cancelled. Then it stops accepting, tells
    /// idle sessions 421, lets transfers run for S3FTP_SHUTDOWN_GRACE, aborts
    /// what is still running (uploads discarded) and waits for the sessions.
    pub async fn run(self, shutdown: CancellationToken) {
        let grace = self.shared.config.shutdown_grace;
        let slots = Arc::new(Semaphore::new(self.shared.config.max_sessions));
        let tracker = TaskTracker::new();
        let mut next_id: u64 = 0;
        loop {
            let (accepted, implicit) = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.listener.accept() => (a, false),
                a = accept_on(&self.implicit) => (a, true),
            };
            let (mut stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "too many sessions, refusing connection");
                if implicit {
                    // No TLS yet, so no reply can be read: just close.
                    continue;
                }
                tracker.spawn(async move {
                    let _ = stream
                        .write_all(b"421 Too many connections, try again later.\r\n")
                        .await;
                    let _ = stream.shutdown().await;
                });
                continue;
            };
            let address_slot = match self.shared.guard.admit(peer.ip()) {
                Ok(slot) => slot,
                Err(refusal) => {
                    tracing::warn!(%peer, ?refusal, "connection refused");
                    if !implicit {
                        tracker.spawn(async move {
                            let line = format!("421 {}\r\n", refusal.message());
                            let _ = stream.write_all(line.as_bytes()).await;
                            let _ = stream.shutdown().await;
                        });
                    }
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let local = match stream.local_addr() {
                Ok(a) => a,
                Err(_) => continue,
            };
            next_id += 1;
            let session = Session::new(self.shared.clone(), next_id, peer, local);
            let token = shutdown.clone();
            tracker.spawn(async move {
                session.run(Box::new(stream), token, implicit).await;
                drop((permit, address_slot));
            });
        }
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                "transfers still running after the shutdown grace period: aborting them"
            );
            self.shared.stop_transfers.cancel();
            if tokio::time::timeout(ABORT_WAIT, tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!("sessions still open after aborting their transfers");
            }
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
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { var, addr, source })
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
