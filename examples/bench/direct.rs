//! The direct path: the same work with aws-sdk-s3.

use super::*;

pub(crate) struct Direct {
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) bucket: String,
}

impl Direct {
    pub(crate) fn new(server: &s3::S3Server, bucket: &str) -> Direct {
        Direct::with_endpoint(server, bucket, &server.endpoint)
    }

    /// Through another endpoint (W7's delaying proxy).
    pub(crate) fn with_endpoint(server: &s3::S3Server, bucket: &str, endpoint: &str) -> Direct {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new(server.region.clone()))
            .credentials_provider(Credentials::new(
                server.access_key.clone(),
                server.secret_key.clone(),
                None,
                None,
                "bench",
            ))
            .force_path_style(true)
            .build();
        Direct {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: bucket.to_string(),
        }
    }

    /// A multipart upload with the server's part size and concurrency.
    pub(crate) async fn multipart(&self, key: &str, pattern: &Pattern, len: u64) -> Result<()> {
        let c = &self.client;
        let id = c
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await?
            .upload_id
            .ok_or("no upload id")?;
        let parts: Vec<CompletedPart> =
            futures::stream::iter(pattern.chunks(1, len, PART_SIZE).enumerate())
                .map(|(i, body)| {
                    let id = id.clone();
                    async move {
                        let n = i as i32 + 1;
                        let out = c
                            .upload_part()
                            .bucket(&self.bucket)
                            .key(key)
                            .upload_id(id)
                            .part_number(n)
                            .body(ByteStream::from(body))
                            // As the server does on loopback: no payload hash.
                            .customize()
                            .disable_payload_signing()
                            .send()
                            .await?;
                        Ok::<_, Error>(
                            CompletedPart::builder()
                                .part_number(n)
                                .set_e_tag(out.e_tag)
                                .build(),
                        )
                    }
                })
                .buffered(CONCURRENCY)
                .try_collect()
                .await?;
        c.complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }

    /// The body of a GetObject of `key`.
    pub(crate) async fn body(&self, key: &str) -> Result<ByteStream> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await?;
        Ok(out.body)
    }

    /// Reads an object of `len` bytes as the server does (W2's direct
    /// path): ranged GetObjects of the part size, `CONCURRENCY` at once,
    /// each read whole, taken in order; only counts the bytes.
    pub(crate) async fn get_parts(&self, key: &str, len: u64) -> Result<u64> {
        let counts = futures::stream::iter((0..len).step_by(PART_SIZE as usize))
            .map(|start| async move {
                let end = (start + PART_SIZE).min(len) - 1;
                let out = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .range(format!("bytes={start}-{end}"))
                    .send()
                    .await?;
                let mut body = out.body;
                let mut chunks = Vec::new();
                while let Some(chunk) = body.try_next().await? {
                    chunks.push(chunk);
                }
                Ok::<_, Error>(chunks)
            })
            .buffered(CONCURRENCY)
            .map_ok(|chunks| chunks.iter().map(|c| c.len() as u64).sum::<u64>())
            .try_collect::<Vec<u64>>()
            .await?;
        Ok(counts.iter().sum())
    }

    /// Reads an object from one GetObject and only counts its bytes.
    pub(crate) async fn get(&self, key: &str) -> Result<u64> {
        let mut body = self.body(key).await?;
        let mut total = 0;
        while let Some(chunk) = body.try_next().await? {
            total += chunk.len() as u64;
        }
        Ok(total)
    }

    pub(crate) async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await?;
        Ok(())
    }

    /// Walks a "directory" the way the server does: delimiter `/`, 1,000 a page.
    pub(crate) async fn list(&self, prefix: &str) -> Result<u64> {
        Ok(self.list_timed(prefix).await?.0)
    }

    /// Like [`Direct::list`], with the times at which the first and the
    /// second page arrived (the second: None for a single page).
    pub(crate) async fn list_timed(
        &self,
        prefix: &str,
    ) -> Result<(u64, Duration, Option<Duration>)> {
        let started = Instant::now();
        let mut arrivals = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut n = 0;
        while let Some(page) = pages.next().await {
            let page = page?;
            if arrivals.len() < 2 {
                arrivals.push(started.elapsed());
            }
            n += page.contents().len() as u64 + page.common_prefixes().len() as u64;
        }
        Ok((
            n,
            arrivals.first().copied().unwrap_or_default(),
            arrivals.get(1).copied(),
        ))
    }

    /// Size and SHA-256 of a stored object, read back in full.
    pub(crate) async fn digest(&self, key: &str) -> Result<(u64, String)> {
        let mut body = self.body(key).await?;
        let (mut total, mut h) = (0u64, Sha256::new());
        while let Some(chunk) = body.try_next().await? {
            total += chunk.len() as u64;
            h.update(&chunk);
        }
        Ok((total, hex(&h.finalize())))
    }
}
