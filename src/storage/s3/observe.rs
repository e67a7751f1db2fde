//! Reports every S3 request attempt (operation, outcome, latency) to the
//! server's [`StorageObserver`], through an SDK interceptor so that no call
//! site can forget to. Each attempt counts on its own: an operation the SDK
//! retried twice after 503s is three requests, two of them errors, as the
//! store saw them.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_s3::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use crate::storage::{RequestOutcome, StorageObserver};

#[derive(Debug)]
pub(super) struct Observe(pub(super) Arc<dyn StorageObserver>);

/// When the current attempt began, kept in the request's config bag (each
/// attempt replaces it).
#[derive(Clone, Debug)]
struct AttemptBegan(Instant);

impl Storable for AttemptBegan {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Observe {
    fn name(&self) -> &'static str {
        "s3ftp-observe"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptBegan(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // No start time: the attempt failed before it was sent (signing,
        // endpoint resolution), so the store saw nothing.
        let Some(began) = cfg.load::<AttemptBegan>().map(|b| b.0) else {
            return Ok(());
        };
        // The operation's name is one of the SDK's fixed strings, so the
        // label's values stay bounded.
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name())
            .unwrap_or("unknown");
        let status = context.response().map(|r| r.status().as_u16());
        let outcome = match (context.output_or_error(), status) {
            (Some(Ok(_)), _) => RequestOutcome::Ok,
            (_, Some(404)) => RequestOutcome::NotFound,
            _ => RequestOutcome::Error,
        };
        self.0.request("s3", operation, outcome, began.elapsed());
        Ok(())
    }
}
