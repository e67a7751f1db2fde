//! Checksums of whole files, remembered: computing one reads the object
//! once, so the result is kept (shared by every session) for as long as the
//! file's size and modification time stay what they were. Bounded: the
//! oldest entries go first.

use std::sync::Mutex;
use std::time::SystemTime;

use crate::bounded::BoundedMap;
use crate::digest::{Algorithm, Digests};
use crate::storage::UploadSink;

/// Entries kept at most.
const CAPACITY: usize = 10_000;

/// Which file: its mount point and key.
type FileId = (String, String);

struct Known {
    size: u64,
    modified: Option<SystemTime>,
    digests: Digests,
}

pub struct DigestCache {
    table: Mutex<BoundedMap<FileId, Known>>,
}

impl Default for DigestCache {
    fn default() -> Self {
        DigestCache {
            table: Mutex::new(BoundedMap::new(CAPACITY)),
        }
    }
}

impl std::fmt::Debug for DigestCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestCache")
    }
}

impl DigestCache {
    fn table(&self) -> std::sync::MutexGuard<'_, BoundedMap<FileId, Known>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The checksum of the file as it is (`size`, `modified`), if known.
    pub fn get(
        &self,
        id: &FileId,
        size: u64,
        modified: Option<SystemTime>,
        algorithm: Algorithm,
    ) -> Option<String> {
        let table = self.table();
        let known = table.get(id)?;
        if known.size != size || known.modified != modified {
            return None;
        }
        known.digests.get(algorithm).map(str::to_string)
    }

    /// Forgets the file `id` and, when it is a directory, all under it:
    /// this server changed it, perhaps keeping its size within the same
    /// second of modification time.
    pub fn forget(&self, id: &FileId) {
        let under = format!("{}/", id.1);
        self.table()
            .retain(|(point, key), _| point != &id.0 || (key != &id.1 && !key.starts_with(&under)));
    }

    /// Remembers a checksum of the file as it is (`size`, `modified`).
    pub fn put(
        &self,
        id: FileId,
        size: u64,
        modified: Option<SystemTime>,
        algorithm: Algorithm,
        value: String,
    ) {
        let mut table = self.table();
        if let Some(known) = table.get_mut(&id) {
            if known.size == size && known.modified == modified {
                known.digests.insert(algorithm, value);
                return;
            }
        }
        let mut digests = Digests::default();
        digests.insert(algorithm, value);
        table.insert(
            id,
            Known {
                size,
                modified,
                digests,
            },
        );
    }
}

/// An upload that makes the cache forget its file once committed, so a
/// checksum computed before cannot be given for the new content.
pub struct ForgetOnCommit {
    pub inner: Box<dyn UploadSink>,
    pub mounts: std::sync::Arc<super::mount::MountTable>,
    pub id: FileId,
}

#[async_trait::async_trait]
impl UploadSink for ForgetOnCommit {
    async fn write(&mut self, data: bytes::Bytes) -> crate::storage::Result<()> {
        self.inner.write(data).await
    }

    async fn room(
        &mut self,
    ) -> crate::storage::Result<Option<bytes::buf::Limit<&mut bytes::BytesMut>>> {
        self.inner.room().await
    }

    async fn filled(&mut self, n: usize) -> crate::storage::Result<()> {
        self.inner.filled(n).await
    }

    fn keep_digests(&mut self, digests: Digests) {
        self.inner.keep_digests(digests)
    }

    async fn commit(self: Box<Self>) -> crate::storage::Result<crate::storage::Committed> {
        let size = self.inner.commit().await;
        self.mounts.digests.forget(&self.id);
        size
    }

    async fn abort(self: Box<Self>) -> crate::storage::Result<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_not_answered_from_memory() {
        let cache = DigestCache::default();
        let id = ("/".to_string(), "f".to_string());
        let t = Some(SystemTime::UNIX_EPOCH);
        cache.put(id.clone(), 3, t, Algorithm::Crc32, "aa".into());
        assert_eq!(
            cache.get(&id, 3, t, Algorithm::Crc32).as_deref(),
            Some("aa")
        );
        assert_eq!(cache.get(&id, 3, t, Algorithm::Md5), None);
        assert_eq!(cache.get(&id, 4, t, Algorithm::Crc32), None);
        assert_eq!(cache.get(&id, 3, None, Algorithm::Crc32), None);
    }

    #[test]
    fn bounded() {
        let cache = DigestCache::default();
        for i in 0..CAPACITY + 10 {
            cache.put(
                ("/".into(), i.to_string()),
                1,
                None,
                Algorithm::Crc32,
                "x".into(),
            );
        }
        assert_eq!(cache.table().len(), CAPACITY);
        assert!(cache
            .get(&("/".into(), "0".into()), 1, None, Algorithm::Crc32)
            .is_none());
    }
}
