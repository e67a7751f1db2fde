//! W7's store across a network: a TCP proxy in front of the S3 server that
//! holds every chunk for a fixed time in each direction, so each request
//! sees the round trip of a store that far away while bandwidth stays what
//! loopback gives (chunks are pipelined, not sent one per round trip).

use super::*;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Chunks in flight per direction; bounds memory at 64 KiB each.
const IN_FLIGHT: usize = 1024;

/// Starts the proxy: connections to the returned address reach `upstream`
/// with `one_way` added in each direction (the round trip is twice that).
pub(crate) async fn delay_proxy(upstream: SocketAddr, one_way: Duration) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(pump(cr, sw, one_way), pump(sr, cw, one_way));
            });
        }
    });
    Ok(addr)
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::channel::<(tokio::time::Instant, Bytes)>(IN_FLIGHT);
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = tokio::time::Instant::now() + delay;
                    if tx
                        .send((due, Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
