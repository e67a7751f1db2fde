//! Where events go: an HTTP webhook (HMAC-SHA256 signed), an SQS queue, an
//! SNS topic. A sink says whether a failed attempt may succeed later
//! (retried with backoff) or never will (the event is set aside).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use hmac::{Hmac, Mac};
use hyper::Uri;
use sha2::Sha256;

use crate::httpclient::{HttpClient, HttpError};
use crate::secrets::Secret;

/// Why an attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// Down, slow, overloaded: try again later.
    Retry(String),
    /// The sink will never take this event (a 4xx, an unknown queue...).
    Refuse(String),
}

#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// For logs, metrics and the spool's folder.
    fn name(&self) -> &'static str;
    /// Sends one event: its id, JSON body, and the key whose events must
    /// stay in order (FIFO queues' message group).
    async fn send(&self, id: &str, body: &[u8], group: &str) -> Result<(), Failure>;
}

/// The header carrying the signature: `t=<unix seconds>,v1=<hex>`, where
/// the hex is HMAC-SHA256(secret, "<t>.<body>").
pub const SIGNATURE_HEADER: &str = "x-s3ftp-signature";
pub const ID_HEADER: &str = "x-s3ftp-event-id";

pub struct Webhook {
    pub url: Uri,
    pub secret: Secret,
    pub client: HttpClient,
}

/// The signature header's value for `body` sent at `time` (unix seconds).
pub fn signature(secret: &[u8], time: u64, body: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(time.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={time},v1={hex}")
}

#[async_trait::async_trait]
impl Sink for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, id: &str, body: &[u8], _group: &str) -> Result<(), Failure> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signed = signature(self.secret.0.as_bytes(), now, body);
        let headers = [(SIGNATURE_HEADER, signed.as_str()), (ID_HEADER, id)];
        match self
            .client
            .post_json(&self.url, &headers, body.to_vec())
            .await
        {
            Ok(answer) => match answer.status {
                200..=299 => Ok(()),
                408 | 425 | 429 | 500..=599 => Err(Failure::Retry(format!(
                    "the webhook answered {}",
                    answer.status
                ))),
                status => Err(Failure::Refuse(format!(
                    "the webhook answered {status}: {}",
                    String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                ))),
            },
            Err(HttpError::TooLarge) => Ok(()),
            Err(e) => Err(Failure::Retry(e.to_string())),
        }
    }
}

/// The AWS SDK's shared configuration, from the standard chain (variables,
/// profile, container or instance role); `region_hint` is used when the
/// chain names no region (taken from the queue URL or topic ARN).
pub async fn aws_config(region_hint: Option<String>, timeout: Duration) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(timeout)
            .build(),
    );
    let region = aws_config::meta::region::RegionProviderChain::default_provider()
        .or_else(region_hint.map(aws_config::Region::new))
        .region()
        .await;
    if let Some(region) = region {
        loader = loader.region(region);
    }
    loader.load().await
}

/// The region in `https://sqs.REGION.amazonaws.com/...` or an ARN.
pub fn region_of(target: &str) -> Option<String> {
    if let Some(rest) = target.strip_prefix("arn:") {
        return rest
            .split(':')
            .nth(2)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
    }
    let host = target.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    match (parts.next(), parts.next()) {
        (Some("sqs"), Some(region)) if host.ends_with(".amazonaws.com") => Some(region.to_string()),
        _ => None,
    }
}

/// Whether an SDK failure may pass if tried again: not for a client error
/// the service names (4xx), except throttling.
fn classify<E>(e: SdkError<E, HttpResponse>, what: &str) -> Failure
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let text = DisplayErrorContext(&e).to_string();
    let refused = match &e {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            (400..500).contains(&status) && status != 429 && !code.contains("Throttl")
        }
        _ => false,
    };
    if refused {
        Failure::Refuse(format!("{what}: {text}"))
    } else {
        Failure::Retry(format!("{what}: {text}"))
    }
}

pub struct Sqs {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

#[async_trait::async_trait]
impl Sink for Sqs {
    fn name(&self) -> &'static str {
        "sqs"
    }

    async fn send(&self, id: &str, body: &[u8], group: &str) -> Result<(), Failure> {
        let fifo = self.queue_url.ends_with(".fifo");
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(String::from_utf8_lossy(body))
            .set_message_group_id(fifo.then(|| group.to_string()))
            .set_message_deduplication_id(fifo.then(|| id.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "SQS SendMessage"))
    }
}

pub struct Sns {
    pub client: aws_sdk_sns::Client,
    pub topic_arn: String,
}

#[async_trait::async_trait]
impl Sink for Sns {
    fn name(&self) -> &'static str {
        "sns"
    }

    async fn send(&self, id: &str, body: &[u8], group: &str) -> Result<(), Failure> {
        let fifo = self.topic_arn.ends_with(".fifo");
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(String::from_utf8_lossy(body))
            .set_message_group_id(fifo.then(|| group.to_string()))
            .set_message_deduplication_id(fifo.then(|| id.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "SNS Publish"))
    }
}

/// A sink shared by its worker.
pub type SharedSink = Arc<dyn Sink>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_regions() {
        // Same inputs, same signature; another body or time, another one.
        let a = signature(b"k", 1700000000, b"{}");
        assert!(a.starts_with("t=1700000000,v1=") && a.len() == "t=1700000000,v1=".len() + 64);
        assert_eq!(a, signature(b"k", 1700000000, b"{}"));
        assert_ne!(a, signature(b"k", 1700000001, b"{}"));
        assert_ne!(a, signature(b"k2", 1700000000, b"{}"));
        assert_eq!(
            region_of("https://sqs.eu-west-1.amazonaws.com/123/q").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of("arn:aws:sns:us-east-2:123:t").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(region_of("http://127.0.0.1:5000/123/q"), None);
    }
}
