//! How pods reach this node's DNS server at the cluster DNS address: the agent keeps the
//! `kube-dns` Service in `kube-system` (clusterIP 10.43.0.10 by default, as k3s publishes
//! CoreDNS) with `internalTrafficPolicy: Local`, and an EndpointSlice of its own naming this
//! node's address. Every node's proxy then DNATs 10.43.0.10:53 to the DNS server on the same
//! node, as NodeLocal DNSCache does, without any address configured on an interface. See the
//! crate README for the reasoning.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;

pub const NAMESPACE: &str = "kube-system";
pub const SERVICE: &str = "kube-dns";
const MANAGER: &str = "switchboard-dns";

/// What the publisher needs to know about this node.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    pub node_name: String,
    /// Where the DNS server listens on this node (its port-53 sockets must be bound there).
    pub node_ips: Vec<IpAddr>,
    pub cluster_dns: Vec<IpAddr>,
}

fn dns_ports() -> Vec<(String, String)> {
    vec![
        ("dns".into(), "UDP".into()),
        ("dns-tcp".into(), "TCP".into()),
    ]
}

/// The Service the agent creates when none exists.
pub fn service(cfg: &PublishConfig) -> Service {
    let ips: Vec<String> = cfg.cluster_dns.iter().map(|i| i.to_string()).collect();
    Service {
        metadata: ObjectMeta {
            name: Some(SERVICE.into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(BTreeMap::from([
                ("k8s-app".to_string(), "kube-dns".to_string()),
                ("kubernetes.io/name".to_string(), "CoreDNS".to_string()),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    MANAGER.to_string(),
                ),
            ])),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: ips.first().cloned(),
            cluster_ips: Some(ips.clone()),
            ip_families: None,
            ip_family_policy: Some(
                if ips.len() > 1 {
                    "RequireDualStack"
                } else {
                    "SingleStack"
                }
                .into(),
            ),
            internal_traffic_policy: Some("Local".into()),
            ports: Some(
                dns_ports()
                    .into_iter()
                    .map(|(name, protocol)| ServicePort {
                        name: Some(name),
                        protocol: Some(protocol),
                        port: 53,
                        target_port: Some(
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(53),
                        ),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// This node's EndpointSlice for the Service, per address family.
pub fn slices(cfg: &PublishConfig) -> Vec<EndpointSlice> {
    let mut out = Vec::new();
    for (family, v6) in [("IPv4", false), ("IPv6", true)] {
        let addrs: Vec<String> = cfg
            .node_ips
            .iter()
            .filter(|i| i.is_ipv6() == v6)
            .map(|i| i.to_string())
            .collect();
        if addrs.is_empty() {
            continue;
        }
        let suffix = if v6 { "-v6" } else { "" };
        out.push(EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("{SERVICE}-{}{suffix}", cfg.node_name)),
                namespace: Some(NAMESPACE.into()),
                labels: Some(BTreeMap::from([
                    (
                        "kubernetes.io/service-name".to_string(),
                        SERVICE.to_string(),
                    ),
                    // Not the EndpointSlice controller's: it leaves slices of other managers alone.
                    (
                        "endpointslice.kubernetes.io/managed-by".to_string(),
                        MANAGER.to_string(),
                    ),
                ])),
                ..Default::default()
            },
            address_type: family.into(),
            endpoints: vec![Endpoint {
                addresses: addrs,
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                node_name: Some(cfg.node_name.clone()),
                ..Default::default()
            }],
            ports: Some(
                dns_ports()
                    .into_iter()
                    .map(|(name, protocol)| EndpointPort {
                        name: Some(name),
                        protocol: Some(protocol),
                        port: Some(53),
                        ..Default::default()
                    })
                    .collect(),
            ),
        });
    }
    out
}

/// Keeps the Service and this node's slices in place: at start, then every 30 s (someone may
/// delete them), retrying sooner after errors.
pub async fn run(client: kube::Client, cfg: PublishConfig) {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let slice_api: Api<EndpointSlice> = Api::namespaced(client, NAMESPACE);
    let mut warned_selector = false;
    loop {
        let result: anyhow::Result<bool> = async {
            match services.get_opt(SERVICE).await? {
                None => match services.create(&PostParams::default(), &service(&cfg)).await {
                    Ok(_) => tracing::info!(cluster_dns = ?cfg.cluster_dns, "created Service kube-system/kube-dns"),
                    // Another node's agent was first: same Service, carry on.
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => return Err(e.into()),
                },
                Some(s) if s.spec.as_ref().and_then(|s| s.selector.as_ref()).is_some_and(|m| !m.is_empty()) => {
                    // Someone else's DNS (CoreDNS in a real cluster) owns the Service; adding
                    // this node to it would split the cluster's answers between two servers.
                    if !warned_selector {
                        tracing::warn!("kube-system/kube-dns has a selector (another DNS server); not publishing this node");
                        warned_selector = true;
                    }
                    return Ok(false);
                }
                Some(_) => {}
            }
            for s in slices(&cfg) {
                let name = s.metadata.name.clone().unwrap();
                slice_api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&s)).await?;
            }
            Ok(true)
        }
        .await;
        let wait = match result {
            Ok(_) => Duration::from_secs(30),
            Err(e) => {
                tracing::warn!(error = %e, "publishing the cluster DNS endpoint failed; retrying");
                Duration::from_secs(2)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_routes_to_the_local_node_and_each_node_has_its_slice() {
        let cfg = PublishConfig {
            node_name: "n1".into(),
            node_ips: vec!["192.168.1.11".parse().unwrap(), "fd00::11".parse().unwrap()],
            cluster_dns: vec!["10.43.0.10".parse().unwrap()],
        };
        let svc = service(&cfg);
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.43.0.10"));
        assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Local"));
        assert!(spec.selector.is_none());
        let slices = slices(&cfg);
        assert_eq!(slices.len(), 2);
        assert_eq!(slices[0].metadata.name.as_deref(), Some("kube-dns-n1"));
        assert_eq!(slices[0].endpoints[0].addresses, ["192.168.1.11"]);
        assert_eq!(slices[0].endpoints[0].node_name.as_deref(), Some("n1"));
        assert_eq!(slices[1].address_type, "IPv6");
        let labels = slices[0].metadata.labels.as_ref().unwrap();
        assert_eq!(labels["kubernetes.io/service-name"], "kube-dns");
        assert_ne!(
            labels["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
    }
}
