//! The Service admission through its public API, driven the way the API server drives it,
//! one module per reference transcript area, plus the property and crash tests.

#![allow(clippy::result_large_err)]

mod crash;
mod externalname;
mod harness;
mod headless;
mod loadbalancer;
mod nodeport;
mod properties;
mod seeds;
mod validation;
