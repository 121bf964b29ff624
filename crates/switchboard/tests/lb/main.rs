//! LoadBalancer Services against a real `switchboard server` with the real kubectl: addresses
//! from MetalLB IPAddressPools (`ipam`), the k3s ServiceLB way (`servicelb`), and (`l2`) L2
//! announcement in network namespaces with failover, (`ipv6`) the same by NDP in a dual-stack
//! lab with the Service's IP family rules; (`incremental`) work linear in the Services
//! created.

mod bench;
mod incremental;
mod ipam;
mod ipv6;
pub mod l2;
mod servicelb;
mod support;
