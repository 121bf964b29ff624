//! Programmed table + desired table → one `nft -f` transaction that turns the first into the
//! second, touching only what differs. The order of the commands matters: nftables checks
//! references as each command runs, so chains must exist before a rule or element points at
//! them, and nothing may be deleted while something still points at it.

use crate::model::{write_add_chain, write_elements, Set, Table};
use std::collections::BTreeMap;
use std::fmt::Write;

/// What a transaction changes (for [`crate::SyncReport`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffStats {
    pub chains_added: usize,
    pub chains_changed: usize,
    pub chains_deleted: usize,
    pub sets_added: usize,
    pub sets_deleted: usize,
    pub elements_added: usize,
    pub elements_deleted: usize,
    /// Sets refilled from scratch because their programmed content is unknown (adopted).
    pub sets_refilled: usize,
}

impl DiffStats {
    pub fn is_empty(&self) -> bool {
        *self == DiffStats::default()
    }

    pub(crate) fn add(&mut self, o: &DiffStats) {
        self.chains_added += o.chains_added;
        self.chains_changed += o.chains_changed;
        self.chains_deleted += o.chains_deleted;
        self.sets_added += o.sets_added;
        self.sets_deleted += o.sets_deleted;
        self.elements_added += o.elements_added;
        self.elements_deleted += o.elements_deleted;
        self.sets_refilled += o.sets_refilled;
    }
}

/// The programmed state of one table as the applier knows it: exact when it wrote it, names
/// only when it adopted the table from a previous run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Programmed {
    pub table: Table,
    /// Set names whose elements are unknown (adopted): refill them with `flush` + `add`.
    pub unknown_elements: Vec<String>,
    /// Chain names whose rules are unknown (adopted): rewrite them.
    pub unknown_rules: Vec<String>,
}

impl Programmed {
    pub fn exact(table: Table) -> Self {
        Programmed {
            table,
            unknown_elements: Vec::new(),
            unknown_rules: Vec::new(),
        }
    }
}

/// Element key and value.
type Element = (String, String);

fn changed_elements(old: &Set, new: &Set) -> (Vec<Element>, Vec<Element>) {
    let mut del = Vec::new();
    let mut add = Vec::new();
    for (k, v) in &old.elements {
        match new.elements.get(k) {
            Some(nv) if nv == v => {}
            // A changed value is a delete and an add: nft 1.0.6 cannot replace an element.
            _ => del.push((k.clone(), v.clone())),
        }
    }
    for (k, v) in &new.elements {
        if old.elements.get(k) != Some(v) {
            add.push((k.clone(), v.clone()));
        }
    }
    (del, add)
}

/// The transaction from `old` to `new` (same family), or `None` when they are equal.
pub fn diff(old: &Programmed, new: &Table) -> Option<(String, DiffStats)> {
    let o = &old.table;
    let t = new.qualified();
    let mut st = DiffStats::default();
    let mut s = String::new();

    let is_unknown_set = |n: &String| old.unknown_elements.contains(n);
    let is_unknown_chain = |n: &String| old.unknown_rules.contains(n);
    // Sets whose declaration changed are deleted and re-added (with all their elements). So
    // are adopted `typeof` maps: nft 1.0.6 cannot add a rule that refers to a typeof map it
    // read back from the kernel when the map's data has `th dport` ("conflicting protocols
    // specified: ip vs. th"), but it can when the map is declared in the same transaction.
    let redeclared: Vec<&String> = new
        .sets
        .iter()
        .filter(|(n, set)| {
            o.sets.get(*n).is_some_and(|os| {
                if is_unknown_set(n) || os.decl.contains("(adopted)") {
                    set.decl.starts_with("typeof")
                } else {
                    os.decl != set.decl
                }
            })
        })
        .map(|(n, _)| n)
        .collect();
    let new_sets = keys_missing_from(&new.sets, &o.sets);
    let stale_sets = keys_missing_from(&o.sets, &new.sets);
    let new_chains = keys_missing_from(&new.chains, &o.chains);
    let stale_chains = keys_missing_from(&o.chains, &new.chains);
    // A set can only be deleted when no rule refers to it, so chains that refer to a
    // re-declared set are rewritten even when their text is unchanged.
    let refers_to_redeclared = |rules: &[String]| {
        redeclared.iter().any(|set| {
            let at = format!("@{set}");
            rules
                .iter()
                .any(|r| r.split([' ', '{', '}']).any(|word| word == at))
        })
    };
    let changed_chains: Vec<&String> = new
        .chains
        .iter()
        .filter(|(n, c)| {
            o.chains.get(*n).is_some_and(|oc| {
                is_unknown_chain(n) || oc.rules != c.rules || refers_to_redeclared(&oc.rules)
            })
        })
        .map(|(n, _)| n)
        .collect();

    // 1. New sets and chains, empty, so everything below may refer to them.
    for n in &new_sets {
        let set = &new.sets[*n];
        let _ = writeln!(s, "add {} {t} {n} {{ {} }}", set.kind, set.decl);
        st.sets_added += 1;
    }
    for n in &new_chains {
        write_add_chain(&mut s, &t, n, &new.chains[*n]);
        st.chains_added += 1;
    }
    // 2. Elements that go away or change (they may point at chains deleted below).
    let mut additions: BTreeMap<&String, Vec<Element>> = BTreeMap::new();
    for (n, set) in &new.sets {
        if set.is_dynamic() {
            continue;
        }
        let Some(os) = o.sets.get(n) else {
            additions.insert(
                n,
                set.elements
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            continue;
        };
        if redeclared.contains(&n) {
            additions.insert(
                n,
                set.elements
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            continue;
        }
        if is_unknown_set(n) {
            let _ = writeln!(s, "flush {} {t} {n}", set.kind);
            st.sets_refilled += 1;
            additions.insert(
                n,
                set.elements
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            continue;
        }
        let (del, add) = changed_elements(os, set);
        if !del.is_empty() {
            st.elements_deleted += del.len();
            write_elements(&mut s, "delete", &t, n, del.iter().map(|(k, v)| (k, v)));
        }
        if !add.is_empty() {
            additions.insert(n, add);
        }
    }
    // 3. Empty the chains that change or go: that drops their references to other chains and
    //    to sets.
    for n in changed_chains.iter().chain(&stale_chains) {
        let _ = writeln!(s, "flush chain {t} {n}");
    }
    st.chains_changed += changed_chains.len();
    // 4. Delete what is gone, now unreferenced; re-create sets whose declaration changed.
    for n in stale_sets.iter().chain(&redeclared) {
        let _ = writeln!(s, "delete {} {t} {n}", o.sets[*n].kind);
    }
    st.sets_deleted += stale_sets.len();
    for n in &stale_chains {
        let _ = writeln!(s, "delete chain {t} {n}");
    }
    st.chains_deleted += stale_chains.len();
    for n in &redeclared {
        let set = &new.sets[*n];
        let _ = writeln!(s, "add {} {t} {n} {{ {} }}", set.kind, set.decl);
    }
    // 5. Rules of new and changed chains.
    for n in new_chains.iter().chain(&changed_chains) {
        for r in &new.chains[*n].rules {
            let _ = writeln!(s, "add rule {t} {n} {r}");
        }
    }
    // 6. New elements, last: their verdicts point at chains that now have their rules.
    for (n, add) in &additions {
        st.elements_added += add.len();
        write_elements(&mut s, "add", &t, n, add.iter().map(|(k, v)| (k, v)));
    }
    if s.is_empty() {
        None
    } else {
        Some((s, st))
    }
}

/// The names `a` has and `b` lacks, in name order.
fn keys_missing_from<'a, V, W>(
    a: &'a BTreeMap<String, V>,
    b: &BTreeMap<String, W>,
) -> Vec<&'a String> {
    a.keys().filter(|n| !b.contains_key(*n)).collect()
}
