//! Who holds what: the allocators plus, for every allocated ClusterIP and NodePort, the
//! Service holding it and whether that Service's write is still in flight. Reservations made
//! while a write is admitted are *pending* until the store answers; then they are committed
//! or released. A value a repair found held by several Services is owned by the first and
//! passed on to the next when the first lets go, so it stays reserved while anyone has it.

use crate::config::{Cidr, Family, PortRange};
use crate::ipalloc::{IpAllocError, IpAllocator};
use crate::portalloc::{PortAllocError, PortAllocator};
use rand::rngs::StdRng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One allocatable thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    ClusterIp(IpAddr),
    NodePort(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    /// The Service's identity: its uid, or `namespace/name` when it has none.
    pub owner: String,
    /// Reserved by a write the store has not answered yet.
    pub pending: bool,
    /// Other Services found holding the same value when the allocators were rebuilt.
    pub others: Vec<String>,
}

/// What [`Registry::adopt`] found when rebuilding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Adopted {
    Owned,
    /// Already held by another Service.
    Duplicate,
    /// Not in any configured range.
    OutOfRange,
    /// An address of a family the cluster has no range for.
    FamilyNotConfigured,
}

pub(crate) struct Registry {
    pub ips: Vec<IpAllocator>,
    pub ports: PortAllocator,
    holders: BTreeMap<Resource, Holder>,
    pub rng: StdRng,
}

impl Registry {
    pub fn new(cidrs: &[Cidr], ports: PortRange, no_random: &[IpAddr], rng: StdRng) -> Registry {
        let ips = cidrs
            .iter()
            .map(|c| {
                let mut a = IpAllocator::new(*c);
                for ip in no_random {
                    a.exclude_from_random(*ip);
                }
                a
            })
            .collect();
        Registry {
            ips,
            ports: PortAllocator::new(ports),
            holders: BTreeMap::new(),
            rng,
        }
    }

    pub fn families(&self) -> Vec<Family> {
        self.ips.iter().map(|a| a.family()).collect()
    }

    pub fn ip_allocator(&self, family: Family) -> Option<&IpAllocator> {
        self.ips.iter().find(|a| a.family() == family)
    }

    fn ip_allocator_mut(&mut self, family: Family) -> Option<&mut IpAllocator> {
        self.ips.iter_mut().find(|a| a.family() == family)
    }

    fn pending(owner: &str) -> Holder {
        Holder {
            owner: owner.to_string(),
            pending: true,
            others: Vec::new(),
        }
    }

    /// Reserves `ip` for `owner`'s write in flight.
    pub fn reserve_ip(&mut self, ip: IpAddr, owner: &str) -> Result<(), IpAllocError> {
        let a = self
            .ip_allocator_mut(Family::of(ip))
            .ok_or(IpAllocError::NotInRange)?;
        a.allocate(ip)?;
        self.holders
            .insert(Resource::ClusterIp(ip), Self::pending(owner));
        Ok(())
    }

    pub fn reserve_next_ip(&mut self, family: Family, owner: &str) -> Result<IpAddr, IpAllocError> {
        let Registry { ips, rng, .. } = self;
        let a = ips
            .iter_mut()
            .find(|a| a.family() == family)
            .ok_or(IpAllocError::Full)?;
        let ip = a.allocate_next(rng)?;
        self.holders
            .insert(Resource::ClusterIp(ip), Self::pending(owner));
        Ok(ip)
    }

    pub fn reserve_port(&mut self, port: i64, owner: &str) -> Result<(), PortAllocError> {
        self.ports.allocate(port)?;
        self.holders
            .insert(Resource::NodePort(port as u16), Self::pending(owner));
        Ok(())
    }

    pub fn reserve_next_port(&mut self, owner: &str) -> Result<u16, PortAllocError> {
        let port = self.ports.allocate_next(&mut self.rng)?;
        self.holders
            .insert(Resource::NodePort(port), Self::pending(owner));
        Ok(port)
    }

    /// Makes `owner`'s pending reservation of `r` permanent (its write was stored).
    pub fn commit(&mut self, r: Resource, owner: &str) {
        if let Some(h) = self.holders.get_mut(&r) {
            if h.owner == owner {
                h.pending = false;
            }
        }
    }

    /// `owner` no longer holds `r`. With `pending_only`, only a reservation still in flight is
    /// undone (a failed write must not free what the stored object holds).
    pub fn release(&mut self, r: Resource, owner: &str, pending_only: bool) {
        let Some(h) = self.holders.get_mut(&r) else {
            return;
        };
        if h.owner != owner {
            if !pending_only {
                h.others.retain(|o| o != owner);
            }
            return;
        }
        if pending_only && !h.pending {
            return;
        }
        if !h.others.is_empty() {
            h.owner = h.others.remove(0);
            h.pending = false;
            return;
        }
        self.holders.remove(&r);
        match r {
            Resource::ClusterIp(ip) => {
                if let Some(a) = self.ip_allocator_mut(Family::of(ip)) {
                    a.release(ip);
                }
            }
            Resource::NodePort(p) => {
                self.ports.release(p as i64);
            }
        }
    }

    /// Records that a stored Service holds `r` (rebuilding at start).
    pub fn adopt(&mut self, r: Resource, owner: &str) -> Adopted {
        if let Some(h) = self.holders.get_mut(&r) {
            if h.owner != owner && !h.others.iter().any(|o| o == owner) {
                h.others.push(owner.to_string());
            }
            return Adopted::Duplicate;
        }
        let taken = match r {
            Resource::ClusterIp(ip) => match self.ip_allocator_mut(Family::of(ip)) {
                None => return Adopted::FamilyNotConfigured,
                Some(a) => a.allocate(ip).is_ok(),
            },
            Resource::NodePort(p) => self.ports.allocate(p as i64).is_ok(),
        };
        if !taken {
            return Adopted::OutOfRange;
        }
        self.holders.insert(
            r,
            Holder {
                owner: owner.to_string(),
                pending: false,
                others: Vec::new(),
            },
        );
        Adopted::Owned
    }

    #[cfg(test)]
    pub fn holder(&self, r: &Resource) -> Option<&Holder> {
        self.holders.get(r)
    }

    pub fn holders(&self) -> &BTreeMap<Resource, Holder> {
        &self.holders
    }

    /// The allocators and the holder map describe the same set (a test invariant).
    pub fn consistent(&self) -> bool {
        let mut from_allocators: BTreeSet<Resource> =
            self.ports.allocated().map(Resource::NodePort).collect();
        for a in &self.ips {
            from_allocators.extend(a.allocated().map(Resource::ClusterIp));
        }
        from_allocators.iter().eq(self.holders.keys())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn registry() -> Registry {
        Registry::new(
            &[Cidr::parse("10.43.0.0/16").unwrap()],
            PortRange {
                base: 30000,
                last: 32767,
            },
            &[],
            StdRng::seed_from_u64(1),
        )
    }

    #[test]
    fn pending_reservations_commit_or_roll_back() {
        let mut r = registry();
        let ip: IpAddr = "10.43.1.1".parse().unwrap();
        r.reserve_ip(ip, "a").unwrap();
        assert!(r.reserve_ip(ip, "b").is_err());
        r.release(Resource::ClusterIp(ip), "b", true);
        assert!(r.holder(&Resource::ClusterIp(ip)).is_some());
        r.commit(Resource::ClusterIp(ip), "a");
        r.release(Resource::ClusterIp(ip), "a", true);
        assert!(
            r.holder(&Resource::ClusterIp(ip)).is_some(),
            "a committed value survives a failed write"
        );
        r.release(Resource::ClusterIp(ip), "a", false);
        assert!(r.holder(&Resource::ClusterIp(ip)).is_none());
        assert!(r.consistent());
    }

    #[test]
    fn duplicates_pass_ownership_on() {
        let mut r = registry();
        let p = Resource::NodePort(30080);
        assert_eq!(r.adopt(p, "a"), Adopted::Owned);
        assert_eq!(r.adopt(p, "b"), Adopted::Duplicate);
        r.release(p, "a", false);
        assert_eq!(r.holder(&p).unwrap().owner, "b");
        r.release(p, "b", false);
        assert!(r.holder(&p).is_none());
        assert_eq!(r.adopt(Resource::NodePort(80), "c"), Adopted::OutOfRange);
        assert_eq!(
            r.adopt(Resource::ClusterIp("fd00::1".parse().unwrap()), "c"),
            Adopted::FamilyNotConfigured
        );
        assert!(r.consistent());
    }
}
