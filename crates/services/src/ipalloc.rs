//! ClusterIP allocation over one service CIDR, as kube-apiserver's IP allocator does it: the
//! network address (and for IPv4 the broadcast address) is never handed out, the lowest
//! `min(max(16, size/16), 256)` addresses form the static block users pick fixed IPs from,
//! and random allocation takes from the block above it first (see [`crate::slots`]).

use crate::config::{ip_to_u128, u128_to_ip, Cidr, Family};
use crate::slots::Slots;
use rand::Rng;
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

/// Why an address could not be taken; `Display` gives kube-apiserver's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpAllocError {
    /// Outside the usable addresses of the range (also the network and broadcast address).
    NotInRange,
    Allocated,
    Full,
}

impl fmt::Display for IpAllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpAllocError::NotInRange => "the provided network does not match the current range",
            IpAllocError::Allocated => "provided IP is already allocated",
            IpAllocError::Full => "range is full",
        })
    }
}

/// Upstream `calculateRangeOffset` for service CIDRs: the size of the static block.
pub fn static_block_size(cidr: &Cidr) -> u128 {
    const MIN: u128 = 16;
    const MAX: u128 = 256;
    const STEP: u128 = 16;
    let size = cidr.range_size();
    if size <= MIN {
        return 0;
    }
    (size / STEP).clamp(MIN, MAX)
}

#[derive(Debug, Clone)]
pub struct IpAllocator {
    cidr: Cidr,
    first: u128,
    slots: Slots,
    /// Offsets random allocation must not hand out (the cluster DNS address).
    no_random: BTreeSet<u128>,
}

impl IpAllocator {
    pub fn new(cidr: Cidr) -> IpAllocator {
        let (first, size) = match cidr.usable() {
            Some((first, last)) => (first, last - first + 1),
            None => (0, 0),
        };
        IpAllocator {
            cidr,
            first,
            slots: Slots::new(size, static_block_size(&cidr)),
            no_random: BTreeSet::new(),
        }
    }

    pub fn cidr(&self) -> &Cidr {
        &self.cidr
    }

    pub fn family(&self) -> Family {
        self.cidr.family()
    }

    /// Keeps `ip` out of random allocation; it can still be asked for.
    pub fn exclude_from_random(&mut self, ip: IpAddr) {
        if let Some(o) = self.offset(ip) {
            self.no_random.insert(o);
        }
    }

    fn offset(&self, ip: IpAddr) -> Option<u128> {
        if Family::of(ip) != self.family() {
            return None;
        }
        let n = ip_to_u128(ip);
        (n >= self.first && n - self.first < self.slots.size()).then(|| n - self.first)
    }

    fn ip_at(&self, offset: u128) -> IpAddr {
        u128_to_ip(self.family(), self.first + offset)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.offset(ip).is_some()
    }

    pub fn allocate(&mut self, ip: IpAddr) -> Result<(), IpAllocError> {
        let o = self.offset(ip).ok_or(IpAllocError::NotInRange)?;
        if self.slots.take(o) {
            Ok(())
        } else {
            Err(IpAllocError::Allocated)
        }
    }

    pub fn allocate_next(&mut self, rng: &mut impl Rng) -> Result<IpAddr, IpAllocError> {
        let no_random = &self.no_random;
        let o = self
            .slots
            .take_next(rng, |o| no_random.contains(&o))
            .ok_or(IpAllocError::Full)?;
        Ok(self.ip_at(o))
    }

    /// Frees `ip`; false if it was not allocated (or not in the range).
    pub fn release(&mut self, ip: IpAddr) -> bool {
        match self.offset(ip) {
            Some(o) => self.slots.free(o),
            None => false,
        }
    }

    pub fn has(&self, ip: IpAddr) -> bool {
        self.offset(ip).is_some_and(|o| self.slots.has(o))
    }

    pub fn used(&self) -> usize {
        self.slots.used()
    }

    pub fn allocated(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.slots.iter().map(|o| self.ip_at(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn network_and_broadcast_are_out_of_range() {
        let mut a = IpAllocator::new(Cidr::parse("10.43.0.0/16").unwrap());
        assert_eq!(a.allocate(ip("10.43.0.0")), Err(IpAllocError::NotInRange));
        assert_eq!(
            a.allocate(ip("10.43.255.255")),
            Err(IpAllocError::NotInRange)
        );
        assert_eq!(a.allocate(ip("10.44.0.1")), Err(IpAllocError::NotInRange));
        assert_eq!(a.allocate(ip("fd00::1")), Err(IpAllocError::NotInRange));
        assert_eq!(a.allocate(ip("10.43.0.1")), Ok(()));
        assert_eq!(a.allocate(ip("10.43.0.1")), Err(IpAllocError::Allocated));
        assert_eq!(a.allocate(ip("10.43.255.254")), Ok(()));
        assert!(a.release(ip("10.43.0.1")));
        assert!(!a.release(ip("10.43.0.1")));
        assert_eq!(a.allocate(ip("10.43.0.1")), Ok(()));
    }

    #[test]
    fn ipv6_keeps_the_all_ones_address() {
        let mut a = IpAllocator::new(Cidr::parse("fd00:43::/112").unwrap());
        assert_eq!(a.allocate(ip("fd00:43::")), Err(IpAllocError::NotInRange));
        assert_eq!(a.allocate(ip("fd00:43::ffff")), Ok(()));
    }

    #[test]
    fn static_block_sizes_match_upstream() {
        let size = |c: &str| static_block_size(&Cidr::parse(c).unwrap());
        assert_eq!(size("10.43.0.0/16"), 256);
        assert_eq!(size("10.43.0.0/24"), 16);
        assert_eq!(size("10.43.0.0/28"), 0);
        assert_eq!(size("10.43.0.0/20"), 256);
        assert_eq!(size("10.43.0.0/22"), 64);
        assert_eq!(size("fd00::/64"), 256);
    }

    #[test]
    fn random_allocation_skips_the_static_block_and_the_dns_address() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut a = IpAllocator::new(Cidr::parse("10.43.0.0/24").unwrap());
        a.exclude_from_random(ip("10.43.0.10"));
        // 254 usable addresses: 16 static (10.43.0.1-16), 238 dynamic.
        let mut got = Vec::new();
        for _ in 0..238 {
            got.push(a.allocate_next(&mut rng).unwrap());
        }
        assert!(got
            .iter()
            .all(|g| ip_to_u128(*g) > ip_to_u128(ip("10.43.0.16"))));
        for _ in 0..15 {
            assert_ne!(a.allocate_next(&mut rng).unwrap(), ip("10.43.0.10"));
        }
        assert_eq!(a.allocate_next(&mut rng), Err(IpAllocError::Full));
        assert_eq!(a.allocate(ip("10.43.0.10")), Ok(()));
        assert_eq!(a.used(), 254);
    }
}
