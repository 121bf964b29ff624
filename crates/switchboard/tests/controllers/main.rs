//! The Service controllers (crate `controllers`), which `switchboard server` runs, driven with
//! kube-rs and kubectl: reference 03 replayed, pod changes reaching EndpointSlices and
//! Endpoints within 100 ms (seen through kube-rs watches), 100 Services over 1,000 pods
//! converging and a restart writing nothing, selectorless Services mirrored, slices collected
//! with their owners, the readiness prober, the `default` ServiceAccounts and graceful pod
//! deletion without a kubelet; topology hints for `trafficDistribution` and for
//! `topology-mode: Auto` (zones in proportion to their Nodes' CPU).

mod latency;
mod prober;
mod reference_03;
mod scale;
mod selectorless;
mod standalone_pods;
mod support;
mod topology;
mod topology_auto;
