//! Starting an upload: the checks, the client's modification time, and a
//! kept prefix (APPE, REST + STOR) copied server-side or read back. The
//! upload itself is `upload::MultipartSink`.

use std::collections::HashMap;

use futures::StreamExt;

use super::times::{format_epoch, size_of};
use super::upload::{MultipartSink, MIN_PART};
use super::S3Backend;
use crate::storage::{Result, StorageError, UploadSink, WriteOptions};

impl S3Backend {
    /// A sink for `key` (a file name, not the root), once its directory is
    /// known to exist and the name is not a directory.
    pub(super) async fn start_upload(
        &self,
        key: &str,
        options: WriteOptions,
    ) -> Result<MultipartSink> {
        self.check_writable(key).await?;
        let mut metadata = HashMap::new();
        if let Some(t) = options.modified {
            metadata.insert("mtime".to_string(), format_epoch(t));
        }
        let sink = MultipartSink::new(self.target.clone(), self.full(key), metadata);
        if options.keep_prefix > 0 {
            return self.keep_prefix(sink, key, options.keep_prefix).await;
        }
        Ok(sink)
    }

    /// Starts `sink` with the first `keep` bytes of the object at `key`:
    /// copied server-side when large, never downloaded; read back when
    /// smaller than a part. A failed copy or read aborts the sink.
    async fn keep_prefix(
        &self,
        mut sink: MultipartSink,
        key: &str,
        keep: u64,
    ) -> Result<MultipartSink> {
        let existing = self.head(key).await?.ok_or(StorageError::NotFound)?;
        let size = size_of(&existing);
        if keep > size {
            return Err(StorageError::Other(format!(
                "cannot keep {keep} bytes of a {size}-byte object"
            )));
        }
        let full = self.full(key);
        let kept = if keep >= MIN_PART as u64 {
            sink.copy_prefix(&full, keep).await
        } else {
            let mut stream = self.read_range(&full, keep).await?;
            let mut result = Ok(());
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => sink.push_prefix(bytes).await?,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            result
        };
        if let Err(e) = kept {
            let _ = Box::new(sink).abort().await;
            return Err(e);
        }
        Ok(sink)
    }
}
