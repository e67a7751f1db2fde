//! The memory store (`memory://`) on OpenDAL's memory service: what only it
//! needs. The service keeps no times and has no rename, so this keeps a side
//! table of times (the commit time, or the client's, as `modified`; `created`
//! when a client set it) and renames by copying.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use ::opendal::options::ListOptions;
use ::opendal::services::Memory;
use ::opendal::Operator;
use async_trait::async_trait;
use futures::TryStreamExt;

use super::{delete_tree, dir_path, Flavour, OpendalBackend};
use crate::storage::{Result, Times};

/// Times by key, for files only.
#[derive(Debug, Default)]
struct MemoryTimes {
    times: Mutex<HashMap<String, Times>>,
}

impl OpendalBackend {
    /// A back end in memory, empty, private to this value and its clones.
    pub fn memory() -> Self {
        // The memory service takes no configuration, so building it cannot fail.
        let op = Operator::new(Memory::default()).expect("the memory service always builds");
        OpendalBackend::new(op, MemoryTimes::default())
    }
}

impl MemoryTimes {
    fn table(&self) -> MutexGuard<'_, HashMap<String, Times>> {
        // A panic elsewhere leaves the table usable: each update is one call.
        self.times.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies one file (the service has no server-side copy), with its times.
    async fn copy_file(&self, op: &Operator, from: &str, to: &str) -> Result<()> {
        let content = op.read(from).await?;
        op.write(to, content).await?;
        let mut times = self.table();
        match times.get(from).copied() {
            Some(t) => times.insert(to.to_string(), t),
            None => times.remove(to),
        };
        Ok(())
    }

    /// Copies directory `from` to `to` entry by entry, then removes `from`.
    async fn rename_dir(&self, op: &Operator, from: &str, to: &str) -> Result<()> {
        let src = dir_path(from);
        let dst = dir_path(to);
        let opts = ListOptions {
            recursive: true,
            ..Default::default()
        };
        let mut lister = op.lister_options(&src, opts).await?;
        let mut dst_created = false;
        while let Some(entry) = lister.try_next().await? {
            let Some(rest) = entry.path().strip_prefix(src.as_str()) else {
                continue;
            };
            let target = format!("{dst}{rest}");
            if entry.metadata().is_dir() {
                dst_created |= rest.is_empty();
                op.create_dir(&target).await?;
            } else {
                self.copy_file(op, entry.path(), &target).await?;
            }
        }
        if !dst_created {
            // The source was implicit; the target gets a real marker.
            op.create_dir(&dst).await?;
        }
        delete_tree(op, &src).await?;
        self.forget_tree(&src);
        Ok(())
    }
}

#[async_trait]
impl Flavour for MemoryTimes {
    fn location(&self, key: &str) -> crate::storage::StoreRef {
        crate::storage::StoreRef::Memory {
            key: key.to_string(),
        }
    }

    fn kept_times(&self, key: &str) -> Option<Times> {
        self.table().get(key).copied()
    }

    async fn rename(&self, op: &Operator, from: &str, to: &str, dir: bool) -> Result<()> {
        if dir {
            return self.rename_dir(op, from, to).await;
        }
        self.copy_file(op, from, to).await?;
        op.delete(from).await?;
        self.forget(from);
        Ok(())
    }

    fn forget(&self, key: &str) {
        self.table().remove(key);
    }

    fn forget_tree(&self, dir_path: &str) {
        self.table().retain(|k, _| !k.starts_with(dir_path));
    }

    async fn committed(
        &self,
        key: &str,
        modified: Option<SystemTime>,
        _digests: &crate::digest::Digests,
    ) -> Result<()> {
        let times = Times {
            modified: Some(modified.unwrap_or_else(SystemTime::now)),
            created: None,
        };
        self.table().insert(key.to_string(), times);
        Ok(())
    }

    async fn set_times(&self, key: &str, times: Times) -> Result<()> {
        let mut table = self.table();
        let entry = table.entry(key.to_string()).or_default();
        if times.modified.is_some() {
            entry.modified = times.modified;
        }
        if times.created.is_some() {
            entry.created = times.created;
        }
        Ok(())
    }
}
