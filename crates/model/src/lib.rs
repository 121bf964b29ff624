//! The Kubernetes object model Switchboard serves, with no I/O: the table of served resources,
//! metadata accessors on JSON objects, API errors as `Status`, label and field selectors,
//! name validation and the server-side printing of tables. Start at [`registry`].

pub mod admission;
pub mod errors;
pub mod fields;
pub mod meta;
pub mod registry;
pub mod selector;
pub mod table;
pub mod validation;

pub use errors::{ApiError, Cause};
pub use registry::{lookup, lookup_kind, ResourceInfo, RESOURCES};
