//! One data transfer, run as its own task while the session keeps reading the
//! control connection (so ABOR and STAT work mid-transfer). It opens the data
//! connection, announces it (150), moves the bytes, and for uploads commits
//! only after a clean end of stream; on ABOR, timeout, a data-connection error or
//! a storage failure the upload is aborted and the previous file is untouched.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::datachan::ascii::{FromWire, ToWire};
use crate::datachan::{BoxedStream, DataError, DataSetup};
use crate::protocol::{Reply, ReplyCode};
use crate::storage::{ByteStream, Entry, EntryPages, StorageError, UploadSink};
use crate::task::AbortOnDrop;

/// Bytes read from the data connection per read call on uploads.
const READ_CHUNK: usize = 256 * 1024;

/// Turns one directory entry into one listing line (without CRLF), or skips it.
pub type LineFormatter = Box<dyn FnMut(&Entry) -> Option<String> + Send>;

/// Listing lines (without CRLF), a page at a time, as the store pages them.
pub type LinePages = futures::stream::BoxStream<'static, Result<Vec<String>, StorageError>>;

/// The lines `format` makes of `pages`.
pub fn lines_of(pages: EntryPages, mut format: LineFormatter) -> LinePages {
    use futures::TryStreamExt;
    pages
        .map_ok(move |page| page.iter().filter_map(&mut format).collect())
        .boxed()
}

pub enum TransferKind {
    /// RETR: storage to client.
    Send { source: ByteStream, ascii: bool },
    /// STOR, STOU, APPE: client to storage. `done` is the 226 text.
    Receive {
        sink: Box<dyn UploadSink>,
        ascii: bool,
        done: String,
        /// Hand the sink back uncommitted after a clean end of data (a staged
        /// upload-then-rename, committed when the client renames it).
        defer: bool,
        /// Checksums to compute on the way and give the sink to keep
        /// (none when existing bytes are kept: they never pass here).
        digests: Vec<crate::digest::Algorithm>,
    },
    /// LIST, NLST, MLSD: listing lines to the client.
    Listing { lines: LinePages },
}

/// A transfer ready to run, built by a handler.
pub struct Transfer {
    pub setup: DataSetup,
    pub kind: TransferKind,
    /// The 150 reply, sent once the data connection is open.
    pub opening: Reply,
    /// For logs and STAT.
    pub verb: &'static str,
    pub path: String,
    /// An upload to a temporary name (`path`) written straight to this final
    /// name; its sink comes back deferred (see [`TransferKind::Receive`]).
    pub staged_for: Option<String>,
}

/// How a transfer ended.
pub struct TransferResult {
    pub reply: Reply,
    pub bytes: u64,
    /// Ended by ABOR (the session then adds its 226).
    pub aborted: bool,
    /// A deferred upload's sink, all data received, not committed yet.
    pub deferred: Option<Box<dyn UploadSink>>,
    /// What a committed upload stored.
    pub stored: Option<crate::storage::Committed>,
    /// The checksums an upload computed on the way.
    pub digests: crate::digest::Digests,
}

/// How an upload's data ended well.
struct Received {
    /// Deferred (staged): the sink, uncommitted.
    deferred: Option<Box<dyn UploadSink>>,
    stored: Option<crate::storage::Committed>,
    digests: crate::digest::Digests,
}

/// Why the byte loop stopped early.
enum Stop {
    Aborted,
    Timeout,
    Data(io::Error),
    Storage(StorageError),
}

impl Stop {
    fn reply(self) -> Reply {
        match self {
            Stop::Aborted => Reply::new(
                ReplyCode::ConnectionClosedTransferAborted,
                "Connection closed; transfer aborted.",
            ),
            Stop::Timeout => Reply::new(
                ReplyCode::ConnectionClosedTransferAborted,
                "Data connection timed out; transfer aborted.",
            ),
            Stop::Data(e) => Reply::new(
                ReplyCode::ConnectionClosedTransferAborted,
                format!("Data connection failed: {e}; transfer aborted."),
            ),
            Stop::Storage(e) => e.into(),
        }
    }
}

/// What a running transfer tells the session.
pub enum TransferEvent {
    /// A preliminary reply (150) to write in order.
    Reply(Reply),
    /// An upload's data ended cleanly: may it be committed? The session
    /// answers true only while the client is connected and has not sent
    /// ABOR (see `Supervisor::settle`). This is the commit decision.
    MayCommit(oneshot::Sender<bool>),
}

/// What the running transfer shares with the session.
pub struct TransferContext {
    pub cancel: CancellationToken,
    pub progress: Arc<AtomicU64>,
    pub events: mpsc::Sender<TransferEvent>,
    pub timeout: Duration,
    /// PROT P: the data connection is TLS, as a server.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The data connection's TLS handshake must resume a session this
    /// server issued (S3FTP_TLS_REQUIRE_REUSE).
    pub require_reuse: bool,
    /// How listing lines put names on the wire.
    pub names: crate::protocol::names::NameEncoding,
}

/// True if the handshake resumed a session (so the client holds a session
/// this server issued, normally its control connection's).
fn resumed(tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> bool {
    tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
}

impl Transfer {
    pub async fn run(self, ctx: TransferContext) -> TransferResult {
        let Transfer {
            setup,
            kind,
            opening,
            ..
        } = self;
        let mut data = match open(&ctx, setup, opening).await {
            Ok(data) => data,
            Err(failed) => {
                if let TransferKind::Receive { sink, .. } = kind {
                    let _ = sink.abort().await;
                }
                return failed;
            }
        };
        let complete = "Transfer complete.".to_string();
        let sent = || Received {
            deferred: None,
            stored: None,
            digests: Default::default(),
        };
        let outcome = match kind {
            TransferKind::Send { source, ascii } => send(&ctx, &mut data, source, ascii)
                .await
                .map(|()| (complete, sent())),
            TransferKind::Listing { lines } => send_listing(&ctx, &mut data, lines)
                .await
                .map(|()| (complete, sent())),
            TransferKind::Receive {
                sink,
                ascii,
                done,
                defer,
                digests,
            } => receive(&ctx, &mut data, sink, ascii, defer, &digests)
                .await
                .map(|received| (done, received)),
        };
        let bytes = ctx.progress.load(Ordering::Relaxed);
        match outcome {
            Ok((text, received)) => TransferResult {
                reply: Reply::new(ReplyCode::ClosingDataConnection, text),
                bytes,
                aborted: false,
                deferred: received.deferred,
                stored: received.stored,
                digests: received.digests,
            },
            Err(stop) => {
                let aborted = matches!(stop, Stop::Aborted);
                TransferResult::failed(stop.reply(), aborted, bytes)
            }
        }
    }
}

impl TransferResult {
    fn failed(reply: Reply, aborted: bool, bytes: u64) -> Self {
        TransferResult {
            reply,
            bytes,
            aborted,
            deferred: None,
            stored: None,
            digests: Default::default(),
        }
    }
}

/// Opens the data connection, sends 150, and does the TLS handshake under
/// PROT P; the stream, or the transfer's result when that failed.
async fn open(
    ctx: &TransferContext,
    setup: DataSetup,
    opening: Reply,
) -> Result<BoxedStream, TransferResult> {
    let opened = tokio::select! {
        _ = ctx.cancel.cancelled() => Err(None),
        r = setup.open(ctx.timeout) => r.map_err(Some),
    };
    let stream = match opened {
        Ok(s) => s,
        Err(None) => return Err(TransferResult::failed(Stop::Aborted.reply(), true, 0)),
        Err(Some(e)) => return Err(TransferResult::failed(open_failure(e), false, 0)),
    };
    // 150 goes out once the connection is open and before any TLS
    // handshake on it: some clients (Python's ftplib) start TLS only after
    // reading it. The session may already be gone; the transfer then fails.
    let _ = ctx.events.send(TransferEvent::Reply(opening)).await;
    let Some(acceptor) = &ctx.tls else {
        return Ok(Box::new(stream));
    };
    let handshake = tokio::select! {
        _ = ctx.cancel.cancelled() => None,
        r = tokio::time::timeout(ctx.timeout, acceptor.accept(stream)) => Some(r),
    };
    let reply = match handshake {
        Some(Ok(Ok(tls))) if !ctx.require_reuse || resumed(&tls) => return Ok(Box::new(tls)),
        None => return Err(TransferResult::failed(Stop::Aborted.reply(), true, 0)),
        Some(Ok(Ok(_))) => Reply::new(
            ReplyCode::CantOpenDataConnection,
            "TLS session reuse required: the data connection must resume \
             the control connection's TLS session.",
        ),
        Some(_) => Reply::new(
            ReplyCode::CantOpenDataConnection,
            "TLS negotiation on the data connection failed.",
        ),
    };
    Err(TransferResult::failed(reply, false, 0))
}

fn open_failure(err: DataError) -> Reply {
    Reply::new(
        ReplyCode::CantOpenDataConnection,
        format!("Can't open data connection: {err}."),
    )
}

/// Runs one data-connection operation under the transfer's abort signal and
/// idle timeout.
async fn guarded<T>(
    ctx: &TransferContext,
    op: impl Future<Output = io::Result<T>>,
) -> Result<T, Stop> {
    tokio::select! {
        _ = ctx.cancel.cancelled() => Err(Stop::Aborted),
        r = tokio::time::timeout(ctx.timeout, op) => match r {
            Err(_) => Err(Stop::Timeout),
            Ok(Err(e)) => Err(Stop::Data(e)),
            Ok(Ok(v)) => Ok(v),
        },
    }
}

/// Runs one storage operation under the abort signal (the store has its own timeouts).
async fn storage<T>(
    ctx: &TransferContext,
    op: impl Future<Output = Result<T, StorageError>>,
) -> Result<T, Stop> {
    tokio::select! {
        _ = ctx.cancel.cancelled() => Err(Stop::Aborted),
        r = op => r.map_err(Stop::Storage),
    }
}

async fn send(
    ctx: &TransferContext,
    data: &mut BoxedStream,
    mut source: ByteStream,
    ascii: bool,
) -> Result<(), Stop> {
    let mut to_wire = ToWire::default();
    while let Some(chunk) = storage(ctx, async { source.next().await.transpose() }).await? {
        let chunk = if ascii {
            to_wire.convert(&chunk)
        } else {
            chunk
        };
        guarded(ctx, data.write_all(&chunk)).await?;
        ctx.progress
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    guarded(ctx, data.shutdown()).await
}

async fn send_listing(
    ctx: &TransferContext,
    data: &mut BoxedStream,
    mut pages: LinePages,
) -> Result<(), Stop> {
    // One page read ahead: the store fetches the next page while this one is
    // formatted and sent, so a long listing costs about what the store's own
    // walk does rather than the sum of both.
    let (ahead, mut pages_in) = mpsc::channel(1);
    let _reader = AbortOnDrop::spawn(async move {
        while let Some(page) = pages.next().await {
            let failed = page.is_err();
            if ahead.send(page).await.is_err() || failed {
                break;
            }
        }
    });
    while let Some(page) = storage(ctx, async { pages_in.recv().await.transpose() }).await? {
        let mut out = Vec::new();
        for mut line in page {
            // A key written by another tool may hold CR or LF; it must not
            // split the listing into lines a client would misread.
            if line.contains(['\r', '\n']) {
                line = line.replace(['\r', '\n'], " ");
            }
            line.push_str("\r\n");
            // Line by line: a name the legacy encoding lacks goes as UTF-8.
            out.extend_from_slice(&ctx.names.encode(&line));
        }
        if !out.is_empty() {
            guarded(ctx, data.write_all(&out)).await?;
            ctx.progress.fetch_add(out.len() as u64, Ordering::Relaxed);
        }
    }
    guarded(ctx, data.shutdown()).await
}

async fn receive(
    ctx: &TransferContext,
    data: &mut BoxedStream,
    mut sink: Box<dyn UploadSink>,
    ascii: bool,
    defer: bool,
    digests: &[crate::digest::Algorithm],
) -> Result<Received, Stop> {
    let mut hasher = (!digests.is_empty()).then(|| crate::digest::Hasher::new(digests));
    let result = receive_into(ctx, data, sink.as_mut(), ascii, &mut hasher).await;
    match result {
        Ok(()) => {
            let digests = hasher.map(|h| h.finish()).unwrap_or_default();
            if !digests.is_empty() {
                sink.keep_digests(digests.clone());
            }
            // Close our side too: under TLS this sends close_notify, which
            // clients such as Python's ftplib wait for before reading 226.
            let _ = guarded(ctx, data.shutdown()).await;
            if !may_commit(ctx).await {
                if let Err(e) = sink.abort().await {
                    tracing::warn!(error = %e, "could not abort an upload");
                }
                return Err(Stop::Aborted);
            }
            if defer {
                return Ok(Received {
                    deferred: Some(sink),
                    stored: None,
                    digests,
                });
            }
            // Not raced against ABOR: once the session allowed it, the
            // upload completes (a commit cut in the middle would leave a
            // back end's staging state undefined).
            let stored = sink.commit().await.map_err(Stop::Storage)?;
            Ok(Received {
                deferred: None,
                stored: Some(stored),
                digests,
            })
        }
        Err(stop) => {
            if let Err(e) = sink.abort().await {
                tracing::warn!(error = %e, "could not abort an upload");
            }
            Err(stop)
        }
    }
}

/// Asks the session whether a complete upload may be committed; no answer
/// (the session is gone) is a no.
async fn may_commit(ctx: &TransferContext) -> bool {
    if ctx.cancel.is_cancelled() {
        return false;
    }
    let (tx, rx) = oneshot::channel();
    if ctx.events.send(TransferEvent::MayCommit(tx)).await.is_err() {
        return false;
    }
    rx.await.unwrap_or(false)
}

async fn receive_into(
    ctx: &TransferContext,
    data: &mut BoxedStream,
    sink: &mut dyn UploadSink,
    ascii: bool,
    hasher: &mut Option<crate::digest::Hasher>,
) -> Result<(), Stop> {
    let mut from_wire = FromWire::default();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        if !ascii {
            // Straight into the sink's part buffer when it lends one.
            let direct = match sink.room().await.map_err(Stop::Storage)? {
                Some(mut room) => {
                    let n = guarded(ctx, data.read_buf(&mut room)).await?;
                    if let Some(h) = hasher.as_mut() {
                        // The bytes just read are the end of the lent buffer.
                        let filled = room.get_ref();
                        h.update(&filled[filled.len() - n..]);
                    }
                    Some(n)
                }
                None => None,
            };
            if let Some(n) = direct {
                if n == 0 {
                    break;
                }
                ctx.progress.fetch_add(n as u64, Ordering::Relaxed);
                sink.filled(n).await.map_err(Stop::Storage)?;
                continue;
            }
        }
        if buf.capacity() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let n = guarded(ctx, data.read_buf(&mut buf)).await?;
        if n == 0 {
            break;
        }
        ctx.progress.fetch_add(n as u64, Ordering::Relaxed);
        let chunk: Bytes = buf.split().freeze();
        let chunk = if ascii {
            from_wire.convert(&chunk)
        } else {
            chunk
        };
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk);
        }
        // Writes are not dropped half-way when ABOR arrives (sinks need not be
        // cancel-safe); the abort is seen at the next read instead.
        sink.write(chunk).await.map_err(Stop::Storage)?;
    }
    if let Some(rest) = from_wire.finish() {
        if let Some(h) = hasher.as_mut() {
            h.update(&rest);
        }
        sink.write(rest).await.map_err(Stop::Storage)?;
    }
    Ok(())
}
