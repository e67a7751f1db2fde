//! Reads: GetObject bodies as the storage layer's chunk streams, from an
//! offset (RETR, REST + RETR) or of a short prefix (kept by an append).

use futures::{stream, StreamExt};

use super::error::map;
use super::S3Backend;
use crate::storage::{ByteStream, Result, StorageError};

impl S3Backend {
    /// The content of the object at `key` from byte `offset` on. A missing
    /// object that is a directory is IsDirectory.
    pub(super) async fn get(&self, key: &str, offset: u64) -> Result<ByteStream> {
        let mut req = self
            .target
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(self.full(key));
        if offset > 0 {
            req = req.range(format!("bytes={offset}-"));
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                let is_range = e.raw_response().is_some_and(|r| r.status().as_u16() == 416);
                if is_range {
                    // Offset exactly at the end: nothing left to send.
                    return Ok(stream::empty().boxed());
                }
                return Err(match map(e, "GetObject") {
                    StorageError::NotFound if self.dir_exists(key).await? => {
                        StorageError::IsDirectory
                    }
                    other => other,
                });
            }
        };
        Ok(body_stream(out.body, self.full(key), offset))
    }

    /// The first `len` bytes of an object (a short kept prefix).
    pub(super) async fn read_range(&self, full: &str, len: u64) -> Result<ByteStream> {
        let out = self
            .target
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(full)
            .range(format!("bytes=0-{}", len - 1))
            .send()
            .await
            .map_err(|e| map(e, "GetObject"))?;
        Ok(body_stream(out.body, full.to_string(), 0))
    }
}

/// An object's body as the storage layer's chunk stream. A body cut off
/// mid-way is an error that says which object, how far it got and why.
fn body_stream(body: aws_sdk_s3::primitives::ByteStream, key: String, offset: u64) -> ByteStream {
    stream::try_unfold((body, offset), move |(mut body, read)| {
        let key = key.clone();
        async move {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    let read = read + chunk.len() as u64;
                    Ok(Some((chunk, (body, read))))
                }
                Ok(None) => Ok(None),
                Err(e) => {
                    let cause = aws_sdk_s3::error::DisplayErrorContext(&e).to_string();
                    tracing::warn!(?key, bytes_read = read, %cause, "S3 object body cut off");
                    Err(StorageError::Transient(format!(
                        "GetObject {key:?}: body cut off after byte {read}: {cause}"
                    )))
                }
            }
        }
    })
    .boxed()
}
