//! The indexes against the brute-force scans they replace: hand-picked cases (add, label
//! change, delete, re-list) and random event sequences.

use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

fn meta(ns: &str, name: &str, l: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        labels: labels(l),
        ..Default::default()
    }
}

fn slice(
    ns: &str,
    name: &str,
    service: Option<&str>,
    manager: &str,
    owner: Option<&str>,
) -> EndpointSlice {
    let mut l = vec![(LABEL_MANAGED_BY, manager)];
    if let Some(s) = service {
        l.push((LABEL_SERVICE_NAME, s));
    }
    let mut m = meta(ns, name, &l);
    m.owner_references = owner.map(|o| {
        vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Service".into(),
            name: o.into(),
            uid: format!("uid-{o}"),
            ..Default::default()
        }]
    });
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".into(),
        ..Default::default()
    }
}

fn pod(ns: &str, name: &str, l: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: meta(ns, name, l),
        ..Default::default()
    }
}

fn service(ns: &str, name: &str, sel: &[(&str, &str)]) -> Service {
    Service {
        metadata: meta(ns, name, &[]),
        spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
            selector: labels(sel),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn as_refs(l: &[(String, String)]) -> Vec<(&str, &str)> {
    l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

const M: &str = crate::slices::CONTROLLER_NAME;

#[test]
fn slices_follow_add_label_change_delete_and_relist() {
    let mut ix = SliceIndex::default();
    ix.apply(&slice("a", "s1", Some("web"), M, Some("web")));
    ix.apply(&slice("a", "s2", Some("web"), M, None));
    ix.apply(&slice("b", "s3", Some("web"), M, None));
    ix.apply(&slice(
        "a",
        "m1",
        Some("web"),
        crate::mirroring::CONTROLLER_NAME,
        None,
    ));
    assert_eq!(ix.managed_by("a", "web", M), ["s1", "s2"]);
    assert_eq!(ix.managed_by("b", "web", M), ["s3"]);
    assert_eq!(
        ix.managed_by("a", "web", crate::mirroring::CONTROLLER_NAME),
        ["m1"]
    );
    assert_eq!(ix.owned_by("a", "Service", "web"), ["s1"]);
    // The service-name label changes: the slice moves to the other entry.
    ix.apply(&slice("a", "s2", Some("api"), M, None));
    assert_eq!(ix.managed_by("a", "web", M), ["s1"]);
    assert_eq!(ix.managed_by("a", "api", M), ["s2"]);
    // The label goes: the slice is in no Service's entry.
    ix.apply(&slice("a", "s2", None, M, None));
    assert!(ix.managed_by("a", "api", M).is_empty());
    // Owner reference dropped.
    ix.apply(&slice("a", "s1", Some("web"), M, None));
    assert!(ix.owned_by("a", "Service", "web").is_empty());
    ix.delete(&slice("a", "s1", None, "other", None));
    assert!(ix.managed_by("a", "web", M).is_empty());
    // A re-list replaces everything.
    let fresh = [slice("a", "x", Some("web"), M, Some("web"))];
    ix.rebuild(fresh.iter());
    assert_eq!(ix.managed_by("a", "web", M), ["x"]);
    assert!(ix.managed_by("b", "web", M).is_empty());
    assert_eq!(ix.owned_by("a", "Service", "web"), ["x"]);
    assert!(ix.ix.filed.len() == 1 && ix.ix.entries.len() == 2);
}

#[test]
fn pods_follow_label_changes_and_namespaces() {
    let mut ix = PodIndex::default();
    let sel: BTreeMap<String, String> = labels(&[("app", "web")]).unwrap();
    ix.apply(&pod("a", "p1", &[("app", "web")]));
    ix.apply(&pod("a", "p2", &[("app", "db")]));
    ix.apply(&pod("b", "p3", &[("app", "web")]));
    assert_eq!(ix.candidates("a", &sel), ["p1"]);
    ix.apply(&pod("a", "p2", &[("app", "web"), ("tier", "x")]));
    assert_eq!(ix.candidates("a", &sel), ["p1", "p2"]);
    // The rarest pair leads.
    let narrow = labels(&[("app", "web"), ("tier", "x")]).unwrap();
    assert_eq!(ix.candidates("a", &narrow), ["p2"]);
    let none = labels(&[("app", "web"), ("tier", "y")]).unwrap();
    assert!(ix.candidates("a", &none).is_empty());
    ix.apply(&pod("a", "p1", &[]));
    assert_eq!(ix.candidates("a", &sel), ["p2"]);
    ix.delete(&pod("a", "p2", &[]));
    assert!(ix.candidates("a", &sel).is_empty());
    ix.rebuild([pod("a", "q", &[("app", "web")])].iter());
    assert_eq!(ix.candidates("a", &sel), ["q"]);
    assert!(ix.candidates("b", &sel).is_empty());
}

#[test]
fn services_are_found_from_a_pods_labels() {
    let mut ix = ServiceIndex::default();
    ix.apply(&service("a", "all", &[("app", "web")]));
    for i in 0..50 {
        let solo = format!("p{i}");
        ix.apply(&service(
            "a",
            &format!("solo-{i}"),
            &[("app", "web"), ("solo", &solo)],
        ));
    }
    ix.apply(&service("a", "headless", &[]));
    let pod_labels = labels(&[("app", "web"), ("solo", "p7")]);
    let c = ix.candidates("a", pod_labels.as_ref());
    // Only the Service selecting app=web alone and the one for p7 (plus at most the first
    // solo Service, filed before app=web was common) are candidates, not all 51.
    assert!(c.contains("all") && c.contains("solo-7"));
    assert!(c.len() <= 3, "{c:?}");
    assert!(ix.candidates("b", pod_labels.as_ref()).is_empty());
    // A selector change re-files the Service.
    ix.apply(&service("a", "solo-7", &[("solo", "p8")]));
    assert!(!ix.candidates("a", pod_labels.as_ref()).contains("solo-7"));
    ix.delete(&service("a", "all", &[]));
    assert!(!ix.candidates("a", pod_labels.as_ref()).contains("all"));
    ix.rebuild(std::iter::empty());
    assert!(ix.candidates("a", pod_labels.as_ref()).is_empty());
    assert!(ix.pair_counts.is_empty() && ix.selectors.is_empty());
}

/// One watch event on a model store.
#[derive(Debug, Clone)]
enum Op {
    /// Add or update object `i` with label choices `a`, `b`.
    Apply(usize, usize, usize, usize),
    Delete(usize),
    /// A re-list: the store is replaced by what the model has plus one change.
    Relist(usize, usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..12, 0usize..2, 0usize..4, 0usize..4).prop_map(|(i, n, a, b)| Op::Apply(i, n, a, b)),
        3 => (0usize..12).prop_map(Op::Delete),
        1 => (0usize..12, 0usize..4, 0usize..4).prop_map(|(i, a, b)| Op::Relist(i, a, b)),
    ]
}

const NAMESPACES: [&str; 2] = ["a", "b"];
const VALUES: [Option<&str>; 4] = [None, Some("x"), Some("y"), Some("z")];

fn name(i: usize) -> String {
    format!("o{i}")
}

/// Runs `ops` on a model store (a map) and the index; after each, `check` compares them.
fn run<K: Clone, I: StoreIndex<K> + Default>(
    ops: &[Op],
    make: impl Fn(&str, &str, Option<&str>, Option<&str>) -> K,
    check: impl Fn(&I, &BTreeMap<(usize, &str), K>),
) {
    let mut store: BTreeMap<(usize, &str), K> = BTreeMap::new();
    let mut ix = I::default();
    for op in ops {
        match *op {
            Op::Apply(i, n, a, b) => {
                // An object keeps its namespace: a name is unique per namespace, so the model
                // keys on (i, namespace).
                let o = make(NAMESPACES[n], &name(i), VALUES[a], VALUES[b]);
                store.insert((i, NAMESPACES[n]), o.clone());
                ix.apply(&o);
            }
            Op::Delete(i) => {
                for ns in NAMESPACES {
                    if let Some(o) = store.remove(&(i, ns)) {
                        ix.delete(&o);
                    }
                }
            }
            Op::Relist(i, a, b) => {
                store.insert((i, "a"), make("a", &name(i), VALUES[a], VALUES[b]));
                ix.rebuild(store.values());
            }
        }
        check(&ix, &store);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn slice_index_equals_a_scan(ops in proptest::collection::vec(op(), 1..60)) {
        let managers = [M, crate::mirroring::CONTROLLER_NAME];
        run::<EndpointSlice, SliceIndex>(
            &ops,
            |ns, n, svc, mgr| slice(ns, n, svc, if mgr.is_some_and(|m| m == "x") { managers[1] } else { managers[0] }, svc),
            |ix, store| {
                for ns in NAMESPACES {
                    for svc in VALUES.iter().flatten() {
                        for m in managers {
                            let scan: Vec<String> = store.values().filter(|s| {
                                s.metadata.namespace.as_deref() == Some(ns)
                                    && s.metadata.labels.as_ref().is_some_and(|l| {
                                        l.get(LABEL_SERVICE_NAME).map(String::as_str) == Some(*svc)
                                            && l.get(LABEL_MANAGED_BY).map(String::as_str) == Some(m)
                                    })
                            }).map(|s| s.metadata.name.clone().unwrap()).collect::<BTreeSet<_>>().into_iter().collect();
                            assert_eq!(ix.managed_by(ns, svc, m), scan);
                        }
                        let owned: Vec<String> = store.values().filter(|s| {
                            s.metadata.namespace.as_deref() == Some(ns)
                                && s.metadata.owner_references.iter().flatten().any(|o| o.name == *svc)
                        }).map(|s| s.metadata.name.clone().unwrap()).collect::<BTreeSet<_>>().into_iter().collect();
                        assert_eq!(ix.owned_by(ns, "Service", svc), owned);
                    }
                }
            },
        );
    }

    #[test]
    fn pod_and_service_indexes_equal_a_scan(ops in proptest::collection::vec(op(), 1..60), sops in proptest::collection::vec(op(), 1..60)) {
        let label_sets = |a: Option<&str>, b: Option<&str>| {
            let mut l = Vec::new();
            if let Some(a) = a { l.push(("app".to_string(), a.to_string())); }
            if let Some(b) = b { l.push(("tier".to_string(), b.to_string())); }
            l
        };
        // Every selector over the two label keys.
        let selectors: Vec<BTreeMap<String, String>> = VALUES.iter().flat_map(|a| VALUES.iter().map(move |b| (a, b)))
            .filter_map(|(a, b)| labels(&as_refs(&label_sets(*a, *b))))
            .collect();
        run::<Pod, PodIndex>(
            &ops,
            |ns, n, a, b| pod(ns, n, &as_refs(&label_sets(a, b))),
            |ix, store| {
                for ns in NAMESPACES {
                    for sel in &selectors {
                        let scan: BTreeSet<String> = store.values().filter(|p| {
                            p.metadata.namespace.as_deref() == Some(ns)
                                && pods::selector_matches(sel, p.metadata.labels.as_ref())
                        }).map(|p| p.metadata.name.clone().unwrap()).collect();
                        let found: BTreeSet<String> = ix.candidates(ns, sel).into_iter()
                            .filter(|n| store.values().any(|p| p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name.as_deref() == Some(n) && pods::selector_matches(sel, p.metadata.labels.as_ref())))
                            .collect();
                        assert_eq!(found, scan);
                        // Candidates are real pods of the namespace.
                        for n in ix.candidates(ns, sel) {
                            assert!(store.values().any(|p| p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name.as_deref() == Some(n.as_str())));
                        }
                    }
                }
            },
        );
        run::<Service, ServiceIndex>(
            &sops,
            |ns, n, a, b| service(ns, n, &as_refs(&label_sets(a, b))),
            |ix, store| {
                for ns in NAMESPACES {
                    for a in VALUES {
                        for b in VALUES {
                            let pl = labels(&as_refs(&label_sets(a, b)));
                            let selects = |s: &Service| s.metadata.namespace.as_deref() == Some(ns)
                                && pods::service_selector(s).is_some_and(|sel| pods::selector_matches(sel, pl.as_ref()));
                            let scan: BTreeSet<String> = store.values().filter(|s| selects(s))
                                .map(|s| s.metadata.name.clone().unwrap()).collect();
                            let found: BTreeSet<String> = ix.candidates(ns, pl.as_ref()).into_iter()
                                .filter(|n| store.values().any(|s| s.metadata.name.as_deref() == Some(n) && selects(s)))
                                .collect();
                            assert_eq!(found, scan);
                        }
                    }
                }
            },
        );
    }
}
