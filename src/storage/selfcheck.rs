//! `s3ftp check`: every mount tried the way the server will use it, step by
//! step, each failure with the words of a person's next move. The steps any
//! back end has go through the [`Backend`] trait on a probe object of their
//! own; a back end adds its own steps ([`Backend::extra_checks`], S3's
//! multipart upload and server-side copy) while the probe object exists.

use bytes::Bytes;
use futures::TryStreamExt;

use super::{Backend, Key, StorageError, WriteOptions};

/// How one step went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult {
    Passed,
    /// What is wrong and what to try, on one line.
    Failed(String),
    /// Not tried: a step it needs failed.
    Skipped,
}

/// One step of a mount's check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckStep {
    pub name: &'static str,
    pub result: StepResult,
}

impl CheckStep {
    pub fn new(name: &'static str, result: std::result::Result<(), String>) -> CheckStep {
        CheckStep {
            name,
            result: match result {
                Ok(()) => StepResult::Passed,
                Err(why) => StepResult::Failed(why),
            },
        }
    }

    pub fn skipped(name: &'static str) -> CheckStep {
        CheckStep {
            name,
            result: StepResult::Skipped,
        }
    }

    pub fn passed(&self) -> bool {
        self.result == StepResult::Passed
    }
}

const REACHABLE: &str = "reachable, credentials accepted";
const LIST: &str = "list the mount's root";
const WRITE: &str = "write a probe object";
const READ: &str = "read it back";
const DELETE: &str = "delete it";

/// The bytes of the probe object.
const PROBE_BODY: &[u8] = b"s3ftp check: this object is deleted at once\n";

/// Runs every step on `backend`, in order; what a failed step makes
/// impossible is skipped.
pub async fn run(backend: &dyn Backend) -> Vec<CheckStep> {
    let mut steps = vec![CheckStep::new(
        REACHABLE,
        backend.check().await.map_err(|e| e.message),
    )];
    if !steps[0].passed() {
        steps.extend([LIST, WRITE, READ, DELETE].map(CheckStep::skipped));
        return steps;
    }
    steps.push(CheckStep::new(LIST, list_root(backend).await));
    let probe = match probe_key(backend) {
        Ok(key) => write_probe(backend, &key).await.map(|()| key),
        Err(e) => Err(e),
    };
    let probe = match probe {
        Ok(key) => key,
        Err(e) => {
            steps.push(CheckStep::new(WRITE, Err(e)));
            steps.extend([READ, DELETE].map(CheckStep::skipped));
            return steps;
        }
    };
    steps.push(CheckStep::new(WRITE, Ok(())));
    steps.push(CheckStep::new(READ, read_probe(backend, &probe).await));
    let Some(named) = probe.clone().into_named() else {
        return steps;
    };
    steps.extend(backend.extra_checks(&named).await);
    steps.push(CheckStep::new(
        DELETE,
        backend.delete(&named).await.map_err(|e| words(e, "delete")),
    ));
    steps
}

/// A name no one else uses: `.s3ftp-check-` and random hex.
fn probe_key(backend: &dyn Backend) -> std::result::Result<Key, String> {
    let name = format!(".s3ftp-check-{:016x}", rand::random::<u64>());
    Key::new(name, &backend.key_rules()).map_err(|e| e.to_string())
}

async fn list_root(backend: &dyn Backend) -> std::result::Result<(), String> {
    let mut pages = backend
        .list(&Key::ROOT)
        .await
        .map_err(|e| words(e, "list"))?;
    pages.try_next().await.map_err(|e| words(e, "list"))?;
    Ok(())
}

async fn write_probe(backend: &dyn Backend, key: &Key) -> std::result::Result<(), String> {
    let Some(named) = key.clone().into_named() else {
        return Err("no name for a probe object".into());
    };
    let mut sink = backend
        .write(&named, WriteOptions::default())
        .await
        .map_err(|e| words(e, "write"))?;
    if let Err(e) = sink.write(Bytes::from_static(PROBE_BODY)).await {
        let _ = sink.abort().await;
        return Err(words(e, "write"));
    }
    sink.commit().await.map_err(|e| words(e, "write"))?;
    Ok(())
}

async fn read_probe(backend: &dyn Backend, key: &Key) -> std::result::Result<(), String> {
    let Some(named) = key.clone().into_named() else {
        return Err("no name for a probe object".into());
    };
    let chunks: Vec<Bytes> = backend
        .read(&named, 0)
        .await
        .map_err(|e| words(e, "read"))?
        .try_collect()
        .await
        .map_err(|e| words(e, "read"))?;
    if chunks.concat() != PROBE_BODY {
        return Err("the object read back differs from what was written".into());
    }
    Ok(())
}

/// A storage error as a step's failure.
fn words(err: StorageError, what: &str) -> String {
    match err {
        StorageError::PermissionDenied => format!(
            "permission denied: these credentials may not {what} here (grant it in the \
             bucket or IAM policy, or the folder's permissions)"
        ),
        StorageError::InsufficientStorage => format!("cannot {what}: no space left"),
        other => format!("cannot {what}: {other}"),
    }
}
