//! The request path: a query's bytes and the current `Zone` in, a response's bytes out. Pure
//! and allocation-free once `out` has grown: parse the header and question, look the name up,
//! copy the header and question from the query, patch flags and counts, append precompiled
//! records. Names outside the zone come back as `Action::Forward` for the async forwarder.

use std::net::IpAddr;

use crate::wire::{self, flags, push_opt, put_u16, rcode, rtype, ParseError, Question, HEADER_LEN};
use crate::zone::{PodMode, Zone};

/// What the server should do after `respond`.
#[derive(Debug)]
pub enum Action {
    /// `out` holds the response.
    Reply,
    /// Nothing to send (not a query, or too broken to answer).
    Drop,
    /// Not ours: resolve upstream, then answer with `forward::reply`.
    Forward(Box<Question>),
    /// An ExternalName whose target lies outside the zone: answer the CNAME plus what the
    /// upstream resolvers say about the target.
    Chase {
        question: Box<Question>,
        cname_rr: Box<[u8]>,
        target: Box<[u8]>,
    },
}

/// What happened, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub qtype: u16,
    pub rcode: u16,
}

/// Which transport the query came on: UDP answers are limited in size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The largest UDP response the client can take (RFC 6891 6.2.5: never below 512).
pub fn udp_limit(q: &Question) -> usize {
    match q.edns {
        Some(e) => e.udp_size.clamp(512, wire::OUR_UDP_SIZE) as usize,
        None => 512,
    }
}

/// Starts a response: the query's header and question, flags set for an answer.
pub fn begin(out: &mut Vec<u8>, req: &[u8], q: &Question, rc: u8, authoritative: bool) {
    out.clear();
    out.extend_from_slice(&req[..q.end]);
    let mut f =
        flags::QR | (q.flags & (flags::OPCODE | flags::RD | flags::CD)) | flags::RA | rc as u16;
    if authoritative {
        f |= flags::AA;
    }
    put_u16(out, 2, f);
    put_u16(out, 4, 1);
    out[6..12].fill(0);
}

/// Ends a response: the OPT record when the query had one, and the UDP size limit — first
/// the additional section goes (no TC needed, RFC 2181 9), then everything with TC set so
/// the client retries over TCP.
pub fn finish(
    out: &mut Vec<u8>,
    q: &Question,
    an: u16,
    ns: u16,
    ar: u16,
    additional_at: usize,
    t: Transport,
) {
    put_u16(out, 6, an);
    put_u16(out, 8, ns);
    put_u16(out, 10, ar);
    let limit = match t {
        Transport::Udp => udp_limit(q),
        Transport::Tcp => u16::MAX as usize,
    };
    let opt_len = if q.edns.is_some() { 11 } else { 0 };
    if out.len() + opt_len > limit {
        if additional_at + opt_len <= limit && ar > 0 {
            out.truncate(additional_at);
            put_u16(out, 10, 0);
        } else {
            out.truncate(q.end);
            out[6..12].fill(0);
            out[2] |= (flags::TC >> 8) as u8;
        }
    }
    if q.edns.is_some() {
        push_opt(out, 0);
        let ar = wire::u16_at(out, 10).unwrap_or(0) + 1;
        put_u16(out, 10, ar);
    }
}

/// A response with only a header: for queries whose question can't be read.
fn header_only(out: &mut Vec<u8>, req: &[u8], rc: u8) {
    out.clear();
    out.extend_from_slice(&req[..HEADER_LEN]);
    let f = wire::u16_at(req, 2).unwrap_or(0);
    put_u16(
        out,
        2,
        flags::QR | (f & (flags::OPCODE | flags::RD)) | flags::RA | rc as u16,
    );
    out[4..12].fill(0);
}

/// Negative answer: rcode with the SOA in the authority section (RFC 2308).
fn negative(out: &mut Vec<u8>, req: &[u8], q: &Question, rc: u8, soa: &[u8], t: Transport) {
    begin(out, req, q, rc, true);
    out.extend_from_slice(soa);
    let at = out.len();
    finish(out, q, 0, 1, 0, at, t);
}

fn simple(out: &mut Vec<u8>, req: &[u8], q: &Question, rc: u8, t: Transport) {
    begin(out, req, q, rc, false);
    let at = out.len();
    finish(out, q, 0, 0, 0, at, t);
}

/// Answers one query from the zone. `rotation` varies per query to rotate A/AAAA answers
/// (round-robin over the addresses of a headless Service).
pub fn respond(
    zone: &Zone,
    req: &[u8],
    t: Transport,
    rotation: usize,
    out: &mut Vec<u8>,
) -> (Action, Outcome) {
    let q = match Question::parse(req) {
        Ok(q) => q,
        Err(ParseError::Drop) => return (Action::Drop, Outcome { qtype: 0, rcode: 0 }),
        Err(ParseError::FormErr) => {
            let opcode = (wire::u16_at(req, 2).unwrap_or(0) & flags::OPCODE) >> 11;
            let rc = if opcode != 0 {
                rcode::NOTIMP
            } else {
                rcode::FORMERR
            };
            header_only(out, req, rc);
            return (
                Action::Reply,
                Outcome {
                    qtype: 0,
                    rcode: rc as u16,
                },
            );
        }
    };
    let qtype = q.qtype;
    let reply = |rc: u16| (Action::Reply, Outcome { qtype, rcode: rc });
    if q.flags & flags::OPCODE != 0 {
        simple(out, req, &q, rcode::NOTIMP, t);
        return reply(rcode::NOTIMP as u16);
    }
    if let Some(e) = q.edns {
        if e.version > 0 {
            // BADVERS: the upper 8 bits of rcode 16 go in the OPT record, the header says 0.
            begin(out, req, &q, 0, false);
            push_opt(out, (rcode::BADVERS >> 4) as u8);
            put_u16(out, 10, 1);
            return reply(rcode::BADVERS);
        }
    }
    // Zone transfers are refused: the cluster's names are not ours to hand out wholesale.
    if qtype == rtype::AXFR
        || qtype == rtype::IXFR
        || (q.qclass != wire::CLASS_IN && q.qclass != wire::CLASS_ANY)
    {
        simple(out, req, &q, rcode::REFUSED, t);
        return reply(rcode::REFUSED as u16);
    }

    if q.is_within(&zone.origin) {
        if !zone.ready {
            simple(out, req, &q, rcode::SERVFAIL, t);
            return reply(rcode::SERVFAIL as u16);
        }
        let Some(node) = zone.names.get(q.name()) else {
            if zone.pods == PodMode::Insecure {
                if let Some(ip) = pod_address(zone, &q) {
                    return pod_answer(out, req, &q, ip, zone, t);
                }
            }
            negative(out, req, &q, rcode::NXDOMAIN, &zone.soa, t);
            return reply(rcode::NXDOMAIN as u16);
        };
        if let Some(c) = &node.cname {
            if qtype != rtype::CNAME && qtype != rtype::ANY {
                if let Some(set) = node.set(qtype) {
                    // The target's records, chased inside the zone at build time.
                    begin(out, req, &q, rcode::NOERROR, true);
                    out.extend_from_slice(&set.answer);
                    let at = out.len();
                    finish(out, &q, set.an, 0, 0, at, t);
                    return reply(0);
                }
                if !c.in_zone {
                    return (
                        Action::Chase {
                            question: Box::new(q),
                            cname_rr: c.rr.clone(),
                            target: c.target.clone(),
                        },
                        Outcome { qtype, rcode: 0 },
                    );
                }
                begin(out, req, &q, rcode::NOERROR, true);
                out.extend_from_slice(&c.rr);
                let at = out.len();
                finish(out, &q, 1, 0, 0, at, t);
                return reply(0);
            }
        }
        let Some(set) = node.set(qtype) else {
            negative(out, req, &q, rcode::NOERROR, &zone.soa, t);
            return reply(0);
        };
        begin(out, req, &q, rcode::NOERROR, true);
        if set.stride > 0 && set.an > 1 {
            let split = (rotation % set.an as usize) * set.stride as usize;
            out.extend_from_slice(&set.answer[split..]);
            out.extend_from_slice(&set.answer[..split]);
        } else {
            out.extend_from_slice(&set.answer);
        }
        let at = out.len();
        out.extend_from_slice(&set.additional);
        finish(out, &q, set.an, 0, set.ar, at, t);
        return reply(0);
    }

    // Reverse lookups: ours when we know the address, the upstream's otherwise (CoreDNS's
    // `fallthrough in-addr.arpa ip6.arpa`).
    let reverse_soa = if q.is_within(&zone.in_addr) {
        Some(&zone.soa_in_addr)
    } else if q.is_within(&zone.ip6) {
        Some(&zone.soa_ip6)
    } else {
        None
    };
    if let (Some(soa), Some(node)) = (reverse_soa, zone.names.get(q.name())) {
        match node.set(qtype) {
            Some(set) => {
                begin(out, req, &q, rcode::NOERROR, true);
                out.extend_from_slice(&set.answer);
                let at = out.len();
                finish(out, &q, set.an, 0, 0, at, t);
            }
            None => negative(out, req, &q, rcode::NOERROR, soa, t),
        }
        return reply(0);
    }
    (Action::Forward(Box::new(q)), Outcome { qtype, rcode: 0 })
}

/// `a-b-c-d.<ns>.pod.<zone>` (or an IPv6 address with dashes for colons) spelled address.
fn pod_address(zone: &Zone, q: &Question) -> Option<IpAddr> {
    if q.label_count() < 3 || q.suffix(2) != &*zone.pod_suffix {
        return None;
    }
    let label = std::str::from_utf8(q.label(0)).ok()?;
    if label.contains('.') || label.contains(':') {
        return None;
    }
    let v4 = label.replace('-', ".");
    if let Ok(ip) = v4.parse::<std::net::Ipv4Addr>() {
        return Some(IpAddr::V4(ip));
    }
    label
        .replace('-', ":")
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

fn pod_answer(
    out: &mut Vec<u8>,
    req: &[u8],
    q: &Question,
    ip: IpAddr,
    zone: &Zone,
    t: Transport,
) -> (Action, Outcome) {
    let (rt, rdata): (u16, Vec<u8>) = match ip {
        IpAddr::V4(v4) => (rtype::A, v4.octets().to_vec()),
        IpAddr::V6(v6) => (rtype::AAAA, v6.octets().to_vec()),
    };
    let o = Outcome {
        qtype: q.qtype,
        rcode: 0,
    };
    if q.qtype != rt && q.qtype != rtype::ANY {
        negative(out, req, q, rcode::NOERROR, &zone.soa, t);
        return (Action::Reply, o);
    }
    begin(out, req, q, rcode::NOERROR, true);
    wire::push_rr(out, None, rt, zone.ttl, &rdata);
    let at = out.len();
    finish(out, q, 1, 0, 0, at, t);
    (Action::Reply, o)
}
