//! Services + EndpointSlices → [`Snapshot`], as kube-proxy's ServiceChangeTracker and
//! EndpointsChangeTracker see them (but whole, not incremental: building 50k service ports takes
//! milliseconds, and a pure function of the objects cannot drift).

use crate::{IpFamily, Protocol, ProxyConfig, Scheduler, SCHEDULER_ANNOTATION};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

/// Label of Services handled by another proxy (kube-proxy skips them too).
const SERVICE_PROXY_NAME_LABEL: &str = "service.kubernetes.io/service-proxy-name";
/// Label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label the EndpointSlice controller puts on slices of headless Services.
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// The EndpointSlice controller's record of when the change that produced the slice happened.
const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// The pre-field spelling of loadBalancerSourceRanges (kube-proxy still honours it).
const SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
/// kube-apiserver's default for sessionAffinityConfig.clientIP.timeoutSeconds.
const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;

/// namespace/name of a Service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// namespace/name of an EndpointSlice.
pub type SliceName = ServiceName;

/// One port of one Service: kube-proxy's `ServicePortName` (namespace/name:port, protocol).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    pub service: ServiceName,
    /// The port's name; empty for a Service's single unnamed port.
    pub port: String,
    pub protocol: Protocol,
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.service, self.port, self.protocol)
    }
}

/// One endpoint of a service port, from an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    /// conditions.ready (unset means ready, as kube-proxy reads it).
    pub ready: bool,
    /// conditions.serving (unset means the value of ready).
    pub serving: bool,
    /// conditions.terminating (unset means false).
    pub terminating: bool,
    /// The endpoint runs on this node (its nodeName is [`ProxyConfig::node_name`]).
    pub local: bool,
}

/// A service port as the data plane needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub name: ServicePortName,
    /// spec.clusterIPs (one per family on dual-stack Services).
    pub cluster_ips: Vec<IpAddr>,
    pub port: u16,
    /// spec.ports[].nodePort, when the Service has one.
    pub node_port: Option<u16>,
    /// spec.externalIPs that parse as addresses.
    pub external_ips: Vec<IpAddr>,
    /// status.loadBalancer.ingress[].ip, except those with ipMode Proxy (kube-proxy skips them).
    pub load_balancer_ips: Vec<IpAddr>,
    /// spec.loadBalancerSourceRanges (or the older annotation); empty means everyone.
    pub source_ranges: Vec<IpNet>,
    /// sessionAffinity ClientIP: its timeout in seconds.
    pub affinity_timeout: Option<u32>,
    /// externalTrafficPolicy Local on a Service reachable from outside.
    pub external_policy_local: bool,
    /// internalTrafficPolicy Local.
    pub internal_policy_local: bool,
    pub scheduler: Scheduler,
    /// All endpoints of this port from every slice, sorted, one per address and port.
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// Reachable other than by ClusterIP: a NodePort, an external IP or a load-balancer IP.
    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some()
            || !self.external_ips.is_empty()
            || !self.load_balancer_ips.is_empty()
    }

    /// The ClusterIP of `family`, if the Service has one.
    pub fn cluster_ip(&self, family: IpFamily) -> Option<IpAddr> {
        self.cluster_ips
            .iter()
            .copied()
            .find(|ip| IpFamily::of(ip) == family)
    }

    /// Whether this port has ClusterIP-less presence in `family` (some address of that family).
    pub fn in_family(&self, family: IpFamily) -> bool {
        self.cluster_ip(family).is_some()
    }
}

/// The health-check node port of a Service with externalTrafficPolicy Local: load balancers
/// probe it to learn which nodes have local endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub node_port: u16,
    /// Ready endpoints of the Service on this node (unique addresses over all its ports).
    pub local_endpoints: usize,
}

/// An object (or part of one) that was not programmed, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// "Service" or "EndpointSlice".
    pub kind: &'static str,
    pub name: ServiceName,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.name, self.reason)
    }
}

/// Everything the data plane programs, as of one set of Services and EndpointSlices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub service_ports: BTreeMap<ServicePortName, ServicePort>,
    /// Services with externalTrafficPolicy Local and a healthCheckNodePort.
    pub health_checks: BTreeMap<ServiceName, HealthCheck>,
    /// `endpoints.kubernetes.io/last-change-trigger-time` of every slice that has one: the
    /// agent observes "now - trigger time" for the slices a sync programmed
    /// (kubeproxy_network_programming_duration_seconds).
    pub slice_trigger_times: BTreeMap<SliceName, DateTime<Utc>>,
    /// Objects or parts of objects left out, with the reason, for the agent to log.
    pub skipped: Vec<Skipped>,
}

impl Snapshot {
    /// Folds Services and EndpointSlices into a snapshot for the node of `cfg`. Headless,
    /// ExternalName and other proxies' Services are left out silently (they are not ours to
    /// program); malformed objects are left out and listed in [`Snapshot::skipped`].
    pub fn build<'a>(
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        cfg: &ProxyConfig,
    ) -> Snapshot {
        let mut snap = Snapshot::default();
        let mut endpoints: BTreeMap<ServicePortName, BTreeMap<(IpAddr, u16), Endpoint>> =
            BTreeMap::new();
        for slice in slices {
            snap.add_slice(slice, cfg, &mut endpoints);
        }
        for svc in services {
            snap.add_service(svc, cfg, &mut endpoints);
        }
        snap
    }

    /// The service ports of one Service.
    pub fn ports_of<'a>(
        &'a self,
        svc: &'a ServiceName,
    ) -> impl Iterator<Item = &'a ServicePort> + 'a {
        self.service_ports
            .values()
            .filter(move |sp| &sp.name.service == svc)
    }

    fn skip(&mut self, kind: &'static str, name: &ServiceName, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            kind,
            name: name.clone(),
            reason: reason.into(),
        });
    }

    fn add_slice(
        &mut self,
        slice: &EndpointSlice,
        cfg: &ProxyConfig,
        endpoints: &mut BTreeMap<ServicePortName, BTreeMap<(IpAddr, u16), Endpoint>>,
    ) {
        let meta = &slice.metadata;
        let name = ServiceName {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta
                .name
                .clone()
                .or_else(|| meta.generate_name.clone())
                .unwrap_or_default(),
        };
        if let Some(t) = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(TRIGGER_TIME_ANNOTATION))
        {
            match DateTime::parse_from_rfc3339(t) {
                Ok(t) => {
                    self.slice_trigger_times
                        .insert(name.clone(), t.with_timezone(&Utc));
                }
                Err(e) => self.skip(
                    "EndpointSlice",
                    &name,
                    format!("ignored {TRIGGER_TIME_ANNOTATION} {t:?}: {e}"),
                ),
            }
        }
        let labels = meta.labels.as_ref();
        if labels.is_some_and(|l| l.contains_key(HEADLESS_LABEL)) {
            return;
        }
        let Some(service) = labels.and_then(|l| l.get(SERVICE_NAME_LABEL)) else {
            self.skip(
                "EndpointSlice",
                &name,
                format!("no {SERVICE_NAME_LABEL} label"),
            );
            return;
        };
        if name.namespace.is_empty() {
            self.skip("EndpointSlice", &name, "no namespace");
            return;
        }
        let family = match slice.address_type.as_str() {
            "IPv4" => IpFamily::V4,
            "IPv6" => IpFamily::V6,
            // FQDN slices are not proxied by kube-proxy either.
            _ => return,
        };
        let service = ServiceName {
            namespace: name.namespace.clone(),
            name: service.clone(),
        };
        for port in slice.ports.iter().flatten() {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let Some(protocol) = Protocol::from_k8s(protocol) else {
                self.skip(
                    "EndpointSlice",
                    &name,
                    format!("port protocol {protocol:?} is not TCP, UDP or SCTP"),
                );
                continue;
            };
            let Some(number) = port
                .port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
            else {
                self.skip(
                    "EndpointSlice",
                    &name,
                    format!("port {:?} is not a port number", port.port),
                );
                continue;
            };
            let key = ServicePortName {
                service: service.clone(),
                port: port.name.clone().unwrap_or_default(),
                protocol,
            };
            let eps = endpoints.entry(key).or_default();
            for ep in &slice.endpoints {
                // kube-proxy uses the first address only; the API allows exactly one today.
                let Some(addr) = ep.addresses.first() else {
                    continue;
                };
                let Ok(ip) = addr.parse::<IpAddr>() else {
                    self.skip(
                        "EndpointSlice",
                        &name,
                        format!("endpoint address {addr:?} is not an IP address"),
                    );
                    continue;
                };
                if IpFamily::of(&ip) != family {
                    self.skip(
                        "EndpointSlice",
                        &name,
                        format!("endpoint address {addr} is not {}", slice.address_type),
                    );
                    continue;
                }
                let cond = ep.conditions.as_ref();
                let ready = cond.and_then(|c| c.ready).unwrap_or(true);
                let serving = cond.and_then(|c| c.serving).unwrap_or(ready);
                let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
                let local = !cfg.node_name.is_empty()
                    && ep.node_name.as_deref() == Some(cfg.node_name.as_str());
                // The same address in two slices (a pod moving between slices): first one wins.
                eps.entry((ip, number)).or_insert(Endpoint {
                    ip,
                    port: number,
                    ready,
                    serving,
                    terminating,
                    local,
                });
            }
        }
    }

    fn add_service(
        &mut self,
        svc: &Service,
        cfg: &ProxyConfig,
        endpoints: &mut BTreeMap<ServicePortName, BTreeMap<(IpAddr, u16), Endpoint>>,
    ) {
        let meta = &svc.metadata;
        let name = ServiceName {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        };
        if name.namespace.is_empty() || name.name.is_empty() {
            self.skip("Service", &name, "no namespace or name");
            return;
        }
        if meta
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(SERVICE_PROXY_NAME_LABEL))
        {
            return;
        }
        let Some(spec) = svc.spec.as_ref() else {
            self.skip("Service", &name, "no spec");
            return;
        };
        let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
        if type_ == "ExternalName" {
            return;
        }
        let raw_ips: Vec<&str> = match (&spec.cluster_ips, &spec.cluster_ip) {
            (Some(ips), _) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
            (_, Some(ip)) if !ip.is_empty() => vec![ip.as_str()],
            _ => vec![],
        };
        if raw_ips.is_empty() || raw_ips.contains(&"None") {
            // Headless (or not yet allocated): nothing to proxy.
            return;
        }
        let mut cluster_ips = Vec::new();
        for raw in raw_ips {
            match raw.parse::<IpAddr>() {
                Ok(ip) => cluster_ips.push(ip),
                Err(_) => {
                    self.skip(
                        "Service",
                        &name,
                        format!("spec.clusterIPs: {raw:?} is not an IP address"),
                    );
                    return;
                }
            }
        }
        let annotations = meta.annotations.as_ref();
        let scheduler = match annotations.and_then(|a| a.get(SCHEDULER_ANNOTATION)) {
            None => cfg.scheduler,
            Some(s) => match s.parse() {
                Ok(s) => s,
                Err(e) => {
                    // A typo must not take the Service down: use the node's default and say so.
                    self.skip(
                        "Service",
                        &name,
                        format!(
                            "annotation {SCHEDULER_ANNOTATION}: {e}; using {}",
                            cfg.scheduler
                        ),
                    );
                    cfg.scheduler
                }
            },
        };
        let mut external_ips = Vec::new();
        for raw in spec.external_ips.iter().flatten() {
            match raw.parse::<IpAddr>() {
                Ok(ip) => external_ips.push(ip),
                Err(_) => self.skip(
                    "Service",
                    &name,
                    format!("spec.externalIPs: {raw:?} is not an IP address"),
                ),
            }
        }
        let mut load_balancer_ips = Vec::new();
        if type_ == "LoadBalancer" {
            let ingress = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref());
            for ing in ingress.into_iter().flatten() {
                if ing.ip_mode.as_deref() == Some("Proxy") {
                    continue;
                }
                if let Some(raw) = &ing.ip {
                    match raw.parse::<IpAddr>() {
                        Ok(ip) => load_balancer_ips.push(ip),
                        Err(_) => self.skip(
                            "Service",
                            &name,
                            format!("status.loadBalancer.ingress: {raw:?} is not an IP address"),
                        ),
                    }
                }
            }
        }
        let mut source_ranges = Vec::new();
        let raw_ranges: Vec<String> = match &spec.load_balancer_source_ranges {
            Some(r) if !r.is_empty() => r.clone(),
            _ => annotations
                .and_then(|a| a.get(SOURCE_RANGES_ANNOTATION))
                .map(|s| {
                    s.split(',')
                        .map(|r| r.trim().to_string())
                        .filter(|r| !r.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        };
        for raw in &raw_ranges {
            match raw
                .parse::<IpNet>()
                .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
            {
                Ok(net) => source_ranges.push(net.trunc()),
                Err(_) => {
                    // Opening a firewalled Service to everyone because one range is bad would be
                    // worse than not programming it.
                    self.skip(
                        "Service",
                        &name,
                        format!("loadBalancerSourceRanges: {raw:?} is not a CIDR"),
                    );
                    return;
                }
            }
        }
        let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0)
                .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
        });
        let internal_policy_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        let etp_local = spec.external_traffic_policy.as_deref() == Some("Local");

        let mut ports = Vec::new();
        let mut seen = BTreeSet::new();
        for port in spec.ports.iter().flatten() {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let Some(protocol) = Protocol::from_k8s(protocol) else {
                self.skip(
                    "Service",
                    &name,
                    format!(
                        "port {}: protocol {protocol:?} is not TCP, UDP or SCTP",
                        port.port
                    ),
                );
                continue;
            };
            let Some(number) = u16::try_from(port.port).ok().filter(|p| *p != 0) else {
                self.skip(
                    "Service",
                    &name,
                    format!("port {} is not a port number", port.port),
                );
                continue;
            };
            let node_port = match port.node_port {
                None | Some(0) => None,
                Some(p) => match u16::try_from(p) {
                    Ok(p) => Some(p),
                    Err(_) => {
                        self.skip(
                            "Service",
                            &name,
                            format!("nodePort {p} is not a port number"),
                        );
                        continue;
                    }
                },
            };
            let key = ServicePortName {
                service: name.clone(),
                port: port.name.clone().unwrap_or_default(),
                protocol,
            };
            if !seen.insert(key.clone()) {
                self.skip("Service", &name, format!("duplicate port {}", key));
                continue;
            }
            let eps: Vec<Endpoint> = endpoints
                .remove(&key)
                .map(|m| m.into_values().collect())
                .unwrap_or_default();
            let mut sp = ServicePort {
                name: key,
                cluster_ips: cluster_ips.clone(),
                port: number,
                node_port,
                external_ips: external_ips.clone(),
                load_balancer_ips: load_balancer_ips.clone(),
                source_ranges: source_ranges.clone(),
                affinity_timeout,
                external_policy_local: false,
                internal_policy_local,
                scheduler,
                endpoints: eps,
            };
            sp.external_policy_local = etp_local && sp.externally_accessible();
            ports.push(sp);
        }
        if etp_local && type_ == "LoadBalancer" {
            if let Some(hc) = spec
                .health_check_node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
            {
                let local: BTreeSet<IpAddr> = ports
                    .iter()
                    .flat_map(|sp| sp.endpoints.iter())
                    .filter(|ep| ep.local && ep.ready)
                    .map(|ep| ep.ip)
                    .collect();
                self.health_checks.insert(
                    name.clone(),
                    HealthCheck {
                        node_port: hc,
                        local_endpoints: local.len(),
                    },
                );
            }
        }
        for sp in ports {
            self.service_ports.insert(sp.name.clone(), sp);
        }
    }
}
