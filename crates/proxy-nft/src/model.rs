//! The nftables state we want (or have programmed) as plain data: per family one table of
//! named sets/maps with their elements and named chains with their rules, all as nft syntax.
//! Text keeps the renderer readable and makes the diff a comparison of strings.

use proxy_core::IpFamily;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The one table name we own, in both families.
pub const TABLE: &str = "switchboard";

/// `ip` or `ip6`: the nftables family (and payload protocol) of an [`IpFamily`].
pub fn nft_family(f: IpFamily) -> &'static str {
    match f {
        IpFamily::V4 => "ip",
        IpFamily::V6 => "ip6",
    }
}

/// A named set or map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    /// `set` or `map`.
    pub kind: &'static str,
    /// The declaration between the braces, e.g. `type ipv4_addr; comment "..."`.
    pub decl: String,
    /// Element key → value (`""` for sets). Dynamic sets (filled by the packet path) have none.
    pub elements: BTreeMap<String, String>,
}

impl Set {
    pub fn new(kind: &'static str, decl: impl Into<String>) -> Set {
        Set {
            kind,
            decl: decl.into(),
            elements: BTreeMap::new(),
        }
    }

    /// The packet path adds elements (affinity sets): never flush or diff their elements.
    pub fn is_dynamic(&self) -> bool {
        self.decl.contains("flags dynamic")
    }
}

/// A chain: base chains carry a hook declaration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// e.g. `type nat hook output priority -100; policy accept;`
    pub hook: Option<String>,
    pub rules: Vec<String>,
}

/// One family's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub family: IpFamily,
    pub sets: BTreeMap<String, Set>,
    pub chains: BTreeMap<String, Chain>,
}

impl Table {
    pub fn new(family: IpFamily) -> Table {
        Table {
            family,
            sets: BTreeMap::new(),
            chains: BTreeMap::new(),
        }
    }

    /// `ip switchboard` / `ip6 switchboard`.
    pub fn qualified(&self) -> String {
        format!("{} {TABLE}", nft_family(self.family))
    }

    pub fn element_count(&self) -> usize {
        self.sets.values().map(|s| s.elements.len()).sum()
    }

    pub fn rule_count(&self) -> usize {
        self.chains.values().map(|c| c.rules.len()).sum()
    }

    /// The whole table as an `nft -f` script that creates it from nothing (after an
    /// `add table`; `delete table` pair, so it also replaces an existing one). Deterministic:
    /// this is the golden text of the tests.
    pub fn full_script(&self) -> String {
        let t = self.qualified();
        let mut s = String::new();
        let _ = writeln!(s, "add table {t}");
        let _ = writeln!(s, "delete table {t}");
        let _ = writeln!(s, "add table {t} {{ comment \"rules for switchboard\"; }}");
        for (name, set) in &self.sets {
            let _ = writeln!(s, "add {} {t} {name} {{ {} }}", set.kind, set.decl);
        }
        for (name, chain) in &self.chains {
            write_add_chain(&mut s, &t, name, chain);
        }
        for (name, chain) in &self.chains {
            for r in &chain.rules {
                let _ = writeln!(s, "add rule {t} {name} {r}");
            }
        }
        for (name, set) in &self.sets {
            write_elements(&mut s, "add", &t, name, set.elements.iter());
        }
        s
    }
}

pub(crate) fn write_add_chain(s: &mut String, t: &str, name: &str, chain: &Chain) {
    match &chain.hook {
        Some(h) => {
            let _ = writeln!(s, "add chain {t} {name} {{ {h} }}");
        }
        None => {
            let _ = writeln!(s, "add chain {t} {name}");
        }
    }
}

/// Elements in batches: one command per element would make the script (and nft's parsing)
/// several times larger at 50k services.
pub(crate) fn write_elements<'a>(
    s: &mut String,
    verb: &str,
    t: &str,
    set: &str,
    elements: impl Iterator<Item = (&'a String, &'a String)>,
) {
    let mut batch = Vec::new();
    let flush = |s: &mut String, batch: &mut Vec<String>| {
        if !batch.is_empty() {
            let _ = writeln!(s, "{verb} element {t} {set} {{ {} }}", batch.join(", "));
            batch.clear();
        }
    };
    for (k, v) in elements {
        if v.is_empty() || verb == "delete" {
            batch.push(k.clone());
        } else {
            batch.push(format!("{k} : {v}"));
        }
        if batch.len() == 512 {
            flush(s, &mut batch);
        }
    }
    flush(s, &mut batch);
}
