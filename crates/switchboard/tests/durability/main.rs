//! Durability and watch-continuity tests: a real `switchboard server` killed with SIGKILL or
//! stopped with SIGTERM while real kube-rs clients write to and watch it.
//!
//! - `watch_across_restarts`: kube-rs watchers (list-then-watch, paged, streaming lists) see
//!   every write exactly once and in order, across a resumed watch and a 410 re-list.
//! - `kill9_during_writes`: every create acknowledged with 201 survives SIGKILL, byte for byte,
//!   and nothing half-written appears.
//! - `clean_restart`: a SIGTERM restart keeps every object, resourceVersion, uid and allocation.
//! - `services_kill9`: 1,000 Services from 8 concurrent clients survive SIGKILL with every
//!   ClusterIP and NodePort unique and still reserved.

mod clean_restart;
mod kill9_writes;
mod services_kill9;
mod support;
mod watch_restart;
