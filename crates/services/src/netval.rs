//! IP and CIDR strings as Kubernetes validates them (`k8s.io/apimachinery/pkg/util/validation`
//! `ip.go`, with strict validation on, as in 1.36): Go's old "sloppy" parser decides what is an
//! address at all, and the strict rules then refuse leading zeros and IPv4-mapped IPv6. Values
//! the stored object already had stay valid on update.

use model::Cause;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};

pub const INVALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
pub const INVALID_CIDR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// Go's `netutils.ParseIPSloppy`: also takes IPv4 octets with leading zeros (read as decimal).
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if s.contains(':') {
        return None;
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(parts) {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: u32 = p.trim_start_matches('0').parse().unwrap_or(0);
        if p.len() > 8 || v > 255 {
            return None;
        }
        *o = v as u8;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

/// Go's `netip.ParseAddr` (no leading zeros, no zones).
fn parse_ip_strict(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok()
}

fn is_4in6(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// The messages of `IsValidIPForLegacyField` with strict validation, without field paths.
pub fn ip_messages(value: &str) -> Vec<&'static str> {
    let Some(_) = parse_ip_sloppy(value) else {
        return vec![INVALID_IP];
    };
    let mut out = Vec::new();
    match parse_ip_strict(value) {
        None => out.push("must not have leading 0s"),
        Some(ip) if is_4in6(ip) => out.push("must not be an IPv4-mapped IPv6 address"),
        Some(_) => {}
    }
    out
}

/// `IsValidIPForLegacyField(field, value, strict, validOldIPs)` as causes.
pub fn validate_ip(field: &str, value: &str, valid_old: &[String]) -> Vec<Cause> {
    if valid_old.iter().any(|o| o == value) {
        return Vec::new();
    }
    ip_messages(value)
        .into_iter()
        .map(|m| Cause::invalid(field, &json!(value), m))
        .collect()
}

/// A parsed CIDR as Go's `ParseCIDRSloppy` sees it: the address as written and the prefix.
fn parse_cidr_sloppy(value: &str) -> Option<(IpAddr, u32)> {
    let (addr, len) = value.split_once('/')?;
    let ip = parse_ip_sloppy(addr)?;
    if len.is_empty() || len.len() > 8 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u32 = len.parse().ok()?;
    let bits = if addr.contains(':') { 128 } else { 32 };
    (len <= bits).then_some((ip, len))
}

fn masked(ip: IpAddr, len: u32) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let n = u32::from(v4);
            let m = if len == 0 {
                0
            } else {
                n & (u32::MAX << (32 - len))
            };
            IpAddr::V4(m.into())
        }
        IpAddr::V6(v6) => {
            let n = u128::from(v6);
            let m = if len == 0 {
                0
            } else {
                n & (u128::MAX << (128 - len))
            };
            IpAddr::V6(m.into())
        }
    }
}

/// The messages of `IsValidCIDRForLegacyField` with strict validation.
pub fn cidr_messages(value: &str) -> Vec<&'static str> {
    let Some((ip, len)) = parse_cidr_sloppy(value) else {
        return vec![INVALID_CIDR];
    };
    let (addr, plen) = value.split_once('/').unwrap_or((value, ""));
    let strict = parse_ip_strict(addr).filter(|_| !(plen.len() > 1 && plen.starts_with('0')));
    match strict {
        None => vec!["must not have leading 0s in IP or prefix length"],
        Some(_) if is_4in6(ip) => vec!["must not have an IPv4-mapped IPv6 address"],
        Some(_) if masked(ip, len) != ip => vec!["must not have bits set beyond the prefix length"],
        Some(_) => Vec::new(),
    }
}

pub fn validate_cidr(field: &str, value: &str, valid_old: &[String]) -> Vec<Cause> {
    if valid_old.iter().any(|o| o == value) {
        return Vec::new();
    }
    cidr_messages(value)
        .into_iter()
        .map(|m| Cause::invalid(field, &json!(value), m))
        .collect()
}

/// Upstream `ValidateNonSpecialIP`, for addresses already known to parse.
pub fn validate_non_special_ip(field: &str, value: &str) -> Vec<Cause> {
    let Some(ip) = parse_ip_sloppy(value) else {
        return vec![Cause::invalid(
            field,
            &json!(value),
            "must be a valid IP address",
        )];
    };
    // Go treats IPv4-mapped IPv6 addresses as the IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let mut out = Vec::new();
    let v = json!(value);
    if ip.is_unspecified() {
        out.push(Cause::invalid(
            field,
            &v,
            &format!("may not be unspecified ({value})"),
        ));
    }
    if ip.is_loopback() {
        out.push(Cause::invalid(
            field,
            &v,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local_unicast = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local_unicast {
        out.push(Cause::invalid(
            field,
            &v,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let link_local_multicast = match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.octets()[0] == 0xff && (v6.octets()[1] & 0x0f) == 0x02,
    };
    if link_local_multicast {
        out.push(Cause::invalid(
            field,
            &v,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    out
}

/// Upstream `GetWarningsForIP`.
pub fn ip_warnings(field: &str, value: &str) -> Vec<String> {
    let Some(ip) = parse_ip_sloppy(value) else {
        return Vec::new();
    };
    match parse_ip_strict(value) {
        Some(strict) if !is_4in6(strict) => {
            let canonical = strict.to_string();
            if strict.is_ipv6() && canonical != value {
                vec![format!("{field}: IPv6 address {value:?} should be in RFC 5952 canonical format ({canonical:?})")]
            } else {
                Vec::new()
            }
        }
        _ => {
            let preferred = match ip {
                IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map(|v4| v4.to_string())
                    .unwrap_or_else(|| v6.to_string()),
                v4 => v4.to_string(),
            };
            vec![format!(
                "{field}: non-standard IP address {value:?} will be considered invalid in a future Kubernetes release: use {preferred:?}"
            )]
        }
    }
}

/// Upstream `GetWarningsForCIDR`.
pub fn cidr_warnings(field: &str, value: &str) -> Vec<String> {
    let Some((ip, len)) = parse_cidr_sloppy(value) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let network = masked(ip, len);
    let network_str = format!("{network}/{len}");
    if network != ip {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        out.push(format!(
            "{field}: CIDR value {value:?} is ambiguous in this context (should be {network_str:?} or {:?}?)",
            format!("{ip}/{bits}")
        ));
    }
    let (addr, plen) = value.split_once('/').unwrap_or((value, ""));
    let strict = parse_ip_strict(addr).filter(|_| !(plen.len() > 1 && plen.starts_with('0')));
    if strict.is_none() || is_4in6(ip) {
        out.push(format!(
            "{field}: non-standard CIDR value {value:?} will be considered invalid in a future Kubernetes release: use {network_str:?}"
        ));
    }
    if out.is_empty() && ip.is_ipv6() && format!("{ip}/{len}") != value {
        out.push(format!(
            "{field}: IPv6 CIDR value {value:?} should be in RFC 5952 canonical format ({:?})",
            format!("{ip}/{len}")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_rules() {
        assert!(ip_messages("10.1.2.3").is_empty());
        assert!(ip_messages("2001:db8::1").is_empty());
        assert!(ip_messages("2001:DB8::1").is_empty());
        assert_eq!(
            ip_messages("192.168.150.041"),
            vec!["must not have leading 0s"]
        );
        assert_eq!(
            ip_messages("10.96.001.002"),
            vec!["must not have leading 0s"]
        );
        assert_eq!(
            ip_messages("::ffff:1.2.3.4"),
            vec!["must not be an IPv4-mapped IPv6 address"]
        );
        for bad in [
            "300.1.1.1",
            "10.0.0.0/24",
            "10.96.1",
            "",
            "fe80::1%eth0",
            "not-an-ip",
        ] {
            assert_eq!(ip_messages(bad), vec![INVALID_IP], "{bad}");
        }
    }

    #[test]
    fn cidr_rules() {
        assert!(cidr_messages("10.0.0.0/8").is_empty());
        assert!(cidr_messages("2001:db8::/64").is_empty());
        assert_eq!(
            cidr_messages("10.1.2.3/8"),
            vec!["must not have bits set beyond the prefix length"]
        );
        assert_eq!(
            cidr_messages("10.0.0.0/08"),
            vec!["must not have leading 0s in IP or prefix length"]
        );
        assert_eq!(
            cidr_messages("010.0.0.0/8"),
            vec!["must not have leading 0s in IP or prefix length"]
        );
        assert_eq!(
            cidr_messages("::ffff:10.0.0.0/104"),
            vec!["must not have an IPv4-mapped IPv6 address"]
        );
        assert_eq!(cidr_messages("10.0.0.0"), vec![INVALID_CIDR]);
        assert_eq!(cidr_messages("10.0.0.0/33"), vec![INVALID_CIDR]);
        assert_eq!(cidr_messages("192.168.1.1"), vec![INVALID_CIDR]);
        assert_eq!(cidr_messages("bogus"), vec![INVALID_CIDR]);
    }

    #[test]
    fn special_ips() {
        let msg = |v: &str| {
            validate_non_special_ip("f", v)
                .into_iter()
                .map(|c| c.message)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            msg("0.0.0.0"),
            vec!["Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)"]
        );
        assert_eq!(
            msg("::"),
            vec!["Invalid value: \"::\": may not be unspecified (::)"]
        );
        assert_eq!(msg("127.0.0.1"), vec!["Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"]);
        assert_eq!(msg("169.254.1.1").len(), 1);
        assert_eq!(msg("fe80::1").len(), 1);
        assert_eq!(msg("224.0.0.1").len(), 1);
        assert_eq!(msg("ff02::1").len(), 1);
        assert!(msg("192.168.150.41").is_empty());
        assert!(msg("224.0.1.1").is_empty());
    }

    #[test]
    fn warnings() {
        assert!(ip_warnings("spec.loadBalancerIP", "not-an-ip").is_empty());
        assert!(ip_warnings("f", "10.1.2.3").is_empty());
        assert_eq!(
            ip_warnings("spec.externalIPs[0]", "010.1.2.3"),
            vec!["spec.externalIPs[0]: non-standard IP address \"010.1.2.3\" will be considered invalid in a future Kubernetes release: use \"10.1.2.3\""]
        );
        assert_eq!(
            ip_warnings("f", "2001:DB8::1"),
            vec!["f: IPv6 address \"2001:DB8::1\" should be in RFC 5952 canonical format (\"2001:db8::1\")"]
        );
        assert_eq!(
            cidr_warnings("f", "10.1.2.3/8"),
            vec!["f: CIDR value \"10.1.2.3/8\" is ambiguous in this context (should be \"10.0.0.0/8\" or \"10.1.2.3/32\"?)"]
        );
        assert!(cidr_warnings("f", "10.0.0.0/8").is_empty());
    }
}
