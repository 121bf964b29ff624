//! The Service controllers (crate `controllers`) against a real `switchboard server`, driven
//! with kube-rs and kubectl: reference 03 replayed, pod changes reaching EndpointSlices within
//! 100 ms (seen through a kube-rs watch), 100 Services over 1,000 pods converging and a restart
//! writing nothing, selectorless Services mirrored, and slices collected with their owners.
//! Until the server runs the controllers itself, each test runs them in this process.

mod latency;
mod prober;
mod reference_03;
mod scale;
mod selectorless;
mod support;
