//! The admission webhook: image reference parsing and the (pure) admission decision.

pub mod decision;
pub mod image_ref;
