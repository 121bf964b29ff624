//! One `add rule` → its expressions, as nft 1.0.6 compiles each statement shape the renderer
//! writes (`nft --debug=netlink` shows the same list). Registers are allocated as nft does:
//! each top-level value gets the next free 128-bit register, and the fields of a concatenation
//! follow each other in 32-bit registers (each field padded to 4 bytes).

use super::msg::*;
use super::script::{parse_elements, parse_verdict, Element, Encoder, Words};
use super::types::*;

const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_MARK: u32 = 3;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CT_STATE: u32 = 0;
const NFT_CT_STATUS: u32 = 2;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_LOOKUP_F_INV: u32 = 1;
const NFT_NAT_SNAT: u32 = 0;
const NFT_NAT_DNAT: u32 = 1;
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 0x2;
const NF_NAT_RANGE_PROTO_RANDOM: u32 = 0x4;
const NF_NAT_RANGE_PERSISTENT: u32 = 0x8;
const NF_NAT_RANGE_PROTO_RANDOM_FULLY: u32 = 0x10;
const NFT_NG_INCREMENTAL: u32 = 0;
const NFT_NG_RANDOM: u32 = 1;
const NFT_HASH_JENKINS: u32 = 0;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_SADDR: u32 = 1;
const NFTA_FIB_F_DADDR: u32 = 2;
const NFT_DYNSET_OP_ADD: u32 = 0;
const NFT_DYNSET_OP_UPDATE: u32 = 1;
const NFT_REJECT_ICMP_UNREACH: u32 = 0;

/// nft's register number for the 32-bit slot `slot` (0 = first slot of NFT_REG_1): 128-bit
/// register numbers where a slot starts one, NFT_REG32_xx otherwise (`netlink_put_register`).
pub fn reg(slot: u32) -> u32 {
    if slot.is_multiple_of(4) {
        1 + slot / 4
    } else {
        8 + slot
    }
}

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Payload { base: u32, offset: u32, len: u32 },
    Meta(u32),
}

#[derive(Clone, Copy, Debug)]
struct Field {
    load: Load,
    ty: Dtype,
}

fn expr(m: &mut Msg, name: &str, body: impl FnOnce(&mut Msg)) {
    m.begin(1);
    m.str(1, name);
    m.begin(2);
    body(m);
    m.end();
    m.end();
}

fn load(m: &mut Msg, l: Load, dreg: u32) {
    match l {
        Load::Payload { base, offset, len } => payload(m, base, offset, len, dreg),
        Load::Meta(key) => expr(m, "meta", |m| {
            m.u32(2, key);
            m.u32(1, dreg);
        }),
    }
}

fn payload(m: &mut Msg, base: u32, offset: u32, len: u32, dreg: u32) {
    expr(m, "payload", |m| {
        m.u32(1, dreg);
        m.u32(2, base);
        m.u32(3, offset);
        m.u32(4, len);
    });
}

fn cmp(m: &mut Msg, sreg: u32, op: u32, data: &[u8]) {
    expr(m, "cmp", |m| {
        m.u32(1, sreg);
        m.u32(2, op);
        m.data_value(3, data);
    });
}

/// `with_op`: nft writes NFTA_BITWISE_OP for an explicit `&`/`|`/`^`, not for the implicit mask
/// of a flag test or a prefix.
fn bitwise(m: &mut Msg, reg: u32, mask: &[u8], xor: &[u8], with_op: bool) {
    expr(m, "bitwise", |m| {
        m.u32(1, reg);
        m.u32(2, reg);
        if with_op {
            m.u32(6, 0); // NFT_BITWISE_BOOL
        }
        m.u32(3, mask.len() as u32);
        m.data_value(4, mask);
        m.data_value(5, xor);
    });
}

fn immediate_value(m: &mut Msg, dreg: u32, v: &[u8]) {
    expr(m, "immediate", |m| {
        m.u32(1, dreg);
        m.data_value(2, v);
    });
}

fn immediate_verdict(m: &mut Msg, code: i32, chain: Option<&str>) {
    expr(m, "immediate", |m| {
        m.u32(1, 0);
        m.data_verdict(2, code, chain);
    });
}

fn lookup(m: &mut Msg, set: &str, id: u32, sreg: u32, dreg: Option<u32>, invert: bool) {
    expr(m, "lookup", |m| {
        m.u32(2, sreg);
        if let Some(d) = dreg {
            m.u32(3, d);
        }
        m.str(1, set);
        m.u32(4, id);
        if invert {
            m.u32(5, NFT_LOOKUP_F_INV);
        }
    });
}

fn numgen_expr(m: &mut Msg, dreg: u32, kind: u32, modulus: u32) {
    expr(m, "numgen", |m| {
        m.u32(1, dreg);
        m.u32(2, modulus);
        m.u32(3, kind);
        m.u32(4, 0);
    });
}

fn hash(m: &mut Msg, sreg: u32, dreg: u32, len: u32, modulus: u32, seed: u32) {
    expr(m, "hash", |m| {
        m.u32(1, sreg);
        m.u32(2, dreg);
        m.u32(3, len);
        m.u32(4, modulus);
        m.u32(5, seed);
        m.u32(6, 0);
        m.u32(7, NFT_HASH_JENKINS);
    });
}

/// One part of a concatenated map key.
#[derive(Clone, Copy, Debug)]
enum KeyItem {
    Field(Field),
    Numgen {
        kind: u32,
        modulus: u32,
    },
    Jhash {
        input: Field,
        modulus: u32,
        seed: u32,
    },
}

impl KeyItem {
    fn dtype(&self) -> Dtype {
        match self {
            KeyItem::Field(f) => f.ty,
            KeyItem::Numgen { .. } | KeyItem::Jhash { .. } => Dtype::Integer,
        }
    }

    /// 32-bit registers it takes in a concatenation.
    fn slots(&self) -> u32 {
        self.dtype().len().div_ceil(4) as u32
    }
}

/// A header field, `numgen random|inc mod N`, or `jhash FIELD mod N seed S`.
fn parse_key_item(w: &mut Words, fam: Family) -> Res<KeyItem> {
    match w.peek() {
        Some("numgen") => {
            w.i += 1;
            let kind = match w.next()? {
                "random" => NFT_NG_RANDOM,
                "inc" => NFT_NG_INCREMENTAL,
                t => return unsupported(format!("numgen {t}")),
            };
            w.expect("mod")?;
            let modulus = parse_u32(w.next()?).ok_or_else(|| Unsupported("numgen mod".into()))?;
            if w.peek() == Some("offset") {
                return unsupported("numgen offset");
            }
            Ok(KeyItem::Numgen { kind, modulus })
        }
        Some("jhash") => {
            w.i += 1;
            let input = parse_field(w, fam)?.ok_or_else(|| Unsupported("jhash input".into()))?;
            w.expect("mod")?;
            let modulus = parse_u32(w.next()?).ok_or_else(|| Unsupported("jhash mod".into()))?;
            w.expect("seed")?;
            let seed = parse_u32(w.next()?).ok_or_else(|| Unsupported("jhash seed".into()))?;
            if w.peek() == Some("offset") {
                return unsupported("jhash offset");
            }
            Ok(KeyItem::Jhash {
                input,
                modulus,
                seed,
            })
        }
        _ => Ok(KeyItem::Field(
            parse_field(w, fam)?.ok_or_else(|| Unsupported("map key".into()))?,
        )),
    }
}

fn parse_field(w: &mut Words, fam: Family) -> Res<Option<Field>> {
    let (a, b) = match (w.peek(), w.peek_at(1)) {
        (Some(a), Some(b)) => (a, b),
        _ => return Ok(None),
    };
    let net = |offset, len| Load::Payload {
        base: NFT_PAYLOAD_NETWORK_HEADER,
        offset,
        len,
    };
    let f = match (a, b) {
        ("ip", "saddr" | "daddr") if fam == Family::Ip => Field {
            load: net(if b == "saddr" { 12 } else { 16 }, 4),
            ty: Dtype::Ipv4Addr,
        },
        ("ip6", "saddr" | "daddr") if fam == Family::Ip6 => Field {
            load: net(if b == "saddr" { 8 } else { 24 }, 16),
            ty: Dtype::Ipv6Addr,
        },
        ("meta", "l4proto") => Field {
            load: Load::Meta(NFT_META_L4PROTO),
            ty: Dtype::InetProto,
        },
        ("meta", "mark") => Field {
            load: Load::Meta(NFT_META_MARK),
            ty: Dtype::Mark,
        },
        ("th", "dport" | "sport") => Field {
            load: Load::Payload {
                base: NFT_PAYLOAD_TRANSPORT_HEADER,
                offset: if b == "sport" { 0 } else { 2 },
                len: 2,
            },
            ty: Dtype::InetService,
        },
        _ => return Ok(None),
    };
    w.i += 2;
    Ok(Some(f))
}

/// `ADDR` or `ADDR/LEN` of the field's family → (address bytes, prefix length).
fn parse_prefix(ty: Dtype, lit: &str) -> Res<(Vec<u8>, u32)> {
    let (a, p) = match lit.split_once('/') {
        Some((a, p)) => (
            a,
            Some(
                p.parse::<u32>()
                    .map_err(|_| Unsupported(format!("prefix {lit}")))?,
            ),
        ),
        None => (lit, None),
    };
    let bytes = ty.encode(a)?;
    let bits = bytes.len() as u32 * 8;
    let plen = p.unwrap_or(bits);
    if plen > bits {
        return unsupported(format!("prefix {lit}"));
    }
    Ok((bytes, plen))
}

struct RuleEnc<'a, 'k, 't> {
    enc: &'a mut Encoder<'k>,
    fam: Family,
    table: &'t str,
    m: Msg,
}

pub fn encode_rule(
    enc: &mut Encoder,
    fam: Family,
    table: &str,
    chain: &str,
    words: &[String],
) -> Res<()> {
    let mut m = Msg::nft(
        NFT_MSG_NEWRULE,
        NLM_F_CREATE | NLM_F_APPEND,
        0,
        fam.nfproto(),
    );
    m.str(1, table);
    m.str(2, chain);
    m.begin(4);
    let mut r = RuleEnc { enc, fam, table, m };
    let mut w = Words::new(words);
    if w.done() {
        return unsupported("empty rule");
    }
    while !w.done() {
        r.statement(&mut w)?;
    }
    let mut m = r.m;
    m.end();
    r.enc.push(m);
    Ok(())
}

impl RuleEnc<'_, '_, '_> {
    fn statement(&mut self, w: &mut Words) -> Res<()> {
        let t = w.peek().expect("not done");
        match t {
            "accept" | "drop" | "return" | "continue" => {
                w.i += 1;
                let (code, _) = parse_verdict(&[t.to_string()])?;
                immediate_verdict(&mut self.m, code, None);
            }
            "jump" | "goto" => {
                w.i += 1;
                let chain = w.next()?;
                let words = [t.to_string(), chain.to_string()];
                let (code, c) = parse_verdict(&words)?;
                immediate_verdict(&mut self.m, code, c);
            }
            "counter" => {
                w.i += 1;
                expr(&mut self.m, "counter", |m| {
                    m.u64(2, 0);
                    m.u64(1, 0);
                });
            }
            "ct" => self.ct(w)?,
            "fib" => self.fib(w)?,
            "numgen" => self.numgen(w)?,
            "jhash" => self.jhash(w)?,
            "update" | "add" => self.dynset(w)?,
            "dnat" | "snat" => self.nat(w)?,
            "masquerade" => self.masquerade(w)?,
            "reject" => {
                w.i += 1;
                if w.peek() == Some("with") {
                    return unsupported("reject with");
                }
                let code: u8 = match self.fam {
                    Family::Ip => 3,  // ICMP port unreachable
                    Family::Ip6 => 4, // ICMPv6 port unreachable
                };
                expr(&mut self.m, "reject", |m| {
                    m.u32(1, NFT_REJECT_ICMP_UNREACH);
                    m.put(2, &[code]);
                });
            }
            "meta" if w.peek_at(1) == Some("mark") && w.peek_at(2) == Some("set") => {
                self.mark_set(w)?
            }
            _ => self.selector(w)?,
        }
        Ok(())
    }

    /// `ct state new`, `ct status dnat` (flag tests: bitwise and, then != 0).
    fn ct(&mut self, w: &mut Words) -> Res<()> {
        w.i += 1;
        let (key, names): (u32, &[(&str, u32)]) = match w.next()? {
            "state" => (
                NFT_CT_STATE,
                &[
                    ("invalid", 1),
                    ("established", 2),
                    ("related", 4),
                    ("new", 8),
                    ("untracked", 64),
                ],
            ),
            "status" => (
                NFT_CT_STATUS,
                &[
                    ("expected", 1),
                    ("seen-reply", 2),
                    ("assured", 4),
                    ("confirmed", 8),
                    ("snat", 0x10),
                    ("dnat", 0x20),
                    ("dying", 0x200),
                ],
            ),
            k => return unsupported(format!("ct {k}")),
        };
        let neg = w.eat("!=");
        let mut mask = 0u32;
        loop {
            let v = w.next()?;
            mask |= names
                .iter()
                .find(|(n, _)| *n == v)
                .map(|(_, b)| *b)
                .ok_or_else(|| Unsupported(format!("ct value {v}")))?;
            if !w.eat(",") {
                break;
            }
        }
        expr(&mut self.m, "ct", |m| {
            m.u32(2, key);
            m.u32(1, 1);
        });
        bitwise(
            &mut self.m,
            1,
            &mask.to_ne_bytes(),
            &0u32.to_ne_bytes(),
            false,
        );
        cmp(
            &mut self.m,
            1,
            if neg { NFT_CMP_EQ } else { NFT_CMP_NEQ },
            &0u32.to_ne_bytes(),
        );
        Ok(())
    }

    /// `fib saddr|daddr type [!=] local`
    fn fib(&mut self, w: &mut Words) -> Res<()> {
        w.i += 1;
        let flags = match w.next()? {
            "saddr" => NFTA_FIB_F_SADDR,
            "daddr" => NFTA_FIB_F_DADDR,
            f => return unsupported(format!("fib {f}")),
        };
        w.expect("type")?;
        let neg = w.eat("!=");
        let ty: u32 = match w.next()? {
            "unicast" => 1,
            "local" => 2,
            "broadcast" => 3,
            "anycast" => 4,
            "multicast" => 5,
            t => return unsupported(format!("fib type {t}")),
        };
        expr(&mut self.m, "fib", |m| {
            m.u32(3, flags);
            m.u32(2, NFT_FIB_RESULT_ADDRTYPE);
            m.u32(1, 1);
        });
        cmp(
            &mut self.m,
            1,
            if neg { NFT_CMP_NEQ } else { NFT_CMP_EQ },
            &ty.to_ne_bytes(),
        );
        Ok(())
    }

    /// `numgen random|inc mod N V`: a number compared with V.
    fn numgen(&mut self, w: &mut Words) -> Res<()> {
        w.i += 1;
        let ty = match w.next()? {
            "random" => NFT_NG_RANDOM,
            "inc" => NFT_NG_INCREMENTAL,
            t => return unsupported(format!("numgen {t}")),
        };
        w.expect("mod")?;
        let modulus = parse_u32(w.next()?).ok_or_else(|| Unsupported("numgen mod".into()))?;
        let value = w
            .peek()
            .and_then(parse_u32)
            .ok_or_else(|| Unsupported("numgen without a compared value".into()))?;
        w.i += 1;
        numgen_expr(&mut self.m, 1, ty, modulus);
        cmp(&mut self.m, 1, NFT_CMP_EQ, &value.to_ne_bytes());
        Ok(())
    }

    /// `jhash FIELD mod N seed S`, loaded into register 1 (its input in register 2).
    fn hash_expr(&mut self, w: &mut Words) -> Res<()> {
        w.expect("jhash")?;
        let f = parse_field(w, self.fam)?.ok_or_else(|| Unsupported("jhash input".into()))?;
        w.expect("mod")?;
        let modulus = parse_u32(w.next()?).ok_or_else(|| Unsupported("jhash mod".into()))?;
        let seed = if w.eat("seed") {
            parse_u32(w.next()?).ok_or_else(|| Unsupported("jhash seed".into()))?
        } else {
            return unsupported("jhash without seed");
        };
        if w.peek() == Some("offset") {
            return unsupported("jhash offset");
        }
        load(&mut self.m, f.load, reg(4));
        hash(&mut self.m, reg(4), 1, f.ty.len() as u32, modulus, seed);
        Ok(())
    }

    fn jhash(&mut self, w: &mut Words) -> Res<()> {
        self.hash_expr(w)?;
        if w.eat("vmap") {
            w.expect("{")?;
            let elems = parse_elements(w.braced()?)?;
            let ty = SetType {
                key: vec![Dtype::Integer],
                data: Some(SetData::Verdict),
            };
            let id = self.anonymous(&ty, &elems)?;
            lookup(&mut self.m, "__map%d", id, 1, Some(0), false);
            return Ok(());
        }
        let value = w
            .peek()
            .and_then(parse_u32)
            .ok_or_else(|| Unsupported("jhash without a compared value".into()))?;
        w.i += 1;
        cmp(&mut self.m, 1, NFT_CMP_EQ, &value.to_ne_bytes());
        Ok(())
    }

    fn anonymous(&mut self, ty: &SetType, elems: &[Element]) -> Res<u32> {
        let table = self.table;
        self.enc.anonymous_map(self.fam, table, ty, elems)
    }

    /// `update @SET { FIELD [timeout T] }` / `add @SET { ... }`
    fn dynset(&mut self, w: &mut Words) -> Res<()> {
        let op = if w.next()? == "update" {
            NFT_DYNSET_OP_UPDATE
        } else {
            NFT_DYNSET_OP_ADD
        };
        let set = w
            .next()?
            .strip_prefix('@')
            .ok_or_else(|| Unsupported("dynset without @set".into()))?;
        w.expect("{")?;
        let body = w.braced()?;
        let mut b = Words::new(body);
        let f = parse_field(&mut b, self.fam)?.ok_or_else(|| Unsupported("dynset key".into()))?;
        let timeout = if b.eat("timeout") {
            Some(super::script::parse_duration_ms(b.next()?)?)
        } else {
            None
        };
        b.end()?;
        let id = self.enc.set_id_of(self.fam, self.table, set);
        load(&mut self.m, f.load, 1);
        expr(&mut self.m, "dynset", |m| {
            m.u32(4, 1);
            m.u32(3, op);
            if let Some(t) = timeout {
                m.u64(6, t);
            }
            m.str(1, set);
            m.u32(2, id);
        });
        Ok(())
    }

    /// `dnat ip to ADDR:PORT`, `dnat ip6 to [ADDR]:PORT`, `dnat ip to jhash ... map { ... }`,
    /// `dnat ip to KEY . KEY ... map @MAP` (a named map of address . port).
    fn nat(&mut self, w: &mut Words) -> Res<()> {
        let ty = if w.next()? == "dnat" {
            NFT_NAT_DNAT
        } else {
            NFT_NAT_SNAT
        };
        let fam = Family::parse(w.next()?)?;
        if fam != self.fam {
            return unsupported("nat of another family");
        }
        w.expect("to")?;
        let addr_ty = fam.addr();
        let port_slot = (addr_ty.len() / 4) as u32;
        let mapped = |m: &mut Msg| {
            expr(m, "nat", |m| {
                m.u32(1, ty);
                m.u32(2, fam.nfproto() as u32);
                m.u32(3, 1);
                m.u32(5, reg(port_slot));
            })
        };
        if w.peek() == Some("jhash") && !self.concat_follows(w) {
            self.hash_expr(w)?;
            w.expect("map")?;
            if w.peek().is_some_and(|s| s.starts_with('@')) {
                return unsupported("jhash alone into a named map");
            }
            w.expect("{")?;
            let elems = parse_elements(w.braced()?)?;
            let st = SetType {
                key: vec![Dtype::Integer],
                data: Some(SetData::Fields(vec![addr_ty, Dtype::InetService])),
            };
            let id = self.anonymous(&st, &elems)?;
            lookup(&mut self.m, "__map%d", id, 1, Some(1), false);
            mapped(&mut self.m);
            return Ok(());
        }
        if self.key_item_follows(w) {
            let items = self.key_items(w)?;
            w.expect("map")?;
            let map = w
                .next()?
                .strip_prefix('@')
                .ok_or_else(|| Unsupported("nat map of a concatenation without @map".into()))?;
            if items.len() < 2 {
                return unsupported("nat map of a single key");
            }
            let st = self.enc.lookup_type(self.fam, self.table, map)?;
            let key: Vec<Dtype> = items.iter().map(KeyItem::dtype).collect();
            if st.key != key || st.data != Some(SetData::Fields(vec![addr_ty, Dtype::InetService]))
            {
                return unsupported(format!("map {map} does not map this key to address . port"));
            }
            self.concat_key(&items);
            let id = self.enc.set_id_of(self.fam, self.table, map);
            lookup(&mut self.m, map, id, 1, Some(1), false);
            mapped(&mut self.m);
            return Ok(());
        }
        let target = w.next()?;
        let (addr, port) = match fam {
            Family::Ip => target
                .rsplit_once(':')
                .ok_or_else(|| Unsupported(format!("nat target {target} without port")))?,
            Family::Ip6 => target
                .strip_prefix('[')
                .and_then(|t| t.split_once("]:"))
                .ok_or_else(|| Unsupported(format!("nat target {target}")))?,
        };
        let a = addr_ty.encode(addr)?;
        let p = Dtype::InetService.encode(port)?;
        immediate_value(&mut self.m, 1, &a);
        immediate_value(&mut self.m, 2, &p);
        expr(&mut self.m, "nat", |m| {
            m.u32(1, ty);
            m.u32(2, fam.nfproto() as u32);
            m.u32(3, 1);
            m.u32(5, 2);
            m.u32(7, NF_NAT_RANGE_PROTO_SPECIFIED);
        });
        Ok(())
    }

    /// Whether a `.` follows the `jhash ... seed S` at the cursor (a concatenation).
    fn concat_follows(&self, w: &Words) -> bool {
        let mut probe = Words { w: w.w, i: w.i };
        parse_key_item(&mut probe, self.fam).is_ok() && probe.peek() == Some(".")
    }

    fn key_item_follows(&self, w: &Words) -> bool {
        let mut probe = Words { w: w.w, i: w.i };
        parse_key_item(&mut probe, self.fam).is_ok()
    }

    /// `KEY . KEY ...` of a map lookup (header fields, `numgen`, `jhash`).
    fn key_items(&mut self, w: &mut Words) -> Res<Vec<KeyItem>> {
        let mut items = vec![parse_key_item(w, self.fam)?];
        while w.eat(".") {
            items.push(parse_key_item(w, self.fam)?);
        }
        Ok(items)
    }

    /// Loads a concatenated key from register 1 on, with nft's register allocation for a map
    /// lookup of a NAT statement: the NAT address takes the first 128-bit register and the
    /// concatenation the slots after it, so a hash's input lands in the next free slot.
    fn concat_key(&mut self, items: &[KeyItem]) {
        let concat_slots: u32 = items.iter().map(KeyItem::slots).sum();
        let free = 4 + concat_slots;
        let mut slot = 0;
        for it in items {
            match *it {
                KeyItem::Field(f) => load(&mut self.m, f.load, reg(slot)),
                KeyItem::Numgen { kind, modulus } => {
                    numgen_expr(&mut self.m, reg(slot), kind, modulus)
                }
                KeyItem::Jhash {
                    input,
                    modulus,
                    seed,
                } => {
                    load(&mut self.m, input.load, reg(free));
                    hash(
                        &mut self.m,
                        reg(free),
                        reg(slot),
                        input.ty.len() as u32,
                        modulus,
                        seed,
                    );
                }
            }
            slot += it.slots();
        }
    }

    fn masquerade(&mut self, w: &mut Words) -> Res<()> {
        w.i += 1;
        let flags = match w.peek() {
            Some("fully-random") => NF_NAT_RANGE_PROTO_RANDOM_FULLY,
            Some("random") => NF_NAT_RANGE_PROTO_RANDOM,
            Some("persistent") => NF_NAT_RANGE_PERSISTENT,
            _ => 0,
        };
        if flags != 0 {
            w.i += 1;
            if w.peek() == Some(",") {
                return unsupported("several masquerade flags");
            }
        }
        expr(&mut self.m, "masq", |m| {
            if flags != 0 {
                m.u32(1, flags);
            }
        });
        Ok(())
    }

    /// `meta mark set meta mark | X`, `... ^ X`, `... & X`, or `meta mark set X`.
    fn mark_set(&mut self, w: &mut Words) -> Res<()> {
        w.i += 3;
        let m = &mut self.m;
        if w.peek() == Some("meta") && w.peek_at(1) == Some("mark") {
            w.i += 2;
            let op = w.next()?;
            let x = parse_u32(w.next()?).ok_or_else(|| Unsupported("mark value".into()))?;
            let (mask, xor) = match op {
                "|" => (!x, x),
                "^" => (u32::MAX, x),
                "&" => (x, 0),
                _ => return unsupported(format!("mark operator {op}")),
            };
            load(m, Load::Meta(NFT_META_MARK), 1);
            bitwise(m, 1, &mask.to_ne_bytes(), &xor.to_ne_bytes(), true);
        } else {
            let x = parse_u32(w.next()?).ok_or_else(|| Unsupported("mark value".into()))?;
            immediate_value(m, 1, &x.to_ne_bytes());
        }
        expr(m, "meta", |m| {
            m.u32(2, NFT_META_MARK);
            m.u32(3, 1);
        });
        Ok(())
    }

    /// `ip saddr [!=] { A/N, B/M, C }`: a lookup in an anonymous interval set. Ranges that
    /// overlap, touch, or reach the top of the address space make nft merge or mark elements
    /// in ways not reproduced here: refused.
    fn address_set(&mut self, f: Field, invert: bool, w: &mut Words) -> Res<()> {
        let Load::Payload { base, offset, len } = f.load else {
            return unsupported("anonymous set of a non-address");
        };
        if !matches!(f.ty, Dtype::Ipv4Addr | Dtype::Ipv6Addr) {
            return unsupported("anonymous set of a non-address");
        }
        let body = w.braced()?;
        let bits = len * 8;
        let mut ranges: Vec<(u128, u128)> = Vec::new();
        for item in body.split(|x| x == ",") {
            let [lit] = item else {
                return unsupported("anonymous set item");
            };
            let (addr, plen) = parse_prefix(f.ty, lit)?;
            if plen == 0 {
                return unsupported("/0 in an anonymous set");
            }
            let mut a = 0u128;
            for b in &addr {
                a = (a << 8) | *b as u128;
            }
            let host = (1u128 << (bits - plen)) - 1;
            ranges.push((a & !host, (a & !host) | host));
        }
        ranges.sort();
        let top = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        for pair in ranges.windows(2) {
            if pair[1].0 <= pair[0].1.saturating_add(1) {
                return unsupported("overlapping or adjacent ranges in an anonymous set");
            }
        }
        if ranges.is_empty() || ranges.last().is_some_and(|r| r.1 == top) {
            return unsupported("anonymous set reaching the top of the address space");
        }
        let bytes = |v: u128| v.to_be_bytes()[16 - len as usize..].to_vec();
        let mut elements = Vec::new();
        let mut size = 2 * ranges.len() as u32;
        if ranges[0].0 != 0 {
            elements.push((bytes(0), true));
            size += 1;
        }
        for (a, b) in &ranges {
            elements.push((bytes(*a), false));
            elements.push((bytes(b + 1), true));
        }
        // nft's (protocol description, template field) of the matched address.
        let typeof_field = match (f.ty, offset) {
            (Dtype::Ipv4Addr, 12) => (12, 11),
            (Dtype::Ipv4Addr, 16) => (12, 12),
            (Dtype::Ipv6Addr, 8) => (13, 8),
            (Dtype::Ipv6Addr, 24) => (13, 9),
            _ => return unsupported("anonymous set of this field"),
        };
        let table = self.table;
        let id = self.enc.anonymous_interval_set(
            self.fam,
            table,
            f.ty,
            typeof_field,
            &elements,
            size,
        )?;
        payload(&mut self.m, base, offset, len, 1);
        lookup(&mut self.m, "__set%d", id, 1, None, invert);
        Ok(())
    }

    /// A selector (one field or a concatenation) and what is done with it: a set lookup, a
    /// verdict map, or a comparison with a value.
    fn selector(&mut self, w: &mut Words) -> Res<()> {
        let Some(first) = parse_field(w, self.fam)? else {
            return unsupported(format!("statement starting with {:?}", w.peek()));
        };
        let mut fields = vec![first];
        while w.eat(".") {
            fields.push(
                parse_field(w, self.fam)?
                    .ok_or_else(|| Unsupported("concatenation field".into()))?,
            );
        }
        let set_ref = |s: &str| s.strip_prefix('@').map(str::to_string);
        // Lookups (set membership, verdict maps).
        let (invert, vmap) = match (w.peek(), w.peek_at(1)) {
            (Some("vmap"), Some(s)) if s.starts_with('@') => (false, true),
            (Some("!="), Some(s)) if s.starts_with('@') => (true, false),
            (Some(s), _) if s.starts_with('@') => (false, false),
            _ => (false, false),
        };
        let is_lookup = vmap || invert || w.peek().is_some_and(|s| s.starts_with('@'));
        if is_lookup {
            if vmap || invert {
                w.i += 1;
            }
            let set = set_ref(w.next()?).expect("checked");
            let mut slot = 0;
            for f in &fields {
                load(&mut self.m, f.load, reg(slot));
                slot += f.ty.len().div_ceil(4) as u32;
            }
            let id = self.enc.set_id_of(self.fam, self.table, &set);
            lookup(&mut self.m, &set, id, 1, vmap.then_some(0), invert);
            return Ok(());
        }
        if fields.len() != 1 {
            return unsupported("concatenation without a set");
        }
        let f = fields[0];
        // `meta mark & X [!=] Y`
        if f.ty == Dtype::Mark && w.eat("&") {
            let mask = parse_u32(w.next()?).ok_or_else(|| Unsupported("mask".into()))?;
            let op = if w.eat("!=") {
                NFT_CMP_NEQ
            } else {
                w.eat("==");
                NFT_CMP_EQ
            };
            let v = parse_u32(w.next()?).ok_or_else(|| Unsupported("mark value".into()))?;
            load(&mut self.m, f.load, 1);
            bitwise(
                &mut self.m,
                1,
                &mask.to_ne_bytes(),
                &0u32.to_ne_bytes(),
                true,
            );
            cmp(&mut self.m, 1, op, &v.to_ne_bytes());
            return Ok(());
        }
        let op = if w.eat("!=") {
            NFT_CMP_NEQ
        } else {
            w.eat("==");
            NFT_CMP_EQ
        };
        let lit = w.next()?;
        if lit == "{" {
            return self.address_set(f, op == NFT_CMP_NEQ, w);
        }
        match f.ty {
            Dtype::Ipv4Addr | Dtype::Ipv6Addr => {
                let Load::Payload { base, offset, len } = f.load else {
                    unreachable!("addresses come from the payload")
                };
                let (addr, plen) = parse_prefix(f.ty, lit)?;
                let bits = len * 8;
                if plen == bits {
                    payload(&mut self.m, base, offset, len, 1);
                    cmp(&mut self.m, 1, op, &addr);
                } else if plen > 0 && plen % 8 == 0 {
                    let n = plen / 8;
                    payload(&mut self.m, base, offset, n, 1);
                    cmp(&mut self.m, 1, op, &addr[..n as usize]);
                } else {
                    let mut mask = vec![0u8; len as usize];
                    for (i, b) in mask.iter_mut().enumerate() {
                        let from = i as u32 * 8;
                        *b = if plen >= from + 8 {
                            0xff
                        } else if plen > from {
                            0xffu8 << (8 - (plen - from))
                        } else {
                            0
                        };
                    }
                    let masked: Vec<u8> = addr.iter().zip(&mask).map(|(a, m)| a & m).collect();
                    payload(&mut self.m, base, offset, len, 1);
                    bitwise(&mut self.m, 1, &mask, &vec![0u8; len as usize], false);
                    cmp(&mut self.m, 1, op, &masked);
                }
            }
            Dtype::InetProto | Dtype::Mark => {
                let v = f.ty.encode(lit)?;
                load(&mut self.m, f.load, 1);
                cmp(&mut self.m, 1, op, &v);
            }
            // `th dport 80` makes nft add a protocol dependency we do not reproduce.
            _ => return unsupported(format!("comparison of {:?}", f.ty)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_numbers_as_nft_prints_them() {
        // 128-bit registers where a slot starts one, NFT_REG32_xx otherwise.
        let got: Vec<u32> = (0..12).map(reg).collect();
        assert_eq!(got, [1, 9, 10, 11, 2, 13, 14, 15, 3, 17, 18, 19]);
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            parse_prefix(Dtype::Ipv4Addr, "10.42.0.0/16").unwrap(),
            (vec![10, 42, 0, 0], 16)
        );
        assert_eq!(parse_prefix(Dtype::Ipv4Addr, "10.1.2.3").unwrap().1, 32);
        assert!(parse_prefix(Dtype::Ipv4Addr, "10.0.0.0/33").is_err());
        assert!(parse_prefix(Dtype::Ipv4Addr, "fd00::/8").is_err());
    }
}
