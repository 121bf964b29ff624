//! `nft -f` script text → nf_tables netlink messages, for the commands our renderer and differ
//! write (tables, chains, sets and maps, element batches, rules). Attributes are written in the
//! order libnftnl writes them, so a batch is byte-for-byte what `nft -f` sends (tested against
//! `nft --debug=mnl`). Anything else is [`Unsupported`] and goes through the `nft` CLI.

use super::msg::*;
use super::rule;
use super::types::*;
use super::udata::{parse_typeof, set_userdata, TypeofExpr};
use std::collections::{HashMap, HashSet};

/// Set key/data types by (family, table, set), to encode elements of sets declared earlier.
pub trait SetTypes {
    fn set_type(&mut self, family: Family, table: &str, set: &str) -> Option<SetType>;
}

impl SetTypes for HashMap<(Family, String, String), SetType> {
    fn set_type(&mut self, family: Family, table: &str, set: &str) -> Option<SetType> {
        self.get(&(family, table.to_string(), set.to_string()))
            .cloned()
    }
}

/// Key of the set-type cache.
pub type SetKey = (Family, String, String);

/// A script encoded as the messages of one transaction.
#[derive(Default)]
pub struct Batch {
    /// nf_tables messages, without BATCH_BEGIN/END; sequence numbers are set when sent.
    pub msgs: Vec<Vec<u8>>,
    /// Per message: the script line it came from (0-based), for error reports.
    pub origin: Vec<usize>,
    /// Sets declared (Some) or deleted (None) by the batch, for the caller's cache.
    pub declared: HashMap<SetKey, Option<SetType>>,
    /// Tables deleted by the batch (their cached sets go).
    pub dropped_tables: HashSet<(Family, String)>,
}

/// Splits a script line into words; `{ } ; ,` are words of their own, a quoted string is one
/// word with its quotes.
pub fn tokenize(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                cur.push(c);
                for d in chars.by_ref() {
                    cur.push(d);
                    if d == '"' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '{' | '}' | ';' | ',' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A cursor over the words of one command.
pub struct Words<'a> {
    pub w: &'a [String],
    pub i: usize,
}

impl<'a> Words<'a> {
    pub fn new(w: &'a [String]) -> Self {
        Words { w, i: 0 }
    }
    pub fn peek(&self) -> Option<&'a str> {
        self.w.get(self.i).map(|s| s.as_str())
    }
    pub fn peek_at(&self, n: usize) -> Option<&'a str> {
        self.w.get(self.i + n).map(|s| s.as_str())
    }
    pub fn next(&mut self) -> Res<&'a str> {
        let w = self
            .peek()
            .ok_or_else(|| Unsupported("unexpected end".into()))?;
        self.i += 1;
        Ok(w)
    }
    pub fn expect(&mut self, want: &str) -> Res<()> {
        let w = self.next()?;
        if w == want {
            Ok(())
        } else {
            unsupported(format!("expected {want:?}, found {w:?}"))
        }
    }
    pub fn eat(&mut self, want: &str) -> bool {
        if self.peek() == Some(want) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    pub fn done(&self) -> bool {
        self.i >= self.w.len()
    }
    pub fn end(&self) -> Res<()> {
        match self.peek() {
            None => Ok(()),
            Some(w) => unsupported(format!("unexpected {w:?}")),
        }
    }
    /// The words up to the `}` closing the `{` just consumed.
    pub fn braced(&mut self) -> Res<&'a [String]> {
        let start = self.i;
        let mut depth = 1;
        while let Some(w) = self.peek() {
            self.i += 1;
            match w {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(&self.w[start..self.i - 1]);
                    }
                }
                _ => {}
            }
        }
        unsupported("unclosed {")
    }
}

/// The string inside quotes.
pub fn unquote(w: &str) -> Res<&str> {
    w.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| Unsupported(format!("expected a quoted string, found {w:?}")))
}

/// Encodes a whole script. `known` answers for sets the script does not declare itself.
pub fn encode(script: &str, known: &mut dyn SetTypes) -> Res<Batch> {
    let mut enc = Encoder {
        known,
        b: Batch::default(),
        set_ids: HashMap::new(),
        next_set_id: 0,
        line: 0,
    };
    // nft 1.0.6 collapses consecutive `add element` commands for one set into the first
    // (`nft_cmd_collapse`), and the batch then carries the first command's elements followed
    // by the others' in reverse order, each still in its own messages: do the same, so a set
    // written in several lines (`write_elements` batches of 512) is framed as nft frames it.
    let mut run: Vec<(usize, &str, Vec<String>)> = Vec::new();
    for (n, line) in script.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let words = tokenize(t);
        if !run.is_empty() && !collapses(&run[0].2, &words) {
            enc.run(std::mem::take(&mut run))?;
        }
        run.push((n, t, words));
    }
    enc.run(run)?;
    Ok(enc.b)
}

/// `next` adds elements to the set `first` adds elements to (nft merges the two commands):
/// `add element FAMILY TABLE SET { ... }`, same family, table and set.
fn collapses(first: &[String], next: &[String]) -> bool {
    let is_add_elements =
        |w: &[String]| w.len() > 5 && w[0] == "add" && w[1] == "element" && w[5] == "{";
    is_add_elements(first) && is_add_elements(next) && first[2..5] == next[2..5]
}

impl Encoder<'_> {
    /// Encodes a run of commands that nft collapses into one (or a single command).
    fn run(&mut self, run: Vec<(usize, &str, Vec<String>)>) -> Res<()> {
        let mut it = run.into_iter();
        let Some(first) = it.next() else {
            return Ok(());
        };
        for (n, t, words) in std::iter::once(first).chain(it.rev()) {
            self.line = n;
            self.command(&words)
                .map_err(|e| Unsupported(format!("{e} in `{t}`")))?;
        }
        Ok(())
    }
}

pub struct Encoder<'k> {
    known: &'k mut dyn SetTypes,
    pub b: Batch,
    /// Ids of the sets added in this batch (what nft numbers them: 1, 2, ... in order).
    set_ids: HashMap<SetKey, u32>,
    next_set_id: u32,
    line: usize,
}

/// `NFTA_SET_*`
mod set_attr {
    pub const TABLE: u16 = 1;
    pub const NAME: u16 = 2;
    pub const FLAGS: u16 = 3;
    pub const KEY_TYPE: u16 = 4;
    pub const KEY_LEN: u16 = 5;
    pub const DATA_TYPE: u16 = 6;
    pub const DATA_LEN: u16 = 7;
    pub const DESC: u16 = 9;
    pub const ID: u16 = 10;
    pub const TIMEOUT: u16 = 11;
    pub const USERDATA: u16 = 13;
}

pub const NFT_SET_ANONYMOUS: u32 = 0x1;
pub const NFT_SET_CONSTANT: u32 = 0x2;
pub const NFT_SET_INTERVAL: u32 = 0x4;
pub const NFT_SET_MAP: u32 = 0x8;
pub const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;
pub const NFT_SET_TIMEOUT: u32 = 0x10;
pub const NFT_SET_EVAL: u32 = 0x20;

/// A set or map declaration (`type ... ; flags ...; size N; timeout Ns; comment "..."`).
#[derive(Clone, Debug, Default)]
pub struct SetDecl {
    pub ty: Option<SetType>,
    /// The expressions of a `typeof` declaration (key, data), which nft records in userdata.
    pub typeof_exprs: Option<(Vec<TypeofExpr>, Option<Vec<TypeofExpr>>)>,
    pub flags: u32,
    pub size: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub comment: Option<String>,
}

/// `60s`, `1h`, `500ms`, `1m30s` → milliseconds.
pub fn parse_duration_ms(s: &str) -> Res<u64> {
    let mut total = 0u64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_alphabetic()) {
            unit.push(*d);
            chars.next();
        }
        let n: u64 = num
            .parse()
            .map_err(|_| Unsupported(format!("duration {s}")))?;
        num.clear();
        total += n * match unit.as_str() {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return unsupported(format!("duration {s}")),
        };
    }
    if !num.is_empty() {
        return unsupported(format!("duration {s} without unit"));
    }
    Ok(total)
}

fn parse_fields(w: &mut Words) -> Res<Vec<Dtype>> {
    let mut out = vec![Dtype::parse(w.next()?)?];
    while w.eat(".") {
        out.push(Dtype::parse(w.next()?)?);
    }
    Ok(out)
}

pub fn parse_set_decl(words: &[String], is_map: bool) -> Res<SetDecl> {
    let mut w = Words::new(words);
    let mut d = SetDecl::default();
    while let Some(kw) = w.peek() {
        w.i += 1;
        match kw {
            ";" => continue,
            "type" => {
                let key = parse_fields(&mut w)?;
                let data = if w.eat(":") {
                    if w.eat("verdict") {
                        Some(SetData::Verdict)
                    } else {
                        Some(SetData::Fields(parse_fields(&mut w)?))
                    }
                } else {
                    None
                };
                if data.is_some() != is_map {
                    return unsupported("set/map kind and type disagree");
                }
                d.ty = Some(SetType { key, data });
            }
            "typeof" => {
                let key = parse_typeof(&mut w)?;
                let data = if w.eat(":") {
                    Some(parse_typeof(&mut w)?)
                } else {
                    None
                };
                if data.is_some() != is_map {
                    return unsupported("set/map kind and typeof disagree");
                }
                let fields = |e: &[TypeofExpr]| e.iter().map(TypeofExpr::dtype).collect();
                d.ty = Some(SetType {
                    key: fields(&key),
                    data: data.as_deref().map(|e| SetData::Fields(fields(e))),
                });
                d.typeof_exprs = Some((key, data));
            }
            "flags" => loop {
                d.flags |= match w.next()? {
                    "dynamic" => NFT_SET_EVAL,
                    "timeout" => NFT_SET_TIMEOUT,
                    f => return unsupported(format!("set flag {f}")),
                };
                if !w.eat(",") {
                    break;
                }
            },
            "size" => {
                d.size = Some(
                    w.next()?
                        .parse()
                        .map_err(|_| Unsupported("set size".into()))?,
                )
            }
            "timeout" => d.timeout_ms = Some(parse_duration_ms(w.next()?)?),
            "comment" => d.comment = Some(unquote(w.next()?)?.to_string()),
            other => return unsupported(format!("set declaration keyword {other}")),
        }
        if !w.done() {
            w.expect(";")?;
        }
    }
    if d.ty.is_none() {
        return unsupported("set without type");
    }
    Ok(d)
}

fn data_len_and_type(ty: &SetType) -> Option<(u32, u32)> {
    match &ty.data {
        None => None,
        Some(SetData::Verdict) => Some((NFT_DATA_VERDICT, 0)),
        Some(SetData::Fields(f)) => Some((concat_id(f), fields_len(f) as u32)),
    }
}

impl<'k> Encoder<'k> {
    pub fn push(&mut self, m: Msg) {
        self.b.msgs.push(m.finish());
        self.b.origin.push(self.line);
    }

    pub fn new_set_id(&mut self) -> u32 {
        self.next_set_id += 1;
        self.next_set_id
    }

    /// The id of `set` if this batch added it, else 0 (what nft writes in lookups).
    pub fn set_id_of(&self, fam: Family, table: &str, set: &str) -> u32 {
        self.set_ids
            .get(&(fam, table.to_string(), set.to_string()))
            .copied()
            .unwrap_or(0)
    }

    pub fn lookup_type(&mut self, fam: Family, table: &str, set: &str) -> Res<SetType> {
        let key = (fam, table.to_string(), set.to_string());
        if let Some(t) = self.b.declared.get(&key) {
            return t
                .clone()
                .ok_or_else(|| Unsupported(format!("set {set} deleted earlier in the batch")));
        }
        if self.b.dropped_tables.contains(&(fam, table.to_string())) {
            return unsupported(format!("set {set} of a deleted table"));
        }
        self.known
            .set_type(fam, table, set)
            .ok_or_else(|| Unsupported(format!("type of set {set} unknown")))
    }

    fn command(&mut self, words: &[String]) -> Res<()> {
        let mut w = Words::new(words);
        let verb = w.next()?;
        let obj = w.next()?;
        let fam = Family::parse(w.next()?)?;
        let table = w.next()?;
        match (verb, obj) {
            ("add", "table") => self.add_table(fam, table, &mut w),
            ("delete", "table") => {
                w.end()?;
                let mut m = Msg::nft(NFT_MSG_DELTABLE, 0, 0, fam.nfproto());
                m.str(1, table);
                self.push(m);
                self.b
                    .declared
                    .retain(|(f, t, _), _| !(*f == fam && t == table));
                self.b.dropped_tables.insert((fam, table.to_string()));
                Ok(())
            }
            ("add", "chain") => self.add_chain(fam, table, &mut w),
            ("delete" | "flush", "chain") => {
                let name = w.next()?;
                w.end()?;
                let (ty, attr) = if verb == "delete" {
                    (NFT_MSG_DELCHAIN, 3)
                } else {
                    (NFT_MSG_DELRULE, 2)
                };
                let mut m = Msg::nft(ty, 0, 0, fam.nfproto());
                m.str(1, table);
                m.str(attr, name);
                self.push(m);
                Ok(())
            }
            ("add", "set" | "map") => self.add_set(fam, table, obj == "map", &mut w),
            ("delete", "set" | "map") => {
                let name = w.next()?;
                w.end()?;
                let mut m = Msg::nft(NFT_MSG_DELSET, 0, 0, fam.nfproto());
                m.str(1, table);
                m.str(2, name);
                self.push(m);
                self.b
                    .declared
                    .insert((fam, table.to_string(), name.to_string()), None);
                Ok(())
            }
            ("flush", "set" | "map") => {
                let name = w.next()?;
                w.end()?;
                let mut m = Msg::nft(NFT_MSG_DELSETELEM, 0, 0, fam.nfproto());
                m.str(2, name);
                m.str(1, table);
                self.push(m);
                Ok(())
            }
            ("add" | "delete", "element") => {
                let set = w.next()?;
                w.expect("{")?;
                let body = w.braced()?;
                w.end()?;
                let ty = self.lookup_type(fam, table, set)?;
                let elems = parse_elements(body)?;
                let id = self
                    .set_ids
                    .get(&(fam, table.to_string(), set.to_string()))
                    .copied();
                self.elements(fam, table, set, id, &ty, &elems, verb == "add")
            }
            ("add", "rule") => {
                let chain = w.next()?;
                rule::encode_rule(self, fam, table, chain, &words[w.i..])
            }
            _ => unsupported(format!("command {verb} {obj}")),
        }
    }

    fn add_table(&mut self, fam: Family, table: &str, w: &mut Words) -> Res<()> {
        let mut comment = None;
        if w.eat("{") {
            let body = w.braced()?;
            let mut b = Words::new(body);
            while let Some(kw) = b.peek() {
                b.i += 1;
                match kw {
                    ";" => {}
                    "comment" => comment = Some(unquote(b.next()?)?.to_string()),
                    other => return unsupported(format!("table option {other}")),
                }
            }
        }
        w.end()?;
        let mut m = Msg::nft(NFT_MSG_NEWTABLE, NLM_F_CREATE, 0, fam.nfproto());
        m.str(1, table);
        m.u32(2, 0);
        if let Some(c) = comment {
            let mut v = vec![0u8, (c.len() + 1) as u8];
            v.extend_from_slice(c.as_bytes());
            v.push(0);
            m.put(6, &v);
        }
        self.push(m);
        Ok(())
    }

    fn add_chain(&mut self, fam: Family, table: &str, w: &mut Words) -> Res<()> {
        let name = w.next()?;
        let mut hook = None;
        if w.eat("{") {
            let body = w.braced()?;
            let mut b = Words::new(body);
            let mut ty = None;
            let mut hooknum = None;
            let mut prio = None;
            let mut policy = None;
            while let Some(kw) = b.peek() {
                b.i += 1;
                match kw {
                    ";" => {}
                    "type" => {
                        let t = b.next()?;
                        if !matches!(t, "filter" | "nat" | "route") {
                            return unsupported(format!("chain type {t}"));
                        }
                        ty = Some(t);
                        b.expect("hook")?;
                        hooknum = Some(match b.next()? {
                            "prerouting" => 0u32,
                            "input" => 1,
                            "forward" => 2,
                            "output" => 3,
                            "postrouting" => 4,
                            h => return unsupported(format!("hook {h}")),
                        });
                        b.expect("priority")?;
                        let p = b.next()?;
                        prio = Some(match p {
                            "raw" => -300,
                            "mangle" => -150,
                            "dstnat" => -100,
                            "filter" => 0,
                            "security" => 50,
                            "srcnat" => 100,
                            _ => p
                                .parse::<i32>()
                                .map_err(|_| Unsupported(format!("priority {p}")))?,
                        });
                    }
                    "policy" => {
                        policy = Some(match b.next()? {
                            "accept" => NF_ACCEPT as u32,
                            "drop" => NF_DROP as u32,
                            p => return unsupported(format!("policy {p}")),
                        })
                    }
                    other => return unsupported(format!("chain option {other}")),
                }
            }
            let (Some(ty), Some(num), Some(prio)) = (ty, hooknum, prio) else {
                return unsupported("chain declaration without type/hook/priority");
            };
            hook = Some((ty, num, prio, policy));
        }
        w.end()?;
        let mut m = Msg::nft(NFT_MSG_NEWCHAIN, NLM_F_CREATE, 0, fam.nfproto());
        m.str(1, table);
        m.str(3, name);
        if let Some((ty, num, prio, policy)) = hook {
            m.str(7, ty);
            if let Some(p) = policy {
                m.u32(5, p);
            }
            m.begin(4);
            m.u32(1, num);
            m.u32(2, prio as u32);
            m.end();
        }
        self.push(m);
        Ok(())
    }

    fn add_set(&mut self, fam: Family, table: &str, is_map: bool, w: &mut Words) -> Res<()> {
        let name = w.next()?;
        w.expect("{")?;
        let body = w.braced()?;
        w.end()?;
        let decl = parse_set_decl(body, is_map)?;
        let ty = decl.ty.clone().expect("checked");
        let id = self.new_set_id();
        let mut flags = decl.flags;
        if is_map {
            flags |= NFT_SET_MAP;
        }
        let mut m = Msg::nft(NFT_MSG_NEWSET, NLM_F_CREATE, 0, fam.nfproto());
        m.str(set_attr::TABLE, table);
        m.str(set_attr::NAME, name);
        m.u32(set_attr::FLAGS, flags);
        m.u32(set_attr::KEY_TYPE, concat_id(&ty.key));
        m.u32(set_attr::KEY_LEN, fields_len(&ty.key) as u32);
        if let Some((dt, dl)) = data_len_and_type(&ty) {
            m.u32(set_attr::DATA_TYPE, dt);
            m.u32(set_attr::DATA_LEN, dl);
        }
        m.u32(set_attr::ID, id);
        if let Some(size) = decl.size {
            m.begin(set_attr::DESC);
            m.u32(1, size);
            m.end();
        }
        if let Some(t) = decl.timeout_ms {
            m.u64(set_attr::TIMEOUT, t);
        }
        m.put(
            set_attr::USERDATA,
            &set_userdata(
                &ty,
                decl.typeof_exprs.as_ref(),
                false,
                decl.comment.as_deref(),
            )?,
        );
        self.push(m);
        let key = (fam, table.to_string(), name.to_string());
        self.set_ids.insert(key.clone(), id);
        self.b.declared.insert(key, Some(ty));
        Ok(())
    }

    /// An anonymous constant map (`... map { k : v, ... }` in a rule): NEWSET + its elements.
    /// Returns the set's id.
    pub fn anonymous_map(
        &mut self,
        fam: Family,
        table: &str,
        ty: &SetType,
        elems: &[Element],
    ) -> Res<u32> {
        let id = self.new_set_id();
        let name = "__map%d";
        let mut m = Msg::nft(NFT_MSG_NEWSET, NLM_F_CREATE, 0, fam.nfproto());
        m.str(set_attr::TABLE, table);
        m.str(set_attr::NAME, name);
        m.u32(
            set_attr::FLAGS,
            NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP,
        );
        m.u32(set_attr::KEY_TYPE, concat_id(&ty.key));
        m.u32(set_attr::KEY_LEN, fields_len(&ty.key) as u32);
        let (dt, dl) = data_len_and_type(ty).expect("a map");
        m.u32(set_attr::DATA_TYPE, dt);
        m.u32(set_attr::DATA_LEN, dl);
        m.u32(set_attr::ID, id);
        m.begin(set_attr::DESC);
        m.u32(1, elems.len() as u32);
        m.end();
        m.put(set_attr::USERDATA, &set_userdata(ty, None, true, None)?);
        self.push(m);
        self.elements(fam, table, name, Some(id), ty, elems, true)?;
        Ok(id)
    }

    /// An anonymous constant interval set of addresses (`ip saddr != { A/N, B/M }`): NEWSET and
    /// its elements as nft's segment tree writes them (a start element per range, an
    /// end-flagged element one past its end, and one at 0 when the first range does not start
    /// there). `typeof` is (protocol description, field) of the matched header field, which nft
    /// records in the set's userdata. Returns the set's id.
    pub fn anonymous_interval_set(
        &mut self,
        fam: Family,
        table: &str,
        key: Dtype,
        typeof_field: (u32, u32),
        elements: &[(Vec<u8>, bool)],
        size: u32,
    ) -> Res<u32> {
        let id = self.new_set_id();
        let name = "__set%d";
        let mut m = Msg::nft(NFT_MSG_NEWSET, NLM_F_CREATE, 0, fam.nfproto());
        m.str(set_attr::TABLE, table);
        m.str(set_attr::NAME, name);
        m.u32(
            set_attr::FLAGS,
            NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL,
        );
        m.u32(set_attr::KEY_TYPE, key.id());
        m.u32(set_attr::KEY_LEN, key.len() as u32);
        m.u32(set_attr::ID, id);
        m.begin(set_attr::DESC);
        m.u32(1, size);
        m.end();
        let mut u = Vec::new();
        u.extend_from_slice(&[0, 4]);
        u.extend_from_slice(&key.byteorder().to_ne_bytes());
        u.extend_from_slice(&[2, 4]); // MERGE_ELEMENTS
        u.extend_from_slice(&1u32.to_ne_bytes());
        // KEY_TYPEOF { TYPEOF_EXPR = EXPR_PAYLOAD (7), TYPEOF_DATA { desc, field } }
        u.extend_from_slice(&[3, 20, 0, 4]);
        u.extend_from_slice(&7u32.to_ne_bytes());
        u.extend_from_slice(&[1, 12, 0, 4]);
        u.extend_from_slice(&typeof_field.0.to_ne_bytes());
        u.extend_from_slice(&[1, 4]);
        u.extend_from_slice(&typeof_field.1.to_ne_bytes());
        m.put(set_attr::USERDATA, &u);
        self.push(m);

        let mut m = Msg::nft(NFT_MSG_NEWSETELEM, NLM_F_CREATE, 0, fam.nfproto());
        m.str(1, table);
        m.str(2, name);
        m.u32(4, id);
        m.begin(3);
        for (i, (k, end)) in elements.iter().enumerate() {
            m.begin(i as u16 + 1);
            if *end {
                m.u32(3, NFT_SET_ELEM_INTERVAL_END);
            }
            m.data_value(1, k);
            m.end();
        }
        m.end();
        if m.len() > u16::MAX as usize {
            return unsupported("anonymous set too large for one message");
        }
        self.push(m);
        Ok(id)
    }

    /// NEWSETELEM/DELSETELEM messages, split as libnftnl splits them (a new message when the
    /// next element would start past 8 KiB).
    #[allow(clippy::too_many_arguments)]
    fn elements(
        &mut self,
        fam: Family,
        table: &str,
        set: &str,
        id: Option<u32>,
        ty: &SetType,
        elems: &[Element],
        add: bool,
    ) -> Res<()> {
        let (cmd, flags) = if add {
            (NFT_MSG_NEWSETELEM, NLM_F_CREATE)
        } else {
            (NFT_MSG_DELSETELEM, 0)
        };
        let start = || {
            let mut m = Msg::nft(cmd, flags, 0, fam.nfproto());
            m.str(1, table);
            m.str(2, set);
            if let Some(id) = id {
                m.u32(4, id);
            }
            m.begin(3);
            m
        };
        let mut m = start();
        let mut count = 0;
        // libnftnl numbers element attributes 1, 2, ... across the messages of one command,
        // counting the one that overflowed a message twice.
        let mut index: u16 = 0;
        let mut i = 0;
        while i < elems.len() {
            let e = &elems[i];
            let before = m.len();
            let lits: Vec<&str> = e.key.iter().map(|s| s.as_str()).collect();
            let key = encode_fields(&ty.key, &lits)?;
            index = index.wrapping_add(1);
            m.begin(index);
            m.data_value(1, &key);
            if add {
                match (&ty.data, &e.value) {
                    (None, None) => {}
                    (Some(SetData::Verdict), Some(v)) => {
                        let (code, chain) = parse_verdict(v)?;
                        m.data_verdict(2, code, chain);
                    }
                    (Some(SetData::Fields(f)), Some(v)) => {
                        let lits: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
                        let data = encode_fields(f, &lits)?;
                        m.data_value(2, &data);
                    }
                    _ => return unsupported("element value does not match the set's type"),
                }
            }
            m.end();
            // The element list is one attribute: its length must fit in 16 bits. libnftnl
            // moves the element that overflows it to a new message.
            if m.nest_len() > u16::MAX as usize && count > 0 {
                m.truncate(before);
                m.end();
                self.push(m);
                m = start();
                count = 0;
                continue;
            }
            count += 1;
            i += 1;
        }
        m.end();
        self.push(m);
        Ok(())
    }
}

/// One element: key fields (`a . b . c`) and the value's words, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub key: Vec<String>,
    pub value: Option<Vec<String>>,
}

/// Parses `k1 . k2 : v, k3 . k4 : v` (the words between braces).
pub fn parse_elements(words: &[String]) -> Res<Vec<Element>> {
    let mut out = Vec::new();
    for item in words.split(|w| w == ",") {
        if item.is_empty() {
            continue;
        }
        let (k, v) = match item.iter().position(|w| w == ":") {
            Some(p) => (&item[..p], Some(item[p + 1..].to_vec())),
            None => (item, None),
        };
        let mut key = Vec::new();
        for (i, w) in k.iter().enumerate() {
            if i % 2 == 1 {
                if w != "." {
                    return unsupported(format!("element key word {w:?}"));
                }
            } else {
                if w == "." || w.contains(['/', '-', '*']) || w.starts_with('"') {
                    return unsupported(format!("element key {w:?}"));
                }
                key.push(w.clone());
            }
        }
        if key.is_empty() {
            return unsupported("empty element");
        }
        let v = match v {
            Some(v) if v.is_empty() => return unsupported("empty element value"),
            Some(v) => Some(v.into_iter().filter(|w| w != ".").collect::<Vec<String>>()),
            None => None,
        };
        out.push(Element { key, value: v });
    }
    Ok(out)
}

/// `drop`, `accept`, `return`, `continue`, `jump X`, `goto X`.
pub fn parse_verdict(words: &[String]) -> Res<(i32, Option<&str>)> {
    let w: Vec<&str> = words.iter().map(|s| s.as_str()).collect();
    Ok(match w.as_slice() {
        ["drop"] => (NF_DROP, None),
        ["accept"] => (NF_ACCEPT, None),
        ["return"] => (NFT_RETURN, None),
        ["continue"] => (NFT_CONTINUE, None),
        ["jump", c] => (NFT_JUMP, Some(*c)),
        ["goto", c] => (NFT_GOTO, Some(*c)),
        _ => return unsupported(format!("verdict {w:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_braces_semicolons_and_commas_but_not_quotes() {
        assert_eq!(
            tokenize(
                r#"add set ip t s { type ipv4_addr; flags dynamic,timeout; comment "a, b; {c}"; }"#
            ),
            [
                "add",
                "set",
                "ip",
                "t",
                "s",
                "{",
                "type",
                "ipv4_addr",
                ";",
                "flags",
                "dynamic",
                ",",
                "timeout",
                ";",
                "comment",
                r#""a, b; {c}""#,
                ";",
                "}"
            ]
        );
        assert_eq!(
            tokenize("dnat ip6 to [fd00::1]:80"),
            ["dnat", "ip6", "to", "[fd00::1]:80"]
        );
    }

    #[test]
    fn durations_in_milliseconds() {
        assert_eq!(parse_duration_ms("60s").unwrap(), 60_000);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        assert!(parse_duration_ms("10").is_err());
        assert!(parse_duration_ms("3w").is_err());
    }

    #[test]
    fn set_declarations() {
        let d = parse_set_decl(
            &tokenize("type ipv4_addr; size 65535; flags dynamic,timeout; timeout 600s;"),
            false,
        )
        .unwrap();
        assert_eq!(d.flags, NFT_SET_EVAL | NFT_SET_TIMEOUT);
        assert_eq!((d.size, d.timeout_ms), (Some(65535), Some(600_000)));
        let d = parse_set_decl(
            &tokenize("type ipv4_addr . inet_proto . inet_service : verdict; comment \"x\""),
            true,
        )
        .unwrap();
        let ty = d.ty.unwrap();
        assert_eq!(concat_id(&ty.key), 0x730d);
        assert_eq!(fields_len(&ty.key), 12);
        assert_eq!(ty.data, Some(SetData::Verdict));
        assert_eq!(d.comment.as_deref(), Some("x"));
        // A set declared with a map's type (or the reverse) and unknown keywords are refused.
        assert!(parse_set_decl(&tokenize("type ipv4_addr : verdict;"), false).is_err());
        let d = parse_set_decl(
            &tokenize(
                "typeof meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport;",
            ),
            true,
        )
        .unwrap();
        let ty = d.ty.unwrap();
        assert_eq!(
            ty.key,
            [Dtype::InetProto, Dtype::InetService, Dtype::Integer],
            "the key types nft derives (and the kernel reports back)"
        );
        assert_eq!(
            ty.data,
            Some(SetData::Fields(vec![Dtype::Ipv6Addr, Dtype::InetService]))
        );
        assert!(d.typeof_exprs.is_some());
        assert!(parse_set_decl(&tokenize("typeof tcp dport;"), false).is_err());
        assert!(parse_set_decl(&tokenize("typeof ip daddr . th dport : verdict;"), true).is_err());
        assert!(parse_set_decl(&tokenize("type ipv4_addr; flags interval;"), false).is_err());
    }

    #[test]
    fn elements_with_keys_and_values() {
        let e = parse_elements(&tokenize(
            "10.0.0.1 . tcp . 80 : goto svc, 10.0.0.2 . udp . 53 : drop",
        ))
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].key, ["10.0.0.1", "tcp", "80"]);
        assert_eq!(
            e[0].value.as_deref(),
            Some(&["goto".to_string(), "svc".to_string()][..])
        );
        let e = parse_elements(&tokenize("0 : 10.42.0.11 . 8080")).unwrap();
        assert_eq!(
            e[0].value.as_deref(),
            Some(&["10.42.0.11".to_string(), "8080".to_string()][..])
        );
        // Ranges and prefixes are interval syntax, which named sets here never use.
        assert!(parse_elements(&tokenize("10.0.0.0/8")).is_err());
        assert!(parse_elements(&tokenize("10.0.0.1-10.0.0.9")).is_err());
    }

    #[test]
    fn concatenated_keys_pad_each_field_to_four_bytes() {
        let ty = [Dtype::Ipv4Addr, Dtype::InetProto, Dtype::InetService];
        assert_eq!(
            encode_fields(&ty, &["10.43.0.20", "tcp", "80"]).unwrap(),
            [10, 43, 0, 20, 6, 0, 0, 0, 0, 80, 0, 0]
        );
        // A single field keeps its own length.
        assert_eq!(
            encode_fields(&[Dtype::InetService], &["80"]).unwrap(),
            [0, 80]
        );
        assert_eq!(
            split_concat_id(concat_id(&ty)).unwrap(),
            ty.to_vec(),
            "type ids round-trip"
        );
    }

    #[test]
    fn unknown_commands_are_unsupported_not_misencoded() {
        let mut none: HashMap<SetKey, SetType> = HashMap::new();
        for script in [
            "insert rule ip t c drop",
            "add rule ip t c tcp dport 80 accept",
            "add rule inet t c drop",
            "add chain ip t c { type filter hook ingress priority 0; }",
            "add element ip t s { 10.0.0.1 }",
            "replace rule ip t c handle 4 drop",
        ] {
            assert!(encode(script, &mut none).is_err(), "{script}");
        }
    }
}
