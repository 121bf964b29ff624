//! Every way Kubernetes changes an object, as pure functions over `serde_json::Value`: JSON
//! patch, JSON merge patch, strategic merge patch, and server-side apply with the field
//! ownership (`metadata.managedFields`) that every write records. Start at [`apply`] and
//! [`update_managed_fields`]; `README.md` has the theory.

mod fieldpath;
mod gojson;
mod jsonpatch;
mod mergepatch;
mod status;
mod typed;

pub use jsonpatch::json_patch;
pub use mergepatch::merge_patch;
