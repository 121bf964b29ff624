//! A set's userdata (`NFTNL_UDATA_SET_*` TLVs) as nft 1.0.6 writes it, and the `typeof`
//! declarations it records: the expressions a key or data is declared by, their data types, and
//! the `KEY_TYPEOF`/`DATA_TYPEOF` TLVs that let `nft list` print the declaration back (the
//! kernel itself only keeps the type ids).

use super::script::Words;
use super::types::*;

/// nft's `EXPR_*` ids of the expressions a `typeof` may name.
const EXPR_PAYLOAD: u32 = 7;
const EXPR_META: u32 = 9;
const EXPR_CONCAT: u32 = 13;
const EXPR_NUMGEN: u32 = 23;

/// nft's protocol description ids (`PROTO_DESC_*`) and template fields of the payloads used.
const PROTO_DESC_TH: u32 = 11;
const PROTO_DESC_IP: u32 = 12;
const PROTO_DESC_IP6: u32 = 13;

const NFT_META_MARK: u32 = 3;
const NFT_META_L4PROTO: u32 = 16;
const NFT_NG_RANDOM: u32 = 1;

/// One expression of a `typeof` (`ip daddr`, `meta l4proto`, `numgen random mod N`...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeofExpr {
    Payload { desc: u32, field: u32, ty: Dtype },
    Meta { key: u32, ty: Dtype },
    Numgen { kind: u32, modulus: u32 },
}

impl TypeofExpr {
    pub fn dtype(&self) -> Dtype {
        match self {
            TypeofExpr::Payload { ty, .. } | TypeofExpr::Meta { ty, .. } => *ty,
            TypeofExpr::Numgen { .. } => Dtype::Integer,
        }
    }

    fn etype(&self) -> u32 {
        match self {
            TypeofExpr::Payload { .. } => EXPR_PAYLOAD,
            TypeofExpr::Meta { .. } => EXPR_META,
            TypeofExpr::Numgen { .. } => EXPR_NUMGEN,
        }
    }

    /// The expression's own userdata (`*_expr_build_udata` in nft).
    fn udata(&self, out: &mut Vec<u8>) {
        match self {
            TypeofExpr::Payload { desc, field, .. } => {
                tlv_u32(out, 0, *desc);
                tlv_u32(out, 1, *field);
            }
            TypeofExpr::Meta { key, .. } => tlv_u32(out, 0, *key),
            TypeofExpr::Numgen { kind, modulus } => {
                tlv_u32(out, 0, *kind);
                tlv_u32(out, 1, *modulus);
                tlv_u32(out, 2, 0); // offset
            }
        }
    }
}

fn tlv_u32(out: &mut Vec<u8>, ty: u8, v: u32) {
    out.extend_from_slice(&[ty, 4]);
    out.extend_from_slice(&v.to_ne_bytes());
}

/// A nested TLV of type `ty` holding what `body` writes (lengths are one byte).
fn nest(out: &mut Vec<u8>, ty: u8, body: impl FnOnce(&mut Vec<u8>) -> Res<()>) -> Res<()> {
    let at = out.len();
    out.extend_from_slice(&[ty, 0]);
    body(out)?;
    let len = out.len() - at - 2;
    out[at + 1] = u8::try_from(len).or_else(|_| unsupported("typeof userdata too long"))?;
    Ok(())
}

/// Parses the expressions of a `typeof` key or data (`a . b . c`), up to `:` or `;`.
pub fn parse_typeof(w: &mut Words) -> Res<Vec<TypeofExpr>> {
    let mut out = vec![parse_one(w)?];
    while w.eat(".") {
        out.push(parse_one(w)?);
    }
    Ok(out)
}

fn parse_one(w: &mut Words) -> Res<TypeofExpr> {
    let a = w.next()?;
    let b = w.next()?;
    Ok(match (a, b) {
        ("ip", "saddr" | "daddr") => TypeofExpr::Payload {
            desc: PROTO_DESC_IP,
            field: if b == "saddr" { 11 } else { 12 },
            ty: Dtype::Ipv4Addr,
        },
        ("ip6", "saddr" | "daddr") => TypeofExpr::Payload {
            desc: PROTO_DESC_IP6,
            field: if b == "saddr" { 8 } else { 9 },
            ty: Dtype::Ipv6Addr,
        },
        ("th", "sport" | "dport") => TypeofExpr::Payload {
            desc: PROTO_DESC_TH,
            field: if b == "sport" { 1 } else { 2 },
            ty: Dtype::InetService,
        },
        ("meta", "l4proto") => TypeofExpr::Meta {
            key: NFT_META_L4PROTO,
            ty: Dtype::InetProto,
        },
        ("meta", "mark") => TypeofExpr::Meta {
            key: NFT_META_MARK,
            ty: Dtype::Mark,
        },
        ("numgen", "random") => {
            w.expect("mod")?;
            let modulus = parse_u32(w.next()?).ok_or_else(|| Unsupported("numgen mod".into()))?;
            if w.peek() == Some("offset") {
                return unsupported("numgen offset in typeof");
            }
            TypeofExpr::Numgen {
                kind: NFT_NG_RANDOM,
                modulus,
            }
        }
        _ => return unsupported(format!("typeof {a} {b}")),
    })
}

/// The value of a `KEY_TYPEOF`/`DATA_TYPEOF` TLV: `{ TYPEOF_EXPR = EXPR_CONCAT, TYPEOF_DATA =
/// { i: { SUB_TYPE = expression id, SUB_DATA = its userdata } ... } }`. Only concatenations:
/// a single expression also sets the key's byte order from its template, not reproduced here.
pub fn typeof_value(exprs: &[TypeofExpr]) -> Res<Vec<u8>> {
    if exprs.len() < 2 {
        return unsupported("typeof of a single expression");
    }
    let mut out = Vec::new();
    tlv_u32(&mut out, 0, EXPR_CONCAT);
    nest(&mut out, 1, |out| {
        for (i, e) in exprs.iter().enumerate() {
            nest(out, i as u8, |out| {
                tlv_u32(out, 0, e.etype());
                nest(out, 1, |out| {
                    e.udata(out);
                    Ok(())
                })
            })?;
        }
        Ok(())
    })?;
    Ok(out)
}

/// `NFTNL_UDATA_SET_*` TLVs as nft 1.0.6 writes them for a declared set (`type`, or `typeof`
/// with its expressions).
pub fn set_userdata(
    ty: &SetType,
    typeof_exprs: Option<&(Vec<TypeofExpr>, Option<Vec<TypeofExpr>>)>,
    anonymous: bool,
    comment: Option<&str>,
) -> Res<Vec<u8>> {
    let mut u = Vec::new();
    let mut tlv = |t: u8, v: &[u8]| -> Res<()> {
        u.push(t);
        u.push(u8::try_from(v.len()).or_else(|_| unsupported("set userdata too long"))?);
        u.extend_from_slice(v);
        Ok(())
    };
    let key_order = if ty.key.len() > 1 {
        BYTEORDER_INVALID
    } else {
        ty.key[0].byteorder()
    };
    tlv(0, &key_order.to_ne_bytes())?;
    if let Some(data) = &ty.data {
        let order = match data {
            SetData::Fields(f) if f.len() == 1 => f[0].byteorder(),
            _ => BYTEORDER_INVALID,
        };
        tlv(1, &order.to_ne_bytes())?;
    }
    match typeof_exprs {
        Some((key, data)) => {
            tlv(3, &typeof_value(key)?)?;
            if let Some(data) = data {
                tlv(4, &typeof_value(data)?)?;
            }
        }
        // KEY_TYPEOF { TYPEOF_EXPR = EXPR_CONCAT (13), TYPEOF_DATA = {} }: what nft writes for
        // a concatenation of types (its fields have no expression to record).
        None if ty.key.len() > 1 && !anonymous => tlv(3, &[0, 4, 13, 0, 0, 0, 1, 0])?,
        None => {}
    }
    if ty.data.is_some() {
        tlv(6, &0u32.to_ne_bytes())?; // DATA_INTERVAL: no
    }
    if let Some(c) = comment {
        let mut v = c.as_bytes().to_vec();
        v.push(0);
        tlv(7, &v)?;
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::super::script::tokenize;
    use super::*;

    #[test]
    fn typeof_of_the_dispatch_map_key_is_nfts_userdata() {
        let words = tokenize("ip daddr . meta l4proto . th dport . numgen random mod 1");
        let mut w = Words::new(&words);
        let exprs = parse_typeof(&mut w).unwrap();
        assert!(w.done());
        let types: Vec<Dtype> = exprs.iter().map(TypeofExpr::dtype).collect();
        assert_eq!(concat_id(&types), 0x1c_c344);
        // As `nft --debug=mnl` prints it (little-endian host), without the outer TLV header.
        let want = "00040d000000 0158 \
                    0014 000407000000 010c 00040c000000 01040c000000 \
                    010e 000409000000 0106 000410000000 \
                    0214 000407000000 010c 00040b000000 010402000000 \
                    031a 000417000000 0112 000401000000 010401000000 020400000000"
            .replace(' ', "");
        let want: Vec<u8> = (0..want.len() / 2)
            .map(|i| u8::from_str_radix(&want[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        if cfg!(target_endian = "little") {
            assert_eq!(typeof_value(&exprs).unwrap(), want);
        }
        assert!(typeof_value(&exprs[..1]).is_err());
        assert!(parse_typeof(&mut Words::new(&tokenize("tcp dport"))).is_err());
    }
}
