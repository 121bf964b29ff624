//! ARP and NDP frames as pure functions over bytes: recognise a request for an address
//! (ARP who-has, Neighbor Solicitation), build the answer (ARP reply, Neighbor Advertisement)
//! and the announcements a new owner sends (gratuitous ARP, unsolicited NA).

use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::icmpv6::{self, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};
use pnet_packet::Packet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use pnet_datalink::MacAddr;

/// Someone on the segment asks who has `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Arp {
        sender_mac: MacAddr,
        sender_ip: Ipv4Addr,
        target: Ipv4Addr,
    },
    Ns {
        sender_mac: MacAddr,
        sender_ip: Ipv6Addr,
        target: Ipv6Addr,
    },
}

impl Request {
    pub fn target(&self) -> IpAddr {
        match self {
            Request::Arp { target, .. } => IpAddr::V4(*target),
            Request::Ns { target, .. } => IpAddr::V6(*target),
        }
    }
}

const ETH: usize = 14;
const ARP: usize = 28;
const IPV6: usize = 40;
/// ICMPv6 NA with one target link-layer address option.
const NA: usize = 32;
const ND_OPT_SOURCE_LLADDR: u8 = 1;
const ND_OPT_TARGET_LLADDR: u8 = 2;
const NA_FLAG_SOLICITED: u8 = 0b0100_0000;
const NA_FLAG_OVERRIDE: u8 = 0b0010_0000;

/// Recognises an ARP request or a Neighbor Solicitation. Anything else, including a
/// gratuitous ARP (sender = target: an announcement, not a question), is None.
pub fn parse(frame: &[u8]) -> Option<Request> {
    let eth = EthernetPacket::new(frame)?;
    match eth.get_ethertype() {
        EtherTypes::Arp => {
            let arp = ArpPacket::new(eth.payload())?;
            if arp.get_operation() != ArpOperations::Request
                || arp.get_hardware_type() != ArpHardwareTypes::Ethernet
                || arp.get_protocol_type() != EtherTypes::Ipv4
                || arp.get_sender_proto_addr() == arp.get_target_proto_addr()
            {
                return None;
            }
            Some(Request::Arp {
                sender_mac: arp.get_sender_hw_addr(),
                sender_ip: arp.get_sender_proto_addr(),
                target: arp.get_target_proto_addr(),
            })
        }
        EtherTypes::Ipv6 => {
            let ip = Ipv6Packet::new(eth.payload())?;
            // NDP messages are only valid with hop limit 255 (RFC 4861 7.1.1): they cannot
            // have come through a router.
            if ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 || ip.get_hop_limit() != 255 {
                return None;
            }
            let icmp = Icmpv6Packet::new(ip.payload())?;
            if icmp.get_icmpv6_type() != Icmpv6Types::NeighborSolicit
                || icmp.get_icmpv6_code().0 != 0
            {
                return None;
            }
            let body = icmp.payload();
            // 4 reserved bytes, then the 16-byte target.
            let t: [u8; 16] = body.get(4..20)?.try_into().ok()?;
            let target = Ipv6Addr::from(t);
            if target.is_multicast() {
                return None;
            }
            Some(Request::Ns {
                sender_mac: eth.get_source(),
                sender_ip: ip.get_source(),
                target,
            })
        }
        _ => None,
    }
}

fn arp_frame(
    op: pnet_packet::arp::ArpOperation,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    sender: (MacAddr, Ipv4Addr),
    target: (MacAddr, Ipv4Addr),
) -> Vec<u8> {
    let mut buf = vec![0u8; ETH + ARP];
    {
        let mut eth = MutableEthernetPacket::new(&mut buf).expect("buffer sized for ethernet");
        eth.set_destination(dst_mac);
        eth.set_source(src_mac);
        eth.set_ethertype(EtherTypes::Arp);
    }
    let mut arp = MutableArpPacket::new(&mut buf[ETH..]).expect("buffer sized for ARP");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(op);
    arp.set_sender_hw_addr(sender.0);
    arp.set_sender_proto_addr(sender.1);
    arp.set_target_hw_addr(target.0);
    arp.set_target_proto_addr(target.1);
    buf
}

/// The ARP reply telling the asker that `our_mac` has the address it asked for.
pub fn arp_reply(
    our_mac: MacAddr,
    target: Ipv4Addr,
    asker_mac: MacAddr,
    asker_ip: Ipv4Addr,
) -> Vec<u8> {
    arp_frame(
        ArpOperations::Reply,
        our_mac,
        asker_mac,
        (our_mac, target),
        (asker_mac, asker_ip),
    )
}

/// A gratuitous ARP (an ARP announcement, RFC 5227: a broadcast request whose sender and
/// target address are both `ip`): every host that has `ip` in its cache updates the MAC.
pub fn gratuitous_arp(our_mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        ArpOperations::Request,
        our_mac,
        MacAddr::broadcast(),
        (our_mac, ip),
        (MacAddr::zero(), ip),
    )
}

fn ipv6_multicast_mac(ip: Ipv6Addr) -> MacAddr {
    let o = ip.octets();
    MacAddr::new(0x33, 0x33, o[12], o[13], o[14], o[15])
}

/// A Neighbor Advertisement for `target` from `our_mac`, sent from `src` (the interface's
/// link-local address) to `dst`.
fn neighbor_advert(
    our_mac: MacAddr,
    src: Ipv6Addr,
    dst_mac: MacAddr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
) -> Vec<u8> {
    let mut buf = vec![0u8; ETH + IPV6 + NA];
    {
        let mut eth = MutableEthernetPacket::new(&mut buf).expect("buffer sized for ethernet");
        eth.set_destination(dst_mac);
        eth.set_source(our_mac);
        eth.set_ethertype(EtherTypes::Ipv6);
    }
    {
        let icmp = &mut buf[ETH + IPV6..];
        icmp[0] = Icmpv6Types::NeighborAdvert.0;
        icmp[1] = 0;
        icmp[4] = flags;
        icmp[8..24].copy_from_slice(&target.octets());
        icmp[24] = ND_OPT_TARGET_LLADDR;
        icmp[25] = 1; // length in units of 8 bytes
        icmp[26..32].copy_from_slice(&our_mac.octets());
        let sum = icmpv6::checksum(&Icmpv6Packet::new(icmp).expect("ICMPv6 sized"), &src, &dst);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    let mut ip = MutableIpv6Packet::new(&mut buf[ETH..]).expect("buffer sized for IPv6");
    ip.set_version(6);
    ip.set_payload_length(NA as u16);
    ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
    ip.set_hop_limit(255);
    ip.set_source(src);
    ip.set_destination(dst);
    buf
}

/// The answer to a Neighbor Solicitation. A solicitation from the unspecified address
/// (duplicate address detection) is answered to all-nodes, without the Solicited flag.
pub fn neighbor_advert_reply(
    our_mac: MacAddr,
    src: Ipv6Addr,
    target: Ipv6Addr,
    asker_mac: MacAddr,
    asker_ip: Ipv6Addr,
) -> Vec<u8> {
    if asker_ip.is_unspecified() {
        return unsolicited_neighbor_advert(our_mac, src, target);
    }
    neighbor_advert(
        our_mac,
        src,
        asker_mac,
        asker_ip,
        target,
        NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
    )
}

/// An unsolicited Neighbor Advertisement with the Override flag to all-nodes (ff02::1): the
/// NDP counterpart of a gratuitous ARP.
pub fn unsolicited_neighbor_advert(our_mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    neighbor_advert(
        our_mac,
        src,
        ipv6_multicast_mac(all_nodes),
        all_nodes,
        target,
        NA_FLAG_OVERRIDE,
    )
}

/// The solicited-node multicast group of `ip` (RFC 4291 2.7.1, `ff02::1:ffXX:XXXX` with the
/// low 24 bits of `ip`): where Neighbor Solicitations for `ip` are sent.
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// A Neighbor Solicitation for `target` (used by tests and by nobody in production).
pub fn neighbor_solicit(our_mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let solicited = solicited_node(target);
    let mut buf = vec![0u8; ETH + IPV6 + NA];
    {
        let mut eth = MutableEthernetPacket::new(&mut buf).expect("sized");
        eth.set_destination(ipv6_multicast_mac(solicited));
        eth.set_source(our_mac);
        eth.set_ethertype(EtherTypes::Ipv6);
    }
    {
        let icmp = &mut buf[ETH + IPV6..];
        icmp[0] = Icmpv6Types::NeighborSolicit.0;
        icmp[8..24].copy_from_slice(&target.octets());
        icmp[24] = ND_OPT_SOURCE_LLADDR;
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&our_mac.octets());
        let sum = icmpv6::checksum(&Icmpv6Packet::new(icmp).expect("sized"), &src, &solicited);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    let mut ip = MutableIpv6Packet::new(&mut buf[ETH..]).expect("sized");
    ip.set_version(6);
    ip.set_payload_length(NA as u16);
    ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
    ip.set_hop_limit(255);
    ip.set_source(src);
    ip.set_destination(solicited);
    buf
}

/// An ARP request (tests).
pub fn arp_request(our_mac: MacAddr, our_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        ArpOperations::Request,
        our_mac,
        MacAddr::broadcast(),
        (our_mac, our_ip),
        (MacAddr::zero(), target),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: MacAddr = MacAddr(2, 0, 0, 0, 0, 1);
    const ASKER: MacAddr = MacAddr(2, 0, 0, 0, 0, 2);

    #[test]
    fn arp_request_is_recognised_and_answered() {
        let req = arp_request(
            ASKER,
            "192.168.1.5".parse().unwrap(),
            "192.168.1.240".parse().unwrap(),
        );
        let parsed = parse(&req).unwrap();
        assert_eq!(
            parsed,
            Request::Arp {
                sender_mac: ASKER,
                sender_ip: "192.168.1.5".parse().unwrap(),
                target: "192.168.1.240".parse().unwrap()
            }
        );
        let reply = arp_reply(
            ME,
            "192.168.1.240".parse().unwrap(),
            ASKER,
            "192.168.1.5".parse().unwrap(),
        );
        let eth = EthernetPacket::new(&reply).unwrap();
        assert_eq!(eth.get_destination(), ASKER);
        let arp = ArpPacket::new(eth.payload()).unwrap();
        assert_eq!(arp.get_operation(), ArpOperations::Reply);
        assert_eq!(arp.get_sender_hw_addr(), ME);
        assert_eq!(arp.get_sender_proto_addr().to_string(), "192.168.1.240");
        // A reply is not a question.
        assert_eq!(parse(&reply), None);
    }

    #[test]
    fn gratuitous_arp_is_a_broadcast_announcement_not_a_question() {
        let g = gratuitous_arp(ME, "192.168.1.240".parse().unwrap());
        let eth = EthernetPacket::new(&g).unwrap();
        assert_eq!(eth.get_destination(), MacAddr::broadcast());
        let arp = ArpPacket::new(eth.payload()).unwrap();
        assert_eq!(arp.get_sender_proto_addr(), arp.get_target_proto_addr());
        assert_eq!(parse(&g), None);
    }

    #[test]
    fn neighbor_solicitation_round_trip_with_valid_checksums() {
        let asker_ip: Ipv6Addr = "fe80::2".parse().unwrap();
        let target: Ipv6Addr = "fc00::240".parse().unwrap();
        let ns = neighbor_solicit(ASKER, asker_ip, target);
        assert_eq!(
            parse(&ns),
            Some(Request::Ns {
                sender_mac: ASKER,
                sender_ip: asker_ip,
                target
            })
        );
        let na = neighbor_advert_reply(ME, "fe80::1".parse().unwrap(), target, ASKER, asker_ip);
        let eth = EthernetPacket::new(&na).unwrap();
        assert_eq!(eth.get_destination(), ASKER);
        let ip = Ipv6Packet::new(eth.payload()).unwrap();
        assert_eq!(ip.get_hop_limit(), 255);
        let icmp = Icmpv6Packet::new(ip.payload()).unwrap();
        assert_eq!(icmp.get_icmpv6_type(), Icmpv6Types::NeighborAdvert);
        // A correct checksum sums to zero when recomputed over the packet with it in place.
        assert_eq!(
            icmpv6::checksum(&icmp, &ip.get_source(), &ip.get_destination()),
            icmp.get_checksum()
        );
        let body = icmp.payload();
        assert_eq!(body[0], NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
        assert_eq!(&body[4..20], &target.octets());
        assert_eq!(&body[22..28], &ME.octets());
        // NA is not a question; a hop limit below 255 is not NDP.
        assert_eq!(parse(&na), None);
        let mut routed = ns.clone();
        routed[ETH + 7] = 64;
        assert_eq!(parse(&routed), None);
    }

    #[test]
    fn unsolicited_na_goes_to_all_nodes_with_override() {
        let na = unsolicited_neighbor_advert(
            ME,
            "fe80::1".parse().unwrap(),
            "fc00::240".parse().unwrap(),
        );
        let eth = EthernetPacket::new(&na).unwrap();
        assert_eq!(eth.get_destination(), MacAddr::new(0x33, 0x33, 0, 0, 0, 1));
        let ip = Ipv6Packet::new(eth.payload()).unwrap();
        assert_eq!(ip.get_destination().to_string(), "ff02::1");
        let icmp = Icmpv6Packet::new(ip.payload()).unwrap();
        assert_eq!(icmp.payload()[0], NA_FLAG_OVERRIDE);
    }

    #[test]
    fn solicited_node_group_keeps_the_low_24_bits() {
        let ip: Ipv6Addr = "fd5b:0:15::1:2:3f0".parse().unwrap();
        assert_eq!(solicited_node(ip).to_string(), "ff02::1:ff02:3f0");
        // A solicitation for an address goes to its group's multicast MAC.
        let ns = neighbor_solicit(ASKER, "fe80::2".parse().unwrap(), ip);
        let eth = EthernetPacket::new(&ns).unwrap();
        assert_eq!(
            eth.get_destination(),
            MacAddr::new(0x33, 0x33, 0xff, 0x02, 0x03, 0xf0)
        );
    }

    #[test]
    fn garbage_is_ignored() {
        for len in 0..80 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = parse(&junk);
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }
    }
}
