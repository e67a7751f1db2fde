//! One task per control connection: read a line, parse it, run its handler,
//! write the reply. While a transfer runs (in its own task) the session keeps
//! reading: ABOR and STAT act at once, QUIT closes after the transfer's reply,
//! and any other command is queued and answered in order afterwards.

pub mod connection;
pub mod control_socket;
pub mod error;
mod handlers;
mod supervise;
pub mod transfer;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticator, User};
use crate::config::Config;
use crate::datachan::{BoxedStream, DataSetup, PassivePortPool};
use crate::protocol::command::TransferType;
use crate::protocol::listing::MlstFacts;
use crate::protocol::{Reply, ReplyCode};
use crate::vfs::mount::MountTable;
use crate::vfs::Vfs;
use connection::{ControlConnection, Frame};
use transfer::{LinePages, Transfer};

/// Most commands held while a transfer runs; past that the session stops
/// reading the control connection until the transfer ends.
const MAX_QUEUED: usize = 64;

/// While the server shuts down, how long a session may be quiet before it
/// is told 421: longer than a client's pause between the commands of one
/// upload over a slow network, shorter than the grace period.
const DRAIN_QUIET: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a staged upload waits for the client's rename before it takes
/// its temporary name (see [`StagedUpload`]).
const STAGED_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What every session shares: configuration, users, the tree, the port pool.
pub struct Shared {
    pub config: Config,
    pub auth: Authenticator,
    /// The server's mounts: the tree of every user without mounts of their own.
    pub mounts: Arc<MountTable>,
    /// Trees of users with mounts of their own (from the auth hook).
    pub user_trees: crate::vfs::mount::UserTrees,
    pub pasv_pool: PassivePortPool,
    /// Present when FTPS is configured.
    pub tls: Option<crate::tls::TlsState>,
    pub guard: Arc<crate::guard::AddressGuard>,
    /// Cancelled when the shutdown grace period is over: running transfers
    /// are aborted (uploads discarded) and their sessions closed.
    pub stop_transfers: CancellationToken,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where completed actions are told (S3FTP_EVENTS_*).
    pub events: Arc<crate::events::Events>,
}

/// What a handler asks the session loop to do.
pub enum Outcome {
    Reply(Reply),
    /// Start a data transfer; its replies come from the transfer.
    Transfer(Box<Transfer>),
    /// A listing sent over the control connection (STAT path), line by line.
    ControlListing {
        code: ReplyCode,
        header: String,
        lines: LinePages,
    },
    /// Send the reply, then close the connection (QUIT).
    Close(Reply),
    /// Send the reply (234), then switch the control connection to TLS.
    UpgradeTls(Reply),
}

impl Outcome {
    /// The code of the final reply, when it is known now (a transfer's comes
    /// at its end).
    fn final_code(&self) -> Option<ReplyCode> {
        match self {
            Outcome::Reply(r) | Outcome::Close(r) | Outcome::UpgradeTls(r) => Some(r.code),
            Outcome::ControlListing { code, .. } => Some(*code),
            Outcome::Transfer(_) => None,
        }
    }
}

/// The state of one control connection.
pub struct Session {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    /// Who is logged in, if anyone: a logged-in session always has its
    /// file view and working directory, and only a logged-in one has them.
    pub(crate) login: Login,
    pub(crate) transfer_type: TransferType,
    /// Offset given by REST, used by the next RETR/STOR/APPE.
    pub(crate) rest: Option<u64>,
    /// Path given by RNFR, waiting for RNTO.
    pub(crate) rename_from: Option<String>,
    pub(crate) data: Option<DataSetup>,
    pub(crate) epsv_all: bool,
    pub(crate) mlst_facts: MlstFacts,
    /// OPTS HASH's algorithm and RANG's range for the next HASH.
    pub(crate) hash: handlers::HashChoice,
    /// The control connection is TLS (after AUTH TLS, or implicit FTPS).
    pub(crate) tls: bool,
    /// Names the client's verified certificate vouches for (S3FTP_TLS_CLIENT_CA).
    pub(crate) client_identities: Vec<String>,
    /// PROT P: data connections are TLS too.
    pub(crate) prot_private: bool,
    /// Failed logins on this connection (each makes the next reply slower).
    pub(crate) failed_logins: u32,
    /// An upload to a temporary name, all data received, waiting for the
    /// client's rename to its final name (S3FTP_TEMP_SUFFIXES).
    pub(crate) staged: Option<StagedUpload>,
    /// The client sent OPTS UTF8 ON: names go out as UTF-8 even when
    /// S3FTP_LEGACY_ENCODING is set.
    pub(crate) utf8_on: bool,
    /// Transfers this session ran (see [`Session::drained`]).
    pub(crate) transfers: u64,
    /// A transfer ended while the server was shutting down.
    pub(crate) transferred_draining: bool,
}

/// See [`Session::login`].
pub(crate) enum Login {
    /// Nobody yet, or after REIN or a refused password.
    Nobody,
    /// USER given, waiting for PASS.
    Named(String),
    In(Account),
}

/// A logged-in user, their view of the tree and where they are in it.
pub(crate) struct Account {
    pub user: Arc<User>,
    pub vfs: Vfs,
    pub cwd: String,
}

/// See [`Session::staged`].
pub(crate) struct StagedUpload {
    /// The name the client uploaded to.
    pub temp: String,
    /// The name the bytes were written to.
    pub target: String,
    /// In a mutex only so that `Session` stays `Sync` (never contended).
    pub sink: std::sync::Mutex<Box<dyn crate::storage::UploadSink>>,
    /// A modification time the client set on `temp` meanwhile (MFMT).
    pub modified: Option<std::time::SystemTime>,
    /// For the upload's event: bytes received, checksums, when it started.
    pub bytes: u64,
    pub digests: crate::digest::Digests,
    pub started: Instant,
}

impl StagedUpload {
    pub fn into_sink(self) -> Box<dyn crate::storage::UploadSink> {
        self.sink.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl Session {
    pub fn new(shared: Arc<Shared>, id: u64, peer: SocketAddr, local: SocketAddr) -> Self {
        Session {
            shared,
            id,
            peer,
            local,
            login: Login::Nobody,
            transfer_type: TransferType::default(),
            rest: None,
            rename_from: None,
            transfers: 0,
            transferred_draining: false,
            data: None,
            epsv_all: false,
            mlst_facts: MlstFacts::default(),
            hash: Default::default(),
            tls: false,
            client_identities: Vec::new(),
            prot_private: false,
            failed_logins: 0,
            staged: None,
            utf8_on: false,
        }
    }

    /// Back to the state right after connecting (REIN, USER while logged in).
    /// The TLS state of the control connection stays: it cannot be undone.
    pub(crate) fn reset(&mut self) {
        let was_in = self.logged_in();
        let mut fresh = Session::new(self.shared.clone(), self.id, self.peer, self.local);
        fresh.tls = self.tls;
        fresh.client_identities = std::mem::take(&mut self.client_identities);
        fresh.failed_logins = self.failed_logins;
        *self = fresh;
        // Only a user who was logged in needs replacing (AUTH TLS resets
        // a session before any login): the text log shows every value a
        // span field was given.
        if was_in {
            tracing::Span::current().record("user", "-");
        }
    }

    /// How names go out to this client (see `protocol::names`).
    pub(crate) fn names_out(&self) -> crate::protocol::names::NameEncoding {
        if self.utf8_on {
            Default::default()
        } else {
            self.shared.config.legacy_encoding
        }
    }

    fn user_name(&self) -> &str {
        self.user().map(|u| u.name.as_str()).unwrap_or("-")
    }

    pub(crate) fn logged_in(&self) -> bool {
        matches!(self.login, Login::In(_))
    }

    pub(crate) fn user(&self) -> Option<&Arc<User>> {
        match &self.login {
            Login::In(account) => Some(&account.user),
            _ => None,
        }
    }

    /// An event of `kind` about `path` (as the user names it), filled with
    /// the session's facts and where the path is stored; None when events
    /// are off or this one is not wanted.
    pub(crate) fn event(
        &self,
        kind: crate::events::Kind,
        command: &'static str,
        path: &str,
    ) -> Option<crate::events::Event> {
        if !self.wants_event(kind, path) {
            return None;
        }
        self.any_event(kind, command, path)
    }

    /// Whether an event of `kind` about `path` (as the user names it) is
    /// wanted (S3FTP_EVENTS_TYPES, S3FTP_EVENTS_PATHS).
    pub(crate) fn wants_event(&self, kind: crate::events::Kind, path: &str) -> bool {
        match &self.login {
            Login::In(account) => self.shared.events.wants(kind, &account.vfs.tree_path(path)),
            _ => false,
        }
    }

    /// Like [`Session::event`], whatever the path filter says.
    pub(crate) fn any_event(
        &self,
        kind: crate::events::Kind,
        command: &'static str,
        path: &str,
    ) -> Option<crate::events::Event> {
        let Login::In(account) = &self.login else {
            return None;
        };
        let tree = account.vfs.tree_path(path);
        let mut event = crate::events::Event::new(kind, command);
        event.session = self.id;
        event.user.clone_from(&account.user.name);
        event.client_ip = self.peer.ip().to_canonical().to_string();
        event.client_port = self.peer.port();
        event.path = tree;
        event.user_path = path.to_string();
        if let Some((mount, store)) = account.vfs.store_of(path) {
            event.mount = Some(mount);
            event.store = Some(store);
        }
        Some(event)
    }

    /// Emits `event` (built by [`Session::event`]).
    pub(crate) fn emit(&self, event: Option<crate::events::Event>) {
        if let Some(event) = event {
            self.shared.events.emit(event);
        }
    }

    /// The logged-in account, or the 530 reply.
    pub(crate) fn account(&self) -> Result<&Account, Reply> {
        match &self.login {
            Login::In(account) => Ok(account),
            _ => Err(Reply::new(ReplyCode::NotLoggedIn, "Not logged in.")),
        }
    }

    pub(crate) fn account_mut(&mut self) -> Result<&mut Account, Reply> {
        match &mut self.login {
            Login::In(account) => Ok(account),
            _ => Err(Reply::new(ReplyCode::NotLoggedIn, "Not logged in.")),
        }
    }

    /// The working directory ("/" before login).
    pub(crate) fn cwd(&self) -> &str {
        self.account().map_or("/", |a| a.cwd.as_str())
    }

    /// Serves the connection until QUIT, disconnect, idle timeout or shutdown.
    /// `implicit`: the connection is implicit FTPS, TLS from the first byte.
    /// `probe` peeks at the control socket for the commit decision.
    ///
    /// Everything logged while it runs, storage and transfers included,
    /// carries one span: `session{id peer user}` (user once logged in).
    pub async fn run(
        self,
        stream: BoxedStream,
        probe: Option<control_socket::SocketProbe>,
        shutdown: CancellationToken,
        implicit: bool,
    ) {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "session",
            id = self.id,
            peer = %self.peer,
            user = tracing::field::Empty
        );
        self.run_in_span(stream, probe, shutdown, implicit)
            .instrument(span)
            .await
    }

    async fn run_in_span(
        mut self,
        stream: BoxedStream,
        probe: Option<control_socket::SocketProbe>,
        shutdown: CancellationToken,
        implicit: bool,
    ) {
        let started = Instant::now();
        self.shared.metrics.session_opened();
        let _open = SessionGauge(self.shared.metrics.clone());
        tracing::info!(implicit_tls = implicit, "session start");
        let mut conn = ControlConnection::with_probe(stream, probe);
        conn.set_names(self.names_out());
        if implicit {
            let Some(acceptors) = self.shared.tls.as_ref().map(|t| t.acceptors()) else {
                return;
            };
            let handshake = tokio::time::timeout(
                self.shared.config.data_timeout,
                conn.upgrade(&acceptors.control),
            );
            let Ok(Ok(identities)) = handshake.await else {
                tracing::info!("implicit TLS handshake failed");
                return;
            };
            self.client_identities = identities;
            // Implicit FTPS protects data connections too unless PROT C says otherwise.
            self.tls = true;
            self.prot_private = true;
        }
        let greeting = Reply::new(ReplyCode::ServiceReady, self.shared.config.banner.clone());
        if conn.write_reply(&greeting).await.is_ok() {
            self.serve(&mut conn, &shutdown).await;
        }
        conn.shutdown().await;
        // The client left without renaming its last upload: it appears under
        // the name it was sent to.
        self.settle_staged().await;
        tracing::info!(secs = started.elapsed().as_secs_f64(), "session end");
    }

    async fn serve(&mut self, conn: &mut ControlConnection, shutdown: &CancellationToken) {
        let mut throttle = CommandThrottle::new(self.shared.config.max_commands_per_second);
        let connected = Instant::now();
        let mut queue: VecDeque<Frame> = VecDeque::new();
        loop {
            let frame = match queue.pop_front() {
                Some(frame) => frame,
                None => match self.next_frame(conn, shutdown, connected).await {
                    Some(frame) => frame,
                    None => return,
                },
            };
            throttle.wait().await;
            let transfers = self.transfers;
            let (verb, outcome) = self.handle_frame(conn, frame).await;
            let go_on = self.act(conn, &mut queue, verb, outcome).await;
            if shutdown.is_cancelled() && self.transfers > transfers {
                self.transferred_draining = true;
            }
            if !go_on {
                return;
            }
        }
    }

    /// The next frame from the client, or None when the session ends here
    /// (the client left, or a timeout or shutdown, already told with 421).
    async fn next_frame(
        &mut self,
        conn: &mut ControlConnection,
        shutdown: &CancellationToken,
        connected: Instant,
    ) -> Option<Frame> {
        let (idle, login_timeout) = (
            self.shared.config.idle_timeout,
            self.shared.config.login_timeout,
        );
        loop {
            // A connection that never logs in cannot hold its slot for long,
            // however busy it keeps the line (slowloris).
            let login_left = login_timeout.saturating_sub(connected.elapsed());
            let draining = shutdown.is_cancelled();
            let mut wait = if !self.logged_in() {
                idle.min(login_left)
            } else if self.staged.is_some() {
                idle.min(STAGED_WAIT)
            } else {
                idle
            };
            if draining {
                if self.drained() {
                    return self.close_draining(conn).await;
                }
                wait = wait.min(DRAIN_QUIET);
            }
            let why = if !self.logged_in() && login_left.is_zero() {
                "Login timeout, closing control connection."
            } else {
                let next = tokio::select! {
                    // Shutdown begins: look again, as a draining session.
                    _ = shutdown.cancelled(), if !draining => continue,
                    _ = self.shared.stop_transfers.cancelled() => Err(None),
                    r = tokio::time::timeout(wait, conn.read_frame()) => r.map_err(Some),
                };
                match next {
                    Ok(Ok(Some(frame))) => return Some(frame),
                    Ok(Ok(None)) | Ok(Err(_)) => return None,
                    Err(None) => "Server shutting down.",
                    Err(Some(_)) if draining => return self.close_draining(conn).await,
                    Err(Some(_)) if self.staged.is_some() => {
                        // No rename came: the upload takes its temporary name.
                        self.settle_staged().await;
                        continue;
                    }
                    Err(Some(_)) if !self.logged_in() && connected.elapsed() >= login_timeout => {
                        "Login timeout, closing control connection."
                    }
                    Err(Some(_)) => "Idle timeout, closing control connection.",
                }
            };
            let _ = conn
                .write_reply(&Reply::new(ReplyCode::ServiceNotAvailable, why))
                .await;
            return None;
        }
    }

    /// Whether a session may be closed now that the server shuts down: it
    /// has finished a transfer since, and nothing of a command sequence is
    /// pending (a data connection set up, REST, RNFR, a staged upload). A
    /// session between PASV and STOR, or just logged in, is served on, so
    /// a client on a replica being restarted sees its upload through.
    fn drained(&self) -> bool {
        let clean = self.data.is_none()
            && self.rest.is_none()
            && self.rename_from.is_none()
            && self.staged.is_none();
        clean && self.transferred_draining
    }

    /// Tells a draining session 421 and ends it (a staged upload takes its
    /// temporary name first, as on any other end).
    async fn close_draining(&mut self, conn: &mut ControlConnection) -> Option<Frame> {
        self.settle_staged().await;
        let _ = conn
            .write_reply(&Reply::new(
                ReplyCode::ServiceNotAvailable,
                "Server shutting down.",
            ))
            .await;
        None
    }

    /// Parses and handles one frame: the verb (for metrics) and what to do.
    async fn handle_frame(
        &mut self,
        conn: &mut ControlConnection,
        frame: Frame,
    ) -> (&'static str, Outcome) {
        match frame {
            Frame::TooLong => (
                "invalid",
                Outcome::Reply(Reply::new(ReplyCode::SyntaxError, "Command line too long.")),
            ),
            Frame::Line(line) => {
                let line = self
                    .shared
                    .config
                    .legacy_encoding
                    .decode(&line)
                    .into_owned();
                let handled = handlers::handle_line(self, &line).await;
                conn.set_names(self.names_out());
                handled
            }
        }
    }

    /// Carries out a handler's outcome; false when the session must end.
    async fn act(
        &mut self,
        conn: &mut ControlConnection,
        queue: &mut VecDeque<Frame>,
        verb: &'static str,
        outcome: Outcome,
    ) -> bool {
        // Every command is counted once, with its final reply's code; a
        // transfer's comes when it ends (`supervise`).
        if let Some(code) = outcome.final_code() {
            self.shared.metrics.command(verb, code);
        }
        match outcome {
            Outcome::Reply(reply) => conn.write_reply(&reply).await.is_ok(),
            Outcome::Close(reply) => {
                let _ = conn.write_reply(&reply).await;
                false
            }
            Outcome::UpgradeTls(reply) => self.upgrade(conn, &reply).await,
            Outcome::ControlListing {
                code,
                header,
                lines,
            } => write_control_listing(conn, code, header, lines)
                .await
                .is_ok(),
            Outcome::Transfer(t) => self.supervise(conn, queue, *t).await,
        }
    }

    /// Answers AUTH TLS and performs the handshake; false if it failed.
    async fn upgrade(&mut self, conn: &mut ControlConnection, reply: &Reply) -> bool {
        let Some(acceptors) = self.shared.tls.as_ref().map(|t| t.acceptors()) else {
            return false;
        };
        if conn.write_reply(reply).await.is_err() {
            return false;
        }
        let handshake = tokio::time::timeout(
            self.shared.config.data_timeout,
            conn.upgrade(&acceptors.control),
        );
        match handshake.await {
            Ok(Ok(identities)) => {
                self.tls = true;
                self.client_identities = identities;
                true
            }
            _ => {
                tracing::info!("TLS handshake failed");
                false
            }
        }
    }
}

/// Counts a session as closed when dropped, however its task ends.
struct SessionGauge(Arc<crate::metrics::Metrics>);

impl Drop for SessionGauge {
    fn drop(&mut self) {
        self.0.session_closed();
    }
}

/// Slows a session down to at most `per_second` commands a second: the
/// commands are still answered, in order, just later.
struct CommandThrottle {
    per_second: u32,
    window: Instant,
    count: u32,
}

impl CommandThrottle {
    fn new(per_second: u32) -> Self {
        CommandThrottle {
            per_second,
            window: Instant::now(),
            count: 0,
        }
    }

    async fn wait(&mut self) {
        if self.per_second == 0 {
            return;
        }
        if self.window.elapsed() >= std::time::Duration::from_secs(1) {
            self.window = Instant::now();
            self.count = 0;
        }
        self.count += 1;
        if self.count > self.per_second {
            let rest = std::time::Duration::from_secs(1).saturating_sub(self.window.elapsed());
            tokio::time::sleep(rest).await;
            self.window = Instant::now();
            self.count = 1;
        }
    }
}

/// STAT path: `213-` header, one line per entry, `213 End of status.`
async fn write_control_listing(
    conn: &mut ControlConnection,
    code: ReplyCode,
    header: String,
    mut pages: LinePages,
) -> std::io::Result<()> {
    use futures::StreamExt;
    conn.write_text(&format!("{}-{header}\r\n", code.as_u16()))
        .await?;
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                let reply = Reply::from(e);
                let text = format!("{} {}\r\n", code.as_u16(), reply.text());
                return conn.write_text(&text).await;
            }
        };
        let mut out = String::new();
        for line in page {
            out.push(' ');
            out.push_str(&line.replace(['\r', '\n'], " "));
            out.push_str("\r\n");
        }
        conn.write_text(&out).await?;
    }
    conn.write_text(&format!("{} End of status.\r\n", code.as_u16()))
        .await
}
