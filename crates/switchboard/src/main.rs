//! `switchboard`: Kubernetes Service networking in one binary. This file only parses the
//! command line and wires the libraries together.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Kubernetes Service networking in one binary: the Service API with its endpoint controllers, and the node agent (a kube-proxy replacement on nftables)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Kubernetes API server (HTTPS) on an embedded SQLite store, with the Endpoints and
    /// EndpointSlice controllers.
    Server(ServerArgs),
    /// Run everything on this machine with defaults (the server and this node's agent, which
    /// registers the machine's Node), and print how to point kubectl at it.
    Up(UpArgs),
    /// Run the node agent against an API server (this one or any Kubernetes API server): Service
    /// rules in nftables, kube-proxy's metrics and health endpoints, readiness probes.
    Agent(AgentCommand),
}

#[derive(Args, Clone)]
struct UpArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    agent: agent::AgentArgs,
}

#[derive(Args, Clone)]
struct AgentCommand {
    /// kubeconfig of the API server; without it, `$KUBECONFIG`, `~/.kube/config`, or the
    /// in-cluster service account when run in a pod.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Service CIDR(s), comma-separated: traffic to an unallocated address in them is rejected.
    /// "" for none.
    #[arg(long, default_value = "10.43.0.0/16", value_delimiter = ',')]
    service_cidr: Vec<String>,
    #[command(flatten)]
    agent: agent::AgentArgs,
}

fn parse_cidrs(list: &[String]) -> Result<Vec<ipnet::IpNet>> {
    agent::config::parse_cidrs(list).map_err(|e| anyhow::anyhow!("--service-cidr: {e}"))
}

/// `switchboard agent`: runs until SIGTERM or Ctrl-C; exits non-zero if it cannot start.
async fn run_agent(a: AgentCommand) -> Result<()> {
    let client = agent::client(a.kubeconfig.as_deref()).await?;
    let cfg = agent::AgentConfig {
        service_cidrs: parse_cidrs(&a.service_cidr)?,
        args: a.agent,
        register_node: false,
    };
    agent::run(client, cfg, shutdown_signal()).await
}

#[derive(Args, Clone)]
struct ServerArgs {
    /// Where state, credentials and the kubeconfig live (created on first start).
    #[arg(
        long,
        default_value = "./switchboard-data",
        env = "SWITCHBOARD_DATA_DIR"
    )]
    data_dir: PathBuf,
    /// Address and port to serve the Kubernetes API on (HTTPS).
    #[arg(long, default_value = "0.0.0.0:6443")]
    listen: SocketAddr,
    /// Service CIDR(s), comma-separated (one IPv4 and/or one IPv6 range).
    #[arg(long, default_value = "10.43.0.0/16", value_delimiter = ',')]
    service_cidr: Vec<String>,
    /// Port range for NodePort Services.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// LoadBalancer Services: `auto` (MetalLB IPAddressPools, else k3s ServiceLB node IPs),
    /// `pools`, `servicelb`, or `off` (no LoadBalancer controller; addresses stay `<pending>`).
    #[arg(long, default_value = "auto", env = "SWITCHBOARD_LOAD_BALANCER_MODE")]
    load_balancer_mode: String,
    /// The `loadBalancerClass` this server's controller serves (and Services without one).
    #[arg(long, default_value = lb::DEFAULT_CLASS)]
    load_balancer_class: String,
    /// Controllers to run, as kube-controller-manager's flag: `*` is all of them (endpoint,
    /// endpointslice, endpointslicemirroring, serviceaccount), `-name` turns one off.
    #[arg(long, default_value = "*", value_delimiter = ',')]
    controllers: Vec<String>,
}

impl ServerArgs {
    fn config(&self) -> apiserver::Config {
        apiserver::Config {
            data_dir: self.data_dir.clone(),
            listen: self.listen,
            service_cidrs: self.service_cidr.clone(),
            node_port_range: self.service_node_port_range.clone(),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let (args, agent_args) = match cli.command {
        Command::Server(a) => (a, None),
        Command::Up(u) => (u.server, Some(u.agent)),
        Command::Agent(a) => return run_agent(a).await,
    };
    let up = agent_args.is_some();
    let lb_mode = match args.load_balancer_mode.as_str() {
        "off" => None,
        m => Some(m.parse::<lb::Mode>().map_err(anyhow::Error::msg)?),
    };
    let controllers_config =
        controllers::ControllersConfig::default().with_controllers(&args.controllers)?;
    let server = apiserver::Server::start(args.config()).await?;
    // kube-controller-manager's Service controllers, talking to this server like any client.
    let client = controllers::client_from_kubeconfig(&server.kubeconfig).await?;
    let (stop_controllers, stopped) = tokio::sync::oneshot::channel::<()>();
    let controllers = tokio::spawn(controllers::run(
        client.clone(),
        controllers_config,
        async move {
            let _ = stopped.await;
        },
    ));
    // The LoadBalancer IPAM controller (MetalLB pools, k3s ServiceLB), a client like the others.
    let (stop_lb, lb_stopped) = tokio::sync::oneshot::channel::<()>();
    let lb_task = lb_mode.map(|mode| {
        let cfg = lb::LbConfig {
            mode,
            class: args.load_balancer_class.clone(),
            ..Default::default()
        };
        tokio::spawn(lb::run(client.clone(), cfg, async move {
            let _ = lb_stopped.await;
        }))
    });
    tracing::info!(address = %server.local_addr, kubeconfig = %server.kubeconfig.display(), "API server listening");
    // `up`: this machine's agent, in-process, a client of the server like the controllers. Its
    // failure (no CAP_NET_ADMIN, a port taken by a running kube-proxy) is logged; the API stays.
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent_task = match agent_args {
        Some(flags) => {
            let cfg = agent::AgentConfig {
                service_cidrs: parse_cidrs(&args.service_cidr)?,
                args: flags,
                register_node: true,
            };
            Some(tokio::spawn(async move {
                if let Err(e) = agent::run(client, cfg, async move {
                    let _ = agent_stopped.await;
                })
                .await
                {
                    tracing::error!(error = format!("{e:#}"), "the node agent could not start");
                }
            }))
        }
        None => None,
    };
    if up {
        let path = std::fs::canonicalize(&server.kubeconfig).unwrap_or(server.kubeconfig.clone());
        println!(
            "Switchboard is up. Point kubectl at it:  export KUBECONFIG={}",
            path.display()
        );
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_agent.send(());
    if let Some(t) = agent_task {
        let _ = t.await;
    }
    let _ = stop_controllers.send(());
    let _ = controllers.await;
    let _ = stop_lb.send(());
    if let Some(t) = lb_task {
        let _ = t.await;
    }
    server.shutdown().await?;
    Ok(())
}
