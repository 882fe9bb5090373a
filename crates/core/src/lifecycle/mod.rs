//! Lifecycle policies: the typed rule model of the `LifecyclePolicy` kind, ECR's validation of it,
//! the JSON text ECR stores, and a local evaluator that previews which images a policy expires and
//! which it moves to the archive storage class.
//!
//! Everything here is pure (no I/O, no clock): callers pass `now` and the image list, so the
//! controller can preview a policy and tests can pin ECR's documented behaviour with tables.
//! Per DESIGN.md this module calls nothing else in the crate.
//!
//! Sources: the Amazon ECR User Guide pages "Lifecycle policy properties", "Automate the cleanup of
//! images by using lifecycle policies" (evaluation rules), "Examples of lifecycle policies" and
//! "Amazon ECR service quotas", "Archiving an image", and the `PutLifecyclePolicy` API reference;
//! for archive rules also the API model (botocore `ecr/2015-09-21/service-2.json`:
//! `LifecyclePolicyRuleAction`, `LifecyclePolicyStorageClass`,
//! `LifecyclePolicyTargetStorageClass`, `ImageActionType`, `ImageDetail`).

mod evaluate;
/// ECR's `*` wildcard, also used for scanning rule filters.
mod model;
mod policy;
mod validate;

#[cfg(test)]
mod doc_examples;

pub use evaluate::evaluate;
pub use model::{Action, Count, Expiry, Image, Rule, Selection, StorageClass, TagStatus};
pub use policy::{ParseError, parse, policies_equivalent, render};
pub use validate::{MAX_PATTERN_WILDCARDS, MAX_POLICY_CHARS, MAX_RULES, ValidationError, validate};
