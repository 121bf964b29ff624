//! Every way Kubernetes changes an object, as pure functions over `serde_json::Value`: JSON
//! patch, JSON merge patch, strategic merge patch, and server-side apply with the field
//! ownership (`metadata.managedFields`) that every write records. Start at [`apply`] and
//! [`update_managed_fields`]; `README.md` has the theory.

// Errors are `model::ApiError`, the `Status` the API server answers with, by value as everywhere
// in the workspace; it is larger than clippy likes for an `Err`, and these are not hot paths.
#![allow(clippy::result_large_err)]

mod fieldpath;
mod gojson;
mod jsonpatch;
mod managed;
mod mergepatch;
mod status;
mod strategic;
mod typed;

pub use jsonpatch::json_patch;
pub use managed::{apply, record_update, set_managed_fields, update_managed_fields, Writer};
pub use mergepatch::merge_patch;
pub use strategic::strategic_merge_patch;

/// Parses JSON as Go's `encoding/json` would, with its error wording
/// (`invalid character 'n' looking for beginning of object key string`).
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, String> {
    gojson::parse(body)
}
