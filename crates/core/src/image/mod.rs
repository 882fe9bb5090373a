//! Pure ideas shared by the admission webhook and the controllers: image references
//! ([`reference`]), wildcard patterns ([`pattern`]) and label selectors ([`selector`]).

pub mod pattern;
pub mod reference;
pub mod selector;

pub use pattern::wildcard_match;
pub use reference::{EcrImage, ImageRef, ImageRefError};
pub use selector::{SelectorError, selector_matches};
