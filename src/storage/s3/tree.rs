//! Whole objects and whole trees, server-side: walks of every key under a
//! directory, copies (CopyObject, or UploadPartCopy above 5 GiB), batch
//! deletes, and the renames and removals built from them.

use std::collections::HashMap;

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier};
use futures::{stream, StreamExt, TryStreamExt};

use super::error::map;
use super::probe::Probe;
use super::times::size_of;
use super::upload::{MultipartSink, MAX_PART};
use super::{urlkeys, S3Backend, S3Target};
use crate::storage::{Result, StorageError, UploadSink};

/// Keys copied at once when a directory is renamed.
const COPY_CONCURRENCY: usize = 8;
/// Most keys per DeleteObjects request (S3's limit).
const DELETE_BATCH: usize = 1000;

/// Every object key (with its size) under a directory, a page at a time.
struct Walk<'a> {
    target: &'a S3Target,
    prefix: String,
    /// The next page's token: None for the first, Some(None) after the last.
    token: Option<Option<String>>,
}

impl Walk<'_> {
    /// The next page of keys and sizes; None after the last.
    async fn next_page(&mut self) -> Result<Option<Vec<(String, u64)>>> {
        let token = match self.token.take() {
            Some(None) => return Ok(None),
            Some(Some(token)) => Some(token),
            None => None,
        };
        let out = self
            .target
            .list(&self.prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| map(e, "ListObjectsV2"))?;
        let mut keys: Vec<(String, u64)> = Vec::with_capacity(out.contents().len());
        for o in out.contents() {
            if let Some(key) = urlkeys::decode_opt(o.key())? {
                keys.push((key, o.size().unwrap_or(0).max(0) as u64));
            }
        }
        self.token = Some(out.next_continuation_token().map(str::to_string));
        Ok(Some(keys))
    }
}

impl S3Backend {
    fn walk(&self, key: &str) -> Walk<'_> {
        Walk {
            target: &self.target,
            prefix: self.dir_prefix(key),
            token: None,
        }
    }

    /// Renames the file `from` (whose HEAD is `head`) onto `to`, which
    /// `target` found: a copy, then a delete of the source.
    pub(super) async fn rename_file(
        &self,
        from: &str,
        to: &str,
        head: &HeadObjectOutput,
        target: &Probe,
    ) -> Result<()> {
        if matches!(target, Probe::Dir { .. }) {
            return Err(StorageError::IsDirectory);
        }
        let (from_full, to_full) = (self.full(from), self.full(to));
        self.copy_object(&from_full, &to_full, size_of(head), None, None)
            .await?;
        self.target.delete(&from_full).await?;
        self.dirs.file_gone(from);
        Ok(())
    }

    /// Renames the directory `from` to `to` (which must be free): every key
    /// copied first, so the source stays whole until every copy worked,
    /// then the source deleted.
    pub(super) async fn rename_dir(&self, from: &str, to: &str, target: &Probe) -> Result<()> {
        if !matches!(target, Probe::Missing) {
            return Err(StorageError::AlreadyExists);
        }
        let (from_prefix, to_prefix) = (self.dir_prefix(from), self.dir_prefix(to));
        let moved = async {
            let mut walk = self.walk(from);
            while let Some(keys) = walk.next_page().await? {
                stream::iter(keys)
                    .map(|(k, size)| {
                        let dest = format!("{to_prefix}{}", &k[from_prefix.len()..]);
                        async move { self.copy_object(&k, &dest, size, None, None).await }
                    })
                    .buffer_unordered(COPY_CONCURRENCY)
                    .try_collect::<Vec<()>>()
                    .await?;
            }
            self.delete_tree(from).await
        }
        .await;
        // Done or not, both trees may have changed.
        self.dirs.dir_gone(from);
        self.dirs.created(to, false);
        moved
    }

    /// Deletes every key under a directory, page by page.
    pub(super) async fn delete_tree(&self, key: &str) -> Result<()> {
        let mut walk = self.walk(key);
        while let Some(keys) = walk.next_page().await? {
            self.delete_keys(keys.into_iter().map(|(k, _)| k).collect())
                .await?;
        }
        Ok(())
    }

    /// DeleteObjects of object keys, a batch at a time; any key the store
    /// refused fails the whole.
    async fn delete_keys(&self, keys: Vec<String>) -> Result<()> {
        for batch in keys.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| StorageError::Other(e.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StorageError::Other(e.to_string()))?;
            let out = self
                .target
                .client
                .delete_objects()
                .bucket(&self.target.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| map(e, "DeleteObjects"))?;
            if let Some(err) = out.errors().first() {
                return Err(StorageError::Other(format!(
                    "DeleteObjects: {} {}",
                    err.key().unwrap_or(""),
                    err.message().unwrap_or("")
                )));
            }
        }
        Ok(())
    }

    /// Server-side copy of one object: CopyObject up to 5 GiB, UploadPartCopy
    /// in parallel parts above. `metadata` replaces the source's when given.
    pub(super) async fn copy_object(
        &self,
        from_full: &str,
        to_full: &str,
        size: u64,
        metadata: Option<HashMap<String, String>>,
        content_type: Option<String>,
    ) -> Result<()> {
        if size > MAX_PART as u64 {
            return self.copy_in_parts(from_full, to_full, size, metadata).await;
        }
        let mut req = self
            .target
            .client
            .copy_object()
            .bucket(&self.target.bucket)
            .key(to_full)
            .copy_source(self.target.copy_source(from_full));
        if let Some(metadata) = metadata {
            req = req
                .metadata_directive(MetadataDirective::Replace)
                .set_metadata(Some(metadata))
                .set_content_type(content_type);
        }
        req.send().await.map_err(|e| map(e, "CopyObject"))?;
        Ok(())
    }

    /// A copy too large for CopyObject: a multipart upload of copied parts,
    /// with the source's metadata unless `metadata` replaces it.
    async fn copy_in_parts(
        &self,
        from_full: &str,
        to_full: &str,
        size: u64,
        metadata: Option<HashMap<String, String>>,
    ) -> Result<()> {
        let source_meta = match metadata {
            Some(m) => m,
            None => self
                .target
                .client
                .head_object()
                .bucket(&self.target.bucket)
                .key(from_full)
                .send()
                .await
                .map_err(|e| map(e, "HeadObject"))?
                .metadata()
                .cloned()
                .unwrap_or_default(),
        };
        let mut sink = MultipartSink::new(self.target.clone(), to_full.to_string(), source_meta);
        match sink.copy_prefix(from_full, size).await {
            Ok(()) => Box::new(sink).commit().await.map(|_| ()),
            Err(e) => {
                let _ = Box::new(sink).abort().await;
                Err(e)
            }
        }
    }
}
