//! Snapshot → desired [`Table`]s, a pure function. The layout follows kube-proxy's nftables
//! mode (pkg/proxy/nftables/proxier.go) so that its operators find their way; the README
//! explains every chain and map.

use crate::model::{nft_family, Chain, Set, Table};
use proxy_core::{
    categorize, maglev, Endpoint, IpFamily, ProxyConfig, Scheduler, ServicePort, Snapshot,
};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

/// The packet mark bit that asks `masquerading` to SNAT (kube-proxy's default, bit 14).
pub const MASQ_MARK: &str = "0x00004000";
/// jhash seed for sh and mh: fixed, so every node maps a client to the same endpoint.
const HASH_SEED: &str = "0x5b0a7d";

const REJECT_CHAIN: &str = "reject-chain";

/// The most endpoints a service port may have (in each endpoint list it uses) for its
/// connections to be dispatched by the shared data maps instead of a chain of its own. One
/// class set and rule per endpoint count up to this, per scheduler kind: a new connection to
/// a dispatched Service checks at most this many sets.
pub const DISPATCH_MAX: usize = 16;

/// The slots of an `mh` Service dispatched by the shared maps: its lookup table's size for up
/// to [`MH_DISPATCH_MAX`] endpoints (IPVS's default). Larger `mh` Services keep a chain.
const MH_SLOTS: usize = 4093;
/// The most endpoints of an `mh` Service dispatched by the shared maps (the table grows past it).
const MH_DISPATCH_MAX: usize = 40;

/// The schedulers the shared dispatch rules implement, with the nft expression that picks
/// a slot (see [`Renderer::dispatch_rules`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DispatchKind {
    Random,
    SourceHash,
    /// The client's hash into a fixed table of [`MH_SLOTS`] slots (`proxy_core::maglev`).
    Maglev,
}

impl DispatchKind {
    /// The kinds with one class per endpoint count.
    const COUNTED: [DispatchKind; 2] = [DispatchKind::Random, DispatchKind::SourceHash];

    fn of(s: Scheduler) -> Option<DispatchKind> {
        match s {
            // nftables has no per-endpoint connection count at decision time: lc is random.
            Scheduler::Random | Scheduler::LeastConnection => Some(DispatchKind::Random),
            Scheduler::SourceHash => Some(DispatchKind::SourceHash),
            Scheduler::Maglev => Some(DispatchKind::Maglev),
            // rr needs a counter per Service (a `numgen inc` of its own).
            Scheduler::RoundRobin => None,
        }
    }

    /// The most endpoints a port of this kind may have to be dispatched.
    fn max_endpoints(self) -> usize {
        match self {
            DispatchKind::Random | DispatchKind::SourceHash => DISPATCH_MAX,
            DispatchKind::Maglev => MH_DISPATCH_MAX,
        }
    }
}

/// Every dispatch class, in the order of the dispatch rules: mh first (one class for every
/// endpoint count, so its Services are not behind 32 others), then the counted kinds by
/// endpoint count, the common small counts first. The number is the `mod` of the class's pick.
fn classes() -> impl Iterator<Item = (DispatchKind, usize)> {
    std::iter::once((DispatchKind::Maglev, MH_SLOTS))
        .chain((1..=DISPATCH_MAX).flat_map(|n| DispatchKind::COUNTED.iter().map(move |k| (*k, n))))
}

/// The endpoint (an index into `eps`) of each slot a key dispatched by `kind` over `eps` has:
/// slot i is endpoint i, or for mh the slots of `proxy_core::maglev`'s table, which depends
/// only on the endpoints, so a change moves only the slots of the endpoints that come or go.
fn slot_table(kind: DispatchKind, eps: &[Endpoint]) -> Vec<usize> {
    match kind {
        DispatchKind::Maglev => {
            let names: Vec<String> = eps.iter().map(socket).collect();
            maglev::table(&names, MH_SLOTS)
        }
        DispatchKind::Random | DispatchKind::SourceHash => (0..eps.len()).collect(),
    }
}

/// Name of the class set holding the keys that `kind` dispatches over `n` endpoints:
/// `service-ips-random-3`, `service-nodeports-sh-2`, `service-ips-mh-4093` (whatever n).
fn class_set(nodeport: bool, kind: DispatchKind, n: usize) -> &'static str {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut v = Vec::new();
        for prefix in ["service-ips", "service-nodeports"] {
            for kind in ["random", "sh"] {
                for n in 1..=DISPATCH_MAX {
                    v.push(format!("{prefix}-{kind}-{n}"));
                }
            }
            v.push(format!("{prefix}-mh-{MH_SLOTS}"));
        }
        v
    });
    let per_prefix = 2 * DISPATCH_MAX + 1;
    let i = match kind {
        DispatchKind::Random => n - 1,
        DispatchKind::SourceHash => DISPATCH_MAX + n - 1,
        DispatchKind::Maglev => 2 * DISPATCH_MAX,
    };
    names[usize::from(nodeport) * per_prefix + i].as_str()
}

/// Renders both families' tables.
pub fn render(snap: &Snapshot, cfg: &ProxyConfig) -> Vec<Table> {
    IpFamily::ALL
        .iter()
        .map(|f| render_family(snap, cfg, *f))
        .collect()
}

/// What a rendering decided per family, besides the table (for metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderStats {
    /// Services whose internalTrafficPolicy Local found no local endpoint (traffic dropped).
    pub no_local_endpoints_internal: usize,
    /// Services whose externalTrafficPolicy Local found no local endpoint.
    pub no_local_endpoints_external: usize,
}

impl RenderStats {
    pub(crate) fn add(&mut self, o: &RenderStats) {
        self.no_local_endpoints_internal += o.no_local_endpoints_internal;
        self.no_local_endpoints_external += o.no_local_endpoints_external;
    }

    pub(crate) fn sub(&mut self, o: &RenderStats) {
        self.no_local_endpoints_internal -= o.no_local_endpoints_internal;
        self.no_local_endpoints_external -= o.no_local_endpoints_external;
    }
}

/// Renders one family's table.
pub fn render_family(snap: &Snapshot, cfg: &ProxyConfig, f: IpFamily) -> Table {
    render_family_with_stats(snap, cfg, f).0
}

pub(crate) fn render_family_with_stats(
    snap: &Snapshot,
    cfg: &ProxyConfig,
    f: IpFamily,
) -> (Table, RenderStats) {
    let mut r = Renderer::new(cfg, f);
    r.skeleton();
    for sp in snap.service_ports.values() {
        r.service_port(sp);
    }
    (r.t, r.stats)
}

/// The part of a family's table that depends only on the configuration: base chains, the
/// dispatch chains and the shared maps and sets (empty but for `nodeport-ips`).
pub(crate) fn render_skeleton(cfg: &ProxyConfig, f: IpFamily) -> Table {
    let mut r = Renderer::new(cfg, f);
    r.skeleton();
    r.t
}

/// One service port's part of a family's table, a pure function of the port and the
/// configuration: the chains and sets it owns (every name carries the port's name), and its
/// elements in the shared maps and sets. A family's table is the skeleton plus the fragments of
/// every port in name order, a later element replacing an earlier one with the same key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fragment {
    pub chains: BTreeMap<String, Chain>,
    pub sets: BTreeMap<String, Set>,
    /// (shared set, key, value), in the order rendered.
    pub elements: Vec<(&'static str, String, String)>,
    pub stats: RenderStats,
    /// Endpoints some packet can reach (categorize's all_reachable).
    pub reachable: usize,
}

impl Fragment {
    /// The value this fragment gives `key` in `set` (the last one, as a table insert keeps).
    pub fn value_of(&self, set: &str, key: &str) -> Option<&str> {
        self.elements
            .iter()
            .rev()
            .find(|(s, k, _)| *s == set && k == key)
            .map(|(_, _, v)| v.as_str())
    }

    /// Adds this fragment to a table that has the skeleton's sets.
    pub fn merge_into(self, t: &mut Table) {
        t.chains.extend(self.chains);
        t.sets.extend(self.sets);
        for (set, k, v) in self.elements {
            t.sets
                .get_mut(set)
                .expect("skeleton set")
                .elements
                .insert(k, v);
        }
    }
}

/// Renders one service port in one family.
pub(crate) fn render_fragment(sp: &ServicePort, cfg: &ProxyConfig, f: IpFamily) -> Fragment {
    let mut r = Renderer::new(cfg, f);
    r.fragment = Some(Vec::new());
    r.service_port(sp);
    Fragment {
        chains: r.t.chains,
        sets: r.t.sets,
        elements: r.fragment.unwrap_or_default(),
        stats: r.stats,
        reachable: r.reachable,
    }
}

struct Renderer<'a> {
    cfg: &'a ProxyConfig,
    f: IpFamily,
    /// `ip` / `ip6`
    ipx: &'static str,
    /// `ipv4_addr` / `ipv6_addr`
    addr: &'static str,
    t: Table,
    stats: RenderStats,
    /// Rendering one port alone: its shared elements go here instead of into `t`.
    fragment: Option<Vec<(&'static str, String, String)>>,
    reachable: usize,
}

fn set(kind: &'static str, decl: String) -> Set {
    Set::new(kind, decl)
}

fn base_chain(hook: &str, rules: Vec<String>) -> Chain {
    Chain {
        hook: Some(hook.to_string()),
        rules,
    }
}

fn chain(rules: Vec<String>) -> Chain {
    Chain { hook: None, rules }
}

/// `{ a, b }` for several values, `a` for one: an anonymous set only when needed.
fn one_or_set(items: &[String]) -> String {
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

impl<'a> Renderer<'a> {
    fn new(cfg: &'a ProxyConfig, f: IpFamily) -> Self {
        let (ipx, addr) = match f {
            IpFamily::V4 => ("ip", "ipv4_addr"),
            IpFamily::V6 => ("ip6", "ipv6_addr"),
        };
        debug_assert_eq!(ipx, nft_family(f));
        Renderer {
            cfg,
            f,
            ipx,
            addr,
            t: Table::new(f),
            stats: RenderStats::default(),
            fragment: None,
            reachable: 0,
        }
    }

    fn cluster_cidrs(&self) -> Vec<String> {
        self.cfg
            .cluster_cidrs
            .iter()
            .filter(|n| IpFamily::of(&n.addr()) == self.f)
            .map(|n| n.to_string())
            .collect()
    }

    /// The tables, maps and chains every node has, whatever its Services.
    fn skeleton(&mut self) {
        let (ipx, addr) = (self.ipx, self.addr);
        let sets = &mut self.t.sets;
        sets.insert("cluster-ips".into(), set("set", format!("type {addr};")));
        sets.insert(
            "hairpin-connections".into(),
            set(
                "set",
                format!("type {addr} . {addr} . inet_proto . inet_service;"),
            ),
        );
        for name in ["no-endpoint-services", "firewall-ips", "service-ips"] {
            sets.insert(
                name.into(),
                set(
                    "map",
                    format!("type {addr} . inet_proto . inet_service : verdict;"),
                ),
            );
        }
        for name in ["no-endpoint-nodeports", "service-nodeports"] {
            sets.insert(
                name.into(),
                set(
                    "map",
                    "type inet_proto . inet_service : verdict;".to_string(),
                ),
            );
        }
        // The dispatch layout (see `dispatch_rules`): which keys are dispatched, by which
        // class, and each key's endpoint per slot.
        for name in ["service-ips-dispatched", "service-ips-masquerade"] {
            sets.insert(
                name.into(),
                set("set", format!("type {addr} . inet_proto . inet_service;")),
            );
        }
        sets.insert(
            "service-nodeports-dispatched".into(),
            set("set", "type inet_proto . inet_service;".to_string()),
        );
        for (kind, n) in classes() {
            sets.insert(
                class_set(false, kind, n).into(),
                set("set", format!("type {addr} . inet_proto . inet_service;")),
            );
            sets.insert(
                class_set(true, kind, n).into(),
                set("set", "type inet_proto . inet_service;".to_string()),
            );
        }
        sets.insert(
            "service-endpoints".into(),
            set(
                "map",
                format!("typeof {ipx} daddr . meta l4proto . th dport . numgen random mod 1 : {ipx} daddr . th dport;"),
            ),
        );
        sets.insert(
            "nodeport-endpoints".into(),
            set(
                "map",
                format!("typeof meta l4proto . th dport . numgen random mod 1 : {ipx} daddr . th dport;"),
            ),
        );
        // NodePort destinations: the listed node addresses, or every local one (fib) for a /0.
        let loopback = match self.f {
            IpFamily::V4 => "127.0.0.0/8",
            IpFamily::V6 => "::1",
        };
        let nodeport_match = match self.cfg.nodeport_ips(self.f) {
            Some(ips) => {
                let mut s = set("set", format!("type {addr};"));
                for ip in ips {
                    s.elements.insert(ip.to_string(), String::new());
                }
                sets.insert("nodeport-ips".into(), s);
                format!("{ipx} daddr @nodeport-ips")
            }
            None => format!("fib daddr type local {ipx} daddr != {loopback}"),
        };

        let chains = &mut self.t.chains;
        // Filter chains run before DNAT (firewall) or after it (endpoint checks), see README.
        chains.insert(
            "filter-prerouting-pre-dnat".into(),
            base_chain(
                "type filter hook prerouting priority -110; policy accept;",
                vec!["ct state new jump firewall-check".into()],
            ),
        );
        chains.insert(
            "filter-output-pre-dnat".into(),
            base_chain(
                "type filter hook output priority -110; policy accept;",
                vec!["ct state new jump firewall-check".into()],
            ),
        );
        chains.insert(
            "filter-input".into(),
            base_chain(
                "type filter hook input priority 0; policy accept;",
                vec![
                    "ct state new jump nodeport-endpoints-check".into(),
                    "ct state new jump service-endpoints-check".into(),
                ],
            ),
        );
        for hook in ["forward", "output"] {
            chains.insert(
                format!("filter-{hook}"),
                base_chain(
                    &format!("type filter hook {hook} priority 0; policy accept;"),
                    vec![
                        "ct state new jump service-endpoints-check".into(),
                        "ct state new jump cluster-ips-check".into(),
                    ],
                ),
            );
        }
        chains.insert(
            "nat-prerouting".into(),
            base_chain(
                "type nat hook prerouting priority -100; policy accept;",
                vec!["jump services".into()],
            ),
        );
        // nft 1.0.6 refuses the `dstnat` keyword on an ip nat output chain: numeric priority.
        chains.insert(
            "nat-output".into(),
            base_chain(
                "type nat hook output priority -100; policy accept;",
                vec!["jump services".into()],
            ),
        );
        chains.insert(
            "nat-postrouting".into(),
            base_chain(
                "type nat hook postrouting priority 100; policy accept;",
                vec!["jump masquerading".into()],
            ),
        );

        chains.insert(
            "nodeport-endpoints-check".into(),
            chain(vec![format!(
                "{nodeport_match} meta l4proto . th dport vmap @no-endpoint-nodeports"
            )]),
        );
        chains.insert(
            "service-endpoints-check".into(),
            chain(vec![format!(
                "{ipx} daddr . meta l4proto . th dport vmap @no-endpoint-services"
            )]),
        );
        chains.insert(
            "firewall-check".into(),
            chain(vec![format!(
                "{ipx} daddr . meta l4proto . th dport vmap @firewall-ips"
            )]),
        );

        let mut services = Vec::new();
        let cidrs = self
            .cfg
            .cluster_cidrs
            .iter()
            .filter(|n| IpFamily::of(&n.addr()) == self.f)
            .map(|n| n.to_string())
            .collect::<Vec<_>>();
        if self.cfg.masquerade_all {
            services.push(format!(
                "{ipx} daddr @cluster-ips meta mark set meta mark | {MASQ_MARK}"
            ));
        } else if !cidrs.is_empty() {
            // Off-cluster clients reaching a ClusterIP through this node: the reply must come
            // back through us, so SNAT.
            services.push(format!(
                "{ipx} daddr @cluster-ips {ipx} saddr != {} meta mark set meta mark | {MASQ_MARK}",
                one_or_set(&cidrs)
            ));
        }
        services.push(format!(
            "{ipx} daddr . meta l4proto . th dport vmap @service-ips"
        ));
        services.push(format!(
            "{nodeport_match} meta l4proto . th dport vmap @service-nodeports"
        ));
        services.push(format!(
            "{ipx} daddr . meta l4proto . th dport @service-ips-dispatched goto service-dispatch"
        ));
        services.push(format!(
            "{nodeport_match} meta l4proto . th dport @service-nodeports-dispatched goto nodeport-dispatch"
        ));
        chains.insert("services".into(), chain(services));
        let (service_dispatch, nodeport_dispatch) = self.dispatch_rules();
        let chains = &mut self.t.chains;
        chains.insert("service-dispatch".into(), chain(service_dispatch));
        chains.insert("nodeport-dispatch".into(), chain(nodeport_dispatch));
        chains.insert(
            "masquerading".into(),
            chain(vec![
                format!("meta mark & {MASQ_MARK} != 0x00000000 meta mark set meta mark ^ {MASQ_MARK} masquerade fully-random"),
                format!("ct status dnat {ipx} saddr . {ipx} daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random"),
            ]),
        );
        let mut check = vec![format!("{ipx} daddr @cluster-ips reject")];
        for cidr in self
            .cfg
            .service_cidrs
            .iter()
            .filter(|n| IpFamily::of(&n.addr()) == self.f)
        {
            check.push(format!("{ipx} daddr {cidr} drop"));
        }
        chains.insert("cluster-ips-check".into(), chain(check));
        chains.insert(REJECT_CHAIN.into(), chain(vec!["reject".into()]));
    }

    /// The rules of `service-dispatch` and `nodeport-dispatch`, the same for every Service.
    ///
    /// A Service whose scheduler is random or sh, without session affinity or a Local
    /// external policy, with at most [`DISPATCH_MAX`] endpoints, has no chain of its own: its
    /// keys (address . protocol . port, or protocol . nodePort) are elements of the class
    /// set of its scheduler and endpoint count n, and `service-endpoints` maps key . slot
    /// (0..n) to an endpoint. The class's rule picks the slot (`numgen random mod n`, or the
    /// client's `jhash mod n`, the same slots the chain layout's cascade uses) and DNATs to
    /// what the map holds. So an endpoint change of such a Service changes set and map
    /// elements only: the kernel then skips the validation of the whole chain graph that any
    /// rule or `goto` element costs (tens of ms at 10k Services, see bench/proxy).
    fn dispatch_rules(&self) -> (Vec<String>, Vec<String>) {
        let ipx = self.ipx;
        let mut by_ip = vec![format!(
            "{ipx} daddr . meta l4proto . th dport @service-ips-masquerade meta mark set meta mark | {MASQ_MARK}"
        )];
        // Every dispatched NodePort has the Cluster policy: SNAT, so replies come back here.
        let mut by_nodeport = vec![format!("meta mark set meta mark | {MASQ_MARK}")];
        for (kind, n) in classes() {
            let pick = match kind {
                DispatchKind::Random => format!("numgen random mod {n}"),
                DispatchKind::SourceHash | DispatchKind::Maglev => {
                    format!("jhash {ipx} saddr mod {n} seed {HASH_SEED}")
                }
            };
            by_ip.push(format!(
                "{ipx} daddr . meta l4proto . th dport @{} dnat {ipx} to {ipx} daddr . meta l4proto . th dport . {pick} map @service-endpoints",
                class_set(false, kind, n)
            ));
            by_nodeport.push(format!(
                "meta l4proto . th dport @{} dnat {ipx} to meta l4proto . th dport . {pick} map @nodeport-endpoints",
                class_set(true, kind, n)
            ));
        }
        (by_ip, by_nodeport)
    }

    /// The elements that dispatch `key` over `eps`, whose slots are `slots` (`slot_table`;
    /// see `dispatch_rules`).
    fn dispatched(
        &mut self,
        nodeport: bool,
        key: String,
        eps: &[Endpoint],
        slots: &[usize],
        kind: DispatchKind,
        masquerade: bool,
    ) {
        let (dispatched, map) = if nodeport {
            ("service-nodeports-dispatched", "nodeport-endpoints")
        } else {
            ("service-ips-dispatched", "service-endpoints")
        };
        for (slot, e) in slots.iter().enumerate() {
            let ep = &eps[*e];
            self.elem(
                map,
                format!("{key} . {slot}"),
                format!("{} . {}", ep.ip, ep.port),
            );
        }
        self.elem(
            class_set(nodeport, kind, eps.len()),
            key.clone(),
            String::new(),
        );
        if masquerade && !nodeport {
            self.elem("service-ips-masquerade", key.clone(), String::new());
        }
        self.elem(dispatched, key, String::new());
    }

    fn elem(&mut self, set: &'static str, key: String, value: String) {
        if let Some(f) = &mut self.fragment {
            f.push((set, key, value));
            return;
        }
        self.t
            .sets
            .get_mut(set)
            .expect("skeleton set")
            .elements
            .insert(key, value);
    }

    fn of_family<'b>(&self, ips: &'b [IpAddr]) -> Vec<&'b IpAddr> {
        ips.iter().filter(|ip| IpFamily::of(ip) == self.f).collect()
    }

    fn service_port(&mut self, sp: &ServicePort) {
        let Some(cluster_ip) = sp.cluster_ip(self.f) else {
            return;
        };
        let ipx = self.ipx;
        let proto = sp.name.protocol.as_str();
        let port = sp.port;
        let base = format!(
            "{}/{}/{}/{}",
            sp.name.service.namespace, sp.name.service.name, proto, sp.name.port
        );
        let cluster_chain = format!("service-{base}");
        let local_chain = format!("local-{base}");
        let external_chain = format!("external-{base}");
        let firewall_chain = format!("firewall-{base}");

        let cat = categorize(sp, self.f);
        self.reachable += cat.all_reachable.len();
        let has_endpoints = cat.has_any;
        let (internal_chain, has_internal) = if sp.internal_policy_local {
            (&local_chain, has_endpoints && !cat.local.is_empty())
        } else {
            (&cluster_chain, has_endpoints)
        };
        let (external_policy_chain, has_external) = if sp.external_policy_local {
            (&local_chain, has_endpoints && !cat.local.is_empty())
        } else {
            (&cluster_chain, has_endpoints)
        };
        if has_endpoints && !has_internal {
            self.stats.no_local_endpoints_internal += 1;
        }
        if has_endpoints && !has_external && sp.externally_accessible() {
            self.stats.no_local_endpoints_external += 1;
        }
        // Without any endpoint everything is rejected (the client learns at once); with
        // endpoints elsewhere but none local under a Local policy, packets are dropped
        // (kube-proxy's choice: the client may retry another node).
        let (internal_verdict, external_verdict) = if has_endpoints {
            ("drop".to_string(), "drop".to_string())
        } else {
            (
                format!("goto {REJECT_CHAIN}"),
                format!("goto {REJECT_CHAIN}"),
            )
        };
        // The external chain is needed even without local endpoints, for the short-circuit of
        // pod and host traffic under externalTrafficPolicy Local.
        let uses_external_chain = has_endpoints && sp.externally_accessible();

        let internal_eps = if sp.internal_policy_local {
            &cat.local
        } else {
            &cat.cluster
        };
        // Dispatched by the shared data maps, or through chains of its own (`dispatch_rules`).
        let dispatch = DispatchKind::of(sp.scheduler).filter(|kind| {
            let max = kind.max_endpoints();
            sp.affinity_timeout.is_none()
                && !(sp.external_policy_local && sp.externally_accessible())
                && internal_eps.len() <= max
                && (!sp.uses_cluster_endpoints() || cat.cluster.len() <= max)
        });
        // The slot tables, once per endpoint list (an mh table is 4093 slots): the external
        // keys and the NodePort all use the Cluster endpoints, the ClusterIP the internal ones.
        let cluster_slots = dispatch
            .filter(|_| sp.uses_cluster_endpoints())
            .map(|k| slot_table(k, &cat.cluster));
        let local_slots = dispatch
            .filter(|_| sp.internal_policy_local)
            .map(|k| slot_table(k, &cat.local));
        let internal_slots = if sp.internal_policy_local {
            &local_slots
        } else {
            &cluster_slots
        };

        let key = |ip: &IpAddr| format!("{ip} . {proto} . {port}");
        self.elem("cluster-ips", cluster_ip.to_string(), String::new());
        if has_internal {
            match dispatch {
                Some(kind) => {
                    let slots = internal_slots
                        .as_deref()
                        .expect("the internal list's slots");
                    self.dispatched(false, key(&cluster_ip), internal_eps, slots, kind, false)
                }
                None => self.elem(
                    "service-ips",
                    key(&cluster_ip),
                    format!("goto {internal_chain}"),
                ),
            }
        } else {
            self.elem("no-endpoint-services", key(&cluster_ip), internal_verdict);
        }
        let external_ips: Vec<IpAddr> = self
            .of_family(&sp.external_ips)
            .into_iter()
            .copied()
            .collect();
        let lb_ips: Vec<IpAddr> = self
            .of_family(&sp.load_balancer_ips)
            .into_iter()
            .copied()
            .collect();
        let ranges: Vec<String> = sp
            .source_ranges
            .iter()
            .filter(|n| IpFamily::of(&n.addr()) == self.f)
            .map(|n| n.to_string())
            .collect();
        let uses_firewall = !lb_ips.is_empty() && !ranges.is_empty();
        for ip in external_ips.iter().chain(&lb_ips) {
            if has_endpoints {
                match dispatch {
                    // Dispatched ports have the Cluster external policy: SNAT, every endpoint.
                    Some(kind) => {
                        let slots = cluster_slots.as_deref().expect("the Cluster list's slots");
                        self.dispatched(false, key(ip), &cat.cluster, slots, kind, true)
                    }
                    None => self.elem("service-ips", key(ip), format!("goto {external_chain}")),
                }
            }
            if !has_external {
                self.elem("no-endpoint-services", key(ip), external_verdict.clone());
            }
        }
        if uses_firewall {
            for ip in &lb_ips {
                self.elem("firewall-ips", key(ip), format!("goto {firewall_chain}"));
            }
            // A node reaching its own LB VIP loops back with the VIP as source: allow it when
            // the node itself is allowed (kube-proxy does the same).
            let mut sources = ranges.clone();
            let node_allowed = self.cfg.node_ips.iter().any(|ip| {
                sp.source_ranges.iter().any(|n| n.contains(ip)) && IpFamily::of(ip) == self.f
            });
            if node_allowed {
                sources.extend(lb_ips.iter().map(|ip| ip.to_string()));
            }
            // One rule per source instead of an anonymous set (see `dispatch` on their cost);
            // `return` goes back to filter-*-pre-dnat, which accepts.
            let mut rules: Vec<String> = sources
                .iter()
                .map(|src| format!("{ipx} saddr {src} return"))
                .collect();
            rules.push("drop".into());
            self.t.chains.insert(firewall_chain.clone(), chain(rules));
        }
        if let Some(np) = sp.node_port {
            let np_key = format!("{proto} . {np}");
            if has_endpoints {
                match dispatch {
                    Some(kind) => {
                        let slots = cluster_slots.as_deref().expect("the Cluster list's slots");
                        self.dispatched(true, np_key.clone(), &cat.cluster, slots, kind, true)
                    }
                    None => self.elem(
                        "service-nodeports",
                        np_key.clone(),
                        format!("goto {external_chain}"),
                    ),
                }
            }
            if !has_external {
                self.elem("no-endpoint-nodeports", np_key, external_verdict);
            }
        }

        if uses_external_chain && dispatch.is_none() {
            let mut rules = Vec::new();
            if !sp.external_policy_local {
                // Endpoints may be on other nodes: SNAT so replies come back through us.
                rules.push(format!("meta mark set meta mark | {MASQ_MARK}"));
            } else {
                let cidrs = self.cluster_cidrs();
                // Pods reaching an external address behave as if they went out to the load
                // balancer and came back: no traffic policy applies to them.
                for cidr in &cidrs {
                    rules.push(format!("{ipx} saddr {cidr} goto {cluster_chain}"));
                }
                // The host's own traffic has a local (often the VIP's) source: SNAT it and use
                // every endpoint.
                rules.push(format!(
                    "fib saddr type local meta mark set meta mark | {MASQ_MARK}"
                ));
                rules.push(format!("fib saddr type local goto {cluster_chain}"));
            }
            if has_external {
                rules.push(format!("goto {external_policy_chain}"));
            }
            self.t.chains.insert(external_chain, chain(rules));
        }

        // A dispatched port has no chains of its own; only the hairpin elements below.
        if dispatch.is_none() {
            if !cat.cluster.is_empty() && sp.uses_cluster_endpoints() {
                let rules = self.dispatch(sp, &base, &cat.cluster);
                self.t.chains.insert(cluster_chain, chain(rules));
            }
            if !cat.local.is_empty() && sp.uses_local_endpoints() {
                let rules = self.dispatch(sp, &base, &cat.local);
                self.t.chains.insert(local_chain, chain(rules));
            }
        }
        for ep in &cat.all_reachable {
            self.elem(
                "hairpin-connections",
                format!("{} . {} . {proto} . {}", ep.ip, ep.ip, ep.port),
                String::new(),
            );
            if let Some(timeout) = sp.affinity_timeout {
                let id = endpoint_id(ep);
                let set_name = format!("affinity-{base}__{id}");
                let addr = self.addr;
                self.t.sets.insert(
                    set_name.clone(),
                    set(
                        "set",
                        format!(
                            "type {addr}; size 65535; flags dynamic,timeout; timeout {timeout}s;"
                        ),
                    ),
                );
                self.t.chains.insert(
                    format!("endpoint-{base}__{id}"),
                    chain(vec![
                        // The timeout is repeated in the rule so that a changed timeout changes
                        // this chain, which lets the applier recreate the set in between.
                        format!("update @{set_name} {{ {ipx} saddr timeout {timeout}s }}"),
                        format!("meta l4proto {proto} dnat {ipx} to {}", socket(ep)),
                    ]),
                );
            }
        }
    }

    /// The rules of a service (or local) chain: pick one of `eps` per connection.
    ///
    /// No anonymous map unless the scheduler is mh: the kernel names every anonymous set of a
    /// table by scanning the table's sets for a free `__mapN`, so a map per Service makes a
    /// full load quadratic (30 s of kernel time for 10k Services on this machine; kube-proxy
    /// 1.36 pays it). A cascade of rules picks the same way: rule i of n takes the connection
    /// with probability 1/(n-i) (random), or every (n-i)th connection it sees (rr, which
    /// makes the cascade an exact rotation), or when the client's hash is i (sh).
    fn dispatch(&self, sp: &ServicePort, base: &str, eps: &[Endpoint]) -> Vec<String> {
        let ipx = self.ipx;
        let proto = sp.name.protocol.as_str();
        let affinity = sp.affinity_timeout.is_some();
        let target = |ep: &Endpoint| {
            if affinity {
                format!("goto endpoint-{base}__{}", endpoint_id(ep))
            } else {
                format!("meta l4proto {proto} dnat {ipx} to {}", socket(ep))
            }
        };
        let mut rules = Vec::new();
        if affinity {
            for ep in eps {
                let id = endpoint_id(ep);
                rules.push(format!(
                    "{ipx} saddr @affinity-{base}__{id} goto endpoint-{base}__{id}"
                ));
            }
        }
        let n = eps.len();
        if n == 1 {
            rules.push(target(&eps[0]));
            return rules;
        }
        if sp.scheduler == Scheduler::Maglev {
            // The table depends only on the endpoint addresses, so every node (and every
            // sync) computes the same one and unchanged endpoints keep their slots.
            let m = maglev::table_size(n);
            let names: Vec<String> = eps.iter().map(socket).collect();
            let table = maglev::table(&names, m);
            let pick = format!("jhash {ipx} saddr mod {m} seed {HASH_SEED}");
            let mut map = String::new();
            for (slot, e) in table.iter().enumerate() {
                if slot > 0 {
                    map.push_str(", ");
                }
                if affinity {
                    let _ = write!(
                        map,
                        "{slot} : goto endpoint-{base}__{}",
                        endpoint_id(&eps[*e])
                    );
                } else {
                    let _ = write!(map, "{slot} : {} . {}", eps[*e].ip, eps[*e].port);
                }
            }
            if affinity {
                rules.push(format!("{pick} vmap {{ {map} }}"));
            } else {
                rules.push(format!(
                    "meta l4proto {proto} dnat {ipx} to {pick} map {{ {map} }}"
                ));
            }
            return rules;
        }
        for (i, ep) in eps.iter().enumerate().take(n - 1) {
            let cond = match sp.scheduler {
                // nftables has no per-endpoint connection count at decision time: lc is random.
                Scheduler::Random | Scheduler::LeastConnection => {
                    format!("numgen random mod {} 0", n - i)
                }
                Scheduler::RoundRobin => format!("numgen inc mod {} 0", n - i),
                Scheduler::SourceHash => format!("jhash {ipx} saddr mod {n} seed {HASH_SEED} {i}"),
                Scheduler::Maglev => unreachable!("handled above"),
            };
            rules.push(format!("{cond} {}", target(ep)));
        }
        rules.push(target(&eps[n - 1]));
        rules
    }
}

/// `10.0.0.1:80` / `[fd00::1]:80`
fn socket(ep: &Endpoint) -> String {
    match ep.ip {
        IpAddr::V4(ip) => format!("{ip}:{}", ep.port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", ep.port),
    }
}

/// An endpoint in a chain or set name: nft identifiers allow `/` and `.` but not `:`.
fn endpoint_id(ep: &Endpoint) -> String {
    format!("{}/{}", ep.ip.to_string().replace(':', "."), ep.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatched_mh_services_use_maglevs_table_for_their_endpoint_counts() {
        assert_eq!(maglev::table_size(1), MH_SLOTS);
        assert_eq!(maglev::table_size(MH_DISPATCH_MAX), MH_SLOTS);
        assert_ne!(maglev::table_size(MH_DISPATCH_MAX + 1), MH_SLOTS);
    }
}
