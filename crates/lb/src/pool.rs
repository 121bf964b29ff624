//! An IPAddressPool checked and turned into address ranges, as MetalLB's config parser does:
//! CIDRs (every address counts, network and broadcast too) and `first-last` ranges of one
//! family; `avoidBuggyIPs` removes IPv4 addresses ending in .0 or .255.

use crate::crd::{IpAddressPool, ServiceAllocation};
use std::net::IpAddr;

/// An inclusive range of one family, as integers so ranges of both families iterate alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    pub first: IpAddr,
    pub last: IpAddr,
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.first.is_ipv4()
            && to_u128(ip) >= to_u128(self.first)
            && to_u128(ip) <= to_u128(self.last)
    }

    /// Number of addresses (saturating: a /0 IPv6 range does not fit).
    pub fn len(&self) -> u128 {
        (to_u128(self.last) - to_u128(self.first)).saturating_add(1)
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The addresses in order. Lazy: an IPv6 /64 is never materialised.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let v4 = self.first.is_ipv4();
        (to_u128(self.first)..=to_u128(self.last)).map(move |n| from_u128(n, v4))
    }
}

pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

pub fn from_u128(n: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4((n as u32).into())
    } else {
        IpAddr::V6(n.into())
    }
}

/// The IPv4 addresses some consumer routers mistake for network or broadcast addresses.
pub fn is_buggy_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => matches!(a.octets()[3], 0 | 255),
        IpAddr::V6(_) => false,
    }
}

/// A usable pool.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub name: String,
    pub ranges: Vec<IpRange>,
    pub auto_assign: bool,
    pub avoid_buggy_ips: bool,
    pub allocation: Option<Allocation>,
}

/// `serviceAllocation`, with the selectors kept as Kubernetes types for matching.
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    pub priority: i32,
    pub namespaces: Vec<String>,
    pub namespace_selectors: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    pub service_selectors: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
}

impl From<&ServiceAllocation> for Allocation {
    fn from(s: &ServiceAllocation) -> Self {
        Allocation {
            priority: s.priority,
            namespaces: s.namespaces.clone(),
            namespace_selectors: s.namespace_selectors.clone(),
            service_selectors: s.service_selectors.clone(),
        }
    }
}

impl Pool {
    /// Whether the pool holds `ip` and may hand it out (avoidBuggyIPs).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    pub fn usable(&self, ip: IpAddr) -> bool {
        self.contains(ip) && !(self.avoid_buggy_ips && is_buggy_ip(ip))
    }

    pub fn has_family(&self, v4: bool) -> bool {
        self.ranges.iter().any(|r| r.first.is_ipv4() == v4)
    }

    /// Every usable address of one family, in configuration order.
    pub fn addresses(&self, v4: bool) -> impl Iterator<Item = IpAddr> + '_ {
        self.ranges
            .iter()
            .filter(move |r| r.first.is_ipv4() == v4)
            .flat_map(|r| r.iter())
            .filter(move |ip| !(self.avoid_buggy_ips && is_buggy_ip(*ip)))
    }

    /// Checks a pool object. Errors read like MetalLB's config errors.
    pub fn parse(obj: &IpAddressPool) -> Result<Pool, String> {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let mut ranges = Vec::new();
        for a in &obj.spec.addresses {
            ranges.push(parse_range(a)?);
        }
        if ranges.is_empty() {
            return Err(format!("pool {name:?} has no addresses"));
        }
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                if a.first.is_ipv4() == b.first.is_ipv4()
                    && to_u128(a.first) <= to_u128(b.last)
                    && to_u128(b.first) <= to_u128(a.last)
                {
                    return Err(format!(
                        "invalid CIDR {}-{} in pool {name:?}: overlaps with {}-{}",
                        b.first, b.last, a.first, a.last
                    ));
                }
            }
        }
        Ok(Pool {
            name,
            ranges,
            auto_assign: obj.spec.auto_assign.unwrap_or(true),
            avoid_buggy_ips: obj.spec.avoid_buggy_ips,
            allocation: obj.spec.service_allocation.as_ref().map(Allocation::from),
        })
    }
}

/// `10.0.0.0/24`, `10.0.0.10-10.0.0.20` (spaces around the dash allowed), or `fc00::/120`.
pub fn parse_range(s: &str) -> Result<IpRange, String> {
    let s = s.trim();
    if let Some((ip, bits)) = s.split_once('/') {
        let ip: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("invalid CIDR {s:?}"))?;
        let bits: u32 = bits
            .trim()
            .parse()
            .map_err(|_| format!("invalid CIDR {s:?}"))?;
        let width = if ip.is_ipv4() { 32 } else { 128 };
        if bits > width {
            return Err(format!("invalid CIDR {s:?}"));
        }
        let host_bits = width - bits;
        let mask: u128 = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let n = to_u128(ip) & !mask;
        let v4 = ip.is_ipv4();
        return Ok(IpRange {
            first: from_u128(n, v4),
            last: from_u128(n | mask, v4),
        });
    }
    if let Some((a, b)) = s.split_once('-') {
        let first: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("invalid IP range {s:?}: invalid start IP {:?}", a.trim()))?;
        let last: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| format!("invalid IP range {s:?}: invalid end IP {:?}", b.trim()))?;
        if first.is_ipv4() != last.is_ipv4() {
            return Err(format!(
                "invalid IP range {s:?}: start and end are of different families"
            ));
        }
        if to_u128(first) > to_u128(last) {
            return Err(format!(
                "invalid IP range {s:?}: start IP {first} is after the end IP {last}"
            ));
        }
        return Ok(IpRange { first, last });
    }
    Err(format!("invalid CIDR {s:?}: neither a CIDR nor a range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::IpAddressPoolSpec;

    fn pool(addrs: &[&str]) -> IpAddressPool {
        IpAddressPool {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("p".into()),
                ..Default::default()
            },
            spec: IpAddressPoolSpec {
                addresses: addrs.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn cidr_includes_network_and_broadcast() {
        let r = parse_range("192.168.1.0/30").unwrap();
        let all: Vec<String> = r.iter().map(|i| i.to_string()).collect();
        assert_eq!(
            all,
            ["192.168.1.0", "192.168.1.1", "192.168.1.2", "192.168.1.3"]
        );
    }

    #[test]
    fn cidr_with_host_bits_is_masked() {
        let r = parse_range("10.0.0.7/29").unwrap();
        assert_eq!(r.first.to_string(), "10.0.0.0");
        assert_eq!(r.last.to_string(), "10.0.0.7");
    }

    #[test]
    fn ranges_and_ipv6() {
        let r = parse_range("192.168.1.200 - 192.168.1.210").unwrap();
        assert_eq!(r.len(), 11);
        let r = parse_range("fc00::10/126").unwrap();
        assert_eq!(r.first.to_string(), "fc00::10");
        assert_eq!(r.last.to_string(), "fc00::13");
        let r = parse_range("::/0").unwrap();
        assert_eq!(r.len(), u128::MAX);
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-fc00::1",
            "nonsense",
            "10.0.0.256/24",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
        assert!(Pool::parse(&pool(&["10.0.0.0/24", "10.0.0.5-10.0.1.3"])).is_err());
        assert!(Pool::parse(&pool(&[])).is_err());
    }

    #[test]
    fn avoid_buggy_ips_skips_dot_zero_and_255() {
        let mut p = Pool::parse(&pool(&["10.0.0.254-10.0.1.1", "fc00::ff-fc00::100"])).unwrap();
        p.avoid_buggy_ips = true;
        let v4: Vec<String> = p.addresses(true).map(|i| i.to_string()).collect();
        assert_eq!(v4, ["10.0.0.254", "10.0.1.1"]);
        assert_eq!(p.addresses(false).count(), 2);
        assert!(!p.usable("10.0.1.0".parse().unwrap()));
        assert!(p.usable("10.0.1.1".parse().unwrap()));
    }
}
