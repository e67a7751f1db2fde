//! Runs one transfer's task while serving the control connection: ABOR and
//! STAT act at once, QUIT closes after the transfer's reply, other commands
//! wait in the session's queue. It also makes the commit decision for
//! uploads ([`Supervisor::settle`]): an upload whose data ended cleanly is
//! committed only if, at that moment, the client is still connected and has
//! not asked to abort.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connection::{ControlConnection, Frame};
use super::control_socket::PeerState;
use super::transfer::{Transfer, TransferContext, TransferEvent, TransferResult};
use super::{Session, StagedUpload, MAX_QUEUED};
use crate::metrics::TransferEnd;
use crate::protocol::{Command, Reply, ReplyCode};

/// How long the commit decision waits for the rest of a command whose first
/// bytes have arrived (a line cut between two segments, a TLS record).
const SETTLE_READ: Duration = Duration::from_millis(500);

/// What the session knows while a transfer runs.
struct Supervisor {
    verb: &'static str,
    path: String,
    cancel: CancellationToken,
    progress: Arc<AtomicU64>,
    metrics: Arc<crate::metrics::Metrics>,
    /// The client sent QUIT: close after the transfer's reply.
    quit_after: bool,
    /// False once the control connection is closed, reset or unwritable.
    control_open: bool,
    /// The client sent ABOR.
    abor: bool,
    /// The server's shutdown grace period ran out.
    stopping: bool,
    /// S3FTP_COMMIT_WAIT_US.
    commit_wait: Duration,
}

impl Supervisor {
    /// Whether the session reads the control connection now.
    fn reading(&self, queue: &VecDeque<Frame>) -> bool {
        self.control_open && !self.quit_after && queue.len() < MAX_QUEUED
    }

    fn control_gone(&mut self) {
        self.control_open = false;
        self.cancel.cancel();
    }

    /// Acts on one read from the control connection.
    async fn on_frame(
        &mut self,
        conn: &mut ControlConnection,
        queue: &mut VecDeque<Frame>,
        frame: std::io::Result<Option<Frame>>,
    ) {
        let line = match frame {
            Ok(Some(Frame::Line(line))) => line,
            Ok(Some(frame)) => return queue.push_back(frame),
            // The client is gone: an upload must not be committed.
            Ok(None) | Err(_) => return self.control_gone(),
        };
        match crate::protocol::parse(&line) {
            Ok(Command::Abor) => {
                self.metrics
                    .command("ABOR", ReplyCode::ClosingDataConnection);
                self.abor = true;
                self.cancel.cancel();
            }
            Ok(Command::Quit) => {
                self.metrics
                    .command("QUIT", ReplyCode::ClosingControlConnection);
                self.quit_after = true;
            }
            Ok(Command::Stat(None)) => {
                self.metrics.command("STAT", ReplyCode::FileStatus);
                let status = Reply::new(
                    ReplyCode::FileStatus,
                    format!(
                        "Status: {} {}: {} bytes transferred.",
                        self.verb,
                        self.path,
                        self.progress.load(Ordering::Relaxed)
                    ),
                );
                if conn.write_reply(&status).await.is_err() {
                    self.control_gone();
                }
            }
            _ => queue.push_back(Frame::Line(line)),
        }
    }

    async fn on_event(
        &mut self,
        conn: &mut ControlConnection,
        queue: &mut VecDeque<Frame>,
        event: TransferEvent,
    ) {
        match event {
            TransferEvent::Reply(reply) => {
                if conn.write_reply(&reply).await.is_err() {
                    self.control_gone();
                }
            }
            TransferEvent::MayCommit(answer) => {
                let yes = self.settle(conn, queue).await;
                let _ = answer.send(yes);
            }
        }
    }

    /// Writes the transfer's final reply and what follows it (ABOR's 226,
    /// QUIT's 221, shutdown's 421); false when the session must end.
    async fn answer(&self, conn: &mut ControlConnection, reply: &Reply, aborted: bool) -> bool {
        if !self.control_open {
            return false;
        }
        if self.stopping && aborted {
            let aborted = Reply::new(
                ReplyCode::ConnectionClosedTransferAborted,
                "Server shutting down; transfer aborted.",
            );
            let bye = Reply::new(ReplyCode::ServiceNotAvailable, "Server shutting down.");
            let _ = conn.write_reply(&aborted).await;
            let _ = conn.write_reply(&bye).await;
            return false;
        }
        if conn.write_reply(reply).await.is_err() {
            return false;
        }
        if self.abor {
            // RFC 959: ABOR is answered 226 after the transfer's own reply,
            // whether it cut the transfer (426 then) or came too late.
            let text = if aborted {
                "ABOR command successful."
            } else {
                "ABOR: the transfer had already completed."
            };
            let done = Reply::new(ReplyCode::ClosingDataConnection, text);
            if conn.write_reply(&done).await.is_err() {
                return false;
            }
        }
        if self.quit_after {
            let bye = Reply::new(ReplyCode::ClosingControlConnection, "Goodbye.");
            let _ = conn.write_reply(&bye).await;
            return false;
        }
        true
    }

    /// The commit decision. Reads whatever the client has sent (asking the
    /// kernel, not only the event loop, see `control_socket`) and answers true
    /// only if the control connection is open and no ABOR came. A live client
    /// sends nothing here: it waits for the 226. A killed client's kernel may
    /// close the data connection before the control connection (seen 0.17 ms
    /// apart under load), so a quiet connection is watched for the commit
    /// wait (S3FTP_COMMIT_WAIT_US) first: a close or ABOR ends that at once.
    async fn settle(&mut self, conn: &mut ControlConnection, queue: &mut VecDeque<Frame>) -> bool {
        let mut waited = false;
        // Bounded: each round takes a frame or ends.
        for _ in 0..=MAX_QUEUED {
            if !self.control_open || self.abor || self.stopping {
                return false;
            }
            if !self.reading(queue) {
                return true;
            }
            let frame = match conn.pending() {
                PeerState::Closed => {
                    self.control_gone();
                    return false;
                }
                // Nothing yet: wait the commit wait, once, for a close (or
                // ABOR) that left the client after its data's end.
                PeerState::Quiet => {
                    if waited || self.commit_wait.is_zero() {
                        return true;
                    }
                    waited = true;
                    conn.wait_for_peer(self.commit_wait).await;
                    continue;
                }
                PeerState::Sent => {
                    match tokio::time::timeout(SETTLE_READ, conn.read_frame()).await {
                        Ok(frame) => frame,
                        // Not a whole command yet, so not an ABOR.
                        Err(_) => return true,
                    }
                }
            };
            self.on_frame(conn, queue, frame).await;
        }
        !self.abor && self.control_open
    }
}

impl Session {
    /// Runs a transfer while serving the control connection. Returns false when
    /// the session must end (QUIT during the transfer, or the client went away).
    pub(super) async fn supervise(
        &mut self,
        conn: &mut ControlConnection,
        queue: &mut VecDeque<Frame>,
        transfer: Transfer,
    ) -> bool {
        let started = Instant::now();
        let staged_for = transfer.staged_for.clone();
        let upload = matches!(transfer.kind, super::transfer::TransferKind::Receive { .. });
        let mut sup = Supervisor {
            verb: transfer.verb,
            path: transfer.path.clone(),
            cancel: CancellationToken::new(),
            progress: Arc::new(AtomicU64::new(0)),
            metrics: self.shared.metrics.clone(),
            quit_after: false,
            control_open: true,
            abor: false,
            stopping: false,
            commit_wait: self.shared.config.commit_wait,
        };
        let (events_tx, events) = mpsc::channel::<TransferEvent>(2);
        let ctx = self.transfer_context(&sup, events_tx);
        // The transfer's own logs (and the store's) carry the session's span.
        let task = tokio::spawn(tracing::Instrument::in_current_span(transfer.run(ctx)));
        let result = self.run_beside(&mut sup, conn, queue, task, events).await;
        self.transfers += 1;
        self.record_transfer(&sup, &result, upload, started);
        if let (Some(sink), Some(target)) = (result.deferred, staged_for) {
            self.staged = Some(StagedUpload {
                temp: sup.path.clone(),
                target,
                sink: std::sync::Mutex::new(sink),
                modified: None,
                bytes: result.bytes,
                digests: result.digests,
                started,
            });
        }
        sup.answer(conn, &result.reply, result.aborted).await
    }

    fn transfer_context(
        &self,
        sup: &Supervisor,
        events: mpsc::Sender<TransferEvent>,
    ) -> TransferContext {
        TransferContext {
            cancel: sup.cancel.clone(),
            progress: sup.progress.clone(),
            events,
            timeout: self.shared.config.data_timeout,
            tls: self
                .shared
                .tls
                .as_ref()
                .filter(|_| self.prot_private)
                .map(|t| t.acceptors().data),
            require_reuse: self.shared.config.tls_require_reuse,
            names: self.names_out(),
        }
    }

    /// Serves the control connection and the transfer's events until the
    /// transfer's task ends; its result.
    async fn run_beside(
        &self,
        sup: &mut Supervisor,
        conn: &mut ControlConnection,
        queue: &mut VecDeque<Frame>,
        mut task: tokio::task::JoinHandle<TransferResult>,
        mut events: mpsc::Receiver<TransferEvent>,
    ) -> TransferResult {
        let result = loop {
            tokio::select! {
                biased;
                _ = self.shared.stop_transfers.cancelled(), if !sup.stopping => {
                    sup.stopping = true;
                    sup.cancel.cancel();
                }
                Some(event) = events.recv() => sup.on_event(conn, queue, event).await,
                joined = &mut task => {
                    break joined.unwrap_or_else(|e| TransferResult {
                        reply: Reply::new(ReplyCode::LocalError, format!("Transfer failed: {e}.")),
                        bytes: sup.progress.load(Ordering::Relaxed),
                        aborted: false,
                        deferred: None,
                        stored: None,
                        digests: Default::default(),
                    });
                }
                frame = conn.read_frame(), if sup.reading(queue) => {
                    sup.on_frame(conn, queue, frame).await;
                }
            }
        };
        // A 150 sent just before the task ended is still in the channel.
        while let Ok(event) = events.try_recv() {
            match event {
                TransferEvent::Reply(reply) => {
                    let _ = conn.write_reply(&reply).await;
                }
                TransferEvent::MayCommit(answer) => {
                    let _ = answer.send(false);
                }
            }
        }
        result
    }

    fn record_transfer(
        &self,
        sup: &Supervisor,
        result: &TransferResult,
        upload: bool,
        started: Instant,
    ) {
        tracing::info!(
            session = self.id,
            user = self.user_name(),
            peer = %self.peer,
            command = sup.verb,
            path = %sup.path,
            bytes = result.bytes,
            ms = started.elapsed().as_millis() as u64,
            reply = %result.reply.code,
            aborted = result.aborted,
            "transfer"
        );
        let end = if result.aborted || sup.stopping {
            TransferEnd::Aborted
        } else if result.reply.code.is_error() {
            TransferEnd::Failed
        } else {
            TransferEnd::Ok
        };
        sup.metrics
            .transfer(sup.verb, upload, result.bytes, started.elapsed(), end);
        sup.metrics.command(sup.verb, result.reply.code);
        self.transfer_event(sup, result, upload, end, started);
    }

    /// The event of a finished transfer: an upload stored, failed or
    /// aborted, a download completed. Listings and deferred (staged)
    /// uploads have none here.
    fn transfer_event(
        &self,
        sup: &Supervisor,
        result: &TransferResult,
        upload: bool,
        end: TransferEnd,
        started: Instant,
    ) {
        use crate::events::Kind;
        let kind = match (upload, end) {
            (true, TransferEnd::Ok) if result.deferred.is_some() => return,
            (true, TransferEnd::Ok) => Kind::Uploaded,
            (true, TransferEnd::Failed) => Kind::UploadFailed,
            (true, TransferEnd::Aborted) => Kind::UploadAborted,
            (false, TransferEnd::Ok) if sup.verb == "RETR" => Kind::Downloaded,
            (false, _) => return,
        };
        let Some(mut event) = self.event(kind, sup.verb, &sup.path) else {
            return;
        };
        event.duration_ms = Some(started.elapsed().as_millis() as u64);
        match &result.stored {
            Some(stored) => {
                event.size = Some(stored.size);
                event.etag.clone_from(&stored.etag);
            }
            None => event.size = Some(result.bytes),
        }
        event.checksums = checksums(&result.digests);
        if kind != Kind::Uploaded && kind != Kind::Downloaded {
            event.reply = Some(result.reply.to_string().trim_end().to_string());
        }
        self.emit(Some(event));
    }
}

/// Checksums by algorithm name, for events.
pub(crate) fn checksums(
    digests: &crate::digest::Digests,
) -> std::collections::BTreeMap<String, String> {
    digests
        .iter()
        .map(|(algorithm, value)| (algorithm.key().to_string(), value.to_string()))
        .collect()
}

impl Session {}
