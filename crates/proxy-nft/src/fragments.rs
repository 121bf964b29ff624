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
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

fn hashes(frag: &Fragment) -> BTreeSet<u64> {
    frag.elements
        .iter()
        .map(|(s, k, _)| element_hash(s, k))
        .collect()
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
            for h in hashes(&frag) {
                add(&mut index, h, id);
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
        let mut frags: HashMap<u32, (Option<Fragment>, Option<Fragment>)> = HashMap::new();
        for ch in &d.changes {
            let old = ch.old.as_ref().map(|sp| render_fragment(sp, cfg, f));
            let new = ch.new.as_ref().map(|sp| render_fragment(sp, cfg, f));
            if let Some(o) = &old {
                self.stats[i].sub(&o.stats);
                self.reachable[i] -= o.reachable;
            }
            if let Some(n) = &new {
                self.stats[i].add(&n.stats);
                self.reachable[i] += n.reachable;
            }
            frags.insert(ch.id, (old, new));
        }
        let mut touched: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
        for (old, new) in frags.values() {
            for frag in old.iter().chain(new) {
                for (s, k, _) in &frag.elements {
                    touched
                        .entry((*s, k.clone()))
                        .or_insert_with(|| element_hash(s, k));
                }
            }
        }
        let mut unchanged: HashMap<u32, Fragment> = HashMap::new();
        let old_values: Vec<Option<String>> = touched
            .iter()
            .map(|((s, k), h)| self.value(f, cfg, *h, s, k, &frags, false, &mut unchanged))
            .collect();
        for ch in &d.changes {
            let (old, new) = &frags[&ch.id];
            let before = old.as_ref().map(hashes).unwrap_or_default();
            let after = new.as_ref().map(hashes).unwrap_or_default();
            for h in before.difference(&after) {
                remove(&mut self.index[i], *h, ch.id);
            }
            for h in after.difference(&before) {
                add(&mut self.index[i], *h, ch.id);
            }
        }
        let new_values: Vec<Option<String>> = touched
            .iter()
            .map(|((s, k), h)| self.value(f, cfg, *h, s, k, &frags, true, &mut unchanged))
            .collect();

        let skeleton = render_skeleton(cfg, f);
        let empty = || {
            let mut t = Table::new(f);
            for (name, set) in &skeleton.sets {
                t.sets
                    .insert(name.clone(), Set::new(set.kind, set.decl.clone()));
            }
            t
        };
        let (mut before, mut after) = (empty(), empty());
        for ((((s, k), _), o), n) in touched.iter().zip(old_values).zip(new_values) {
            if let Some(v) = o {
                let set = before.sets.get_mut(*s).expect("skeleton set");
                set.elements.insert(k.clone(), v);
            }
            if let Some(v) = n {
                let set = after.sets.get_mut(*s).expect("skeleton set");
                set.elements.insert(k.clone(), v);
            }
        }
        for (_, (old, new)) in frags {
            if let Some(o) = old {
                before.chains.extend(o.chains);
                before.sets.extend(o.sets);
            }
            if let Some(n) = new {
                after.chains.extend(n.chains);
                after.sets.extend(n.sets);
            }
        }
        (before, after)
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
        changed: &HashMap<u32, (Option<Fragment>, Option<Fragment>)>,
        new: bool,
        unchanged: &mut HashMap<u32, Fragment>,
    ) -> Option<String> {
        let contributors = self.index[f as usize].get(&h)?;
        let mut best: Option<(&ServicePortName, String)> = None;
        for id in contributors.ids() {
            let value = match changed.get(id) {
                Some((old, newf)) => {
                    let frag = if new { newf } else { old };
                    frag.as_ref()
                        .and_then(|fr| fr.value_of(set, key))
                        .map(str::to_string)
                }
                None => unchanged
                    .entry(*id)
                    .or_insert_with(|| render_fragment(self.slot(*id), cfg, f))
                    .value_of(set, key)
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
