//! What the proxier remembers between syncs, without rule text: the service ports it last
//! programmed (shared with the snapshot, `Arc`) and, per family, which ports put which element
//! into the shared maps and sets. A sync renders only the ports that changed (old and new
//! version, `render::render_fragment`), and hands `diff` two small tables that hold just what
//! those ports touch. Everything else is equal on both sides, so the transaction is the one a
//! diff of the two whole tables would give (tested in `tests/fragments.rs`).
//!
//! Shared elements need the index: two ports can add the same key (the ClusterIP of a
//! Service's ports in `cluster-ips`, a pod behind several Services in `hairpin-connections`,
//! two Services claiming one external IP). In a whole table the port last in name order
//! wins, so an element stays while any port adds it and takes the value of the last one.

use crate::model::{Set, Table};
use crate::render::{render_fragment, render_skeleton, Fragment, RenderStats};
use proxy_core::{IpFamily, ProxyConfig, ServicePort, ServicePortName, Snapshot};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

/// The ports that add one element (by a hash of set and key). Almost always one.
#[derive(Clone, Debug)]
enum Contributors {
    One(u32),
    Many(Vec<u32>),
}

impl Contributors {
    fn ids(&self) -> &[u32] {
        match self {
            Contributors::One(id) => std::slice::from_ref(id),
            Contributors::Many(v) => v,
        }
    }
}

/// The index keys are hashes already.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Index = HashMap<u64, Contributors, BuildHasherDefault<IdentityHasher>>;

/// A fixed hash (SipHash with zero keys): a collision only costs a re-render, since values
/// are always read from the fragments themselves.
fn element_hash(set: &str, key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    set.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

fn add(index: &mut Index, h: u64, id: u32) {
    match index.get_mut(&h) {
        None => {
            index.insert(h, Contributors::One(id));
        }
        Some(c) => match c {
            Contributors::One(x) if *x == id => {}
            Contributors::One(x) => {
                let x = *x;
                *c = Contributors::Many(vec![x, id]);
            }
            Contributors::Many(v) => {
                if !v.contains(&id) {
                    v.push(id);
                }
            }
        },
    }
}

fn remove(index: &mut Index, h: u64, id: u32) {
    let Some(c) = index.get_mut(&h) else {
        return;
    };
    match c {
        Contributors::One(x) if *x == id => {
            index.remove(&h);
        }
        Contributors::One(_) => {}
        Contributors::Many(v) => {
            v.retain(|x| *x != id);
            if v.len() == 1 {
                *c = Contributors::One(v[0]);
            } else if v.is_empty() {
                index.remove(&h);
            }
        }
    }
}

/// A rendered fragment with its elements' hashes, computed once: the index is updated from
/// them and values are looked up through them (a changed port with E elements would otherwise
/// cost O(E²) in linear scans of its elements).
#[derive(Debug)]
struct Hashed {
    frag: Fragment,
    /// The hash of each element, in the fragment's order.
    hashes: Vec<u64>,
    /// Element hash → the index of the last element with that hash.
    last: HashMap<u64, usize, BuildHasherDefault<IdentityHasher>>,
}

impl Hashed {
    fn new(frag: Fragment) -> Hashed {
        let hashes: Vec<u64> = frag
            .elements
            .iter()
            .map(|(s, k, _)| element_hash(s, k))
            .collect();
        Hashed::with_hashes(frag, hashes)
    }

    fn with_hashes(frag: Fragment, hashes: Vec<u64>) -> Hashed {
        let mut last =
            HashMap::with_capacity_and_hasher(hashes.len(), BuildHasherDefault::default());
        for (i, h) in hashes.iter().enumerate() {
            last.insert(*h, i);
        }
        Hashed { frag, hashes, last }
    }

    /// The value this fragment gives `key` in `set` (whose hash is `h`).
    fn value_of(&self, h: u64, set: &str, key: &str) -> Option<&str> {
        let i = *self.last.get(&h)?;
        let (s, k, v) = &self.frag.elements[i];
        if *s == set && k == key {
            Some(v)
        } else {
            // Two elements with one hash: the rare case scans.
            self.frag.value_of(set, key)
        }
    }

    /// Whether an element with hash `h` is in this fragment.
    fn has(&self, h: u64) -> bool {
        self.last.contains_key(&h)
    }
}

/// One service port that differs between the cache and a new snapshot.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub id: u32,
    pub old: Option<Arc<ServicePort>>,
    pub new: Option<Arc<ServicePort>>,
}

/// What differs between the cache and a snapshot.
#[derive(Debug, Default)]
pub(crate) struct Delta {
    pub changes: Vec<Change>,
    /// Equal by value but another `Arc` (a rebuilt snapshot): keep the new one, drop the old.
    rebind: Vec<(u32, Arc<ServicePort>)>,
    added: Vec<(ServicePortName, Arc<ServicePort>)>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.added.is_empty()
    }
}

const NO_ID: u32 = u32::MAX;

/// See the module docs.
pub(crate) struct Cache {
    /// The configuration the cached ports were rendered with.
    pub cfg: ProxyConfig,
    ids: BTreeMap<ServicePortName, u32>,
    slots: Vec<Option<Arc<ServicePort>>>,
    free: Vec<u32>,
    index: [Index; 2],
    /// Per family, summed over the ports.
    pub stats: [RenderStats; 2],
    pub reachable: [usize; 2],
    /// Per family: the skeleton's set declarations (no elements, no chains) and the
    /// configuration they were rendered with. Every incremental sync starts its two tables
    /// from them, and the skeleton (~70 sets, the dispatch chains) is config-only.
    declarations: [Option<(ProxyConfig, Table)>; 2],
}

impl Cache {
    pub fn new(cfg: ProxyConfig) -> Cache {
        Cache {
            cfg,
            ids: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            index: [Index::default(), Index::default()],
            stats: [RenderStats::default(), RenderStats::default()],
            reachable: [0, 0],
            declarations: [None, None],
        }
    }

    fn slot(&self, id: u32) -> &Arc<ServicePort> {
        self.slots[id as usize].as_ref().expect("live slot")
    }

    /// The ports of `snap` that differ from the cache: one walk over both name-ordered maps,
    /// by pointer first (the agent's tracker replaces only changed ports), then by value.
    pub fn delta(&self, snap: &Snapshot) -> Delta {
        let mut d = Delta::default();
        let mut old = self.ids.iter().peekable();
        let mut new = snap.service_ports.iter().peekable();
        loop {
            // The common case first: the same `Arc` at the same place means the same name, so
            // no string comparison.
            if let (Some((_, id)), Some((_, sp))) = (old.peek(), new.peek()) {
                if Arc::ptr_eq(self.slot(**id), sp) {
                    old.next();
                    new.next();
                    continue;
                }
            }
            let ord = match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((on, _)), Some((nn, _))) => on.cmp(nn),
            };
            match ord {
                std::cmp::Ordering::Less => {
                    let (_, id) = old.next().expect("peeked");
                    d.changes.push(Change {
                        id: *id,
                        old: Some(self.slot(*id).clone()),
                        new: None,
                    });
                }
                std::cmp::Ordering::Greater => {
                    let (name, sp) = new.next().expect("peeked");
                    d.added.push((name.clone(), sp.clone()));
                }
                std::cmp::Ordering::Equal => {
                    let (_, id) = old.next().expect("peeked");
                    let (_, sp) = new.next().expect("peeked");
                    let cur = self.slot(*id);
                    if Arc::ptr_eq(cur, sp) {
                        continue;
                    }
                    if **cur == **sp {
                        d.rebind.push((*id, sp.clone()));
                    } else {
                        d.changes.push(Change {
                            id: *id,
                            old: Some(cur.clone()),
                            new: Some(sp.clone()),
                        });
                    }
                }
            }
        }
        d
    }

    /// Takes the new ports in: ids for added ones, the new `Arc` of changed ones. Removed ones
    /// keep their slot until [`Cache::finish`] (the index still names them).
    pub fn begin(&mut self, d: &mut Delta) {
        for (id, sp) in d.rebind.drain(..) {
            self.slots[id as usize] = Some(sp);
        }
        for ch in &d.changes {
            if let Some(sp) = &ch.new {
                self.slots[ch.id as usize] = Some(sp.clone());
            }
        }
        for (name, sp) in d.added.drain(..) {
            let id = match self.free.pop() {
                Some(id) => {
                    self.slots[id as usize] = Some(sp.clone());
                    id
                }
                None => {
                    self.slots.push(Some(sp.clone()));
                    u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 ports")
                }
            };
            debug_assert_ne!(id, NO_ID);
            self.ids.insert(name, id);
            d.changes.push(Change {
                id,
                old: None,
                new: Some(sp),
            });
        }
    }

    /// The sync is done (programmed with `cfg`): forget removed ports.
    pub fn finish(&mut self, d: &Delta, cfg: &ProxyConfig) {
        for ch in d.changes.iter().filter(|c| c.new.is_none()) {
            if let Some(old) = &ch.old {
                self.ids.remove(&old.name);
            }
            self.slots[ch.id as usize] = None;
            self.free.push(ch.id);
        }
        if self.cfg != *cfg {
            self.cfg = cfg.clone();
        }
    }

    /// The whole table of family `f` as the cache holds it (with its own configuration).
    pub fn render_programmed(&self, f: IpFamily) -> Table {
        let mut t = render_skeleton(&self.cfg, f);
        for id in self.ids.values() {
            render_fragment(self.slot(*id), &self.cfg, f).merge_into(&mut t);
        }
        t
    }

    /// The whole table of family `f` for `snap` (after [`Cache::begin`]), rebuilding that
    /// family's index and sums.
    pub fn render_full(&mut self, snap: &Snapshot, cfg: &ProxyConfig, f: IpFamily) -> Table {
        let i = f as usize;
        let mut t = render_skeleton(cfg, f);
        let mut index = Index::default();
        let mut stats = RenderStats::default();
        let mut reachable = 0;
        for (name, sp) in &snap.service_ports {
            let id = self.ids[name];
            let frag = render_fragment(sp, cfg, f);
            // `add` ignores a port adding one element twice.
            for (s, k, _) in &frag.elements {
                add(&mut index, element_hash(s, k), id);
            }
            stats.add(&frag.stats);
            reachable += frag.reachable;
            frag.merge_into(&mut t);
        }
        self.index[i] = index;
        self.stats[i] = stats;
        self.reachable[i] = reachable;
        t
    }

    /// The changed ports' part of family `f`, before and after: two tables with the
    /// skeleton's sets (declarations only), the elements the changed ports add or had added
    /// (with the value the whole table gives them), and the changed ports' chains and sets.
    /// Updates the index and sums. Call after [`Cache::begin`].
    pub fn render_changes(&mut self, d: &Delta, cfg: &ProxyConfig, f: IpFamily) -> (Table, Table) {
        let i = f as usize;
        let mut frags: HashMap<u32, (Option<Hashed>, Option<Hashed>)> =
            HashMap::with_capacity(d.changes.len());
        for ch in &d.changes {
            let old = ch
                .old
                .as_ref()
                .map(|sp| Hashed::new(render_fragment(sp, cfg, f)));
            let new = ch
                .new
                .as_ref()
                .map(|sp| Hashed::new(render_fragment(sp, cfg, f)));
            if let Some(o) = &old {
                self.stats[i].sub(&o.frag.stats);
                self.reachable[i] -= o.frag.reachable;
            }
            if let Some(n) = &new {
                self.stats[i].add(&n.frag.stats);
                self.reachable[i] += n.frag.reachable;
            }
            frags.insert(ch.id, (old, new));
        }
        // Every element the changed ports add or added, once, with its hash.
        let mut touched: BTreeMap<(&'static str, &str), u64> = BTreeMap::new();
        for (old, new) in frags.values() {
            for h in old.iter().chain(new) {
                for ((s, k, _), hash) in h.frag.elements.iter().zip(&h.hashes) {
                    touched.insert((*s, k.as_str()), *hash);
                }
            }
        }
        let mut unchanged: HashMap<u32, Hashed> = HashMap::new();
        let old_values: Vec<Option<String>> = touched
            .iter()
            .map(|((s, k), h)| self.value(f, cfg, *h, s, k, &frags, false, &mut unchanged))
            .collect();
        for ch in &d.changes {
            let (old, new) = &frags[&ch.id];
            if let Some(o) = old {
                for h in o.last.keys() {
                    if !new.as_ref().is_some_and(|n| n.has(*h)) {
                        remove(&mut self.index[i], *h, ch.id);
                    }
                }
            }
            if let Some(n) = new {
                for h in n.last.keys() {
                    if !old.as_ref().is_some_and(|o| o.has(*h)) {
                        add(&mut self.index[i], *h, ch.id);
                    }
                }
            }
        }
        let new_values: Vec<Option<String>> = touched
            .iter()
            .map(|((s, k), h)| self.value(f, cfg, *h, s, k, &frags, true, &mut unchanged))
            .collect();

        let decls = self.declarations(cfg, f);
        let (mut before, mut after) = (decls.clone(), decls.clone());
        for ((((s, k), _), o), n) in touched.iter().zip(old_values).zip(new_values) {
            if let Some(v) = o {
                let set = before.sets.get_mut(*s).expect("skeleton set");
                set.elements.insert(k.to_string(), v);
            }
            if let Some(v) = n {
                let set = after.sets.get_mut(*s).expect("skeleton set");
                set.elements.insert(k.to_string(), v);
            }
        }
        drop(touched);
        for (_, (old, new)) in frags {
            if let Some(o) = old {
                before.chains.extend(o.frag.chains);
                before.sets.extend(o.frag.sets);
            }
            if let Some(n) = new {
                after.chains.extend(n.frag.chains);
                after.sets.extend(n.frag.sets);
            }
        }
        (before, after)
    }

    /// The skeleton's set declarations for `cfg` in family `f` (rendered again only when the
    /// configuration differs from the last call's).
    fn declarations(&mut self, cfg: &ProxyConfig, f: IpFamily) -> &Table {
        let slot = &mut self.declarations[f as usize];
        if slot.as_ref().is_none_or(|(c, _)| c != cfg) {
            let skeleton = render_skeleton(cfg, f);
            let mut t = Table::new(f);
            for (name, set) in skeleton.sets {
                t.sets.insert(name, Set::new(set.kind, set.decl));
            }
            *slot = Some((cfg.clone(), t));
        }
        &slot.as_ref().expect("just set").1
    }

    /// The value the whole table of family `f` gives `key` in `set`: that of the last port
    /// by name that adds it, before (`new` false) or after the change.
    #[allow(clippy::too_many_arguments)]
    fn value(
        &self,
        f: IpFamily,
        cfg: &ProxyConfig,
        h: u64,
        set: &str,
        key: &str,
        changed: &HashMap<u32, (Option<Hashed>, Option<Hashed>)>,
        new: bool,
        unchanged: &mut HashMap<u32, Hashed>,
    ) -> Option<String> {
        let contributors = self.index[f as usize].get(&h)?;
        let mut best: Option<(&ServicePortName, String)> = None;
        for id in contributors.ids() {
            let value = match changed.get(id) {
                Some((old, newf)) => {
                    let frag = if new { newf } else { old };
                    frag.as_ref()
                        .and_then(|fr| fr.value_of(h, set, key))
                        .map(str::to_string)
                }
                None => unchanged
                    .entry(*id)
                    .or_insert_with(|| Hashed::new(render_fragment(self.slot(*id), cfg, f)))
                    .value_of(h, set, key)
                    .map(str::to_string),
            };
            let Some(value) = value else { continue };
            let name = &self.slot(*id).name;
            if best.as_ref().is_none_or(|(b, _)| name > *b) {
                best = Some((name, value));
            }
        }
        best.map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_when_element_hashes_collide() {
        let frag = Fragment {
            elements: vec![
                ("a", "k1".into(), "v1".into()),
                ("b", "k2".into(), "v2".into()),
                ("a", "k1".into(), "v3".into()),
                ("c", "k3".into(), "v4".into()),
            ],
            ..Fragment::default()
        };
        // Every element under one hash: lookups must still tell them apart.
        let h = Hashed::with_hashes(frag, vec![7; 4]);
        assert_eq!(h.value_of(7, "a", "k1"), Some("v3"));
        assert_eq!(h.value_of(7, "b", "k2"), Some("v2"));
        assert_eq!(h.value_of(7, "c", "k3"), Some("v4"));
        assert_eq!(h.value_of(7, "a", "k2"), None);
        assert_eq!(h.value_of(8, "a", "k1"), None);
    }
}
