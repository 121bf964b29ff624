//! Secondary indexes over the reflector stores, so that a sync looks at the objects it needs
//! instead of scanning every EndpointSlice, Pod and Service (with N Services that scan made the
//! controllers O(N²); upstream uses indexed listers and an EndpointSlice tracker keyed by
//! Service). The runtime updates an index under the same lock as its store, from the same
//! watch events, and rebuilds it from the store after every (re)list.

use crate::pods;
use crate::slices::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

/// An object's identity in a store: namespace and name.
pub(crate) type ObjKey = (String, String);

/// What the runtime calls as watch events reach a store (see `runtime::informer`).
pub(crate) trait StoreIndex<K>: Send {
    /// `o` was added or changed.
    fn apply(&mut self, o: &K);
    /// `o` (namespace, name) is gone.
    fn delete(&mut self, o: &K);
    /// A re-list replaced the store: the index becomes exactly `all`.
    fn rebuild<'a>(&mut self, all: impl Iterator<Item = &'a K>)
    where
        K: 'a;
}

/// No index (Endpoints, Nodes, Namespaces are only read by key).
impl<K> StoreIndex<K> for () {
    fn apply(&mut self, _: &K) {}
    fn delete(&mut self, _: &K) {}
    fn rebuild<'a>(&mut self, _: impl Iterator<Item = &'a K>)
    where
        K: 'a,
    {
    }
}

/// Objects filed under any number of index keys. What each object was filed under is kept, so
/// an update or delete removes exactly the old entries whatever the old object looked like.
#[derive(Debug)]
struct MultiIndex<I> {
    entries: HashMap<I, BTreeSet<String>>,
    filed: HashMap<ObjKey, Vec<I>>,
}

impl<I> Default for MultiIndex<I> {
    fn default() -> Self {
        MultiIndex {
            entries: HashMap::new(),
            filed: HashMap::new(),
        }
    }
}

impl<I: Hash + Eq + Clone> MultiIndex<I> {
    fn remove(&mut self, obj: &ObjKey) -> Vec<I> {
        let old = self.filed.remove(obj).unwrap_or_default();
        for k in &old {
            if let Some(set) = self.entries.get_mut(k) {
                set.remove(&obj.1);
                if set.is_empty() {
                    self.entries.remove(k);
                }
            }
        }
        old
    }

    fn insert(&mut self, obj: ObjKey, keys: Vec<I>) {
        for k in &keys {
            self.entries
                .entry(k.clone())
                .or_default()
                .insert(obj.1.clone());
        }
        if !keys.is_empty() {
            self.filed.insert(obj, keys);
        }
    }

    fn get(&self, k: &I) -> Option<&BTreeSet<String>> {
        self.entries.get(k)
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.filed.clear();
    }
}

fn obj_key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ObjKey {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// EndpointSlices by (namespace, `kubernetes.io/service-name`, `endpointslice.kubernetes.io/managed-by`)
/// — upstream's EndpointSlice tracker — and by owner (namespace, kind, name), for the garbage
/// collector.
#[derive(Debug, Default)]
pub(crate) struct SliceIndex {
    ix: MultiIndex<SliceKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SliceKey {
    Service {
        ns: String,
        service: String,
        manager: String,
    },
    Owner {
        ns: String,
        kind: String,
        name: String,
    },
}

impl SliceIndex {
    /// Names of the slices in `ns` labelled for `service` and managed by `manager`.
    pub(crate) fn managed_by(&self, ns: &str, service: &str, manager: &str) -> Vec<String> {
        let k = SliceKey::Service {
            ns: ns.to_string(),
            service: service.to_string(),
            manager: manager.to_string(),
        };
        self.ix
            .get(&k)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Names of the slices in `ns` with an owner reference to `kind`/`name` (core/v1 kinds).
    pub(crate) fn owned_by(&self, ns: &str, kind: &str, name: &str) -> Vec<String> {
        let k = SliceKey::Owner {
            ns: ns.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
        };
        self.ix
            .get(&k)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn keys(s: &EndpointSlice) -> Vec<SliceKey> {
        let ns = pods::namespace_of(&s.metadata);
        let mut out = Vec::new();
        let labels = s.metadata.labels.as_ref();
        if let (Some(service), Some(manager)) = (
            labels.and_then(|l| l.get(LABEL_SERVICE_NAME)),
            labels.and_then(|l| l.get(LABEL_MANAGED_BY)),
        ) {
            out.push(SliceKey::Service {
                ns: ns.to_string(),
                service: service.clone(),
                manager: manager.clone(),
            });
        }
        for o in s.metadata.owner_references.iter().flatten() {
            if o.api_version == "v1" {
                let k = SliceKey::Owner {
                    ns: ns.to_string(),
                    kind: o.kind.clone(),
                    name: o.name.clone(),
                };
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        out
    }
}

impl StoreIndex<EndpointSlice> for SliceIndex {
    fn apply(&mut self, s: &EndpointSlice) {
        let k = obj_key(&s.metadata);
        self.ix.remove(&k);
        self.ix.insert(k, Self::keys(s));
    }
    fn delete(&mut self, s: &EndpointSlice) {
        self.ix.remove(&obj_key(&s.metadata));
    }
    fn rebuild<'a>(&mut self, all: impl Iterator<Item = &'a EndpointSlice>) {
        self.ix.clear();
        for s in all {
            self.apply(s);
        }
    }
}

/// A label `key=value` in a namespace.
type LabelPair = (String, String, String);

/// Pods by namespace and by each of their labels. A selector's candidates are the pods of its
/// rarest `key=value` pair; the caller still checks the whole selector.
#[derive(Debug, Default)]
pub(crate) struct PodIndex {
    ix: MultiIndex<LabelPair>,
}

impl PodIndex {
    /// Names of the pods in `ns` that may match `selector` (a superset: filter with
    /// [`pods::selector_matches`]). Empty for an empty selector, which selects nothing here.
    pub(crate) fn candidates(&self, ns: &str, selector: &BTreeMap<String, String>) -> Vec<String> {
        let mut best: Option<&BTreeSet<String>> = None;
        for (k, v) in selector {
            match self.ix.get(&(ns.to_string(), k.clone(), v.clone())) {
                // No pod has this label: none matches.
                None => return Vec::new(),
                Some(set) => {
                    if best.is_none_or(|b| set.len() < b.len()) {
                        best = Some(set);
                    }
                }
            }
        }
        best.map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl StoreIndex<Pod> for PodIndex {
    fn apply(&mut self, p: &Pod) {
        let k = obj_key(&p.metadata);
        self.ix.remove(&k);
        let keys = p
            .metadata
            .labels
            .iter()
            .flatten()
            .map(|(l, v)| (k.0.clone(), l.clone(), v.clone()))
            .collect();
        self.ix.insert(k, keys);
    }
    fn delete(&mut self, p: &Pod) {
        self.ix.remove(&obj_key(&p.metadata));
    }
    fn rebuild<'a>(&mut self, all: impl Iterator<Item = &'a Pod>) {
        self.ix.clear();
        for p in all {
            self.apply(p);
        }
    }
}

/// Services with a selector, each filed under one `key=value` pair of its selector: the one
/// fewest Services' selectors had when it was filed, so that a pod's labels lead to few
/// candidates (with 20,000 Services selecting `app=web, name=web-N`, a pod event must not
/// look at all of them). Every selected pod carries that pair, so looking up each of a pod's
/// labels finds every Service that selects it.
#[derive(Debug, Default)]
pub(crate) struct ServiceIndex {
    ix: MultiIndex<LabelPair>,
    /// How many indexed selectors contain each pair (the choice above).
    pair_counts: HashMap<LabelPair, usize>,
    selectors: HashMap<ObjKey, Vec<LabelPair>>,
}

impl ServiceIndex {
    /// Names of the Services in `ns` that may select a pod with `labels` (a superset: filter
    /// with [`pods::selector_matches`]).
    pub(crate) fn candidates(
        &self,
        ns: &str,
        labels: Option<&BTreeMap<String, String>>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (k, v) in labels.into_iter().flatten() {
            if let Some(set) = self.ix.get(&(ns.to_string(), k.clone(), v.clone())) {
                out.extend(set.iter().cloned());
            }
        }
        out
    }

    fn forget(&mut self, k: &ObjKey) {
        self.ix.remove(k);
        for p in self.selectors.remove(k).unwrap_or_default() {
            if let Some(n) = self.pair_counts.get_mut(&p) {
                *n -= 1;
                if *n == 0 {
                    self.pair_counts.remove(&p);
                }
            }
        }
    }
}

impl StoreIndex<Service> for ServiceIndex {
    fn apply(&mut self, s: &Service) {
        let k = obj_key(&s.metadata);
        self.forget(&k);
        let Some(sel) = pods::service_selector(s) else {
            return;
        };
        let pairs: Vec<LabelPair> = sel
            .iter()
            .map(|(l, v)| (k.0.clone(), l.clone(), v.clone()))
            .collect();
        let chosen = pairs
            .iter()
            .min_by_key(|p| self.pair_counts.get(*p).copied().unwrap_or(0))
            .cloned();
        for p in &pairs {
            *self.pair_counts.entry(p.clone()).or_insert(0) += 1;
        }
        self.selectors.insert(k.clone(), pairs);
        self.ix.insert(k, chosen.into_iter().collect());
    }
    fn delete(&mut self, s: &Service) {
        self.forget(&obj_key(&s.metadata));
    }
    fn rebuild<'a>(&mut self, all: impl Iterator<Item = &'a Service>) {
        self.ix.clear();
        self.pair_counts.clear();
        self.selectors.clear();
        for s in all {
            self.apply(s);
        }
    }
}

#[cfg(test)]
mod tests;
