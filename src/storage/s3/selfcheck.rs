//! The steps of `s3ftp check` only S3 has, each tried next to the probe
//! object and undone: a multipart upload (create, one part, abort), a
//! server-side copy (CopyObject, which renames use) and a part copy
//! (UploadPartCopy, which renames above 5 GiB and appends use; stores refuse
//! a source under 5 MiB, so that step uploads one of 5 MiB first).

use aws_sdk_s3::primitives::ByteStream;

use super::client::S3Target;
use super::diagnose::diagnose;
use super::parts::MIN_PART;
use crate::storage::selfcheck::CheckStep;

const MULTIPART: &str = "multipart upload (create, part, abort)";
const COPY: &str = "server-side copy (CopyObject)";
const PART_COPY: &str = "part copy (UploadPartCopy)";

type Step = Result<(), String>;

impl S3Target {
    /// The steps on object key `probe`, which exists.
    pub(super) async fn multipart_checks(&self, probe: &str) -> Vec<CheckStep> {
        let part = self
            .with_upload(&format!("{probe}.multipart"), |id, key| {
                self.send_part(key, id)
            })
            .await;
        let copy = self.try_copy(probe).await;
        let part_copy = match (&part, &copy) {
            (Ok(()), Ok(())) => CheckStep::new(PART_COPY, self.try_part_copy(probe).await),
            _ => CheckStep::skipped(PART_COPY),
        };
        vec![
            CheckStep::new(MULTIPART, part),
            CheckStep::new(COPY, copy),
            part_copy,
        ]
    }

    /// Starts a multipart upload to `key`, runs `step` in it, and aborts
    /// it whatever happened.
    async fn with_upload<'a, F, Fut>(&'a self, key: &'a str, step: F) -> Step
    where
        F: FnOnce(String, &'a str) -> Fut,
        Fut: std::future::Future<Output = Step>,
    {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| diagnose(&e, "CreateMultipartUpload", &self.place).message)?;
        let id = created.upload_id().unwrap_or_default().to_string();
        let sent = step(id.clone(), key).await;
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| diagnose(&e, "AbortMultipartUpload", &self.place).message);
        sent.and(aborted)
    }

    async fn send_part(&self, key: &str, id: String) -> Step {
        self.client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from_static(b"s3ftp check part"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| diagnose(&e, "UploadPart", &self.place).message)
    }

    /// CopyObject of `probe` next to it, then DeleteObject of the copy.
    async fn try_copy(&self, probe: &str) -> Step {
        let copy = format!("{probe}.copy");
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(&copy)
            .copy_source(self.copy_source(probe))
            .send()
            .await
            .map_err(|e| diagnose(&e, "CopyObject", &self.place).message)?;
        self.remove(&copy).await
    }

    /// A 5 MiB source next to `probe`, one UploadPartCopy of it into an
    /// upload that is then aborted, and the source deleted.
    async fn try_part_copy(&self, probe: &str) -> Step {
        let source = format!("{probe}.source");
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&source)
            .body(ByteStream::from(vec![0u8; MIN_PART]))
            .send()
            .await
            .map_err(|e| diagnose(&e, "PutObject", &self.place).message)?;
        let copy_source = self.copy_source(&source);
        let copied = self
            .with_upload(&format!("{probe}.partcopy"), |id, key| async move {
                self.client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(id)
                    .part_number(1)
                    .copy_source(copy_source)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| diagnose(&e, "UploadPartCopy", &self.place).message)
            })
            .await;
        copied.and(self.remove(&source).await)
    }

    async fn remove(&self, key: &str) -> Step {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| diagnose(&e, "DeleteObject", &self.place).message)
    }
}
