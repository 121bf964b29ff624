//! The cluster zone as a pure function of Services and EndpointSlices: every record of the
//! Kubernetes DNS specification, compiled once per change into wire bytes so that answering is
//! a hash lookup and a copy. No I/O here; `Zone::build` is what the unit tests drive.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::wire::{self, encode_name, push_rr, rtype};

/// The version of the specification these records follow (its section 2.2).
pub const SCHEMA_VERSION: &str = "1.1.0";

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const TOLERATE_UNREADY: &str = "service.alpha.kubernetes.io/tolerate-unready-endpoints";

/// How `a-b-c-d.<ns>.pod.<zone>` names are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PodMode {
    /// Any well-formed name answers with the address it spells (the specification's section on
    /// deprecated records, and CoreDNS's `pods insecure`, which k3s configures).
    #[default]
    Insecure,
    /// No pod records: NXDOMAIN.
    Disabled,
}

impl std::str::FromStr for PodMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "insecure" => Ok(PodMode::Insecure),
            "disabled" => Ok(PodMode::Disabled),
            _ => Err(format!(
                "pod records mode must be insecure or disabled, not {s:?}"
            )),
        }
    }
}

/// What the zone is built with.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    /// The cluster domain, `cluster.local` by default.
    pub domain: String,
    /// The addresses the cluster DNS is reached at, answered for `ns.dns.<zone>` (the NS of the
    /// zone apex), as CoreDNS does.
    pub dns_ips: Vec<IpAddr>,
    /// TTL of every positive answer (CoreDNS's kubernetes plugin default: 5 s).
    pub ttl: u32,
    /// TTL and minimum of the SOA sent with NXDOMAIN and NODATA (RFC 2308 negative caching).
    pub negative_ttl: u32,
    pub pods: PodMode,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        ZoneConfig {
            domain: "cluster.local".into(),
            dns_ips: vec!["10.43.0.10".parse().unwrap()],
            ttl: 5,
            negative_ttl: 5,
            pods: PodMode::Insecure,
        }
    }
}

/// A set of records of one type at one name, compiled: answer records with the owner as a
/// pointer to the question (offset 12), and additional records with full owner names.
#[derive(Clone, Debug, Default)]
pub struct RrSet {
    pub rtype: u16,
    pub an: u16,
    pub ar: u16,
    pub answer: Box<[u8]>,
    pub additional: Box<[u8]>,
    /// When every answer record has the same length (A, AAAA), that length: the answer can
    /// then be rotated per query, round-robin, without parsing.
    pub stride: u16,
}

/// An ExternalName (CNAME) at a name.
#[derive(Clone, Debug)]
pub struct Cname {
    /// The CNAME record itself, owner pointing at the question.
    pub rr: Box<[u8]>,
    /// The target, lower-case wire form.
    pub target: Box<[u8]>,
    /// The target is inside the cluster zone: answers for it were chased at build time and
    /// sit in the node's sets; otherwise the forwarder resolves it per query.
    pub in_zone: bool,
}

/// Everything at one name. A node without sets is an empty non-terminal (the name exists,
/// e.g. `<ns>.svc.<zone>`): NODATA rather than NXDOMAIN.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub sets: Vec<RrSet>,
    pub any: Option<RrSet>,
    pub cname: Option<Cname>,
}

impl Node {
    #[inline]
    pub fn set(&self, qtype: u16) -> Option<&RrSet> {
        if qtype == rtype::ANY {
            return self.any.as_ref();
        }
        self.sets.iter().find(|s| s.rtype == qtype)
    }
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// The compiled zone: immutable, swapped atomically as a whole when objects change.
#[derive(Debug)]
pub struct Zone {
    pub ready: bool,
    pub origin: Box<[u8]>,
    /// `pod.<zone>` in wire form.
    pub pod_suffix: Box<[u8]>,
    pub names: FastMap<Box<[u8]>, Node>,
    /// Authority records for negative answers: the zone's SOA, and the reverse zones' ones.
    pub soa: Box<[u8]>,
    pub soa_in_addr: Box<[u8]>,
    pub soa_ip6: Box<[u8]>,
    pub in_addr: Box<[u8]>,
    pub ip6: Box<[u8]>,
    pub ttl: u32,
    pub pods: PodMode,
    /// Services and names compiled, for the log line and metrics.
    pub services: usize,
}

/// One record in the making.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    rtype: u16,
    rdata: Vec<u8>,
    /// For SRV: the target, whose addresses go in the additional section.
    target: Option<Vec<u8>>,
}

#[derive(Default)]
struct DraftNode {
    recs: BTreeSet<Rec>,
    cname: Option<Vec<u8>>,
}

#[derive(Default)]
struct Draft {
    nodes: HashMap<Vec<u8>, DraftNode>,
}

impl Draft {
    fn add(&mut self, name: &[u8], rtype: u16, rdata: Vec<u8>, target: Option<Vec<u8>>) {
        self.nodes
            .entry(name.to_vec())
            .or_default()
            .recs
            .insert(Rec {
                rtype,
                rdata,
                target,
            });
    }
    fn addrs(&self, name: &[u8]) -> impl Iterator<Item = &Rec> {
        self.nodes
            .get(name)
            .into_iter()
            .flat_map(|n| n.recs.iter())
            .filter(|r| r.rtype == rtype::A || r.rtype == rtype::AAAA)
    }
}

fn ip_rdata(ip: IpAddr) -> (u16, Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => (rtype::A, v4.octets().to_vec()),
        IpAddr::V6(v6) => (rtype::AAAA, v6.octets().to_vec()),
    }
}

fn srv_rdata(priority: u16, weight: u16, port: u16, target: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(6 + target.len());
    r.extend(priority.to_be_bytes());
    r.extend(weight.to_be_bytes());
    r.extend(port.to_be_bytes());
    r.extend_from_slice(target);
    r
}

/// A label as Kubernetes names are (RFC 1123): 1-63 letters, digits and hyphens. Objects
/// the API server validated always pass; this guards against any other source.
fn valid_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// The system-assigned _hostname_ of an endpoint without one: its address with dashes, as
/// CoreDNS does (`10-1-2-3`, `fd00--1`), unique within the Service and stable.
fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

/// Joins labels and the zone into a wire name, None when too long or a label is bad.
fn name_of(parts: &[&str], zone: &str) -> Option<Vec<u8>> {
    if parts.iter().any(|p| !valid_label(p)) {
        return None;
    }
    encode_name(&format!("{}.{}", parts.join("."), zone))
}

fn service_is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

impl Zone {
    /// A zone with only the apex records, not ready: in-zone names get SERVFAIL until the
    /// first complete lists arrive (as CoreDNS does while it syncs).
    pub fn empty(cfg: &ZoneConfig) -> Zone {
        let mut z = Zone::build(cfg, [], []);
        z.ready = false;
        z
    }

    /// Compiles the zone from Services and EndpointSlices. Objects that can't make valid
    /// records are logged and skipped; the rest is served.
    pub fn build<'a>(
        cfg: &ZoneConfig,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Zone {
        let domain = cfg.domain.trim_end_matches('.').to_ascii_lowercase();
        let origin = encode_name(&domain).unwrap_or_else(|| {
            tracing::error!(domain, "invalid cluster domain, using cluster.local");
            encode_name("cluster.local").unwrap()
        });
        let domain = wire::name_to_text(&origin)
            .trim_end_matches('.')
            .to_string();
        let mut d = Draft::default();

        // The apex: SOA, NS, the name server's addresses, and the schema version (2.2).
        let ns_name = encode_name(&format!("ns.dns.{domain}")).unwrap();
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        let mut soa_rdata = ns_name.clone();
        soa_rdata.extend(encode_name(&format!("hostmaster.{domain}")).unwrap());
        for v in [serial, 7200, 1800, 86400, cfg.negative_ttl] {
            soa_rdata.extend(v.to_be_bytes());
        }
        d.add(&origin, rtype::SOA, soa_rdata.clone(), None);
        d.add(&origin, rtype::NS, ns_name.clone(), None);
        for ip in &cfg.dns_ips {
            let (t, r) = ip_rdata(*ip);
            d.add(&ns_name, t, r, None);
        }
        let mut txt = vec![SCHEMA_VERSION.len() as u8];
        txt.extend(SCHEMA_VERSION.bytes());
        d.add(
            &encode_name(&format!("dns-version.{domain}")).unwrap(),
            rtype::TXT,
            txt,
            None,
        );

        // EndpointSlices by (namespace, service name).
        let mut slices_of: HashMap<(String, String), Vec<&EndpointSlice>> = HashMap::new();
        for s in slices {
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            slices_of.entry((ns, svc.clone())).or_default().push(s);
        }

        let mut count = 0;
        for svc in services {
            let name = svc
                .metadata
                .name
                .as_deref()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let ns = svc
                .metadata
                .namespace
                .as_deref()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let Some(svc_name) = name_of(&[&name, &ns, "svc"], &domain) else {
                tracing::warn!(
                    namespace = ns,
                    name,
                    "service name makes no valid DNS name, skipped"
                );
                continue;
            };
            let spec = svc.spec.clone().unwrap_or_default();
            let added = if spec.type_.as_deref() == Some("ExternalName") {
                add_external_name(&mut d, &svc_name, spec.external_name.as_deref(), &ns, &name)
            } else if service_is_headless(svc) {
                let slices = slices_of
                    .get(&(ns.clone(), name.clone()))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                add_headless(
                    &mut d,
                    svc,
                    &svc_name,
                    &[&name, &ns, "svc"],
                    &domain,
                    slices,
                )
            } else {
                add_cluster_ip(&mut d, svc, &svc_name, &name, &ns)
            };
            count += added as usize;
        }

        let soa_auth = |owner: &[u8]| {
            let mut b = Vec::new();
            push_rr(
                &mut b,
                Some(owner),
                rtype::SOA,
                cfg.negative_ttl,
                &soa_rdata,
            );
            b.into_boxed_slice()
        };
        let in_addr = encode_name("in-addr.arpa").unwrap();
        let ip6 = encode_name("ip6.arpa").unwrap();
        Zone {
            ready: true,
            pod_suffix: encode_name(&format!("pod.{domain}")).unwrap().into(),
            names: compile(&d, &origin, cfg.ttl),
            soa: soa_auth(&origin),
            soa_in_addr: soa_auth(&in_addr),
            soa_ip6: soa_auth(&ip6),
            in_addr: in_addr.into(),
            ip6: ip6.into(),
            origin: origin.into(),
            ttl: cfg.ttl,
            pods: cfg.pods,
            services: count,
        }
    }

    /// Number of names (including empty non-terminals).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

fn add_external_name(
    d: &mut Draft,
    svc_name: &[u8],
    ext: Option<&str>,
    ns: &str,
    name: &str,
) -> bool {
    let target = ext
        .map(|t| t.trim_end_matches('.'))
        .filter(|t| !t.is_empty())
        .and_then(encode_name);
    match target {
        Some(t) => {
            d.nodes.entry(svc_name.to_vec()).or_default().cname = Some(t);
            true
        }
        None => {
            tracing::warn!(namespace = ns, name, external_name = ?ext, "ExternalName is no valid DNS name, skipped");
            false
        }
    }
}

fn add_cluster_ip(d: &mut Draft, svc: &Service, svc_name: &[u8], name: &str, ns: &str) -> bool {
    let spec = svc.spec.as_ref();
    let ips: Vec<IpAddr> = spec
        .and_then(|s| {
            s.cluster_ips
                .clone()
                .filter(|v| !v.is_empty())
                .or_else(|| s.cluster_ip.clone().map(|c| vec![c]))
        })
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    if ips.is_empty() {
        tracing::debug!(
            namespace = ns,
            name,
            "service has no cluster IP yet, skipped"
        );
        return false;
    }
    for ip in &ips {
        let (t, r) = ip_rdata(*ip);
        d.add(svc_name, t, r, None);
        // 2.3.3: PTR for the cluster IP.
        if let Some(rev) = encode_name(&wire::reverse_name(*ip)) {
            d.add(&rev, rtype::PTR, svc_name.to_vec(), None);
        }
    }
    // 2.3.2: SRV per named port, pointing at the Service name.
    for p in spec.and_then(|s| s.ports.as_ref()).into_iter().flatten() {
        let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
        let Some(srv) = srv_name(port_name, &proto, svc_name) else {
            continue;
        };
        d.add(
            &srv,
            rtype::SRV,
            srv_rdata(0, 100, p.port as u16, svc_name),
            Some(svc_name.to_vec()),
        );
    }
    true
}

/// `_<port>._<proto>.` in front of a wire name.
fn srv_name(port: &str, proto: &str, base: &[u8]) -> Option<Vec<u8>> {
    let port = port.to_ascii_lowercase();
    if port.len() + 1 > 63 || proto.len() + 1 > 63 {
        return None;
    }
    let mut n = Vec::with_capacity(base.len() + port.len() + proto.len() + 4);
    n.push(port.len() as u8 + 1);
    n.push(b'_');
    n.extend(port.bytes());
    n.push(proto.len() as u8 + 1);
    n.push(b'_');
    n.extend(proto.bytes());
    n.extend_from_slice(base);
    (n.len() <= wire::MAX_NAME).then_some(n)
}

fn add_headless(
    d: &mut Draft,
    svc: &Service,
    svc_name: &[u8],
    parts: &[&str],
    domain: &str,
    slices: &[&EndpointSlice],
) -> bool {
    let spec = svc.spec.as_ref();
    let publish_not_ready = spec
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
        || svc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(TOLERATE_UNREADY))
            .map(String::as_str)
            == Some("true");
    // Endpoints by address: an address in two slices (during a controller's rewrite) is one
    // endpoint.
    let mut seen: BTreeSet<IpAddr> = BTreeSet::new();
    let mut srv: Vec<(Vec<u8>, u16, Vec<u8>)> = Vec::new(); // (srv name, port, target)
    for slice in slices {
        if slice.address_type == "FQDN" {
            continue;
        }
        let ports: Vec<(String, String, u16)> = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                let name = p.name.clone().filter(|n| !n.is_empty())?;
                let proto = p
                    .protocol
                    .clone()
                    .unwrap_or_else(|| "TCP".into())
                    .to_ascii_lowercase();
                Some((name, proto, u16::try_from(p.port?).ok()?))
            })
            .collect();
        for ep in &slice.endpoints {
            // A nil ready condition means ready (EndpointConditions API docs).
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready && !publish_not_ready {
                continue;
            }
            for addr in &ep.addresses {
                let Ok(ip) = addr.parse::<IpAddr>() else {
                    tracing::warn!(slice = ?slice.metadata.name, addr, "endpoint address is no IP, skipped");
                    continue;
                };
                if !seen.insert(ip) {
                    continue;
                }
                let host = ep
                    .hostname
                    .as_deref()
                    .filter(|h| valid_label(h))
                    .map(|h| h.to_ascii_lowercase())
                    .unwrap_or_else(|| dashed(ip));
                let mut host_parts = vec![host.as_str()];
                host_parts.extend_from_slice(parts);
                let Some(host_name) = name_of(&host_parts, domain) else {
                    continue;
                };
                let (t, r) = ip_rdata(ip);
                // 2.4.1: the Service name and <hostname>.<service> answer with the address.
                d.add(svc_name, t, r.clone(), None);
                d.add(&host_name, t, r, None);
                // 2.4.3: PTR to the hostname name.
                if let Some(rev) = encode_name(&wire::reverse_name(ip)) {
                    d.add(&rev, rtype::PTR, host_name.clone(), None);
                }
                for (pname, proto, port) in &ports {
                    if let Some(n) = srv_name(pname, proto, svc_name) {
                        srv.push((n, *port, host_name.clone()));
                    }
                }
            }
        }
    }
    // 2.4.2: one SRV per ready endpoint and named port; equal priority, weights sharing 100
    // as CoreDNS does.
    let mut per_name: HashMap<&[u8], usize> = HashMap::new();
    for (n, _, _) in &srv {
        *per_name.entry(n).or_default() += 1;
    }
    let weights: HashMap<Vec<u8>, u16> = per_name
        .into_iter()
        .map(|(n, c)| (n.to_vec(), (100 / c).max(1) as u16))
        .collect();
    for (n, port, target) in &srv {
        d.add(
            n,
            rtype::SRV,
            srv_rdata(0, weights[n], *port, target),
            Some(target.clone()),
        );
    }
    // 2.4.1: no ready endpoint, no name (NXDOMAIN).
    !seen.is_empty()
}

/// Parent of a wire name (drops the first label), None at the root.
fn parent(name: &[u8]) -> Option<&[u8]> {
    let len = *name.first()? as usize;
    if len == 0 {
        return None;
    }
    name.get(1 + len..)
}

fn within(name: &[u8], origin: &[u8]) -> bool {
    let mut n = name;
    loop {
        if n == origin {
            return true;
        }
        match parent(n) {
            Some(p) => n = p,
            None => return false,
        }
    }
}

fn compile(d: &Draft, origin: &[u8], ttl: u32) -> FastMap<Box<[u8]>, Node> {
    let mut names: FastMap<Box<[u8]>, Node> = FastMap::default();
    for (name, node) in &d.nodes {
        let mut out = Node::default();
        let mut any = RrSet {
            rtype: rtype::ANY,
            ..Default::default()
        };
        let mut any_bytes = Vec::new();
        let mut types: Vec<u16> = node.recs.iter().map(|r| r.rtype).collect();
        types.dedup();
        for t in types {
            let mut answer = Vec::new();
            let mut additional = Vec::new();
            let (mut an, mut ar) = (0u16, 0u16);
            let mut lens = BTreeSet::new();
            let mut targets_done: BTreeSet<&[u8]> = BTreeSet::new();
            for r in node.recs.iter().filter(|r| r.rtype == t) {
                let before = answer.len();
                push_rr(&mut answer, None, t, ttl, &r.rdata);
                lens.insert(answer.len() - before);
                an += 1;
                if let Some(target) = &r.target {
                    if targets_done.insert(target) {
                        for a in d.addrs(target) {
                            push_rr(&mut additional, Some(target), a.rtype, ttl, &a.rdata);
                            ar += 1;
                        }
                    }
                }
            }
            any_bytes.extend_from_slice(&answer);
            any.an += an;
            let stride = if lens.len() == 1 && an > 1 && (t == rtype::A || t == rtype::AAAA) {
                *lens.first().unwrap() as u16
            } else {
                0
            };
            out.sets.push(RrSet {
                rtype: t,
                an,
                ar,
                answer: answer.into(),
                additional: additional.into(),
                stride,
            });
        }
        if let Some(target) = &node.cname {
            let mut rr = Vec::new();
            push_rr(&mut rr, None, rtype::CNAME, ttl, target);
            let in_zone = within(target, origin);
            if in_zone {
                // Chase the target inside the zone now, one answer per type the target has.
                if let Some(tnode) = d.nodes.get(target) {
                    let mut types: Vec<u16> = tnode.recs.iter().map(|r| r.rtype).collect();
                    types.dedup();
                    for t in types {
                        let mut answer = rr.clone();
                        let mut an = 1;
                        for r in tnode.recs.iter().filter(|r| r.rtype == t) {
                            push_rr(&mut answer, Some(target), t, ttl, &r.rdata);
                            an += 1;
                        }
                        out.sets.push(RrSet {
                            rtype: t,
                            an,
                            answer: answer.into(),
                            ..Default::default()
                        });
                    }
                }
            }
            any_bytes.extend_from_slice(&rr);
            any.an += 1;
            out.sets.push(RrSet {
                rtype: rtype::CNAME,
                an: 1,
                answer: rr.clone().into(),
                ..Default::default()
            });
            out.cname = Some(Cname {
                rr: rr.into(),
                target: target.clone().into(),
                in_zone,
            });
        }
        if any.an > 0 {
            any.answer = any_bytes.into();
            out.any = Some(any);
        }
        names.insert(name.clone().into(), out);
        // Empty non-terminals between the name and the apex exist (NODATA, not NXDOMAIN).
        if name.as_slice() != origin && within(name, origin) {
            let mut n = parent(name);
            while let Some(p) = n {
                names.entry(p.into()).or_default();
                if p == origin {
                    break;
                }
                n = parent(p);
            }
        }
    }
    // An empty non-terminal inserted before its real node was compiled is replaced by the
    // insert above; one inserted after finds the real node and keeps it.
    names
}
