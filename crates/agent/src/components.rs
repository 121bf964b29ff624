//! Components that run inside the agent next to the proxy: cluster DNS (crate `dns`) and the
//! LoadBalancer L2 announcer (crate `announce`). This is the one place they are started.
//!
//! To add one: put its flags in [`ComponentArgs`] (`#[command(flatten)]` of the component's own
//! clap `Args`), and in [`start`] build it with `ctx.registry` (its metrics must be registered
//! before the agent serves `/metrics`), then push its task:
//!
//! ```text
//! if args.dns.enabled() {
//!     let dns = dns::Dns::new(args.dns.config(), ctx.registry);
//!     tasks.push(("dns", tokio::spawn(dns.run(ctx.client.clone(), ctx.shutdown.clone().cancelled_owned()))));
//! }
//! ```
//!
//! A component's task returning an error is logged; it does not stop the agent.

use kube::Client;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The flags of the components (flattened into the agent's flags).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ComponentArgs {
    #[command(flatten)]
    pub dns: dns::DnsArgs,
    #[command(flatten)]
    pub announce: announce::AnnounceArgs,
}

/// What a component is started with.
pub struct Context<'a> {
    pub client: &'a Client,
    /// This node's name (the Node object's).
    pub node_name: &'a str,
    /// The agent's one Registry, served on `/metrics`.
    pub registry: &'a mut Registry,
    /// Cancelled when the agent stops.
    pub shutdown: &'a CancellationToken,
}

/// A started component: its name (for logs) and its task.
pub type Task = (&'static str, JoinHandle<anyhow::Result<()>>);

/// Starts the components `args` enable.
pub fn start(args: &ComponentArgs, ctx: Context<'_>) -> anyhow::Result<Vec<Task>> {
    let mut tasks: Vec<Task> = Vec::new();
    if args.dns.enabled() {
        let dns = dns::Dns::new(args.dns.config(ctx.node_name)?, ctx.registry);
        let stop = ctx.shutdown.clone().cancelled_owned();
        tasks.push(("dns", tokio::spawn(dns.run(Some(ctx.client.clone()), stop))));
    }
    if args.announce.enabled() {
        let announcer =
            announce::Announcer::new(args.announce.config(ctx.node_name)?, ctx.registry);
        let stop = ctx.shutdown.clone().cancelled_owned();
        tasks.push((
            "announce",
            tokio::spawn(announcer.run(ctx.client.clone(), stop)),
        ));
    }
    Ok(tasks)
}
