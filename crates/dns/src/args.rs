//! The agent's DNS flags (flattened into `switchboard agent` and `switchboard up`), named as
//! k3s names them where it has them.

use std::net::{IpAddr, SocketAddr};

use crate::{DnsConfig, PublishConfig, ZoneConfig};

#[derive(clap::Args, Clone, Debug, Default)]
pub struct DnsArgs {
    /// Cluster DNS address(es), comma-separated: the clusterIP of the kube-dns Service this node
    /// publishes itself behind, and the NS address of the zone [default: 10.43.0.10]
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Option<Vec<IpAddr>>,
    /// The cluster domain (zone) [default: cluster.local]
    #[arg(long)]
    pub cluster_domain: Option<String>,
    /// Where the DNS server listens (UDP and TCP), comma-separated IP or IP:port [default: this
    /// node's addresses, port 53]
    #[arg(long, value_delimiter = ',')]
    pub dns_bind_address: Option<Vec<String>>,
    /// Upstream resolvers for names outside the cluster, comma-separated IP or IP:port
    /// [default: the nameservers of /etc/resolv.conf]
    #[arg(long, value_delimiter = ',')]
    pub dns_upstream: Option<Vec<String>>,
    /// Do not publish this node as an endpoint of kube-system/kube-dns (then the cluster DNS
    /// address reaches this server only if something else routes it here)
    #[arg(long)]
    pub dns_no_publish: bool,
    /// Do not run the cluster DNS server (as k3s `--disable coredns`)
    #[arg(long)]
    pub disable_dns: bool,
}

fn socket_addrs(list: &[String], flag: &str) -> anyhow::Result<Vec<SocketAddr>> {
    list.iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| anyhow::anyhow!("{flag}: {s:?} is neither IP nor IP:port"))
        })
        .collect()
}

impl DnsArgs {
    pub fn enabled(&self) -> bool {
        !self.disable_dns
    }

    /// The configuration for this node. Without `--dns-bind-address` the server listens on
    /// the node's addresses (found when it starts, see `Dns::run`).
    pub fn config(&self, node_name: &str) -> anyhow::Result<DnsConfig> {
        let cluster_dns = self
            .cluster_dns
            .clone()
            .unwrap_or_else(|| vec!["10.43.0.10".parse().unwrap()]);
        let bind = match &self.dns_bind_address {
            Some(list) => socket_addrs(list, "--dns-bind-address")?,
            None => Vec::new(),
        };
        let publish_ips: Vec<IpAddr> = bind
            .iter()
            .filter(|a| a.port() == 53)
            .map(|a| a.ip())
            .collect();
        let publish_anything = bind.is_empty() || !publish_ips.is_empty();
        Ok(DnsConfig {
            zone: ZoneConfig {
                domain: self
                    .cluster_domain
                    .clone()
                    .unwrap_or_else(|| "cluster.local".into()),
                dns_ips: cluster_dns.clone(),
                ..ZoneConfig::default()
            },
            bind,
            upstreams: self
                .dns_upstream
                .as_ref()
                .map(|l| socket_addrs(l, "--dns-upstream"))
                .transpose()?,
            node_name: Some(node_name.to_string()),
            publish: (!self.dns_no_publish && publish_anything).then(|| PublishConfig {
                node_name: node_name.to_string(),
                node_ips: publish_ips,
                cluster_dns,
            }),
            ..DnsConfig::default()
        })
    }
}
