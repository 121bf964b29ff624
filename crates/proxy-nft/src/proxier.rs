//! [`NftProxier`]: keeps the model of what it programmed, applies differences, falls back to a
//! full rebuild when a partial transaction fails, adopts the table of a previous run, and
//! clears stale UDP conntrack entries.

use crate::backend::{BackendError, Conntrack, ConntrackCli, ConntrackFilter, Nft, NftAuto};
use crate::diff::{diff, DiffStats, Programmed};
use crate::fragments::Cache;
use crate::model::{Chain, Set, Table};
use crate::render::RenderStats;
use proxy_core::{categorize, IpFamily, Protocol, ProxyConfig, Snapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error("reading the existing table: {0}")]
    Adopt(String),
}

/// What one [`NftProxier::sync`] did, for logs and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// At least one table was rebuilt from scratch (first sync, or after an error).
    pub full: bool,
    /// The first sync after adopting a table left by a previous run (rewritten in place).
    pub adopted: bool,
    /// Nothing differed: no transaction was sent.
    pub unchanged: bool,
    /// Time spent rendering (pure) and diffing.
    pub render: Duration,
    /// Time spent in `nft` (and conntrack).
    pub apply: Duration,
    pub duration: Duration,
    pub changes: DiffStats,
    /// Bytes of nft script sent.
    pub script_bytes: usize,
    pub service_ports: usize,
    /// Endpoints reachable through the rules (both families).
    pub endpoints: usize,
    /// See `RenderStats` (kubeproxy_sync_proxy_rules_no_local_endpoints_total).
    pub no_local_endpoints_internal: usize,
    pub no_local_endpoints_external: usize,
    /// The same two counts per family (`IpFamily as usize`), when the data plane keeps them.
    pub no_local_endpoints_per_family: Option<[RenderStats; 2]>,
    /// conntrack deletions run for endpoints of UDP services that went away.
    pub conntrack_deletions: usize,
    /// A partial transaction failed and was replaced by a full rebuild: its error.
    pub partial_failure: Option<String>,
}

/// What the proxier knows about one family's table in the kernel.
#[derive(Debug)]
enum Known {
    /// Nothing (first sync without a table, or after an error): replace the table.
    Nothing,
    /// A previous run's table, by names only: rewrite it in place.
    Adopted(Programmed),
    /// What the cache says (the last sync succeeded).
    Exact,
}

/// Programs a node's Service rules into nftables through an [`Nft`] backend.
pub struct NftProxier<N: Nft = NftAuto, C: Conntrack = ConntrackCli> {
    cfg: ProxyConfig,
    nft: N,
    conntrack: C,
    /// Per family: what we believe is in the kernel.
    known: [Known; 2],
    /// The service ports last programmed and who adds which shared element, without rule text.
    cache: Cache,
    adopted: bool,
    /// UDP endpoints by frontend after the last successful sync, for conntrack cleanup.
    udp_frontends: BTreeMap<Frontend, BTreeSet<IpAddr>>,
}

impl NftProxier<NftAuto, ConntrackCli> {
    /// A proxier for the current network namespace: transactions go to nf_tables over netlink
    /// ([`NftAuto`], the `nft` CLI for what the encoder does not know), conntrack entries are
    /// deleted with the `conntrack` tool. Reads an existing `switchboard` table once, to take
    /// it over without flushing it.
    pub fn new(cfg: ProxyConfig) -> Result<Self, SyncError> {
        Self::with_backends(cfg, NftAuto::new(), ConntrackCli::default())
    }
}

impl<N: Nft, C: Conntrack> NftProxier<N, C> {
    pub fn with_backends(cfg: ProxyConfig, mut nft: N, conntrack: C) -> Result<Self, SyncError> {
        let mut known = [Known::Nothing, Known::Nothing];
        let mut adopted = false;
        for f in IpFamily::ALL {
            if let Some(json) = nft.list_table_json(f)? {
                known[f as usize] =
                    Known::Adopted(adopted_from_json(&json, f).map_err(SyncError::Adopt)?);
                adopted = true;
            }
        }
        Ok(NftProxier {
            cache: Cache::new(cfg.clone()),
            cfg,
            nft,
            conntrack,
            known,
            adopted,
            udp_frontends: BTreeMap::new(),
        })
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    /// Replaces the configuration (node IPs changed, ...); the next sync applies the effect.
    pub fn set_config(&mut self, cfg: ProxyConfig) {
        self.cfg = cfg;
    }

    /// What the proxier believes it programmed for `family` (rendered from its cache: it keeps
    /// no rule text), `None` when it does not know.
    pub fn programmed(&self, family: IpFamily) -> Option<Table> {
        match &self.known[family as usize] {
            Known::Exact => Some(self.cache.render_programmed(family)),
            Known::Adopted(p) => Some(p.table.clone()),
            Known::Nothing => None,
        }
    }

    /// Forget what was programmed: the next sync rebuilds the tables from scratch.
    pub fn force_full_sync(&mut self) {
        self.known = [Known::Nothing, Known::Nothing];
    }

    /// Makes the kernel match `snap`: renders only the service ports that differ from the last
    /// sync (all of them on the first sync, after a failure or a configuration change), diffs
    /// their part of the table, sends one transaction per family with only the changes (or the
    /// whole table when the kernel's is unknown), then deletes conntrack entries of UDP
    /// endpoints that went away. Blocking (it runs `nft`): call it from a blocking thread in
    /// async code.
    pub fn sync(&mut self, snap: &Snapshot) -> Result<SyncReport, SyncError> {
        let start = Instant::now();
        let mut report = SyncReport {
            adopted: self.adopted,
            service_ports: snap.service_ports.len(),
            ..Default::default()
        };
        let mut render_time = Duration::ZERO;
        let mut apply_time = Duration::ZERO;
        let mut sent = false;
        let t0 = Instant::now();
        let mut delta = self.cache.delta(snap);
        let cfg_changed = self.cache.cfg != self.cfg;
        // A configuration change re-renders everything; the diff needs the old whole table.
        let mut bases: [Option<Programmed>; 2] = [None, None];
        for f in IpFamily::ALL {
            let i = f as usize;
            match std::mem::replace(&mut self.known[i], Known::Nothing) {
                Known::Exact if cfg_changed => {
                    bases[i] = Some(Programmed::exact(self.cache.render_programmed(f)));
                    self.known[i] = Known::Exact;
                }
                Known::Adopted(p) => bases[i] = Some(p),
                k => self.known[i] = k,
            }
        }
        self.cache.begin(&mut delta);
        render_time += t0.elapsed();
        for f in IpFamily::ALL {
            let i = f as usize;
            let t0 = Instant::now();
            let incremental = matches!(self.known[i], Known::Exact) && !cfg_changed;
            // (plan, whole table): the table only when it was rendered anyway.
            let (plan, mut table) = if incremental {
                if delta.is_empty() {
                    (Some(None), None)
                } else {
                    let (before, after) = self.cache.render_changes(&delta, &self.cfg, f);
                    (Some(diff(&Programmed::exact(before), &after)), None)
                }
            } else {
                let table = self.cache.render_full(snap, &self.cfg, f);
                let plan = bases[i].take().map(|p| diff(&p, &table));
                (plan, Some(table))
            };
            render_time += t0.elapsed();
            let t1 = Instant::now();
            let result = match plan {
                Some(None) => Ok(()),
                Some(Some((script, changes))) => match self.nft.apply(&script) {
                    Ok(()) => {
                        sent = true;
                        report.script_bytes += script.len();
                        report.changes.add(&changes);
                        Ok(())
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, family = ?f, "partial nftables sync failed; rebuilding the table");
                        report.partial_failure = Some(e.to_string());
                        sent = true;
                        let table = match table.take() {
                            Some(t) => t,
                            None => self.cache.render_full(snap, &self.cfg, f),
                        };
                        self.full(&table, &mut report)
                    }
                },
                None => {
                    sent = true;
                    let table = table.take().expect("rendered whole");
                    self.full(&table, &mut report)
                }
            };
            apply_time += t1.elapsed();
            if let Err(e) = result {
                // The kernel's state is unknown in this family, and the cache is half updated:
                // start over with a full sync of both.
                self.known = [Known::Nothing, Known::Nothing];
                self.cache = Cache::new(self.cfg.clone());
                return Err(e);
            }
            self.known[i] = Known::Exact;
        }
        self.cache.finish(&delta, &self.cfg);
        self.adopted = false;
        report.unchanged = !sent;
        for f in IpFamily::ALL {
            let stats = &self.cache.stats[f as usize];
            report.no_local_endpoints_internal += stats.no_local_endpoints_internal;
            report.no_local_endpoints_external += stats.no_local_endpoints_external;
            report.endpoints += self.cache.reachable[f as usize];
        }
        report.no_local_endpoints_per_family = Some(self.cache.stats.clone());

        let t2 = Instant::now();
        // Only UDP ports have frontends: when none changed, neither did the frontends (and a
        // walk over every port would be the one cost of this sync that grows with the table).
        let udp_changed = delta.changes.iter().any(|c| {
            c.old
                .iter()
                .chain(&c.new)
                .any(|sp| sp.name.protocol == Protocol::Udp)
        });
        if udp_changed {
            let frontends = udp_frontends(snap);
            for filter in stale_udp_filters(&self.udp_frontends, &frontends) {
                if let Err(e) = self.conntrack.delete_udp(&filter) {
                    // Stale entries age out (UDP: 30-120 s); not worth failing the sync for.
                    tracing::warn!(error = %e, "deleting stale UDP conntrack entries");
                }
                report.conntrack_deletions += 1;
            }
            self.udp_frontends = frontends;
        }
        apply_time += t2.elapsed();
        report.render = render_time;
        report.apply = apply_time;
        report.duration = start.elapsed();
        Ok(report)
    }

    fn full(&mut self, table: &Table, report: &mut SyncReport) -> Result<(), SyncError> {
        let script = table.full_script();
        report.full = true;
        report.script_bytes += script.len();
        report.changes.chains_added += table.chains.len();
        report.changes.sets_added += table.sets.len();
        report.changes.elements_added += table.element_count();
        self.nft.apply(&script)?;
        Ok(())
    }

    /// Deletes both tables (agent shutdown with cleanup, or switching data planes).
    pub fn cleanup(&mut self) -> Result<(), SyncError> {
        for f in IpFamily::ALL {
            let t = Table::new(f).qualified();
            self.nft
                .apply(&format!("add table {t}\ndelete table {t}\n"))?;
            self.known[f as usize] = Known::Nothing;
        }
        Ok(())
    }
}

/// A UDP frontend: where clients send (None = any node address, for NodePorts) and the port.
type Frontend = (Option<IpAddr>, u16);

fn udp_frontends(snap: &Snapshot) -> BTreeMap<Frontend, BTreeSet<IpAddr>> {
    let mut out: BTreeMap<Frontend, BTreeSet<IpAddr>> = BTreeMap::new();
    for sp in snap
        .service_ports
        .values()
        .filter(|sp| sp.name.protocol == Protocol::Udp)
    {
        for f in IpFamily::ALL {
            if sp.cluster_ip(f).is_none() {
                continue;
            }
            let eps: BTreeSet<IpAddr> = categorize(sp, f)
                .all_reachable
                .iter()
                .map(|e| e.ip)
                .collect();
            let fronts = sp
                .cluster_ips
                .iter()
                .chain(&sp.external_ips)
                .chain(&sp.load_balancer_ips);
            for ip in fronts.filter(|ip| IpFamily::of(ip) == f) {
                out.entry((Some(*ip), sp.port))
                    .or_default()
                    .extend(eps.iter().copied());
            }
            if let Some(np) = sp.node_port {
                out.entry((None, np))
                    .or_default()
                    .extend(eps.iter().copied());
            }
        }
    }
    out
}

/// Conntrack deletions for UDP endpoints that a frontend no longer reaches: without them, a
/// client that keeps sending (DNS) stays pinned to a dead endpoint by its conntrack entry.
pub fn stale_udp_filters(
    old: &BTreeMap<Frontend, BTreeSet<IpAddr>>,
    new: &BTreeMap<Frontend, BTreeSet<IpAddr>>,
) -> Vec<ConntrackFilter> {
    let empty = BTreeSet::new();
    let mut out = Vec::new();
    for ((dst, port), eps) in old {
        let now = new.get(&(*dst, *port)).unwrap_or(&empty);
        for ep in eps.difference(now) {
            out.push(ConntrackFilter {
                orig_dst: *dst,
                orig_port_dst: *port,
                dst_nat: *ep,
            });
        }
    }
    out
}

/// The programmed state of a table listed by `nft -j list table`: the names of its sets and
/// chains, with their contents marked unknown, so the first sync rewrites them in place in one
/// transaction (no moment without rules, affinity sets kept) instead of deleting the table.
pub fn adopted_from_json(json: &str, family: IpFamily) -> Result<Programmed, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let items = v
        .get("nftables")
        .and_then(|n| n.as_array())
        .ok_or("no \"nftables\" array")?;
    let mut table = Table::new(family);
    let mut unknown_elements = Vec::new();
    let mut unknown_rules = Vec::new();
    for item in items {
        for kind in ["set", "map"] {
            if let Some(s) = item.get(kind) {
                let name = s
                    .get("name")
                    .and_then(|n| n.as_str())
                    .ok_or("set without name")?
                    .to_string();
                let dynamic = s
                    .get("flags")
                    .and_then(|f| f.as_array())
                    .is_some_and(|f| f.iter().any(|x| x == "dynamic" || x == "timeout"));
                // The declaration is unknown; dynamic (affinity) sets are recognised by their
                // flags so that they are kept, with their entries, not refilled.
                let decl = if dynamic {
                    "flags dynamic (adopted)"
                } else {
                    "(adopted)"
                };
                table.sets.insert(
                    name.clone(),
                    Set::new(if kind == "set" { "set" } else { "map" }, decl),
                );
                if !dynamic {
                    unknown_elements.push(name);
                }
            }
        }
        if let Some(c) = item.get("chain") {
            let name = c
                .get("name")
                .and_then(|n| n.as_str())
                .ok_or("chain without name")?
                .to_string();
            let hook = c
                .get("hook")
                .and_then(|h| h.as_str())
                .map(|h| format!("(adopted hook {h})"));
            table.chains.insert(
                name.clone(),
                Chain {
                    hook,
                    rules: vec!["(adopted)".into()],
                },
            );
            unknown_rules.push(name);
        }
    }
    Ok(Programmed {
        table,
        unknown_elements,
        unknown_rules,
    })
}
