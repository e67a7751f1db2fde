//! Leaf: a spawned task that ends when its handle is dropped, for work done
//! ahead of a consumer (a listing's next page, a download's next parts)
//! that must stop when the consumer goes away (the client left, ABOR).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::{JoinError, JoinHandle};

/// A task aborted when this is dropped; awaiting it gives its output.
#[derive(Debug)]
pub struct AbortOnDrop<T>(JoinHandle<T>);

impl<T: Send + 'static> AbortOnDrop<T> {
    /// Spawns `work` on the runtime.
    pub fn spawn(work: impl Future<Output = T> + Send + 'static) -> Self {
        AbortOnDrop(tokio::spawn(work))
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropped_tasks_end_and_awaited_ones_give_their_output() {
        assert_eq!(AbortOnDrop::spawn(async { 7 }).await.ok(), Some(7));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let pending = AbortOnDrop::spawn(async move {
            std::future::pending::<()>().await;
            drop(tx);
        });
        drop(pending);
        // The task was aborted, so its sender is gone.
        assert!(rx.await.is_err());
    }
}
