//! The nftables data plane: [`render`] turns a `proxy_core::Snapshot` into the tables
//! `ip switchboard` and `ip6 switchboard` (a pure function, golden-tested), and [`NftProxier`]
//! applies only what changed since its last sync, as one atomic transaction: an nf_tables
//! netlink batch ([`NftNetlink`], through [`NftAuto`]), or `nft -f` for what its encoder does not
//! know. Start at [`NftProxier::sync`]; the crate README explains the ruleset.

mod backend;
mod diff;
mod fragments;
mod model;
mod netlink;
mod proxier;
mod render;

pub use backend::{
    AutoCounts, BackendError, Conntrack, ConntrackCli, ConntrackFilter, Fake, FakeLog, Nft,
    NftAuto, NftCli,
};
pub use diff::{diff, DiffStats, Programmed};
pub use model::{nft_family, Chain, Set, Table, TABLE};
pub use netlink::{
    encode_script as netlink_messages, encode_script_after as netlink_messages_after, NftNetlink,
    SendFailure, Unsupported,
};
pub use proxier::{adopted_from_json, stale_udp_filters, NftProxier, SyncError, SyncReport};
pub use render::{render, render_family, RenderStats, DISPATCH_MAX, MASQ_MARK};
