//! nft data types as far as our sets, maps and rules use them: the type ids nft stores in a
//! set's key/data type (6 bits per field of a concatenation), their lengths and byte orders,
//! and the encoding of literal values.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A script construct the netlink encoder does not handle; the caller falls back to `nft -f`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl Unsupported {
    /// What was not understood, without the command it was in (one log line per construct).
    pub fn construct(&self) -> &str {
        self.0.split(" in `").next().unwrap_or(&self.0)
    }
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Res<T> = Result<T, Unsupported>;

pub fn unsupported<T>(what: impl Into<String>) -> Res<T> {
    Err(Unsupported(what.into()))
}

/// nft's `byteorder` enum, stored in a set's userdata.
pub const BYTEORDER_INVALID: u32 = 0;
pub const BYTEORDER_HOST: u32 = 1;
pub const BYTEORDER_BIG: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    Ipv4Addr,
    Ipv6Addr,
    InetProto,
    InetService,
    Mark,
    /// 32-bit integer in host order (what `jhash`/`numgen` produce).
    Integer,
}

impl Dtype {
    pub fn parse(name: &str) -> Res<Dtype> {
        Ok(match name {
            "ipv4_addr" => Dtype::Ipv4Addr,
            "ipv6_addr" => Dtype::Ipv6Addr,
            "inet_proto" => Dtype::InetProto,
            "inet_service" => Dtype::InetService,
            "mark" => Dtype::Mark,
            _ => return unsupported(format!("set type {name}")),
        })
    }

    /// nft's `TYPE_*` id.
    pub fn id(self) -> u32 {
        match self {
            Dtype::Integer => 4,
            Dtype::Ipv4Addr => 7,
            Dtype::Ipv6Addr => 8,
            Dtype::InetProto => 12,
            Dtype::InetService => 13,
            Dtype::Mark => 19,
        }
    }

    pub fn from_id(id: u32) -> Option<Dtype> {
        Some(match id {
            4 => Dtype::Integer,
            7 => Dtype::Ipv4Addr,
            8 => Dtype::Ipv6Addr,
            12 => Dtype::InetProto,
            13 => Dtype::InetService,
            19 => Dtype::Mark,
            _ => return None,
        })
    }

    pub fn len(self) -> usize {
        match self {
            Dtype::Ipv4Addr | Dtype::Mark | Dtype::Integer => 4,
            Dtype::Ipv6Addr => 16,
            Dtype::InetProto => 1,
            Dtype::InetService => 2,
        }
    }

    pub fn byteorder(self) -> u32 {
        match self {
            Dtype::Mark | Dtype::Integer => BYTEORDER_HOST,
            _ => BYTEORDER_BIG,
        }
    }

    /// The bytes of a literal of this type (unpadded).
    pub fn encode(self, lit: &str) -> Res<Vec<u8>> {
        let bad = || Unsupported(format!("{lit:?} as {self:?}"));
        Ok(match self {
            Dtype::Ipv4Addr => lit
                .parse::<Ipv4Addr>()
                .map_err(|_| bad())?
                .octets()
                .to_vec(),
            Dtype::Ipv6Addr => lit
                .parse::<Ipv6Addr>()
                .map_err(|_| bad())?
                .octets()
                .to_vec(),
            Dtype::InetProto => vec![proto_number(lit).ok_or_else(bad)?],
            Dtype::InetService => lit
                .parse::<u16>()
                .map_err(|_| bad())?
                .to_be_bytes()
                .to_vec(),
            Dtype::Mark | Dtype::Integer => parse_u32(lit).ok_or_else(bad)?.to_ne_bytes().to_vec(),
        })
    }
}

pub fn proto_number(s: &str) -> Option<u8> {
    Some(match s {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        "icmp" => 1,
        "icmpv6" => 58,
        _ => return s.parse().ok(),
    })
}

/// Decimal or `0x` hexadecimal.
pub fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Concatenated type id: 6 bits per field, first field highest (nft's `concat_type_alloc`).
pub fn concat_id(fields: &[Dtype]) -> u32 {
    fields.iter().fold(0, |acc, f| (acc << 6) | f.id())
}

/// Splits a concatenated type id back into its fields.
pub fn split_concat_id(mut id: u32) -> Option<Vec<Dtype>> {
    let mut out = Vec::new();
    while id != 0 {
        out.push(Dtype::from_id(id & 0x3f)?);
        id >>= 6;
    }
    out.reverse();
    (!out.is_empty()).then_some(out)
}

/// Length of a key/data of these fields: a concatenation pads each field to 4 bytes (32-bit
/// registers); a single field keeps its own length.
pub fn fields_len(fields: &[Dtype]) -> usize {
    if fields.len() == 1 {
        fields[0].len()
    } else {
        fields.iter().map(|f| pad4(f.len())).sum()
    }
}

pub fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// The bytes of `a . b . c` for `fields` (each padded to 4 bytes in a concatenation).
pub fn encode_fields(fields: &[Dtype], lits: &[&str]) -> Res<Vec<u8>> {
    if fields.len() != lits.len() {
        return unsupported(format!("{} values for {} fields", lits.len(), fields.len()));
    }
    let mut out = Vec::new();
    for (f, l) in fields.iter().zip(lits) {
        let mut b = f.encode(l)?;
        if fields.len() > 1 {
            b.resize(pad4(b.len()), 0);
        }
        out.extend(b);
    }
    Ok(out)
}

/// What a set's elements map to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetData {
    Verdict,
    Fields(Vec<Dtype>),
}

/// A named set's key and data types: enough to encode its elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetType {
    pub key: Vec<Dtype>,
    pub data: Option<SetData>,
}

/// An address family of our tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Ip,
    Ip6,
}

impl Family {
    pub fn parse(s: &str) -> Res<Family> {
        match s {
            "ip" => Ok(Family::Ip),
            "ip6" => Ok(Family::Ip6),
            _ => unsupported(format!("family {s}")),
        }
    }

    /// `NFPROTO_IPV4` / `NFPROTO_IPV6`.
    pub fn nfproto(self) -> u8 {
        match self {
            Family::Ip => 2,
            Family::Ip6 => 10,
        }
    }

    pub fn addr(self) -> Dtype {
        match self {
            Family::Ip => Dtype::Ipv4Addr,
            Family::Ip6 => Dtype::Ipv6Addr,
        }
    }
}
