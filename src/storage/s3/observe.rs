//! Reports every S3 request (operation, outcome, latency, retries included)
//! to the server's [`StorageObserver`], through an SDK interceptor so that no
//! call site can forget to.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_s3::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use crate::storage::{RequestOutcome, StorageObserver};

#[derive(Debug)]
pub(super) struct Observe(pub(super) Arc<dyn StorageObserver>);

/// When the operation began, kept in the request's config bag.
#[derive(Clone, Debug)]
struct Began(Instant);

impl Storable for Began {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Observe {
    fn name(&self) -> &'static str {
        "s3ftp-observe"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Began(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let elapsed = cfg
            .load::<Began>()
            .map(|b| b.0.elapsed())
            .unwrap_or_default();
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
        self.0.request("s3", operation, outcome, elapsed);
        Ok(())
    }
}
