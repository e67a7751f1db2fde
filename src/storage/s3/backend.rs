//! The [`Backend`] trait for S3: each operation checks its key, probes what
//! it must, and hands the work to the file that owns it (`probe`, `lister`,
//! `reader`, `writer`, `tree`, `times`).

use async_trait::async_trait;
use bytes::Bytes;

use super::error::map;
use super::probe::Probe;
use super::times::metadata_of;
use super::S3Backend;
use crate::storage::selfcheck::CheckStep;
use crate::storage::{
    Backend, ByteStream, EntryPages, Key, KeyRules, Listed, Metadata, NamedKey, Result,
    StorageError, Times, Unusable, UploadSink, WriteOptions,
};

#[async_trait]
impl Backend for S3Backend {
    fn key_rules(&self) -> KeyRules {
        self.key_rules
    }

    async fn stat(&self, key: &Key) -> Result<Metadata> {
        match self.probe(key).await? {
            Probe::File(head) => {
                self.times.remember_head(&self.full(key), &head);
                Ok(metadata_of(&head))
            }
            Probe::Dir { marked } => Ok(Metadata {
                modified: marked,
                ..Metadata::dir()
            }),
            Probe::Missing => Err(StorageError::NotFound),
        }
    }

    async fn list(&self, dir: &Key) -> Result<EntryPages> {
        self.list_pages(dir).await
    }

    /// The HEAD and the first listing page are asked at once: one round trip
    /// to the store for a LIST, where a probe and then the listing took two.
    /// A file wins over keys under its name, as in `stat`.
    async fn list_or_stat(&self, key: &Key) -> Result<Listed> {
        if key.is_empty() {
            return Ok(Listed::Dir(self.list_pages(key).await?));
        }
        let (head, pages) = tokio::join!(self.head(key), self.pages_if_any(key));
        if let Some(head) = head? {
            self.times.remember_head(&self.full(key), &head);
            return Ok(Listed::File(metadata_of(&head)));
        }
        pages?.map(Listed::Dir).ok_or(StorageError::NotFound)
    }

    async fn read(&self, key: &NamedKey, offset: u64) -> Result<ByteStream> {
        self.get(key, offset).await
    }

    async fn write(&self, key: &NamedKey, options: WriteOptions) -> Result<Box<dyn UploadSink>> {
        Ok(Box::new(self.start_upload(key, options).await?))
    }

    async fn delete(&self, key: &NamedKey) -> Result<()> {
        match self.probe(key).await? {
            Probe::Missing => return Err(StorageError::NotFound),
            Probe::Dir { .. } => return Err(StorageError::IsDirectory),
            Probe::File(_) => {}
        }
        self.target.delete(&self.full(key)).await?;
        self.dirs.file_gone(key);
        Ok(())
    }

    async fn rename(&self, from: &NamedKey, to: &NamedKey) -> Result<()> {
        if from == to {
            return Ok(());
        }
        if from.contains(to) {
            return Err(StorageError::InvalidName(
                "cannot move a directory into itself".into(),
            ));
        }
        let (source, target, parent) =
            tokio::join!(self.probe(from), self.probe(to), self.check_parent(to));
        parent?;
        let target = target?;
        match source? {
            Probe::Missing => Err(StorageError::NotFound),
            Probe::File(head) => self.rename_file(from, to, &head, &target).await,
            Probe::Dir { .. } => self.rename_dir(from, to, &target).await,
        }
    }

    async fn mkdir(&self, key: &NamedKey) -> Result<()> {
        let (parent, existing) = tokio::join!(self.check_parent(key), self.probe(key));
        parent?;
        if !matches!(existing?, Probe::Missing) {
            return Err(StorageError::AlreadyExists);
        }
        self.target
            .client
            .put_object()
            .bucket(&self.target.bucket)
            .key(self.dir_prefix(key))
            .body(aws_sdk_s3::primitives::ByteStream::from(Bytes::new()))
            .send()
            .await
            .map_err(|e| map(e, "PutObject"))?;
        self.dirs.created(key, true);
        Ok(())
    }

    async fn rmdir(&self, key: &NamedKey) -> Result<()> {
        let marker = self.dir_prefix(key);
        match self.first_keys(key).await?.as_slice() {
            [] => Err(self.not_a_dir(key).await?),
            [only] if *only == marker => {
                self.target.delete(&marker).await?;
                self.dirs.dir_gone(key);
                Ok(())
            }
            _ => Err(StorageError::NotEmpty),
        }
    }

    async fn remove_all(&self, key: &NamedKey) -> Result<()> {
        match self.probe(key).await? {
            Probe::Missing => return Err(StorageError::NotFound),
            Probe::File(_) => return Err(StorageError::NotDirectory),
            Probe::Dir { .. } => {}
        }
        let removed = self.delete_tree(key).await;
        self.dirs.dir_gone(key);
        removed
    }

    async fn set_times(&self, key: &NamedKey, times: Times) -> Result<()> {
        let head = match self.probe(key).await? {
            Probe::Missing => return Err(StorageError::NotFound),
            Probe::Dir { .. } => return Err(StorageError::IsDirectory),
            Probe::File(head) => head,
        };
        self.store_times(key, &head, times).await?;
        // Learn the new version's ETag so listings can show the time.
        self.stat(key).await.map(|_| ())
    }

    fn location(&self, key: &Key) -> crate::storage::StoreRef {
        crate::storage::StoreRef::S3 {
            bucket: self.target.bucket.clone(),
            key: self.full(key.as_str()),
        }
    }

    async fn check(&self) -> std::result::Result<(), Unusable> {
        self.target.check(&self.dir_prefix("")).await
    }

    async fn stored_digest(
        &self,
        key: &NamedKey,
        algorithm: crate::digest::Algorithm,
    ) -> Result<Option<String>> {
        Ok(self
            .head(key)
            .await?
            .and_then(|head| self.target.digests.of(&head, algorithm)))
    }

    async fn extra_checks(&self, probe: &NamedKey) -> Vec<CheckStep> {
        self.target.multipart_checks(&self.full(probe)).await
    }
}
