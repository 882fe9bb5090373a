//! Lifecycle policies: the typed rule model of the `LifecyclePolicy` kind, ECR's validation of it,
//! the JSON text ECR stores, and a local evaluator that previews which images a policy expires.
//!
//! Everything here is pure (no I/O, no clock): callers pass `now` and the image list, so the
//! controller can preview a policy and tests can pin ECR's documented behaviour with tables.
//! Per DESIGN.md this module calls nothing else in the crate.
//!
//! Sources: the Amazon ECR User Guide pages "Lifecycle policy properties", "Automate the cleanup of
//! images by using lifecycle policies" (evaluation rules), "Examples of lifecycle policies" and
//! "Amazon ECR service quotas", and the `PutLifecyclePolicy` API reference.

mod evaluate;
/// ECR's `*` wildcard, also used for scanning rule filters.
mod model;
mod policy;
mod validate;

#[cfg(test)]
mod doc_examples;

pub use evaluate::evaluate;
pub use model::{Action, Count, Expiry, Image, Rule, Selection, TagStatus};
pub use policy::{ParseError, parse, policies_equivalent, render};
pub use validate::{MAX_PATTERN_WILDCARDS, MAX_POLICY_CHARS, MAX_RULES, ValidationError, validate};
