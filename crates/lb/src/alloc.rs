//! The address allocator, modelled on MetalLB's `internal/allocator`: pools, which Service
//! holds which address, and the sharing rules. Pure data, no Kubernetes client; the reconciler
//! feeds it Services in a deterministic order and writes what it decides.

use crate::crd::selector_matches;
use crate::pool::Pool;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

/// A Service port as the sharing rules see it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    pub protocol: String,
    pub port: i32,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.protocol, self.port)
    }
}

/// Two Services may share an address only when both carry the same `allow-shared-ip` key and
/// the same backend key (the selector, when externalTrafficPolicy is Local: traffic for the
/// shared IP arrives at one node, which must have local endpoints of both).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharingKey {
    pub sharing: String,
    pub backend: String,
}

/// The IP families a Service needs, from `spec.ipFamilies` and `spec.ipFamilyPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Families {
    pub v4: bool,
    pub v6: bool,
    /// `PreferDualStack` with both families: one address of either family will do when no
    /// pool can give both (MetalLB's `isPreferDualStack`).
    pub prefer_dual: bool,
    /// `spec.ipFamilies` lists IPv6 first: the family to settle for first when only one fits.
    pub v6_first: bool,
}

impl Families {
    pub const V4: Families = Families {
        v4: true,
        v6: false,
        prefer_dual: false,
        v6_first: false,
    };
    pub const V6: Families = Families {
        v4: false,
        v6: true,
        prefer_dual: false,
        v6_first: true,
    };
    /// `RequireDualStack` (IPv4 first).
    pub const DUAL: Families = Families {
        v4: true,
        v6: true,
        prefer_dual: false,
        v6_first: false,
    };

    pub fn count(&self) -> usize {
        self.v4 as usize + self.v6 as usize
    }

    /// Whether `ips` are what the Service needs: one address of each of its families, or for
    /// PreferDualStack one address of either family as well.
    pub fn matches(&self, ips: &[IpAddr]) -> bool {
        let v4 = ips.iter().filter(|i| i.is_ipv4()).count();
        let v6 = ips.len() - v4;
        (v4 == self.v4 as usize && v6 == self.v6 as usize) || (self.prefer_dual && ips.len() == 1)
    }

    /// The (IPv4, IPv6) requests to try, in order: every family of the Service, then for
    /// PreferDualStack its primary family alone, then the other (MetalLB's order).
    fn tries(&self) -> Vec<(bool, bool)> {
        let mut t = vec![(self.v4, self.v6)];
        if self.prefer_dual {
            let primary_v4 = !self.v6_first;
            t.extend([(primary_v4, !primary_v4), (!primary_v4, primary_v4)]);
        }
        t
    }
}

impl fmt::Display for Families {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.v4, self.v6) {
            (true, true) => "DualStack",
            (false, true) => "IPv6",
            _ => "IPv4",
        })
    }
}

/// What the allocator needs to know about one Service.
#[derive(Clone, Debug)]
pub struct SvcRequest {
    /// `namespace/name`.
    pub key: String,
    pub namespace: String,
    pub namespace_labels: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub families: Families,
    pub ports: Vec<Port>,
    pub sharing: SharingKey,
}

/// Why an address could not be given. The text ends up in the Service's `AllocationFailed`
/// Event, worded as MetalLB words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocError(pub String);

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(s: impl Into<String>) -> Result<T, AllocError> {
    Err(AllocError(s.into()))
}

#[derive(Clone, Debug, PartialEq)]
struct Alloc {
    pool: String,
    ips: Vec<IpAddr>,
    ports: Vec<Port>,
    key: SharingKey,
}

/// Who uses one address.
#[derive(Clone, Debug, Default)]
struct IpUse {
    key: SharingKey,
    /// Service key -> its ports on this address.
    services: BTreeMap<String, Vec<Port>>,
}

#[derive(Debug, Default)]
pub struct Allocator {
    pools: BTreeMap<String, Pool>,
    allocated: HashMap<String, Alloc>,
    ips: HashMap<IpAddr, IpUse>,
}

impl Allocator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the pools. Existing allocations stay until their Services are looked at again
    /// (`assign` then refuses an address no pool holds any more).
    pub fn set_pools(&mut self, pools: impl IntoIterator<Item = Pool>) {
        self.pools = pools.into_iter().map(|p| (p.name.clone(), p)).collect();
    }

    pub fn pools(&self) -> impl Iterator<Item = &Pool> {
        self.pools.values()
    }

    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.get(name)
    }

    /// The addresses `svc` holds, and from which pool.
    pub fn allocation(&self, svc: &str) -> Option<(&str, &[IpAddr])> {
        self.allocated
            .get(svc)
            .map(|a| (a.pool.as_str(), a.ips.as_slice()))
    }

    /// Services holding an allocation.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.allocated.keys().map(|s| s.as_str())
    }

    /// Services on one address.
    pub fn services_on(&self, ip: IpAddr) -> Vec<&str> {
        self.ips
            .get(&ip)
            .map(|u| u.services.keys().map(|s| s.as_str()).collect())
            .unwrap_or_default()
    }

    pub fn pool_in_use(&self, pool: &str) -> usize {
        self.allocated.values().filter(|a| a.pool == pool).count()
    }

    /// Whether `pool` may serve `svc` (`serviceAllocation`: namespaces, namespaceSelectors,
    /// serviceSelectors).
    pub fn pool_allows(pool: &Pool, svc: &SvcRequest) -> bool {
        let Some(a) = &pool.allocation else {
            return true;
        };
        if !(a.namespaces.is_empty() && a.namespace_selectors.is_empty()) {
            let by_name = a.namespaces.iter().any(|n| n == &svc.namespace);
            let by_sel = a
                .namespace_selectors
                .iter()
                .any(|s| selector_matches(s, &svc.namespace_labels));
            if !(by_name || by_sel) {
                return false;
            }
        }
        a.service_selectors.is_empty()
            || a.service_selectors
                .iter()
                .any(|s| selector_matches(s, &svc.labels))
    }

    /// Pools `Allocate` tries for `svc`, in order: pools whose serviceAllocation sets a
    /// priority (lowest first), then other pools with a serviceAllocation, then pools without
    /// one; by name within each group. Only autoAssign pools that allow the Service.
    pub fn candidate_pools(&self, svc: &SvcRequest) -> Vec<&Pool> {
        let mut pools: Vec<&Pool> = self
            .pools
            .values()
            .filter(|p| p.auto_assign && Self::pool_allows(p, svc))
            .filter(|p| {
                let all = (!svc.families.v4 || p.has_family(true))
                    && (!svc.families.v6 || p.has_family(false));
                all || (svc.families.prefer_dual && (p.has_family(true) || p.has_family(false)))
            })
            .collect();
        pools.sort_by_key(|p| {
            let tier = match &p.allocation {
                Some(a) if a.priority > 0 => 0,
                Some(_) => 1,
                None => 2,
            };
            (
                tier,
                p.allocation.as_ref().map(|a| a.priority).unwrap_or(0),
                p.name.clone(),
            )
        });
        pools
    }

    /// Whether `svc` may use `ip` next to the Services already on it (MetalLB's checkSharing).
    fn check_sharing(&self, svc: &SvcRequest, ip: IpAddr) -> Result<(), AllocError> {
        let Some(used) = self.ips.get(&ip) else {
            return Ok(());
        };
        let others: Vec<&str> = used
            .services
            .keys()
            .filter(|k| *k != &svc.key)
            .map(|s| s.as_str())
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        let (existing, new) = (&used.key, &svc.sharing);
        let refusal = if existing.sharing.is_empty() {
            Some("existing service does not allow sharing".to_string())
        } else if new.sharing.is_empty() {
            Some("new service does not allow sharing".to_string())
        } else if existing.sharing != new.sharing {
            Some(format!(
                "sharing key {:?} does not match existing sharing key {:?}",
                new.sharing, existing.sharing
            ))
        } else if existing.backend != new.backend {
            Some(format!(
                "backend key {:?} does not match existing backend key {:?}",
                new.backend, existing.backend
            ))
        } else {
            None
        };
        if let Some(r) = refusal {
            return err(format!(
                "can't use {ip}, address also in use by {}: {r}",
                others.join(",")
            ));
        }
        for p in &svc.ports {
            for (other, ports) in &used.services {
                if other != &svc.key && ports.contains(p) {
                    return err(format!("port {p} is already in use on {ip} by {other}"));
                }
            }
        }
        Ok(())
    }

    /// Gives `svc` exactly `ips` (a requested address, or the one it already has), checking
    /// that one pool holds them all, that the pool allows the Service, and the sharing rules.
    pub fn assign(&mut self, svc: &SvcRequest, ips: &[IpAddr]) -> Result<(), AllocError> {
        if !svc.families.matches(ips) {
            return err(format!(
                "requested addresses {} do not match the service's IP families ({})",
                list(ips),
                svc.families
            ));
        }
        let pool = self
            .pools
            .values()
            .find(|p| ips.iter().all(|ip| p.contains(*ip)))
            .ok_or_else(|| AllocError(format!("{} is not allowed in config", list(ips))))?;
        for ip in ips {
            if !pool.usable(*ip) {
                return err(format!(
                    "{ip} is not allowed in pool {:?}: avoidBuggyIPs excludes it",
                    pool.name
                ));
            }
        }
        if !Self::pool_allows(pool, svc) {
            return err(format!(
                "pool {:?} does not serve this service (serviceAllocation)",
                pool.name
            ));
        }
        for ip in ips {
            self.check_sharing(svc, *ip)?;
        }
        let pool = pool.name.clone();
        self.unassign(&svc.key);
        for ip in ips {
            let used = self.ips.entry(*ip).or_default();
            used.key = svc.sharing.clone();
            used.services.insert(svc.key.clone(), svc.ports.clone());
        }
        self.allocated.insert(
            svc.key.clone(),
            Alloc {
                pool,
                ips: ips.to_vec(),
                ports: svc.ports.clone(),
                key: svc.sharing.clone(),
            },
        );
        Ok(())
    }

    /// Releases whatever `svc` holds.
    pub fn unassign(&mut self, svc: &str) -> bool {
        let Some(a) = self.allocated.remove(svc) else {
            return false;
        };
        for ip in a.ips {
            if let Some(used) = self.ips.get_mut(&ip) {
                used.services.remove(svc);
                if used.services.is_empty() {
                    self.ips.remove(&ip);
                }
            }
        }
        true
    }

    /// The first address of one family in `pool` that `svc` may use (free, or shareable).
    fn first_usable(&self, pool: &Pool, svc: &SvcRequest, v4: bool) -> Option<IpAddr> {
        pool.addresses(v4)
            .find(|ip| self.check_sharing(svc, *ip).is_ok())
    }

    /// Allocates from one named pool (the `address-pool` annotation; autoAssign does not
    /// matter then). Keeps the current allocation if it comes from that pool.
    pub fn allocate_from_pool(
        &mut self,
        svc: &SvcRequest,
        pool_name: &str,
    ) -> Result<Vec<IpAddr>, AllocError> {
        if let Some(a) = self.allocated.get(&svc.key) {
            if a.pool == pool_name
                && svc.families.matches(&a.ips)
                && a.ports == svc.ports
                && a.key == svc.sharing
            {
                return Ok(a.ips.clone());
            }
        }
        let Some(pool) = self.pools.get(pool_name) else {
            return err(format!("unknown pool {pool_name:?}"));
        };
        if !Self::pool_allows(pool, svc) {
            return err(format!(
                "pool {pool_name:?} does not serve this service (serviceAllocation)"
            ));
        }
        let ips = svc
            .families
            .tries()
            .into_iter()
            .find_map(|(v4, v6)| self.pick(pool, svc, v4, v6))
            .ok_or_else(|| {
                AllocError(format!(
                    "no available IPs in pool {pool_name:?} for {} IPFamily",
                    svc.families
                ))
            })?;
        self.assign(svc, &ips)?;
        Ok(ips)
    }

    /// One usable address of each family asked for from `pool` (IPv4 first), or None.
    fn pick(&self, pool: &Pool, svc: &SvcRequest, v4: bool, v6: bool) -> Option<Vec<IpAddr>> {
        let mut ips = Vec::new();
        for (want, family) in [(v4, true), (v6, false)] {
            if want {
                ips.push(self.first_usable(pool, svc, family)?);
            }
        }
        (!ips.is_empty()).then_some(ips)
    }

    /// PreferDualStack with one address: adds one of the missing family from the same pool if
    /// it has one free now (MetalLB's AllocateFromPoolForAdditionalFamily). Returns the
    /// Service's addresses afterwards.
    pub fn add_missing_family(&mut self, svc: &SvcRequest) -> Option<Vec<IpAddr>> {
        let a = self.allocated.get(&svc.key)?;
        let [only] = a.ips[..] else {
            return Some(a.ips.clone());
        };
        if !(svc.families.prefer_dual && svc.families.v4 && svc.families.v6) {
            return Some(a.ips.clone());
        }
        let pool = self.pools.get(&a.pool)?;
        let Some(other) = self.first_usable(pool, svc, only.is_ipv6()) else {
            return Some(vec![only]);
        };
        let both = if only.is_ipv4() {
            vec![only, other]
        } else {
            vec![other, only]
        };
        if self.assign(svc, &both).is_ok() {
            Some(both)
        } else {
            // assign refused before changing anything: the single address stays.
            Some(vec![only])
        }
    }

    /// Allocates from the first candidate pool with room.
    pub fn allocate(&mut self, svc: &SvcRequest) -> Result<Vec<IpAddr>, AllocError> {
        if let Some(a) = self.allocated.get(&svc.key) {
            if svc.families.matches(&a.ips) {
                let ips = a.ips.clone();
                if self.assign(svc, &ips).is_ok() {
                    return Ok(ips);
                }
            }
        }
        let names: Vec<String> = self
            .candidate_pools(svc)
            .iter()
            .map(|p| p.name.clone())
            .collect();
        // MetalLB's findBestPoolForService: the first pool that gives every family; for
        // PreferDualStack then the first with the primary family, then the other.
        for (v4, v6) in svc.families.tries() {
            for name in &names {
                let Some(pool) = self.pools.get(name) else {
                    continue;
                };
                if let Some(ips) = self.pick(pool, svc, v4, v6) {
                    if self.assign(svc, &ips).is_ok() {
                        return Ok(ips);
                    }
                }
            }
        }
        err("no available IPs")
    }
}

fn list(ips: &[IpAddr]) -> String {
    let v: Vec<String> = ips.iter().map(|i| format!("{:?}", i.to_string())).collect();
    format!("[{}]", v.join(" "))
}

#[cfg(test)]
mod tests;
