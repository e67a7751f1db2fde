//! A small HTTP(S) client for the services this server calls (the auth
//! hook): hyper's pooled client over rustls, a deadline on every request,
//! a bounded answer, and failures in a few words.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// The largest answer read; anything longer is a failure.
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Request(String),
    #[error("answer larger than {MAX_ANSWER} bytes")]
    TooLarge,
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct HttpClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client trusting what `tls` trusts, giving each request `timeout`
    /// from sending to the last byte of the answer.
    pub fn new(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        HttpClient {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
            timeout,
        }
    }

    /// POSTs `body` as JSON with the extra `headers`.
    pub async fn post_json(
        &self,
        uri: &Uri,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, HttpError> {
        let mut request = hyper::Request::post(uri.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("s3ftp/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| HttpError::Request(describe(&e)))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HttpError::TooLarge
                    } else {
                        HttpError::Request(format!("answer cut off: {e}"))
                    }
                })?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))?
    }
}

/// The innermost cause, which says what happened ("Connection refused",
/// "invalid peer certificate: UnknownIssuer"); hyper's outer layers only
/// say "client error (Connect)".
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    let text = inner.to_string();
    if text.is_empty() {
        error.to_string()
    } else {
        text
    }
}
