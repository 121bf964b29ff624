//! The store's behaviour through its public API, one module per area.

mod common;
mod crud;
mod durability;
mod list;
mod model;
mod watch;
