//! The leader fence at the lowest level: an interceptor on the AWS clients refuses every write
//! operation (see [`super::stats::WRITE_OPERATIONS`]) while the fence is shut, before anything
//! is sent. No code path can write around it.

use aws_sdk_ecr::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_ecr::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::leader::Fence;

/// A write refused because this replica is not (or no longer surely) the leader.
#[derive(Debug, thiserror::Error)]
#[error(
    "{operation} refused: this replica does not hold the leader lease (or could not renew it within the renew deadline)"
)]
pub struct Fenced {
    pub operation: String,
}

/// Refuses writes while `fence` is shut.
#[derive(Debug)]
pub struct FenceInterceptor(pub Fence);

impl FenceInterceptor {
    /// Refuses the call when it is a write and the fence is shut.
    fn check(&self, cfg: &ConfigBag) -> Result<(), BoxError> {
        let Some(operation) = cfg.load::<Metadata>().map(counted_name) else {
            return Ok(());
        };
        if super::stats::WRITE_OPERATIONS.contains(&operation.as_str()) && !self.0.is_open() {
            return Err(Box::new(Fenced { operation }));
        }
        Ok(())
    }
}

/// The name under which [`super::CallStats`] and [`super::stats::WRITE_OPERATIONS`] know an
/// operation: ECR Public's as `ecr-public:<Operation>` (its names are ECR's: CreateRepository,
/// TagResource, ...), every other service's as the operation's name.
fn counted_name(metadata: &Metadata) -> String {
    match metadata.service() {
        "ECR PUBLIC" => format!("ecr-public:{}", metadata.name()),
        _ => metadata.name().to_string(),
    }
}

impl Intercept for FenceInterceptor {
    fn name(&self) -> &'static str {
        "LeaderFence"
    }

    // Before every attempt, the first included: the SDK retries a throttled or failed write on
    // its own, and a retry must not go out after the fence shut although the first attempt went
    // out before. (Not `read_before_execution`: client-level interceptors run that hook before
    // the operation's own configuration, which names the operation, is loaded.)
    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.check(cfg)
    }
}
