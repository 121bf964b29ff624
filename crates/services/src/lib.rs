//! Services as kube-apiserver admits them: defaulting, validation with its exact messages,
//! and ClusterIP and NodePort allocation, plugged into the generic write path through
//! [`model::admission::Admission`]. Start at [`ServiceAdmission`]; the theory (order of
//! defaulting, the allocation model, the repair pass) is in the crate's README.
//!
//! The pure parts stand on their own: [`defaults`], [`validation`], [`families`], [`ipalloc`]
//! and [`portalloc`] know nothing of locks or stores.

// `ApiError` is the error type `model::admission::Admission` prescribes; it is what every
// fallible step here returns, on a path that ends in an HTTP answer, not a hot loop.
#![allow(clippy::result_large_err)]

mod admission;
pub mod alloc;
pub mod config;
pub mod defaults;
pub mod families;
pub mod ipalloc;
pub mod netval;
pub mod portalloc;
mod registry;
mod repair;
mod slots;
pub mod strategy;
pub mod types;
pub mod validation;
pub mod warnings;

pub use admission::{Allocations, ServiceAdmission};
pub use config::{parse_node_port_range, ConfigError, Family, ServiceConfig};
pub use registry::Resource;
pub use repair::{owner_id, IP_REPAIR_COMPONENT, PORT_REPAIR_COMPONENT};
