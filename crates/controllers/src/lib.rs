//! The Service controllers that kube-controller-manager runs, on kube-rs, so they work against
//! `switchboard server` or any conformant API server: endpoints, EndpointSlice,
//! EndpointSlice mirroring and a garbage collector for the slices they own.
//! Start at [`run`]; the pure reconcilers are [`endpoints::reconcile`], [`slices::reconcile`]
//! and [`mirroring::reconcile`]. See the crate README for the theory.

pub mod endpoints;
pub mod pods;
pub mod slices;
pub mod trigger;

#[cfg(test)]
mod golden;
