//! This node: its addresses (from its Node object, else from the network namespace's
//! interfaces) and, in `switchboard up`, registering the Node object kubelet would have created.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use std::net::IpAddr;

/// The node's addresses as kube-proxy takes them: `status.addresses` InternalIP ones, else
/// ExternalIP ones; without either (or without a Node), the interface addresses given.
pub fn node_ips(node: Option<&Node>, interfaces: &[IpAddr]) -> Vec<IpAddr> {
    let addresses = node
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.addresses.as_ref())
        .cloned()
        .unwrap_or_default();
    for kind in ["InternalIP", "ExternalIP"] {
        let ips: Vec<IpAddr> = addresses
            .iter()
            .filter(|a| a.type_ == kind)
            .filter_map(|a| a.address.parse().ok())
            .collect();
        if !ips.is_empty() {
            return dedup(ips);
        }
    }
    dedup(interfaces.to_vec())
}

/// The node's zone for topology-aware routing: its `topology.kubernetes.io/zone` label, as
/// kube-proxy reads it ("" without a Node or the label: no zone hint is then for this node).
pub fn zone(node: Option<&Node>) -> String {
    node.and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(ZONE_LABEL))
        .cloned()
        .unwrap_or_default()
}

/// The well-known zone label (core/v1 `LabelTopologyZone`).
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

fn dedup(mut ips: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut seen = std::collections::HashSet::new();
    ips.retain(|ip| seen.insert(*ip));
    ips
}

/// The non-loopback addresses of this network namespace's interfaces (IPv6 link-local left out:
/// a Service is never reached on one).
pub fn interface_addresses() -> Vec<IpAddr> {
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = ifaces
        .iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback())
        .filter(|ip| match ip {
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(_) => true,
        })
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// This machine's hostname, lower-cased as kubelet does for the default node name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// What `switchboard up` registers for this machine when no Node exists: the name, the
/// well-known labels, the interface addresses as InternalIP plus the Hostname, and a Ready
/// condition (the agent runs in the same process as the server, so "the node is up" is true
/// as long as anyone can ask).
pub fn node_object(name: &str, addresses: &[IpAddr]) -> Node {
    let mut addrs: Vec<serde_json::Value> = addresses
        .iter()
        .map(|ip| json!({"type": "InternalIP", "address": ip.to_string()}))
        .collect();
    addrs.push(json!({"type": "Hostname", "address": name}));
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": std::env::consts::OS,
                "kubernetes.io/arch": go_arch(),
            },
        },
        "status": {"addresses": addrs},
    }))
    .expect("a valid Node")
}

/// GOARCH spelling of this machine's architecture, as kubelet labels nodes.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// Creates this machine's Node if absent (kubelet's registration, for `switchboard up`) and
/// writes its addresses and Ready condition through the status subresource.
pub async fn register(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let addresses = interface_addresses();
    let node = node_object(name, &addresses);
    match api.get_opt(name).await? {
        Some(_) => {
            tracing::info!(node = name, "Node object exists; not changing it");
            return Ok(());
        }
        None => {
            api.create(&PostParams::default(), &node).await?;
        }
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = json!({"status": {
        "addresses": node.status.as_ref().and_then(|s| s.addresses.clone()),
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "SwitchboardAgentReady",
            "message": "switchboard up runs the agent for this node",
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    tracing::info!(node = name, addresses = ?addresses, "registered this machine's Node");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(addrs: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1"}, "status": {"addresses": addrs}}))
            .unwrap()
    }

    #[test]
    fn internal_ips_first_then_external_then_interfaces() {
        let ifaces: Vec<IpAddr> = vec!["192.168.9.9".parse().unwrap()];
        let both = node(json!([
            {"type": "Hostname", "address": "n1"},
            {"type": "ExternalIP", "address": "203.0.113.7"},
            {"type": "InternalIP", "address": "172.30.0.10"},
            {"type": "InternalIP", "address": "fd00::10"},
        ]));
        assert_eq!(
            node_ips(Some(&both), &ifaces),
            vec![
                "172.30.0.10".parse::<IpAddr>().unwrap(),
                "fd00::10".parse().unwrap()
            ]
        );
        let external = node(json!([{"type": "ExternalIP", "address": "203.0.113.7"}]));
        assert_eq!(
            node_ips(Some(&external), &ifaces),
            vec!["203.0.113.7".parse::<IpAddr>().unwrap()]
        );
        let bad = node(json!([{"type": "InternalIP", "address": "not-an-ip"}]));
        assert_eq!(node_ips(Some(&bad), &ifaces), ifaces);
        assert_eq!(node_ips(None, &ifaces), ifaces);
    }

    #[test]
    fn zone_is_the_topology_label() {
        let mut n = node(json!([]));
        assert_eq!(zone(Some(&n)), "");
        assert_eq!(zone(None), "");
        n.metadata.labels = Some(
            [(ZONE_LABEL.to_string(), "zone-a".to_string())]
                .into_iter()
                .collect(),
        );
        assert_eq!(zone(Some(&n)), "zone-a");
    }

    #[test]
    fn registered_node_has_kubelets_labels_and_addresses() {
        let n = node_object("box", &["10.0.0.2".parse().unwrap()]);
        let labels = n.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "box");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        let addrs = n.status.unwrap().addresses.unwrap();
        assert_eq!(addrs[0].type_, "InternalIP");
        assert_eq!(addrs[1].type_, "Hostname");
    }
}
