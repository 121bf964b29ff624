//! Services + EndpointSlices → [`Snapshot`], as kube-proxy's ServiceChangeTracker and
//! EndpointsChangeTracker see them. Each object is first parsed on its own (`ParsedService`,
//! `ParsedSlice`), then a Service's ports are assembled from its parsed Service and its slices.
//! [`Snapshot::build`] does that for everything at once; [`SnapshotTracker`] keeps the parsed
//! objects and re-assembles only the Services an update touches, with the same two functions,
//! so an incremental snapshot equals a full build of the same objects (property-tested).

use crate::{Hints, IpFamily, Protocol, ProxyConfig, Scheduler, SCHEDULER_ANNOTATION};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// Label of Services handled by another proxy (kube-proxy skips them too).
const SERVICE_PROXY_NAME_LABEL: &str = "service.kubernetes.io/service-proxy-name";
/// Label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label the EndpointSlice controller puts on slices of headless Services.
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// The EndpointSlice controller's record of when the change that produced the slice happened.
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// The pre-field spelling of loadBalancerSourceRanges (kube-proxy still honours it).
pub const SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
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
    /// Its topology hints as they concern this node and its [`ProxyConfig::zone`].
    pub hints: Hints,
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
    /// Shared (`Arc`): an incremental snapshot replaces only the ports of changed Services, so
    /// a data plane can tell unchanged ports by pointer and keep them without a copy.
    pub service_ports: BTreeMap<ServicePortName, Arc<ServicePort>>,
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
    ///
    /// Objects are taken in name order whatever the order given (the last of a repeated name
    /// wins, as in a store), so the result does not depend on a store's iteration order: an
    /// address in two slices of a Service keeps the conditions of the first slice by name.
    pub fn build<'a>(
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        cfg: &ProxyConfig,
    ) -> Snapshot {
        let slices: BTreeMap<SliceName, ParsedSlice> = slices
            .into_iter()
            .map(|s| {
                (
                    slice_key(s),
                    ParsedSlice::parse(s, &cfg.node_name, &cfg.zone),
                )
            })
            .collect();
        let services: BTreeMap<ServiceName, ParsedService> = services
            .into_iter()
            .map(|s| (service_key(s), ParsedService::parse(s)))
            .collect();
        let mut by_service: BTreeMap<&ServiceName, Vec<&ParsedSlice>> = BTreeMap::new();
        let mut snap = Snapshot::default();
        for (name, ps) in &slices {
            if let Some(t) = ps.trigger_time {
                snap.slice_trigger_times.insert(name.clone(), t);
            }
            snap.skipped.extend(ps.skipped.iter().cloned());
            if let Some(svc) = &ps.service {
                by_service.entry(svc).or_default().push(ps);
            }
        }
        for (name, svc) in &services {
            let slices = by_service.remove(name).unwrap_or_default();
            let a = svc.assemble(name, svc.ports.clone(), slices, cfg);
            snap.skipped.extend(a.skipped);
            if let Some(hc) = a.health_check {
                snap.health_checks.insert(name.clone(), hc);
            }
            for sp in a.ports {
                snap.service_ports.insert(sp.name.clone(), Arc::new(sp));
            }
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
            .map(|sp| &**sp)
    }
}

/// The key of a Service in a [`SnapshotTracker`] (and in [`Snapshot::build`]).
pub fn service_key(svc: &Service) -> ServiceName {
    ServiceName {
        namespace: svc.metadata.namespace.clone().unwrap_or_default(),
        name: svc.metadata.name.clone().unwrap_or_default(),
    }
}

/// The key of an EndpointSlice (its name, or its generateName when it has none yet).
pub fn slice_key(slice: &EndpointSlice) -> SliceName {
    let meta = &slice.metadata;
    ServiceName {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta
            .name
            .clone()
            .or_else(|| meta.generate_name.clone())
            .unwrap_or_default(),
    }
}

/// Keeps a [`Snapshot`] up to date one object at a time (kube-proxy's change trackers): an
/// update re-parses that object and re-assembles only the Service it belongs to (for a slice
/// that moved, both Services). The result equals [`Snapshot::build`] of the same objects.
///
/// The configuration is fixed: endpoints are marked local when parsed. On a configuration
/// change make a new tracker from the objects.
#[derive(Clone, Debug)]
pub struct SnapshotTracker {
    cfg: ProxyConfig,
    services: BTreeMap<ServiceName, ParsedService>,
    slices: BTreeMap<SliceName, ParsedSlice>,
    /// Slices by the Service their label names, in name order (few per Service: a Vec).
    slices_of: BTreeMap<ServiceName, Vec<SliceName>>,
    /// Skips of each object (non-empty only), from which `snap.skipped` is rebuilt in the
    /// order `build` lists them: slices by name, then Services by name.
    slice_skips: BTreeMap<SliceName, Vec<Skipped>>,
    service_skips: BTreeMap<ServiceName, Vec<Skipped>>,
    skips_changed: bool,
    snap: Snapshot,
}

impl SnapshotTracker {
    pub fn new(cfg: ProxyConfig) -> Self {
        SnapshotTracker {
            cfg,
            services: BTreeMap::new(),
            slices: BTreeMap::new(),
            slices_of: BTreeMap::new(),
            slice_skips: BTreeMap::new(),
            service_skips: BTreeMap::new(),
            skips_changed: false,
            snap: Snapshot::default(),
        }
    }

    /// A tracker holding `services` and `slices` (the first sync, a re-list, a new config).
    pub fn from_objects<'a>(
        cfg: ProxyConfig,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Self {
        let mut t = SnapshotTracker::new(cfg);
        // Slices first: each Service is then assembled once, when it arrives.
        for s in slices {
            t.apply_slice(s);
        }
        for s in services {
            t.apply_service(s);
        }
        t
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    /// The snapshot as of every update so far.
    pub fn snapshot(&mut self) -> &Snapshot {
        if self.skips_changed {
            self.snap.skipped = self
                .slice_skips
                .values()
                .chain(self.service_skips.values())
                .flatten()
                .cloned()
                .collect();
            self.skips_changed = false;
        }
        &self.snap
    }

    /// A Service was added or changed.
    pub fn apply_service(&mut self, svc: &Service) {
        let name = service_key(svc);
        self.remove_ports(&name);
        let mut parsed = ParsedService::parse(svc);
        let templates = std::mem::take(&mut parsed.ports);
        self.services.insert(name.clone(), parsed);
        self.assemble(&name, templates);
    }

    /// A Service was deleted.
    pub fn delete_service(&mut self, name: &ServiceName) {
        self.remove_ports(name);
        self.services.remove(name);
    }

    /// An EndpointSlice was added or changed.
    pub fn apply_slice(&mut self, slice: &EndpointSlice) {
        let name = slice_key(slice);
        let parsed = ParsedSlice::parse(slice, &self.cfg.node_name, &self.cfg.zone);
        let old = self.remove_slice(&name);
        if let Some(t) = parsed.trigger_time {
            self.snap.slice_trigger_times.insert(name.clone(), t);
        }
        if !parsed.skipped.is_empty() {
            self.slice_skips
                .insert(name.clone(), parsed.skipped.clone());
            self.skips_changed = true;
        }
        let service = parsed.service.clone();
        if let Some(svc) = &service {
            let of = self.slices_of.entry(svc.clone()).or_default();
            if let Err(at) = of.binary_search(&name) {
                of.insert(at, name.clone());
            }
        }
        self.slices.insert(name, parsed);
        if let Some(old) = old.filter(|o| Some(o) != service.as_ref()) {
            self.reassemble(&old);
        }
        if let Some(svc) = service {
            self.reassemble(&svc);
        }
    }

    /// An EndpointSlice was deleted.
    pub fn delete_slice(&mut self, name: &SliceName) {
        if let Some(svc) = self.remove_slice(name) {
            self.reassemble(&svc);
        }
    }

    /// Forgets a slice (index, trigger time, skips); returns the Service it belonged to.
    fn remove_slice(&mut self, name: &SliceName) -> Option<ServiceName> {
        let old = self.slices.remove(name)?;
        self.snap.slice_trigger_times.remove(name);
        if self.slice_skips.remove(name).is_some() {
            self.skips_changed = true;
        }
        let svc = old.service?;
        if let Some(set) = self.slices_of.get_mut(&svc) {
            set.retain(|s| s != name);
            if set.is_empty() {
                self.slices_of.remove(&svc);
            }
        }
        Some(svc)
    }

    fn reassemble(&mut self, name: &ServiceName) {
        if self.services.contains_key(name) {
            // The ports as last assembled are the templates: only their endpoints change.
            let templates = self.remove_ports(name);
            self.assemble(name, templates);
        }
    }

    /// Removes what the assembled Service `name` put into the snapshot; returns its ports.
    fn remove_ports(&mut self, name: &ServiceName) -> Vec<ServicePort> {
        let first = ServicePortName {
            service: name.clone(),
            port: String::new(),
            protocol: Protocol::Tcp,
        };
        let keys: Vec<ServicePortName> = self
            .snap
            .service_ports
            .range(first..)
            .take_while(|(k, _)| &k.service == name)
            .map(|(k, _)| k.clone())
            .collect();
        let ports = keys
            .iter()
            .filter_map(|k| self.snap.service_ports.remove(k))
            .map(|sp| Arc::try_unwrap(sp).unwrap_or_else(|sp| (*sp).clone()))
            .collect();
        self.snap.health_checks.remove(name);
        if self.service_skips.remove(name).is_some() {
            self.skips_changed = true;
        }
        ports
    }

    fn assemble(&mut self, name: &ServiceName, templates: Vec<ServicePort>) {
        let Some(svc) = self.services.get(name) else {
            return;
        };
        let slices: Vec<&ParsedSlice> = self
            .slices_of
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|s| self.slices.get(s))
            .collect();
        let a = svc.assemble(name, templates, slices, &self.cfg);
        if !a.skipped.is_empty() {
            self.service_skips.insert(name.clone(), a.skipped);
            self.skips_changed = true;
        }
        if let Some(hc) = a.health_check {
            self.snap.health_checks.insert(name.clone(), hc);
        }
        for sp in a.ports {
            self.snap
                .service_ports
                .insert(sp.name.clone(), Arc::new(sp));
        }
    }
}

/// One EndpointSlice as the proxy needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ParsedSlice {
    trigger_time: Option<DateTime<Utc>>,
    /// The Service it belongs to; `None` when it is not proxied (headless, FQDN, unlabelled).
    service: Option<ServiceName>,
    /// Per port (name, protocol): its endpoints in slice order.
    ports: Vec<(String, Protocol, Vec<Endpoint>)>,
    skipped: Vec<Skipped>,
}

fn skip(
    skipped: &mut Vec<Skipped>,
    kind: &'static str,
    name: &ServiceName,
    reason: impl Into<String>,
) {
    skipped.push(Skipped {
        kind,
        name: name.clone(),
        reason: reason.into(),
    });
}

impl ParsedSlice {
    fn parse(slice: &EndpointSlice, node_name: &str, zone: &str) -> ParsedSlice {
        let mut out = ParsedSlice {
            trigger_time: None,
            service: None,
            ports: Vec::new(),
            skipped: Vec::new(),
        };
        let meta = &slice.metadata;
        let name = slice_key(slice);
        let sk = &mut out.skipped;
        if let Some(t) = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(TRIGGER_TIME_ANNOTATION))
        {
            match DateTime::parse_from_rfc3339(t) {
                Ok(t) => out.trigger_time = Some(t.with_timezone(&Utc)),
                Err(e) => skip(
                    sk,
                    "EndpointSlice",
                    &name,
                    format!("ignored {TRIGGER_TIME_ANNOTATION} {t:?}: {e}"),
                ),
            }
        }
        let labels = meta.labels.as_ref();
        if labels.is_some_and(|l| l.contains_key(HEADLESS_LABEL)) {
            return out;
        }
        let Some(service) = labels.and_then(|l| l.get(SERVICE_NAME_LABEL)) else {
            skip(
                sk,
                "EndpointSlice",
                &name,
                format!("no {SERVICE_NAME_LABEL} label"),
            );
            return out;
        };
        if name.namespace.is_empty() {
            skip(sk, "EndpointSlice", &name, "no namespace");
            return out;
        }
        let family = match slice.address_type.as_str() {
            "IPv4" => IpFamily::V4,
            "IPv6" => IpFamily::V6,
            // FQDN slices are not proxied by kube-proxy either.
            _ => return out,
        };
        let service = ServiceName {
            namespace: name.namespace.clone(),
            name: service.clone(),
        };
        for port in slice.ports.iter().flatten() {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let Some(protocol) = Protocol::from_k8s(protocol) else {
                skip(
                    sk,
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
                skip(
                    sk,
                    "EndpointSlice",
                    &name,
                    format!("port {:?} is not a port number", port.port),
                );
                continue;
            };
            let mut eps = Vec::new();
            for ep in &slice.endpoints {
                // kube-proxy uses the first address only; the API allows exactly one today.
                let Some(addr) = ep.addresses.first() else {
                    continue;
                };
                let Ok(ip) = addr.parse::<IpAddr>() else {
                    skip(
                        sk,
                        "EndpointSlice",
                        &name,
                        format!("endpoint address {addr:?} is not an IP address"),
                    );
                    continue;
                };
                if IpFamily::of(&ip) != family {
                    skip(
                        sk,
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
                let local = !node_name.is_empty() && ep.node_name.as_deref() == Some(node_name);
                eps.push(Endpoint {
                    ip,
                    port: number,
                    ready,
                    serving,
                    terminating,
                    local,
                    hints: Hints::of(ep, node_name, zone),
                });
            }
            out.ports
                .push((port.name.clone().unwrap_or_default(), protocol, eps));
        }
        out.service = Some(service);
        out
    }
}

/// One Service as the proxy needs it: its service ports without endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ParsedService {
    /// The scheduler annotation, parsed (`None`: absent, the node's default applies).
    scheduler: Option<Result<Scheduler, String>>,
    skipped: Vec<Skipped>,
    /// Without endpoints, with the scheduler still to be resolved. The tracker keeps them only
    /// in its snapshot (this is emptied once assembled).
    ports: Vec<ServicePort>,
    /// externalTrafficPolicy Local on a LoadBalancer: its healthCheckNodePort.
    health_check_node_port: Option<u16>,
}

/// A Service's part of a snapshot.
struct Assembled {
    ports: Vec<ServicePort>,
    health_check: Option<HealthCheck>,
    skipped: Vec<Skipped>,
}

impl ParsedService {
    fn parse(svc: &Service) -> ParsedService {
        let mut out = ParsedService {
            scheduler: None,
            skipped: Vec::new(),
            ports: Vec::new(),
            health_check_node_port: None,
        };
        let sk = &mut out.skipped;
        let meta = &svc.metadata;
        let name = service_key(svc);
        if name.namespace.is_empty() || name.name.is_empty() {
            skip(sk, "Service", &name, "no namespace or name");
            return out;
        }
        if meta
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(SERVICE_PROXY_NAME_LABEL))
        {
            return out;
        }
        let Some(spec) = svc.spec.as_ref() else {
            skip(sk, "Service", &name, "no spec");
            return out;
        };
        let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
        if type_ == "ExternalName" {
            return out;
        }
        let raw_ips: Vec<&str> = match (&spec.cluster_ips, &spec.cluster_ip) {
            (Some(ips), _) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
            (_, Some(ip)) if !ip.is_empty() => vec![ip.as_str()],
            _ => vec![],
        };
        if raw_ips.is_empty() || raw_ips.contains(&"None") {
            // Headless (or not yet allocated): nothing to proxy.
            return out;
        }
        let mut cluster_ips = Vec::new();
        for raw in raw_ips {
            match raw.parse::<IpAddr>() {
                Ok(ip) => cluster_ips.push(ip),
                Err(_) => {
                    skip(
                        sk,
                        "Service",
                        &name,
                        format!("spec.clusterIPs: {raw:?} is not an IP address"),
                    );
                    return out;
                }
            }
        }
        let annotations = meta.annotations.as_ref();
        // Resolved against the node's default when assembled (its skip goes first then).
        out.scheduler = annotations
            .and_then(|a| a.get(SCHEDULER_ANNOTATION))
            .map(|s| s.parse::<Scheduler>());
        let mut external_ips = Vec::new();
        for raw in spec.external_ips.iter().flatten() {
            match raw.parse::<IpAddr>() {
                Ok(ip) => external_ips.push(ip),
                Err(_) => skip(
                    sk,
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
                        Err(_) => skip(
                            sk,
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
                    skip(
                        sk,
                        "Service",
                        &name,
                        format!("loadBalancerSourceRanges: {raw:?} is not a CIDR"),
                    );
                    return out;
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

        let mut seen = BTreeSet::new();
        for port in spec.ports.iter().flatten() {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let Some(protocol) = Protocol::from_k8s(protocol) else {
                skip(
                    sk,
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
                skip(
                    sk,
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
                        skip(
                            sk,
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
                skip(sk, "Service", &name, format!("duplicate port {}", key));
                continue;
            }
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
                scheduler: Scheduler::default(),
                endpoints: Vec::new(),
            };
            sp.external_policy_local = etp_local && sp.externally_accessible();
            out.ports.push(sp);
        }
        if etp_local && type_ == "LoadBalancer" {
            out.health_check_node_port = spec
                .health_check_node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0);
        }
        out
    }

    /// This Service's ports with their endpoints from `slices` (in slice name order: the first
    /// slice that lists an address and port wins).
    fn assemble(
        &self,
        name: &ServiceName,
        templates: Vec<ServicePort>,
        slices: Vec<&ParsedSlice>,
        cfg: &ProxyConfig,
    ) -> Assembled {
        let mut skipped = Vec::new();
        let scheduler = match &self.scheduler {
            None => cfg.scheduler,
            Some(Ok(s)) => *s,
            Some(Err(e)) => {
                // A typo must not take the Service down: use the node's default and say so.
                skip(
                    &mut skipped,
                    "Service",
                    name,
                    format!(
                        "annotation {SCHEDULER_ANNOTATION}: {e}; using {}",
                        cfg.scheduler
                    ),
                );
                cfg.scheduler
            }
        };
        skipped.extend(self.skipped.iter().cloned());
        // (port name, protocol) → endpoints by address and port.
        type ByPort<'a> = BTreeMap<(&'a String, Protocol), BTreeMap<(IpAddr, u16), &'a Endpoint>>;
        let mut endpoints: ByPort = BTreeMap::new();
        for slice in slices {
            for (port, protocol, eps) in &slice.ports {
                let m = endpoints.entry((port, *protocol)).or_default();
                for ep in eps {
                    m.entry((ep.ip, ep.port)).or_insert(ep);
                }
            }
        }
        let ports: Vec<ServicePort> = templates
            .into_iter()
            .map(|mut sp| {
                sp.scheduler = scheduler;
                let key = endpoints
                    .keys()
                    .find(|(port, protocol)| {
                        **port == sp.name.port && *protocol == sp.name.protocol
                    })
                    .copied();
                sp.endpoints = key
                    .and_then(|k| endpoints.remove(&k))
                    .map(|m| m.into_values().cloned().collect())
                    .unwrap_or_default();
                sp
            })
            .collect();
        let health_check = self.health_check_node_port.map(|node_port| {
            let local: BTreeSet<IpAddr> = ports
                .iter()
                .flat_map(|sp| sp.endpoints.iter())
                .filter(|ep| ep.local && ep.ready)
                .map(|ep| ep.ip)
                .collect();
            HealthCheck {
                node_port,
                local_endpoints: local.len(),
            }
        });
        Assembled {
            ports,
            health_check,
            skipped,
        }
    }
}
