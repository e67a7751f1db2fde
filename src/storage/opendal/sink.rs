//! An upload on an OpenDAL service: a writer (folder: a staging file; memory:
//! a buffer) that becomes the object on close, aborted if dropped.

use std::time::SystemTime;

use ::opendal::Writer;
use async_trait::async_trait;
use bytes::Bytes;

use super::OpendalBackend;
use crate::storage::Committed;
use crate::storage::{Result, StorageError, UploadSink};

/// An upload in progress.
pub(super) struct OpendalSink {
    pub(super) backend: OpendalBackend,
    pub(super) key: String,
    pub(super) modified: Option<SystemTime>,
    pub(super) written: u64,
    /// `None` once committed or aborted.
    pub(super) writer: Option<Writer>,
    /// Checksums the uploader computed, kept with the file at commit.
    pub(super) digests: crate::digest::Digests,
}

#[async_trait]
impl UploadSink for OpendalSink {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        let writer = self.writer.as_mut().ok_or_else(finished_error)?;
        let len = data.len() as u64;
        writer.write(data).await?;
        self.written += len;
        Ok(())
    }

    fn keep_digests(&mut self, digests: crate::digest::Digests) {
        self.digests = digests;
    }

    async fn commit(mut self: Box<Self>) -> Result<Committed> {
        let mut writer = self.writer.take().ok_or_else(finished_error)?;
        if let Err(e) = writer.close().await {
            if let Err(abort) = writer.abort().await {
                tracing::debug!(key = self.key, "abort after failed commit: {abort}");
            }
            return Err(e.into());
        }
        let committed = self
            .backend
            .flavour()
            .committed(&self.key, self.modified, &self.digests);
        if let Err(e) = committed.await {
            // The data is stored; only the time or checksums are missing.
            // Not worth failing.
            tracing::warn!(key = self.key, "after storing the file: {e}");
        }
        Ok(Committed {
            size: self.written,
            etag: None,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        let mut writer = self.writer.take().ok_or_else(finished_error)?;
        Ok(writer.abort().await?)
    }
}

impl Drop for OpendalSink {
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = writer.abort().await {
                        tracing::warn!(key, "aborting a dropped upload: {e}");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(key, "upload dropped outside a runtime; not cleaned up");
            }
        }
    }
}

fn finished_error() -> StorageError {
    StorageError::Other("upload already committed or aborted".to_string())
}
