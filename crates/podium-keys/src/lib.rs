//! Python-compatible canonical JSON, PyYAML-compatible loading, fingerprints, study/trial/family/
//! benchmark keys, and the tag registry.
//!
//! ```
//! use podium_keys::{Tag, TagRegistry};
//!
//! let tags = TagRegistry::defaults();
//! assert_eq!(tags.get(Tag::Backbone), "code.backbone");
//! assert_eq!(tags.key("grouping", "study_key_hash")?, "code.study_key_hash");
//! # Ok::<(), podium_keys::KeysError>(())
//! ```

pub mod error;
pub mod tags;

pub use error::KeysError;
pub use tags::{Tag, TagRegistry, stage};
