//! A fault-injecting HTTP proxy between the server under test and the test
//! S3 server. Each client connection carries one request: the proxy reads
//! its head, classifies it (method, path, query), rewrites it to
//! `Connection: close` and pipes bytes both ways, so no response parsing is
//! needed (the SDK then opens a new connection per request).
//!
//! A test arms faults as "the next N requests of kind K, after skipping S":
//! answer 500 or 503 SlowDown without forwarding, reset the connection
//! before forwarding (the request is lost), or forward the request, let the
//! store answer fully, then reset without passing the answer on (the
//! response is lost). Everything seen and faulted is counted.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What kind of S3 request a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    CreateMultipart,
    UploadPart,
    Complete,
    Abort,
    PutObject,
    ListObjects,
    ListUploads,
    Head,
    GetObject,
    Other,
}

/// What the proxy does to a matching request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500 InternalError, not forwarded.
    Status500,
    /// 503 SlowDown, not forwarded.
    SlowDown,
    /// The connection is reset before the request is forwarded.
    DropRequest,
    /// Forwarded and answered by the store; the answer is replaced by a reset.
    DropResponse,
}

struct Rule {
    op: Op,
    fault: Fault,
    skip: usize,
    remaining: usize,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: HashMap<Op, usize>,
    faulted: HashMap<Op, usize>,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream` (`http://HOST:PORT`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the S3 endpoint is http://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = handle(client, upstream, state).await;
                });
            }
        });
        FaultProxy { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`, for a mount URI's `endpoint=`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Arms `fault` for the next `count` requests of kind `op`, after
    /// letting `skip` of them pass.
    pub fn arm(&self, op: Op, fault: Fault, skip: usize, count: usize) {
        self.lock().rules.push(Rule {
            op,
            fault,
            skip,
            remaining: count,
        });
    }

    /// Removes every armed fault.
    pub fn disarm(&self) {
        self.lock().rules.clear();
    }

    /// Requests of kind `op` seen so far (faulted ones included).
    pub fn seen(&self, op: Op) -> usize {
        self.lock().seen.get(&op).copied().unwrap_or(0)
    }

    /// Every request seen so far.
    pub fn seen_total(&self) -> usize {
        self.lock().seen.values().sum()
    }

    pub fn faulted(&self, op: Op) -> usize {
        self.lock().faulted.get(&op).copied().unwrap_or(0)
    }

    pub fn faulted_total(&self) -> usize {
        self.lock().faulted.values().sum()
    }

    /// Armed faults not yet used.
    pub fn pending(&self) -> usize {
        self.lock().rules.iter().map(|r| r.remaining).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The request's kind, from its request line.
pub fn classify(method: &str, target: &str) -> Op {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let has = |name: &str| {
        query
            .split('&')
            .any(|p| p == name || p.starts_with(&format!("{name}=")))
    };
    match method {
        "POST" if has("uploadId") => Op::Complete,
        "POST" if has("uploads") => Op::CreateMultipart,
        "DELETE" if has("uploadId") => Op::Abort,
        "PUT" if has("uploadId") && has("partNumber") => Op::UploadPart,
        "PUT" if query.is_empty() || has("x-id") => Op::PutObject,
        "GET" if has("list-type") => Op::ListObjects,
        "GET" if has("uploads") => Op::ListUploads,
        "GET" if query.is_empty() || has("x-id") => Op::GetObject,
        "HEAD" => Op::Head,
        _ => Op::Other,
    }
}

/// Decides the fault for one request and counts it.
fn decide(state: &Mutex<State>, op: Op) -> Option<Fault> {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    *state.seen.entry(op).or_default() += 1;
    let rule = state
        .rules
        .iter_mut()
        .find(|r| r.op == op && r.remaining > 0)?;
    if rule.skip > 0 {
        rule.skip -= 1;
        return None;
    }
    rule.remaining -= 1;
    let fault = rule.fault;
    *state.faulted.entry(op).or_default() += 1;
    Some(fault)
}

async fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client).await?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut words = request_line.split(' ');
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let op = classify(method, target);
    let mut length = 0usize;
    let mut rewritten = format!("{request_line}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if name == "content-length" {
            length = line[line.find(':').map_or(0, |i| i + 1)..]
                .trim()
                .parse()
                .unwrap_or(0);
        }
        if name == "connection" || name == "keep-alive" {
            continue;
        }
        rewritten.push_str(line);
        rewritten.push_str("\r\n");
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    let fault = decide(&state, op);
    match fault {
        Some(Fault::Status500 | Fault::SlowDown) => {
            drain(&mut client, length.saturating_sub(rest.len())).await?;
            let (status, code) = if fault == Some(Fault::SlowDown) {
                ("503 Slow Down", "SlowDown")
            } else {
                ("500 Internal Server Error", "InternalError")
            };
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                 <Message>injected by the test proxy</Message></Error>"
            );
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(answer.as_bytes()).await?;
            client.shutdown().await?;
            // Let the client read the answer before the socket goes.
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(2), client.read(&mut sink)).await;
            Ok(())
        }
        Some(Fault::DropRequest) => {
            reset(client);
            Ok(())
        }
        Some(Fault::DropResponse) => {
            let mut server = TcpStream::connect(upstream).await?;
            server.write_all(rewritten.as_bytes()).await?;
            server.write_all(&rest).await?;
            copy_exact(&mut client, &mut server, length.saturating_sub(rest.len())).await?;
            // The store answers and closes (Connection: close): read it all,
            // so the request surely took effect, and pass nothing on.
            let mut answer = Vec::new();
            server.read_to_end(&mut answer).await?;
            reset(client);
            Ok(())
        }
        None => {
            let mut server = TcpStream::connect(upstream).await?;
            server.write_all(rewritten.as_bytes()).await?;
            server.write_all(&rest).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
            Ok(())
        }
    }
}

/// Reads up to the end of the request head; returns it and any body bytes
/// read with it.
async fn read_head(client: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too long"));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn drain(client: &mut TcpStream, mut left: usize) -> std::io::Result<()> {
    let mut chunk = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = client.read(&mut chunk[..left.min(64 * 1024)]).await?;
        if n == 0 {
            break;
        }
        left -= n;
    }
    Ok(())
}

async fn copy_exact(
    from: &mut TcpStream,
    to: &mut TcpStream,
    mut left: usize,
) -> std::io::Result<()> {
    let mut chunk = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = from.read(&mut chunk[..left.min(64 * 1024)]).await?;
        if n == 0 {
            break;
        }
        to.write_all(&chunk[..n]).await?;
        left -= n;
    }
    Ok(())
}

/// Closes with RST instead of FIN: the client sees "connection reset".
/// (A zero linger never blocks on drop, which is what the deprecation is about.)
#[allow(deprecated)]
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}
