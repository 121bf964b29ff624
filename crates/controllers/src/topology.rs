//! Topology-aware routing's `service.kubernetes.io/topology-mode: Auto`, as
//! kube-controller-manager's topology cache (`k8s.io/endpointslice/topologycache`) does it:
//! each zone's share of the allocatable CPU of ready Nodes (control-plane Nodes left out)
//! decides how many of a Service's ready endpoints are hinted for it (`hints.forZones`), no
//! zone getting fewer than its share divided by 1.2 (the overload threshold). Endpoints are
//! hinted for their own zone first; a zone with more than its share lends the surplus to zones
//! with less. When that cannot be done safely (too little Node information, fewer endpoints
//! than zones, an endpoint without a zone, a minimum that cannot be met) every hint is
//! removed, and the Service gets a `TopologyAwareHintsDisabled` Event saying why.

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, EndpointSlice, ForZone};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

/// The most extra load any endpoint should see: a zone gets at least its CPU share of the
/// endpoints divided by `1 + OVERLOAD_THRESHOLD`.
pub const OVERLOAD_THRESHOLD: f64 = 0.2;

/// Upstream's Event messages (`topologycache/event.go`), word for word.
pub const NO_ZONE_SPECIFIED: &str = "One or more endpoints do not have a zone specified";
pub const NO_ALLOCATED_HINTS_FOR_ZONES: &str = "No hints allocated for zones";
pub const TOPOLOGY_AWARE_HINTS_ENABLED: &str = "Topology Aware Hints has been enabled";
pub const TOPOLOGY_AWARE_HINTS_DISABLED: &str = "Topology Aware Hints has been disabled";
pub const INSUFFICIENT_NODE_INFO: &str =
    "Insufficient Node information: allocatable CPU or zone not specified on one or more nodes";
pub const NODES_READY_IN_ONE_ZONE_ONLY: &str = "Nodes only ready in one zone";
pub const INSUFFICIENT_NUMBER_OF_ENDPOINTS: &str = "Insufficient number of endpoints";
pub const MIN_ALLOCATION_EXCEEDS_OVERLOAD_THRESHOLD: &str = "Unable to allocate minimum required endpoints to each zone without exceeding overload threshold";

pub const REASON_ENABLED: &str = "TopologyAwareHintsEnabled";
pub const REASON_DISABLED: &str = "TopologyAwareHintsDisabled";

/// Node labels that keep a Node out of the capacity count.
const EXCLUDED_NODE_LABELS: &[&str] = &[
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];

/// An Event to record on the Service (upstream's `EventBuilder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintsEvent {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl HintsEvent {
    fn disabled(message: String) -> HintsEvent {
        HintsEvent {
            type_: "Warning",
            reason: REASON_DISABLED,
            message,
        }
    }
}

/// Upstream's `FormatWithAddressType`.
pub fn with_address_type(message: &str, address_type: &str) -> String {
    format!("{message}, addressType: {address_type}")
}

/// Endpoints hinted per zone for one Service and address type (upstream's
/// `EndpointZoneInfo`).
pub type ZoneCounts = BTreeMap<String, i64>;

/// How many endpoints a zone should be hinted: at least `minimum`, at most `maximum`, ideally
/// `desired`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Allocation {
    pub(crate) minimum: i64,
    pub(crate) maximum: i64,
    pub(crate) desired: f64,
}

/// The slices of one Service and address type as the reconciler left them: the hints are
/// decided over all of them together (upstream's `SliceInfo`).
#[derive(Debug, Default, Clone)]
pub struct SliceInfo {
    /// `namespace/name`.
    pub service_key: String,
    pub address_type: String,
    pub to_create: Vec<EndpointSlice>,
    pub to_update: Vec<EndpointSlice>,
    /// Existing slices nothing else changes; those whose hints must change move to
    /// `to_update`.
    pub unchanged: Vec<EndpointSlice>,
}

impl SliceInfo {
    fn total_ready_endpoints(&self) -> i64 {
        self.to_create
            .iter()
            .chain(&self.to_update)
            .chain(&self.unchanged)
            .map(|s| s.endpoints.iter().filter(|e| ready(e)).count() as i64)
            .sum()
    }

    /// Upstream's `getAllocatedHintsByZone`: counts the hints of unchanged slices, moving to
    /// `to_update` every slice with an endpoint without zone hints, a hint for a zone that
    /// needs none, or hints that would push a zone past its maximum.
    fn allocated_hints_by_zone(
        &mut self,
        allocations: &BTreeMap<String, Allocation>,
    ) -> ZoneCounts {
        let mut allocated = ZoneCounts::new();
        let mut keep = Vec::with_capacity(self.unchanged.len());
        for slice in std::mem::take(&mut self.unchanged) {
            match hints_by_zone(&slice, &allocated, allocations) {
                None => self.to_update.push(slice),
                Some(by_zone) => {
                    for (zone, n) in by_zone {
                        *allocated.entry(zone).or_default() += n;
                    }
                    keep.push(slice);
                }
            }
        }
        self.unchanged = keep;
        allocated
    }

    /// Upstream's `RemoveHintsFromSlices`: no hints on anything written; unchanged slices
    /// that carry any are written without them.
    pub fn remove_hints(&mut self) {
        for s in self.to_create.iter_mut().chain(self.to_update.iter_mut()) {
            for e in s.endpoints.iter_mut() {
                e.hints = None;
            }
        }
        let mut keep = Vec::with_capacity(self.unchanged.len());
        for mut s in std::mem::take(&mut self.unchanged) {
            if s.endpoints.iter().any(|e| e.hints.is_some()) {
                for e in s.endpoints.iter_mut() {
                    e.hints = None;
                }
                self.to_update.push(s);
            } else {
                keep.push(s);
            }
        }
        self.unchanged = keep;
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Each zone's share of the cluster's allocatable CPU; `None` when the Nodes do not allow
    /// hints (a Node without zone or CPU, or fewer than two zones).
    cpu_ratios_by_zone: Option<BTreeMap<String, f64>>,
    endpoints_by_service: HashMap<String, BTreeMap<String, ZoneCounts>>,
    hints_populated_by_service: HashSet<String>,
}

/// The Node distribution across zones and the hints given to each Service (upstream's
/// `TopologyCache`). Shared by the workers; every method takes the lock briefly.
#[derive(Debug, Default)]
pub struct TopologyCache {
    inner: Mutex<Inner>,
}

impl TopologyCache {
    pub fn new() -> TopologyCache {
        TopologyCache::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Upstream's `SetNodes`: the CPU share of each zone, from ready Nodes that are not
    /// control-plane Nodes. One such Node without a zone or allocatable CPU makes the whole
    /// picture insufficient (no Service gets hints), as does a single zone. Returns whether
    /// the shares changed.
    pub fn set_nodes<'a>(&self, nodes: impl IntoIterator<Item = &'a Node>) -> bool {
        let mut cpu_by_zone: BTreeMap<String, i128> = BTreeMap::new();
        let mut sufficient = true;
        for node in nodes {
            let labels = node.metadata.labels.as_ref();
            if EXCLUDED_NODE_LABELS
                .iter()
                .any(|l| labels.is_some_and(|m| m.contains_key(*l)))
            {
                continue;
            }
            if !node_ready(node) {
                continue;
            }
            let cpu = node_cpu_millis(node);
            let zone = labels.and_then(|l| l.get(crate::slices::ZONE_LABEL));
            match zone {
                Some(z) if !z.is_empty() && cpu != 0 => {
                    *cpu_by_zone.entry(z.clone()).or_default() += cpu;
                }
                _ => {
                    tracing::info!(
                        node = node.metadata.name.as_deref().unwrap_or(""),
                        "can't get CPU or zone information for node"
                    );
                    sufficient = false;
                    break;
                }
            }
        }
        let total: i128 = cpu_by_zone.values().sum();
        let ratios = (sufficient && total != 0 && cpu_by_zone.len() >= 2).then(|| {
            cpu_by_zone
                .iter()
                .map(|(z, cpu)| (z.clone(), *cpu as f64 / total as f64))
                .collect()
        });
        let mut inner = self.lock();
        let changed = inner.cpu_ratios_by_zone != ratios;
        inner.cpu_ratios_by_zone = ratios;
        changed
    }

    /// The zones' CPU shares (`None`: insufficient Node information).
    pub fn cpu_ratios(&self) -> Option<BTreeMap<String, f64>> {
        self.lock().cpu_ratios_by_zone.clone()
    }

    #[cfg(test)]
    pub(crate) fn set_cpu_ratios(&self, ratios: Option<BTreeMap<String, f64>>) {
        self.lock().cpu_ratios_by_zone = ratios;
    }

    /// The hints given per address type to a Service (`namespace/name`).
    pub fn hints_of(&self, service_key: &str) -> Option<BTreeMap<String, ZoneCounts>> {
        self.lock().endpoints_by_service.get(service_key).cloned()
    }

    /// Upstream's `GetOverloadedServices`: Services (`namespace/name`) whose hints leave a
    /// zone below its minimum under the current Node distribution; after a Node change they
    /// are reconciled again.
    pub fn overloaded_services(&self) -> Vec<String> {
        let inner = self.lock();
        let empty = BTreeMap::new();
        let ratios = inner.cpu_ratios_by_zone.as_ref().unwrap_or(&empty);
        let mut keys: Vec<String> = inner
            .endpoints_by_service
            .iter()
            .filter(|(_, by_type)| by_type.values().any(|z| service_overloaded(z, ratios)))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    /// Upstream's `HasPopulatedHints`.
    pub fn has_populated_hints(&self, service_key: &str) -> bool {
        self.lock().hints_populated_by_service.contains(service_key)
    }

    /// Upstream's `RemoveHints`: forgets a Service's hints of one address type.
    pub fn remove_hints(&self, service_key: &str, address_type: &str) {
        let mut inner = self.lock();
        if let Some(by_type) = inner.endpoints_by_service.get_mut(service_key) {
            by_type.remove(address_type);
            if by_type.is_empty() {
                inner.endpoints_by_service.remove(service_key);
            }
        }
        inner.hints_populated_by_service.remove(service_key);
    }

    fn set_hints(&self, service_key: &str, address_type: &str, zones: ZoneCounts) -> bool {
        let mut inner = self.lock();
        let was = inner.hints_populated_by_service.contains(service_key);
        inner
            .endpoints_by_service
            .entry(service_key.to_string())
            .or_default()
            .insert(address_type.to_string(), zones);
        inner
            .hints_populated_by_service
            .insert(service_key.to_string());
        was
    }

    /// Upstream's `getAllocations`: per zone the minimum, maximum and desired number of
    /// endpoints for `n` ready endpoints, or the Event saying why hints cannot be given.
    pub(crate) fn allocations(&self, n: i64) -> Result<BTreeMap<String, Allocation>, HintsEvent> {
        let ratios = self.lock().cpu_ratios_by_zone.clone();
        let Some(ratios) = ratios else {
            return Err(HintsEvent::disabled(INSUFFICIENT_NODE_INFO.into()));
        };
        allocations(&ratios, n)
    }

    /// Upstream's `AddHints`: hints every ready endpoint of the slices to create or update
    /// (and of unchanged slices whose hints no longer fit), or removes every hint when that
    /// cannot be done safely. Returns the Events to record on the Service.
    pub fn add_hints(&self, si: &mut SliceInfo) -> Vec<HintsEvent> {
        let total = si.total_ready_endpoints();
        let allocations = match self.allocations(total) {
            Ok(a) => a,
            Err(mut ev) => {
                tracing::info!(service = %si.service_key, address_type = %si.address_type, "{}, removing hints", ev.message);
                ev.message = with_address_type(&ev.message, &si.address_type);
                self.remove_hints(&si.service_key, &si.address_type);
                si.remove_hints();
                return vec![ev];
            }
        };
        let mut allocated = si.allocated_hints_by_zone(&allocations);

        // 1. Every ready endpoint starts hinted for its own zone.
        for slice in si.to_create.iter_mut().chain(si.to_update.iter_mut()) {
            for e in slice.endpoints.iter_mut().filter(|e| ready(e)) {
                let Some(zone) = e.zone.clone().filter(|z| !z.is_empty()) else {
                    tracing::info!(service = %si.service_key, address_type = %si.address_type, "endpoint found without zone specified, removing hints");
                    self.remove_hints(&si.service_key, &si.address_type);
                    si.remove_hints();
                    return vec![HintsEvent::disabled(with_address_type(
                        NO_ZONE_SPECIFIED,
                        &si.address_type,
                    ))];
                };
                *allocated.entry(zone.clone()).or_default() += 1;
                e.hints = Some(zone_hint(zone));
            }
        }
        // 2. Which zones have endpoints to spare, which need more; 3. move them.
        let (mut giving, mut receiving) = giving_and_receiving_zones(&allocations, &allocated);
        let moved = redistribute_hints(
            si.to_create.iter_mut().chain(si.to_update.iter_mut()),
            &mut giving,
            &mut receiving,
        );
        for (zone, diff) in moved {
            *allocated.entry(zone).or_default() += diff;
        }
        if allocated.is_empty() {
            self.remove_hints(&si.service_key, &si.address_type);
            si.remove_hints();
            return vec![HintsEvent::disabled(with_address_type(
                NO_ALLOCATED_HINTS_FOR_ZONES,
                &si.address_type,
            ))];
        }
        let were_enabled = self.set_hints(&si.service_key, &si.address_type, allocated);
        if were_enabled {
            return Vec::new();
        }
        tracing::info!(service = %si.service_key, address_type = %si.address_type, "topology aware hints have been enabled, adding hints");
        vec![HintsEvent {
            type_: "Normal",
            reason: REASON_ENABLED,
            message: with_address_type(TOPOLOGY_AWARE_HINTS_ENABLED, &si.address_type),
        }]
    }
}

/// The allocations for `n` endpoints over zones with these CPU shares.
pub(crate) fn allocations(
    ratios: &BTreeMap<String, f64>,
    n: i64,
) -> Result<BTreeMap<String, Allocation>, HintsEvent> {
    let zones = ratios.len() as i64;
    if zones < 2 {
        return Err(HintsEvent::disabled(NODES_READY_IN_ONE_ZONE_ONLY.into()));
    }
    if zones > n {
        return Err(HintsEvent::disabled(format!(
            "{INSUFFICIENT_NUMBER_OF_ENDPOINTS} ({n} endpoints, {zones} zones)"
        )));
    }
    let mut remaining = n;
    let mut min_total = 0;
    let mut out = BTreeMap::new();
    for (zone, ratio) in ratios {
        let desired = ratio * n as f64;
        let minimum = (desired * (1.0 / (1.0 + OVERLOAD_THRESHOLD))).ceil() as i64;
        out.insert(
            zone.clone(),
            Allocation {
                minimum,
                maximum: 0,
                desired: desired.max(minimum as f64),
            },
        );
        min_total += minimum;
        remaining -= minimum;
        if remaining < 0 {
            return Err(HintsEvent::disabled(format!(
                "{MIN_ALLOCATION_EXCEEDS_OVERLOAD_THRESHOLD} ({n} endpoints, {zones} zones)"
            )));
        }
    }
    for a in out.values_mut() {
        a.maximum = a.minimum + n - min_total;
    }
    Ok(out)
}

fn zone_hint(zone: String) -> EndpointHints {
    EndpointHints {
        for_zones: Some(vec![ForZone { name: zone }]),
        for_nodes: None,
    }
}

fn ready(e: &Endpoint) -> bool {
    e.conditions.as_ref().and_then(|c| c.ready) == Some(true)
}

/// Upstream's `getHintsByZone`: the hints a slice gives each zone, or `None` when the slice
/// must be rewritten (a ready endpoint without zone hints, a hint for a zone without an
/// allocation, or more hints than a zone's maximum). Node hints left by trafficDistribution
/// PreferSameNode also make the slice rewritten: upstream keeps them, and proxies would then
/// route by node instead of by these zone hints.
pub(crate) fn hints_by_zone(
    slice: &EndpointSlice,
    allocated: &ZoneCounts,
    allocations: &BTreeMap<String, Allocation>,
) -> Option<ZoneCounts> {
    let mut by_zone = ZoneCounts::new();
    for e in slice.endpoints.iter().filter(|e| ready(e)) {
        if e.hints.as_ref().is_some_and(|h| h.for_nodes.is_some()) {
            return None;
        }
        let zones = e.hints.as_ref().and_then(|h| h.for_zones.as_ref())?;
        if zones.is_empty() {
            return None;
        }
        for z in zones {
            if !allocations.contains_key(&z.name) {
                return None;
            }
            *by_zone.entry(z.name.clone()).or_default() += 1;
        }
    }
    for (zone, n) in &by_zone {
        let already = allocated.get(zone).copied().unwrap_or(0);
        match allocations.get(zone) {
            Some(a) if n + already <= a.maximum => {}
            _ => return None,
        }
    }
    Some(by_zone)
}

/// The zone with the largest positive value (the first such, in name order, on a tie).
fn most(zones: &BTreeMap<String, f64>) -> Option<(String, f64)> {
    let mut best: Option<(&String, f64)> = None;
    for (z, n) in zones {
        if *n > best.map_or(0.0, |b| b.1) {
            best = Some((z, *n));
        }
    }
    best.map(|(z, n)| (z.clone(), n))
}

/// Upstream's `getGivingAndReceivingZones`: how many endpoints each zone gives away and
/// receives, moving one endpoint at a time from the zone with the largest surplus to the zone
/// with the largest deficit, while both are at least half an endpoint and one is a whole one.
pub(crate) fn giving_and_receiving_zones(
    allocations: &BTreeMap<String, Allocation>,
    allocated: &ZoneCounts,
) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let mut giving_desired = BTreeMap::new();
    let mut receiving_desired = BTreeMap::new();
    for (zone, a) in allocations {
        let have = allocated.get(zone).copied().unwrap_or(0) as f64;
        if have > a.desired {
            giving_desired.insert(zone.clone(), have - a.desired);
        } else if have < a.desired {
            receiving_desired.insert(zone.clone(), a.desired - have);
        }
    }
    let mut giving = BTreeMap::new();
    let mut receiving = BTreeMap::new();
    while let (Some((g, give)), Some((r, receive))) =
        (most(&giving_desired), most(&receiving_desired))
    {
        if (give < 1.0 && receive < 1.0) || give < 0.5 || receive < 0.5 {
            break;
        }
        *giving.entry(g.clone()).or_insert(0) += 1;
        *giving_desired.get_mut(&g).expect("present") -= 1.0;
        *receiving.entry(r.clone()).or_insert(0) += 1;
        *receiving_desired.get_mut(&r).expect("present") -= 1.0;
    }
    (giving, receiving)
}

/// Upstream's `redistributeHints`: re-hints ready endpoints of giving zones (in slice order)
/// for receiving zones; returns the change per zone.
pub(crate) fn redistribute_hints<'a>(
    slices: impl IntoIterator<Item = &'a mut EndpointSlice>,
    giving: &mut BTreeMap<String, i64>,
    receiving: &mut BTreeMap<String, i64>,
) -> BTreeMap<String, i64> {
    let mut moved = BTreeMap::new();
    for slice in slices {
        for e in slice.endpoints.iter_mut().filter(|e| ready(e)) {
            if giving.is_empty() || receiving.is_empty() {
                return moved;
            }
            let Some(from) = e.zone.clone().filter(|z| !z.is_empty()) else {
                continue;
            };
            if giving.get(&from).copied().unwrap_or(0) <= 0 {
                continue;
            }
            let Some(to) = receiving
                .iter()
                .find(|(_, n)| **n > 0)
                .map(|(z, _)| z.clone())
            else {
                continue;
            };
            e.hints = Some(zone_hint(to.clone()));
            for (map, zone) in [(&mut *giving, &from), (&mut *receiving, &to)] {
                let n = map.get_mut(zone).expect("present");
                *n -= 1;
                if *n == 0 {
                    map.remove(zone);
                }
            }
            *moved.entry(to).or_insert(0) += 1;
            *moved.entry(from).or_insert(0) -= 1;
        }
    }
    moved
}

/// Upstream's `serviceOverloaded`: a zone has fewer hinted endpoints than its minimum.
pub(crate) fn service_overloaded(zones: &ZoneCounts, ratios: &BTreeMap<String, f64>) -> bool {
    if zones.is_empty() {
        return false;
    }
    if ratios.is_empty() {
        return true;
    }
    let total: f64 = zones.values().map(|n| *n as f64).sum();
    ratios.iter().any(|(zone, ratio)| match zones.get(zone) {
        None => true,
        Some(n) => {
            let min = (total * ratio * (1.0 / (1.0 + OVERLOAD_THRESHOLD))).ceil();
            (*n as f64) < min
        }
    })
}

/// Whether a Node event can change the zones' shares. Upstream looks at additions,
/// deletions, Ready and zone changes; a change of allocatable CPU or of the control-plane
/// labels counts here too (upstream notices those only at the next Node event).
pub fn node_changed(old: Option<&Node>, new: Option<&Node>) -> bool {
    let (Some(old), Some(new)) = (old, new) else {
        return true;
    };
    let label = |n: &Node, k: &str| n.metadata.labels.as_ref().and_then(|l| l.get(k)).cloned();
    node_ready(old) != node_ready(new)
        || node_cpu_millis(old) != node_cpu_millis(new)
        || label(old, crate::slices::ZONE_LABEL) != label(new, crate::slices::ZONE_LABEL)
        || EXCLUDED_NODE_LABELS
            .iter()
            .any(|k| label(old, k).is_some() != label(new, k).is_some())
}

/// The Node's Ready condition is True.
pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// `status.allocatable.cpu` in millicores (0 when absent or not a quantity).
pub fn node_cpu_millis(node: &Node) -> i128 {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get("cpu"))
        .and_then(|q| quantity_millis(&q.0))
        .unwrap_or(0)
}

/// A resource quantity (`2`, `1500m`, `0.5`, `1e3`, `2Ki`...) in thousandths, rounded up as
/// apimachinery's `Quantity.MilliValue`.
pub fn quantity_millis(q: &str) -> Option<i128> {
    let s = q.trim();
    let num_end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map_or(s.len(), |(i, _)| i);
    let (num, suffix) = s.split_at(num_end);
    let (negative, digits) = match num.as_bytes().first() {
        Some(b'-') => (true, &num[1..]),
        Some(b'+') => (false, &num[1..]),
        _ => (false, num),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') || frac.len() > 30 {
        return None;
    }
    let mantissa: i128 = format!("{int}{frac}").parse().ok()?;
    // value = mantissa * 10^dec_exp * 2^bin_exp
    let (mut dec_exp, bin_exp): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        e if e.starts_with(['e', 'E']) => (e[1..].parse().ok()?, 0),
        _ => return None,
    };
    dec_exp = dec_exp.checked_sub(frac.len() as i32)?.checked_add(3)?;
    let mut num = mantissa.checked_mul(1i128.checked_shl(bin_exp)?)?;
    let mut den: i128 = 1;
    if dec_exp >= 0 {
        num = num.checked_mul(10i128.checked_pow(dec_exp as u32)?)?;
    } else {
        den = 10i128.checked_pow(dec_exp.unsigned_abs())?;
    }
    // Rounded up (towards +infinity), as MilliValue.
    let millis = num / den + i128::from(num % den != 0);
    Some(if negative { -(num / den) } else { millis })
}

#[cfg(test)]
mod tests;
