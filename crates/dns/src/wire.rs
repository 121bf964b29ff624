//! The DNS wire format, only as much as the server needs: the header, one question parsed
//! without allocating, the EDNS(0) OPT record, names encoded and expanded, and a walker over
//! resource records (for the forwarding cache, which patches TTLs in place).
//!
//! Everything here works on byte slices and never panics on hostile input: each read is
//! bounds-checked and compression pointers are followed a bounded number of times.

use std::net::IpAddr;

pub const HEADER_LEN: usize = 12;
/// The most a name may take on the wire (RFC 1035 2.3.4).
pub const MAX_NAME: usize = 255;

pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const OPT: u16 = 41;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const ANY: u16 = 255;
}

pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;
    /// Extended RCODE 16 (RFC 6891): the upper 8 bits travel in the OPT record.
    pub const BADVERS: u16 = 16;
}

pub mod flags {
    pub const QR: u16 = 0x8000;
    pub const OPCODE: u16 = 0x7800;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const CD: u16 = 0x0010;
}

/// The UDP payload size we advertise and cap answers at: the DNS flag day 2020 value, which
/// avoids IP fragmentation on any sane path.
pub const OUR_UDP_SIZE: u16 = 1232;

#[inline]
pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[inline]
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[inline]
pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// EDNS(0) as the client sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// A query's one question, parsed in place. The name is kept lower-cased in wire form
/// (labels with their length bytes and the final zero), which is the lookup key.
#[derive(Clone, Debug)]
pub struct Question {
    pub id: u16,
    pub flags: u16,
    pub qtype: u16,
    pub qclass: u16,
    /// Offset just after the question (header + name + type + class).
    pub end: usize,
    pub edns: Option<Edns>,
    name: [u8; MAX_NAME],
    name_len: u8,
    /// Offsets (within the name) where labels start, for zone-suffix checks.
    label_starts: [u8; 128],
    labels: u8,
}

/// Why a packet can't be answered normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not even a header, or a response: drop it silently (answering responses makes loops).
    Drop,
    /// A query we can read the header of but not the rest: FORMERR.
    FormErr,
}

impl Question {
    /// The lower-cased wire name (ends with the root label, a zero byte).
    #[inline]
    pub fn name(&self) -> &[u8] {
        &self.name[..self.name_len as usize]
    }

    /// The number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        self.labels as usize
    }

    /// The name from label `i` on (0 = the whole name).
    pub fn suffix(&self, i: usize) -> &[u8] {
        let at = if i >= self.labels as usize {
            self.name_len as usize - 1
        } else {
            self.label_starts[i] as usize
        };
        &self.name[at..self.name_len as usize]
    }

    /// Label `i` without its length byte.
    pub fn label(&self, i: usize) -> &[u8] {
        let at = self.label_starts[i] as usize;
        let len = self.name[at] as usize;
        &self.name[at + 1..at + 1 + len]
    }

    /// True when the name is `zone` or below it (both lower-case wire names).
    #[inline]
    pub fn is_within(&self, zone: &[u8]) -> bool {
        let n = self.name();
        if zone.len() > n.len() || !n.ends_with(zone) {
            return false;
        }
        let at = n.len() - zone.len();
        // The suffix must start at a label boundary: "xcluster.local" is not in "cluster.local".
        zone.len() == 1
            || at == 0
            || self.label_starts[..self.labels as usize]
                .iter()
                .any(|&s| s as usize == at)
    }

    /// The name in presentation form (for logs and the forwarder's errors).
    pub fn name_text(&self) -> String {
        name_to_text(self.name())
    }

    /// Parses the header and the single question of a query.
    pub fn parse(msg: &[u8]) -> Result<Question, ParseError> {
        if msg.len() < HEADER_LEN {
            return Err(ParseError::Drop);
        }
        let id = u16_at(msg, 0).ok_or(ParseError::Drop)?;
        let flags = u16_at(msg, 2).ok_or(ParseError::Drop)?;
        if flags & flags::QR != 0 {
            return Err(ParseError::Drop);
        }
        let qd = u16_at(msg, 4).unwrap_or(0);
        let an = u16_at(msg, 6).unwrap_or(0);
        let ns = u16_at(msg, 8).unwrap_or(0);
        let ar = u16_at(msg, 10).unwrap_or(0);
        if qd != 1 {
            return Err(ParseError::FormErr);
        }
        let mut q = Question {
            id,
            flags,
            qtype: 0,
            qclass: 0,
            end: 0,
            edns: None,
            name: [0; MAX_NAME],
            name_len: 0,
            label_starts: [0; 128],
            labels: 0,
        };
        let mut pos = HEADER_LEN;
        let mut out = 0usize;
        loop {
            let len = *msg.get(pos).ok_or(ParseError::FormErr)? as usize;
            if len == 0 {
                if out >= MAX_NAME {
                    return Err(ParseError::FormErr);
                }
                q.name[out] = 0;
                out += 1;
                pos += 1;
                break;
            }
            // Compression in a question is legal but no resolver sends it; bit patterns 01/10
            // are reserved. Refusing both keeps the hot path free of pointer chasing.
            if len > 63 {
                return Err(ParseError::FormErr);
            }
            if out + 1 + len + 1 > MAX_NAME || q.labels as usize >= 127 {
                return Err(ParseError::FormErr);
            }
            let label = msg.get(pos + 1..pos + 1 + len).ok_or(ParseError::FormErr)?;
            q.label_starts[q.labels as usize] = out as u8;
            q.labels += 1;
            q.name[out] = len as u8;
            for (i, c) in label.iter().enumerate() {
                q.name[out + 1 + i] = c.to_ascii_lowercase();
            }
            out += 1 + len;
            pos += 1 + len;
        }
        q.name_len = out as u8;
        q.qtype = u16_at(msg, pos).ok_or(ParseError::FormErr)?;
        q.qclass = u16_at(msg, pos + 2).ok_or(ParseError::FormErr)?;
        q.end = pos + 4;
        if ar > 0 {
            // Skip answer and authority records (queries carry none, but be exact), then look
            // for the OPT record among the additional ones.
            let mut p = q.end;
            for _ in 0..(an as usize + ns as usize) {
                p = skip_rr(msg, p).ok_or(ParseError::FormErr)?.next;
            }
            for _ in 0..ar {
                let rr = skip_rr(msg, p).ok_or(ParseError::FormErr)?;
                if rr.rtype == rtype::OPT {
                    if q.edns.is_some() {
                        // RFC 6891 6.1.1: more than one OPT is FORMERR.
                        return Err(ParseError::FormErr);
                    }
                    let ttl = u32_at(msg, rr.ttl_at).ok_or(ParseError::FormErr)?;
                    q.edns = Some(Edns {
                        udp_size: u16_at(msg, rr.ttl_at - 2).ok_or(ParseError::FormErr)?,
                        version: (ttl >> 16) as u8,
                        dnssec_ok: ttl & 0x8000 != 0,
                    });
                }
                p = rr.next;
            }
        }
        Ok(q)
    }
}

/// Where a resource record's parts are.
#[derive(Clone, Copy, Debug)]
pub struct RrPos {
    pub start: usize,
    pub rtype: u16,
    pub ttl_at: usize,
    pub rdata_at: usize,
    pub next: usize,
}

/// Skips a name at `pos` (labels, possibly ending in a pointer); returns the offset after it.
pub fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => {
                pos += 1 + len;
                if pos > msg.len() {
                    return None;
                }
            }
            0xC0 => {
                msg.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// Walks one resource record at `pos`.
pub fn skip_rr(msg: &[u8], pos: usize) -> Option<RrPos> {
    let after_name = skip_name(msg, pos)?;
    let rtype = u16_at(msg, after_name)?;
    let rdlen = u16_at(msg, after_name + 8)? as usize;
    let rdata_at = after_name + 10;
    let next = rdata_at + rdlen;
    if next > msg.len() {
        return None;
    }
    Some(RrPos {
        start: pos,
        rtype,
        ttl_at: after_name + 4,
        rdata_at,
        next,
    })
}

/// Reads a possibly compressed name at `pos` into uncompressed lower-case wire form; returns
/// the offset after the name as it appears at `pos`. Pointers may only go backwards and are
/// followed at most 64 times, so loops end.
pub fn read_name(msg: &[u8], mut pos: usize, out: &mut Vec<u8>) -> Option<usize> {
    let start_len = out.len();
    let mut after = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => {
                out.push(0);
                if out.len() - start_len > MAX_NAME {
                    return None;
                }
                return Some(after.unwrap_or(pos + 1));
            }
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + len)?;
                out.push(len as u8);
                out.extend(label.iter().map(|c| c.to_ascii_lowercase()));
                if out.len() - start_len > MAX_NAME {
                    return None;
                }
                pos += 1 + len;
            }
            0xC0 => {
                let target = ((len & 0x3F) << 8) | *msg.get(pos + 1)? as usize;
                if after.is_none() {
                    after = Some(pos + 2);
                }
                jumps += 1;
                if jumps > 64 || target >= pos {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
}

/// Encodes a presentation name ("a.b.c" or "a.b.c.") into lower-case wire form. None when a
/// label is empty or longer than 63 bytes, or the name longer than 255.
pub fn encode_name(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_suffix('.').unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() + 2);
    if !text.is_empty() {
        for label in text.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            out.push(label.len() as u8);
            out.extend(label.bytes().map(|c| c.to_ascii_lowercase()));
        }
    }
    out.push(0);
    (out.len() <= MAX_NAME).then_some(out)
}

/// Wire name to presentation form, with a trailing dot.
pub fn name_to_text(wire: &[u8]) -> String {
    let mut s = String::new();
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        let label = wire.get(pos + 1..pos + 1 + len as usize).unwrap_or(&[]);
        for &c in label {
            if c == b'.' || c == b'\\' {
                s.push('\\');
                s.push(c as char);
            } else if c.is_ascii_graphic() {
                s.push(c as char);
            } else {
                s.push_str(&format!("\\{c:03}"));
            }
        }
        s.push('.');
        pos += 1 + len as usize;
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

/// The reverse-lookup name of an address (`4.3.2.1.in-addr.arpa`, nibbles for ip6.arpa).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push(char::from_digit((b & 0xF) as u32, 16).unwrap());
                s.push('.');
                s.push(char::from_digit((b >> 4) as u32, 16).unwrap());
                s.push('.');
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// Appends one resource record. `owner` is a wire name, or None for a pointer to the question
/// name at offset 12 (which also echoes the client's letter case back, as 0x20 randomisation
/// wants).
pub fn push_rr(out: &mut Vec<u8>, owner: Option<&[u8]>, rtype: u16, ttl: u32, rdata: &[u8]) {
    match owner {
        Some(o) => out.extend_from_slice(o),
        None => out.extend_from_slice(&[0xC0, 0x0C]),
    }
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// Appends our OPT record (RFC 6891): root owner, our UDP size, the upper bits of the rcode.
pub fn push_opt(out: &mut Vec<u8>, ext_rcode: u8) {
    out.push(0);
    out.extend_from_slice(&rtype::OPT.to_be_bytes());
    out.extend_from_slice(&OUR_UDP_SIZE.to_be_bytes());
    out.extend_from_slice(&[ext_rcode, 0, 0, 0]);
    out.extend_from_slice(&0u16.to_be_bytes());
}

/// Appends a record copied out of another message, with names in the owner and in the rdata
/// of the common name-bearing types expanded, so it can be placed anywhere. Returns false on a
/// malformed record.
pub fn copy_rr_expanded(msg: &[u8], rr: &RrPos, ttl: u32, out: &mut Vec<u8>) -> bool {
    let mark = out.len();
    if read_name(msg, rr.start, out).is_none() {
        out.truncate(mark);
        return false;
    }
    let fixed_at = rr.ttl_at - 4;
    out.extend_from_slice(&msg[fixed_at..fixed_at + 4]);
    out.extend_from_slice(&ttl.to_be_bytes());
    let rdlen_at = out.len();
    out.extend_from_slice(&[0, 0]);
    let rdata = &msg[rr.rdata_at..rr.next];
    let ok = match rr.rtype {
        rtype::CNAME | rtype::NS | rtype::PTR => read_name(msg, rr.rdata_at, out).is_some(),
        rtype::MX if rdata.len() >= 2 => {
            out.extend_from_slice(&rdata[..2]);
            read_name(msg, rr.rdata_at + 2, out).is_some()
        }
        rtype::SRV if rdata.len() >= 6 => {
            out.extend_from_slice(&rdata[..6]);
            read_name(msg, rr.rdata_at + 6, out).is_some()
        }
        rtype::SOA => {
            let p = read_name(msg, rr.rdata_at, out);
            let p = p.and_then(|p| read_name(msg, p, out));
            match p.and_then(|p| msg.get(p..p + 20)) {
                Some(tail) if p.unwrap() + 20 <= rr.next => {
                    out.extend_from_slice(tail);
                    true
                }
                _ => false,
            }
        }
        rtype::MX | rtype::SRV => false,
        _ => {
            out.extend_from_slice(rdata);
            true
        }
    };
    let rdlen = out.len() - rdlen_at - 2;
    if !ok || rdlen > u16::MAX as usize {
        out.truncate(mark);
        return false;
    }
    put_u16(out, rdlen_at, rdlen as u16);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend(encode_name(name).unwrap());
        m.extend(qtype.to_be_bytes());
        m.extend(CLASS_IN.to_be_bytes());
        m
    }

    #[test]
    fn question_is_lowercased_and_zone_suffix_needs_a_label_boundary() {
        let mut m = query("x", rtype::A);
        // Put upper case on the wire by hand (encode_name lower-cases).
        m.truncate(HEADER_LEN);
        m.extend(b"\x03WeB\x07Cluster\x05local\x00\x00\x01\x00\x01");
        let q = Question::parse(&m).unwrap();
        assert_eq!(q.name(), b"\x03web\x07cluster\x05local\x00");
        assert!(q.is_within(&encode_name("cluster.local").unwrap()));
        assert!(q.is_within(&encode_name("local").unwrap()));
        assert!(!q.is_within(&encode_name("ster.local").unwrap()));
        assert_eq!(q.label(0), b"web");
        assert_eq!(q.suffix(1), b"\x07cluster\x05local\x00");
        assert_eq!(q.name_text(), "web.cluster.local.");
    }

    #[test]
    fn responses_and_garbage_are_dropped_bad_questions_are_formerr() {
        assert_eq!(Question::parse(&[1, 2, 3]).unwrap_err(), ParseError::Drop);
        let mut r = query("a.b", rtype::A);
        r[2] |= 0x80;
        assert_eq!(Question::parse(&r).unwrap_err(), ParseError::Drop);
        let mut two = query("a.b", rtype::A);
        two[5] = 2;
        assert_eq!(Question::parse(&two).unwrap_err(), ParseError::FormErr);
        let mut ptr = query("a", rtype::A);
        ptr.truncate(HEADER_LEN);
        ptr.extend([0xC0, 0x0C, 0, 1, 0, 1]);
        assert_eq!(Question::parse(&ptr).unwrap_err(), ParseError::FormErr);
        let cut = query("abc.def", rtype::A);
        for n in HEADER_LEN..cut.len() {
            assert_eq!(
                Question::parse(&cut[..n]).unwrap_err(),
                ParseError::FormErr,
                "cut at {n}"
            );
        }
    }

    #[test]
    fn edns_is_found_in_the_additional_section() {
        let mut m = query("a.b", rtype::A);
        m[11] = 1;
        m.extend([0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0]);
        let q = Question::parse(&m).unwrap();
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 4096,
                version: 0,
                dnssec_ok: true
            })
        );
    }

    #[test]
    fn pointer_loops_end() {
        // A name at 12 pointing to itself, and one pointing forward.
        let msg = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0, 12];
        assert!(read_name(&msg, 12, &mut Vec::new()).is_none());
        let msg = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0, 14, 0];
        assert!(read_name(&msg, 12, &mut Vec::new()).is_none());
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("10.43.0.10".parse().unwrap()),
            "10.0.43.10.in-addr.arpa"
        );
        let r = reverse_name("2001:db8::1".parse().unwrap());
        assert!(r.starts_with("1.0.0.0.0.0.0.0"), "{r}");
        assert!(r.ends_with("8.b.d.0.1.0.0.2.ip6.arpa"), "{r}");
    }
}
