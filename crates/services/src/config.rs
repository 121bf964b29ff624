//! `--service-cidr` and `--service-node-port-range`: what they accept, and the address
//! arithmetic on service CIDRs the allocators need.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP family as the Service API spells it (`spec.ipFamilies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    IPv4,
    IPv6,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::IPv4 => "IPv4",
            Family::IPv6 => "IPv6",
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "IPv4" => Some(Family::IPv4),
            "IPv6" => Some(Family::IPv6),
            _ => None,
        }
    }

    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::IPv4,
            IpAddr::V6(_) => Family::IPv6,
        }
    }

    pub fn other(self) -> Family {
        match self {
            Family::IPv4 => Family::IPv6,
            Family::IPv6 => Family::IPv4,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Family::IPv4 => 32,
            Family::IPv6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IP address as a number, the way the allocators count.
pub(crate) fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub(crate) fn u128_to_ip(family: Family, n: u128) -> IpAddr {
    match family {
        Family::IPv4 => IpAddr::V4(Ipv4Addr::from(n as u32)),
        Family::IPv6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// A network in canonical form (`10.43.0.0/16`: no bits set past the prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, ConfigError> {
        let bad = || ConfigError::Cidr(s.to_string(), "not a CIDR (e.g. 10.43.0.0/16)".to_string());
        let (addr, len) = s.trim().split_once('/').ok_or_else(bad)?;
        let ip: IpAddr = addr.parse().map_err(|_| bad())?;
        if len.is_empty()
            || !len.bytes().all(|b| b.is_ascii_digit())
            || (len.len() > 1 && len.starts_with('0'))
        {
            return Err(bad());
        }
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        let family = Family::of(ip);
        if prefix > family.bits() {
            return Err(bad());
        }
        let cidr = Cidr {
            network: ip,
            prefix,
        };
        if cidr.mask(ip_to_u128(ip)) != ip_to_u128(ip) {
            return Err(ConfigError::Cidr(
                s.to_string(),
                "has bits set beyond the prefix length".to_string(),
            ));
        }
        Ok(cidr)
    }

    pub fn family(&self) -> Family {
        Family::of(self.network)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network address (`10.43.0.0`), which server dry-run reports as a placeholder.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    fn host_bits(&self) -> u32 {
        (self.family().bits() - self.prefix) as u32
    }

    fn mask(&self, n: u128) -> u128 {
        let host = self.host_bits();
        if host >= 128 {
            0
        } else {
            n & !((1u128 << host) - 1)
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family() && self.mask(ip_to_u128(ip)) == ip_to_u128(self.network)
    }

    /// All addresses of the network, network and broadcast included, as upstream's
    /// `netutils.RangeSize` counts them (saturating at `i64::MAX`).
    pub(crate) fn range_size(&self) -> u128 {
        let host = self.host_bits();
        if host >= 63 {
            i64::MAX as u128
        } else {
            1u128 << host
        }
    }

    /// The first and last address a Service may get: not the network address, and for IPv4 not
    /// the broadcast address (IPv6 has none).
    pub(crate) fn usable(&self) -> Option<(u128, u128)> {
        let net = ip_to_u128(self.network);
        let host = self.host_bits();
        let last = if host >= 128 {
            u128::MAX
        } else {
            net + ((1u128 << host) - 1)
        };
        let first = net.checked_add(1)?;
        let last = if self.family() == Family::IPv4 {
            last.checked_sub(1)?
        } else {
            last
        };
        (first <= last).then_some((first, last))
    }

    /// The `n`th usable address (0 is the first after the network address).
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let (first, last) = self.usable()?;
        let at = first.checked_add(n)?;
        (at <= last).then(|| u128_to_ip(self.family(), at))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// An inclusive port range, printed as upstream's `net.PortRange` (`30000-32767`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub base: u16,
    pub last: u16,
}

impl PortRange {
    pub fn size(&self) -> u32 {
        self.last as u32 - self.base as u32 + 1
    }

    pub fn contains(&self, port: i64) -> bool {
        port >= self.base as i64 && port <= self.last as i64
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.base, self.last)
    }
}

/// Parses `--service-node-port-range` as upstream's `net.ParsePortRange`: `30000-32767`,
/// `30000+2767` (base and size past it), or a single port.
pub fn parse_node_port_range(s: &str) -> Result<(u16, u16), ConfigError> {
    let bad = || ConfigError::PortRange(s.to_string());
    let t = s.trim();
    let num = |p: &str| -> Result<u16, ConfigError> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse::<u16>().map_err(|_| bad())
    };
    let (base, last) = if let Some((a, b)) = t.split_once('-') {
        (num(a)?, num(b)?)
    } else if let Some((a, b)) = t.split_once('+') {
        let base = num(a)?;
        let size = num(b)?;
        (base, base.checked_add(size).ok_or_else(bad)?)
    } else {
        let p = num(t)?;
        (p, p)
    };
    if base == 0 || last < base {
        return Err(bad());
    }
    Ok((base, last))
}

/// A bad `--service-cidr` or `--service-node-port-range`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid service CIDR {0:?}: {1}")]
    Cidr(String, String),
    #[error("--service-cidr must list one IPv4 and/or one IPv6 range, got {0:?}")]
    Cidrs(String),
    #[error("invalid service node port range {0:?}: use e.g. 30000-32767")]
    PortRange(String),
}

/// What the Service admission needs to know about the cluster. `Default` is k3s's:
/// service CIDR `10.43.0.0/16`, NodePorts `30000-32767`, cluster DNS `10.43.0.10`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// One or two ranges (`--service-cidr`): an IPv4 and/or an IPv6 CIDR. The first is the
    /// primary family, what single-stack Services get.
    pub service_cidrs: Vec<String>,
    /// `--service-node-port-range`, inclusive.
    pub node_port_range: (u16, u16),
    /// Addresses random allocation never hands out but an explicit `clusterIP` may take: the
    /// cluster DNS address (k3s `--cluster-dns`), which the `kube-dns` Service asks for.
    pub cluster_dns: Vec<IpAddr>,
    /// Seed of the random allocator; `None` seeds from the OS. For tests.
    pub rng_seed: Option<u64>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            service_cidrs: vec!["10.43.0.0/16".to_string()],
            node_port_range: (30000, 32767),
            cluster_dns: vec![IpAddr::V4(Ipv4Addr::new(10, 43, 0, 10))],
            rng_seed: None,
        }
    }
}

impl ServiceConfig {
    /// From the flags as given: `service_cidr` is `--service-cidr` (comma-separated, one or two
    /// ranges), `node_port_range` is `--service-node-port-range`. The cluster DNS address is the
    /// tenth address of the primary range, as k3s derives it (`10.43.0.10`).
    pub fn from_flags(
        service_cidr: &str,
        node_port_range: &str,
    ) -> Result<ServiceConfig, ConfigError> {
        let service_cidrs: Vec<String> = service_cidr
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        ServiceConfig::new(service_cidrs, parse_node_port_range(node_port_range)?)
    }

    /// From already split ranges (`--service-cidr` as clap's `value_delimiter` gives it) and a
    /// parsed port range; the cluster DNS address as in [`ServiceConfig::from_flags`].
    pub fn new(
        service_cidrs: Vec<String>,
        node_port_range: (u16, u16),
    ) -> Result<ServiceConfig, ConfigError> {
        let cidrs = parse_service_cidrs(&service_cidrs)?;
        let cluster_dns = cidrs[0].nth(9).into_iter().collect();
        let config = ServiceConfig {
            service_cidrs,
            node_port_range,
            cluster_dns,
            rng_seed: None,
        };
        config.port_range()?;
        Ok(config)
    }

    /// The parsed ranges, primary first.
    pub fn cidrs(&self) -> Result<Vec<Cidr>, ConfigError> {
        parse_service_cidrs(&self.service_cidrs)
    }

    pub fn port_range(&self) -> Result<PortRange, ConfigError> {
        let (base, last) = self.node_port_range;
        if base == 0 || last < base {
            return Err(ConfigError::PortRange(format!("{base}-{last}")));
        }
        Ok(PortRange { base, last })
    }

    /// The `kubernetes` Service's ClusterIP: the first address of the primary range.
    pub fn kubernetes_service_ip(&self) -> Result<IpAddr, ConfigError> {
        let cidrs = self.cidrs()?;
        cidrs[0].nth(0).ok_or_else(|| {
            ConfigError::Cidr(cidrs[0].to_string(), "has no usable address".to_string())
        })
    }
}

/// Upstream's rules for `--service-cluster-ip-range`: one or two ranges, of different families,
/// IPv4 no wider than /12, IPv6 no wider than /64 (the IPAddress allocator's limit), each with
/// room for at least two Services.
pub fn parse_service_cidrs(cidrs: &[String]) -> Result<Vec<Cidr>, ConfigError> {
    let joined = cidrs.join(",");
    if cidrs.is_empty() || cidrs.len() > 2 {
        return Err(ConfigError::Cidrs(joined));
    }
    let parsed = cidrs
        .iter()
        .map(|c| Cidr::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    if parsed.len() == 2 && parsed[0].family() == parsed[1].family() {
        return Err(ConfigError::Cidrs(joined));
    }
    for c in &parsed {
        let ok = match c.family() {
            Family::IPv4 => (12..=30).contains(&c.prefix),
            Family::IPv6 => (64..=126).contains(&c.prefix),
        };
        if !ok {
            return Err(ConfigError::Cidr(
                c.to_string(),
                "the prefix length must be 12..=30 for IPv4 and 64..=126 for IPv6".to_string(),
            ));
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_port_range_forms() {
        assert_eq!(parse_node_port_range("30000-32767"), Ok((30000, 32767)));
        assert_eq!(parse_node_port_range("30000+2767"), Ok((30000, 32767)));
        assert_eq!(parse_node_port_range("30080"), Ok((30080, 30080)));
        assert!(parse_node_port_range("32767-30000").is_err());
        assert!(parse_node_port_range("0-10").is_err());
        assert!(parse_node_port_range("30000-70000").is_err());
        assert!(parse_node_port_range("a-b").is_err());
        assert!(parse_node_port_range("").is_err());
    }

    #[test]
    fn default_is_k3s() {
        let c = ServiceConfig::default();
        assert_eq!(
            c,
            ServiceConfig::from_flags("10.43.0.0/16", "30000-32767").unwrap()
        );
        assert_eq!(
            c,
            ServiceConfig::new(vec!["10.43.0.0/16".into()], (30000, 32767)).unwrap()
        );
        assert!(ServiceConfig::new(vec!["10.43.0.0/16".into()], (32767, 30000)).is_err());
        assert_eq!(c.kubernetes_service_ip().unwrap().to_string(), "10.43.0.1");
        assert_eq!(c.port_range().unwrap().to_string(), "30000-32767");
    }

    #[test]
    fn service_cidrs_rules() {
        let dual = ServiceConfig::from_flags("10.43.0.0/16,fd00:43::/112", "30000-32767").unwrap();
        let cidrs = dual.cidrs().unwrap();
        assert_eq!(cidrs[1].family(), Family::IPv6);
        assert_eq!(cidrs[1].nth(0).unwrap().to_string(), "fd00:43::1");
        assert!(ServiceConfig::from_flags("10.43.0.0/16,10.44.0.0/16", "30000-32767").is_err());
        assert!(ServiceConfig::from_flags("10.43.0.1/16", "30000-32767").is_err());
        assert!(ServiceConfig::from_flags("10.0.0.0/8", "30000-32767").is_err());
        assert!(ServiceConfig::from_flags("fd00::/48", "30000-32767").is_err());
        assert!(ServiceConfig::from_flags("nonsense", "30000-32767").is_err());
    }

    #[test]
    fn cidr_arithmetic() {
        let c = Cidr::parse("10.43.0.0/16").unwrap();
        assert_eq!(
            c.usable(),
            Some((
                ip_to_u128("10.43.0.1".parse().unwrap()),
                ip_to_u128("10.43.255.254".parse().unwrap())
            ))
        );
        assert!(c.contains("10.43.255.255".parse().unwrap()));
        assert!(!c.contains("10.44.0.0".parse().unwrap()));
        assert!(!c.contains("fd00::1".parse().unwrap()));
        assert_eq!(c.range_size(), 65536);
        let v6 = Cidr::parse("fd00::/64").unwrap();
        assert_eq!(v6.range_size(), i64::MAX as u128);
        assert_eq!(
            v6.usable().unwrap().1,
            ip_to_u128("fd00::ffff:ffff:ffff:ffff".parse().unwrap())
        );
    }
}
