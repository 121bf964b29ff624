//! LoadBalancer Services without a cloud. [`plan::Planner`] decides every LoadBalancer
//! Service's `status.loadBalancer.ingress` from MetalLB's IPAddressPools ([`alloc::Allocator`])
//! or, for Services no pool serves, the k3s ServiceLB way ([`servicelb`]), one changed Service
//! at a time; [`run`] is the kube-rs controller that feeds it and writes the answers. Theory
//! and differences: README.md.

pub mod alloc;
pub mod controller;
pub mod crd;
pub mod plan;
pub mod pool;
pub mod servicelb;

pub use controller::{run, LbConfig, LbStats, DEFAULT_CLASS};
pub use plan::Mode;
