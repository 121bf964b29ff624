//! Names that are not the cluster's go to the upstream resolvers (those of /etc/resolv.conf
//! unless configured), with a bounded cache. The cache keeps the upstream's response bytes
//! and where their TTLs are, so a hit is a copy, an ID patch and a TTL decrement.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::answer::{begin, finish, Transport};
use crate::metrics::Metrics;
use crate::wire::{self, flags, rcode, rtype, skip_rr, u16_at, u32_at, Question, HEADER_LEN};

/// The upstream resolvers named by a resolv.conf (`nameserver` lines), port 53.
pub fn resolv_conf_upstreams(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then(|| w.next())?
        })
        .filter_map(|a| a.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// A cached upstream response.
#[derive(Debug)]
pub struct Cached {
    /// The response as the upstream sent it (for our query: same name length as the client's).
    msg: Vec<u8>,
    /// Offsets of every TTL field (OPT excluded).
    ttls: Vec<usize>,
    /// Where the OPT record is, to leave it out (we add our own).
    opt: Option<(usize, usize)>,
    /// Where the additional section starts (dropped first when a UDP answer is too big).
    ar_at: usize,
    question_end: usize,
    stored: Instant,
    ttl: u32,
}

impl Cached {
    /// Indexes a response; None when it is malformed or doesn't answer `q`.
    pub fn parse(msg: Vec<u8>, question_end: usize, now: Instant) -> Option<Cached> {
        let an = u16_at(&msg, 6)? as usize;
        let ns = u16_at(&msg, 8)? as usize;
        let ar = u16_at(&msg, 10)? as usize;
        let rc = msg.get(3)? & 0x0F;
        let mut ttls = Vec::new();
        let mut opt = None;
        let mut p = question_end;
        let mut min_ttl = u32::MAX;
        let mut soa_min = None;
        let mut ar_at = p;
        for i in 0..an + ns + ar {
            if i == an + ns {
                ar_at = p;
            }
            let rr = skip_rr(&msg, p)?;
            if rr.rtype == rtype::OPT && i >= an + ns && opt.is_none() {
                opt = Some((rr.start, rr.next));
            } else {
                ttls.push(rr.ttl_at);
                let ttl = u32_at(&msg, rr.ttl_at)?;
                if i < an + ns {
                    min_ttl = min_ttl.min(ttl);
                }
                if rr.rtype == rtype::SOA && i >= an && i < an + ns {
                    // RFC 2308 5: a negative answer lives min(SOA TTL, SOA MINIMUM).
                    let minimum = u32_at(&msg, rr.next - 4)?;
                    soa_min = Some(ttl.min(minimum));
                }
            }
            p = rr.next;
        }
        if ar == 0 {
            ar_at = p;
        }
        let ttl = if rc == rcode::SERVFAIL || rc == rcode::REFUSED {
            0
        } else if an == 0 {
            soa_min.unwrap_or(0).min(1800)
        } else {
            min_ttl.min(3600)
        };
        Some(Cached {
            msg,
            ttls,
            opt,
            ar_at,
            question_end,
            stored: now,
            ttl,
        })
    }

    fn remaining(&self, now: Instant) -> Option<u32> {
        let age = now.saturating_duration_since(self.stored).as_secs() as u32;
        (age < self.ttl).then(|| self.ttl - age)
    }

    pub fn rcode(&self) -> u8 {
        self.msg[3] & 0x0F
    }
}

type Key = (Box<[u8]>, u16, u16);

/// The bounded cache: at most `capacity` responses; when full, expired ones go first, then an
/// arbitrary eighth (cheap and good enough: a hot name comes straight back).
struct Cache {
    map: HashMap<Key, Arc<Cached>>,
    capacity: usize,
}

impl Cache {
    fn get(&self, k: &Key, now: Instant) -> Option<Arc<Cached>> {
        self.map
            .get(k)
            .filter(|c| c.remaining(now).is_some())
            .cloned()
    }
    fn put(&mut self, k: Key, v: Arc<Cached>, now: Instant) {
        if self.capacity == 0 || v.ttl == 0 {
            return;
        }
        if self.map.len() >= self.capacity {
            self.map.retain(|_, c| c.remaining(now).is_some());
        }
        if self.map.len() >= self.capacity {
            let drop: Vec<Key> = self
                .map
                .keys()
                .take(self.capacity / 8 + 1)
                .cloned()
                .collect();
            for k in drop {
                self.map.remove(&k);
            }
        }
        self.map.insert(k, v);
    }
}

pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    cache: Mutex<Cache>,
    timeout: Duration,
    metrics: Metrics,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>, cache_size: usize, metrics: Metrics) -> Forwarder {
        Forwarder {
            upstreams,
            cache: Mutex::new(Cache {
                map: HashMap::new(),
                capacity: cache_size,
            }),
            timeout: Duration::from_secs(2),
            metrics,
        }
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap().map.len()
    }

    /// The upstream answer for (name, qtype, qclass), from the cache or the upstreams.
    pub async fn resolve(&self, name: &[u8], qtype: u16, qclass: u16) -> Option<Arc<Cached>> {
        let key: Key = (name.into(), qtype, qclass);
        let now = Instant::now();
        if let Some(c) = self.cache.lock().unwrap().get(&key, now) {
            self.metrics.cache_hits.inc();
            return Some(c);
        }
        self.metrics.cache_misses.inc();
        let mut query = Vec::with_capacity(HEADER_LEN + name.len() + 15);
        let id: u16 = rand::random();
        query.extend(id.to_be_bytes());
        query.extend(flags::RD.to_be_bytes());
        query.extend([0, 1, 0, 0, 0, 0, 0, 1]);
        query.extend_from_slice(name);
        query.extend(qtype.to_be_bytes());
        query.extend(qclass.to_be_bytes());
        let question_end = query.len();
        wire::push_opt(&mut query, 0);
        for up in &self.upstreams {
            self.metrics.forwarded.inc();
            let got = match self.exchange_udp(*up, &query, id).await {
                Some(m) if m[2] & (flags::TC >> 8) as u8 != 0 => {
                    self.exchange_tcp(*up, &query, id).await
                }
                other => other,
            };
            let Some(msg) = got else { continue };
            // The answer must be to our question (name compared case-insensitively).
            if msg
                .get(HEADER_LEN..question_end)
                .map(|q| q.to_ascii_lowercase())
                != Some(query[HEADER_LEN..question_end].to_vec())
            {
                continue;
            }
            let Some(c) = Cached::parse(msg, question_end, Instant::now()) else {
                continue;
            };
            if c.rcode() == rcode::SERVFAIL || c.rcode() == rcode::REFUSED {
                continue;
            }
            let c = Arc::new(c);
            self.cache
                .lock()
                .unwrap()
                .put(key, c.clone(), Instant::now());
            return Some(c);
        }
        None
    }

    async fn exchange_udp(&self, up: SocketAddr, query: &[u8], id: u16) -> Option<Vec<u8>> {
        let local: SocketAddr = match up {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = tokio::net::UdpSocket::bind(local).await.ok()?;
        sock.connect(up).await.ok()?;
        sock.send(query).await.ok()?;
        let mut buf = vec![0u8; 65535];
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
                .await
                .ok()?
                .ok()?;
            if n >= HEADER_LEN && u16_at(&buf, 0) == Some(id) && buf[2] & 0x80 != 0 {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }

    async fn exchange_tcp(&self, up: SocketAddr, query: &[u8], id: u16) -> Option<Vec<u8>> {
        let work = async {
            let mut s = tokio::net::TcpStream::connect(up).await.ok()?;
            let mut framed = (query.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(query);
            s.write_all(&framed).await.ok()?;
            let len = s.read_u16().await.ok()? as usize;
            let mut buf = vec![0u8; len];
            s.read_exact(&mut buf).await.ok()?;
            (u16_at(&buf, 0) == Some(id)).then_some(buf)
        };
        tokio::time::timeout(self.timeout, work).await.ok()?
    }
}

/// Answers the client from an upstream response: the client's header and question, the
/// upstream's records (our OPT instead of theirs), TTLs aged. `None` = SERVFAIL.
pub fn reply(req: &[u8], q: &Question, c: Option<&Cached>, t: Transport, out: &mut Vec<u8>) {
    let Some(c) = c.filter(|c| c.question_end == q.end) else {
        begin(out, req, q, rcode::SERVFAIL, false);
        let at = out.len();
        finish(out, q, 0, 0, 0, at, t);
        return;
    };
    let now = Instant::now();
    let age = now.saturating_duration_since(c.stored).as_secs() as u32;
    begin(out, req, q, c.rcode(), false);
    let base = out.len();
    debug_assert_eq!(base, c.question_end);
    let (start, end) = c.opt.unwrap_or((c.msg.len(), c.msg.len()));
    out.extend_from_slice(&c.msg[c.question_end..start]);
    out.extend_from_slice(&c.msg[end..]);
    for &at in &c.ttls {
        // Offsets after the OPT record moved back by its length.
        let at = if at >= end { at - (end - start) } else { at };
        let ttl = u32_at(out, at).unwrap_or(0).saturating_sub(age);
        out[at..at + 4].copy_from_slice(&ttl.to_be_bytes());
    }
    let an = u16_at(&c.msg, 6).unwrap_or(0);
    let ns = u16_at(&c.msg, 8).unwrap_or(0);
    let ar = u16_at(&c.msg, 10)
        .unwrap_or(0)
        .saturating_sub(c.opt.is_some() as u16);
    finish(out, q, an, ns, ar, c.ar_at.min(out.len()), t);
}

/// The ExternalName answer: our CNAME, then the upstream's answer records for the target
/// (names expanded, since they were compressed against another message).
pub fn reply_chase(
    req: &[u8],
    q: &Question,
    cname_rr: &[u8],
    c: Option<&Cached>,
    t: Transport,
    out: &mut Vec<u8>,
) {
    let rc = match c.map(|c| c.rcode()) {
        Some(rcode::NXDOMAIN) => rcode::NXDOMAIN,
        _ => rcode::NOERROR,
    };
    begin(out, req, q, rc, true);
    out.extend_from_slice(cname_rr);
    let mut an = 1u16;
    if let Some(c) = c {
        let age = Instant::now().saturating_duration_since(c.stored).as_secs() as u32;
        let mut p = c.question_end;
        let count = u16_at(&c.msg, 6).unwrap_or(0);
        for _ in 0..count {
            let Some(rr) = skip_rr(&c.msg, p) else { break };
            p = rr.next;
            // Only what answers the question (the target's chain and its addresses), and only
            // well-formed addresses: this goes out under our authority.
            let len = rr.next - rr.rdata_at;
            let fits = match rr.rtype {
                rtype::A => len == 4,
                rtype::AAAA => len == 16,
                t => t == rtype::CNAME || t == q.qtype,
            };
            if !fits || (rr.rtype != q.qtype && rr.rtype != rtype::CNAME) {
                continue;
            }
            let ttl = u32_at(&c.msg, rr.ttl_at).unwrap_or(0).saturating_sub(age);
            if wire::copy_rr_expanded(&c.msg, &rr, ttl, out) {
                an += 1;
            }
        }
    }
    let at = out.len();
    finish(out, q, an, 0, 0, at, t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode_name, push_opt, push_rr, CLASS_IN};

    fn question(id: u16, name: &str, edns: bool) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, edns as u8]);
        m.extend(encode_name(name).unwrap());
        m.extend(rtype::A.to_be_bytes());
        m.extend(CLASS_IN.to_be_bytes());
        if edns {
            push_opt(&mut m, 0);
        }
        m
    }

    /// An upstream answer: two A records (TTL 300 and 60) and its OPT.
    fn upstream_answer(name: &str) -> (Vec<u8>, usize) {
        let mut m = question(7, name, false);
        let end = m.len();
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 2;
        m[11] = 1;
        push_rr(&mut m, None, rtype::A, 300, &[192, 0, 2, 1]);
        push_rr(&mut m, None, rtype::A, 60, &[192, 0, 2, 2]);
        push_opt(&mut m, 0);
        (m, end)
    }

    #[test]
    fn cached_answers_live_for_the_smallest_ttl_and_age_on_the_way_out() {
        let (msg, end) = upstream_answer("example.com");
        let then = Instant::now() - Duration::from_secs(10);
        let c = Cached::parse(msg, end, then).unwrap();
        assert_eq!(c.ttl, 60);
        assert_eq!(c.remaining(Instant::now()), Some(50));
        // A client without EDNS: its ID and case, no OPT, TTLs lowered by the 10 s in cache.
        let mut req = question(0xBEEF, "example.com", false);
        req[13] = b'E';
        let q = Question::parse(&req).unwrap();
        let mut out = Vec::new();
        reply(&req, &q, Some(&c), Transport::Udp, &mut out);
        assert_eq!(&out[..2], &[0xBE, 0xEF]);
        assert_eq!(out[13], b'E');
        assert_eq!(
            u16_at(&out, 10),
            Some(0),
            "the upstream's OPT is not passed on"
        );
        let first = skip_rr(&out, q.end).unwrap();
        assert_eq!(u32_at(&out, first.ttl_at), Some(290));
        assert_eq!(
            u32_at(&out, skip_rr(&out, first.next).unwrap().ttl_at),
            Some(50)
        );
        // With EDNS: exactly our OPT.
        let req = question(1, "example.com", true);
        let q = Question::parse(&req).unwrap();
        reply(&req, &q, Some(&c), Transport::Udp, &mut out);
        assert_eq!(u16_at(&out, 10), Some(1));
        assert_eq!(out.len(), q.end + 2 * 16 + 11);
    }

    #[test]
    fn negative_answers_are_cached_for_the_soa_minimum_and_servfail_not_at_all() {
        let mut m = question(7, "nope.example.com", false);
        let end = m.len();
        m[2] = 0x81;
        m[3] = 0x83;
        m[9] = 1;
        let mut soa = encode_name("a.example.com").unwrap();
        soa.extend(encode_name("b.example.com").unwrap());
        for v in [1u32, 2, 3, 4, 30] {
            soa.extend(v.to_be_bytes());
        }
        push_rr(
            &mut m,
            Some(&encode_name("example.com").unwrap()),
            rtype::SOA,
            900,
            &soa,
        );
        assert_eq!(
            Cached::parse(m.clone(), end, Instant::now()).unwrap().ttl,
            30
        );
        m[3] = 0x82;
        assert_eq!(Cached::parse(m, end, Instant::now()).unwrap().ttl, 0);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let mut cache = Cache {
            map: HashMap::new(),
            capacity: 16,
        };
        let now = Instant::now();
        for i in 0..100 {
            let (msg, end) = upstream_answer(&format!("n{i}.example.com"));
            let c = Arc::new(Cached::parse(msg, end, now).unwrap());
            cache.put(
                (
                    encode_name(&format!("n{i}.example.com")).unwrap().into(),
                    1,
                    1,
                ),
                c,
                now,
            );
            assert!(cache.map.len() <= 16);
        }
        let key: Key = (encode_name("n99.example.com").unwrap().into(), 1, 1);
        assert!(cache.get(&key, now).is_some(), "the newest entry is there");
        assert!(
            cache.get(&key, now + Duration::from_secs(61)).is_none(),
            "and expires"
        );
    }

    #[test]
    fn resolv_conf_nameservers() {
        let t = "# comment\nsearch a b\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:5\nnameserver bogus\n";
        assert_eq!(
            resolv_conf_upstreams(t),
            vec![
                "10.0.0.2:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }
}
