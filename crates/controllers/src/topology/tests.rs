//! Upstream's table-driven cases of `topologycache` (`topologycache_test.go`,
//! `utils_test.go`, `sliceinfo_test.go`), ported, plus the arithmetic around them.

use super::*;
use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
use k8s_openapi::api::discovery::v1::{EndpointConditions, ForNode};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// An endpoint: address, zone, ready (`None`: no ready condition), hinted zones.
fn ep(ip: &str, zone: Option<&str>, ready: Option<bool>, hints: Option<&[&str]>) -> Endpoint {
    Endpoint {
        addresses: vec![ip.into()],
        zone: zone.map(String::from),
        conditions: Some(EndpointConditions {
            ready,
            ..Default::default()
        }),
        hints: hints.map(|zs| EndpointHints {
            for_zones: Some(
                zs.iter()
                    .map(|z| ForZone {
                        name: z.to_string(),
                    })
                    .collect(),
            ),
            for_nodes: None,
        }),
        ..Default::default()
    }
}

fn ready(ip: &str, zone: &str) -> Endpoint {
    ep(ip, Some(zone), Some(true), None)
}

fn hinted(ip: &str, zone: &str, hint: &str) -> Endpoint {
    ep(ip, Some(zone), Some(true), Some(&[hint]))
}

fn slice(endpoints: Vec<Endpoint>) -> EndpointSlice {
    EndpointSlice {
        address_type: "IPv4".into(),
        endpoints,
        ..Default::default()
    }
}

fn named(name: &str, endpoints: Vec<Endpoint>) -> EndpointSlice {
    let mut s = slice(endpoints);
    s.metadata.name = Some(name.into());
    s
}

fn ratios(r: &[(&str, f64)]) -> Option<BTreeMap<String, f64>> {
    Some(r.iter().map(|(z, v)| (z.to_string(), *v)).collect())
}

fn si(create: Vec<EndpointSlice>, update: Vec<EndpointSlice>) -> SliceInfo {
    SliceInfo {
        service_key: "ns/svc".into(),
        address_type: "IPv4".into(),
        to_create: create,
        to_update: update,
        unchanged: Vec::new(),
    }
}

fn counts(c: &[(&str, i64)]) -> ZoneCounts {
    c.iter().map(|(z, n)| (z.to_string(), *n)).collect()
}

/// (address, hinted zones) of every endpoint.
fn hints_of(slices: &[EndpointSlice]) -> Vec<Vec<(String, Option<Vec<String>>)>> {
    slices
        .iter()
        .map(|s| {
            s.endpoints
                .iter()
                .map(|e| {
                    (
                        e.addresses[0].clone(),
                        e.hints.as_ref().map(|h| {
                            h.for_zones
                                .iter()
                                .flatten()
                                .map(|z| z.name.clone())
                                .collect()
                        }),
                    )
                })
                .collect()
        })
        .collect()
}

fn want(rows: &[&[(&str, Option<&str>)]]) -> Vec<Vec<(String, Option<Vec<String>>)>> {
    rows.iter()
        .map(|s| {
            s.iter()
                .map(|(ip, z)| (ip.to_string(), z.map(|z| vec![z.to_string()])))
                .collect()
        })
        .collect()
}

fn assert_event(events: &[HintsEvent], reason: &str, prefix: &str) {
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].reason, reason);
    assert_eq!(
        events[0].type_,
        if reason == REASON_ENABLED {
            "Normal"
        } else {
            "Warning"
        }
    );
    assert!(
        events[0].message.starts_with(prefix),
        "{:?} should start with {prefix:?}",
        events[0].message
    );
    assert!(events[0].message.ends_with(", addressType: IPv4"));
}

// TestAddHints

#[test]
fn add_hints_empty_without_zone_ratios() {
    let cache = TopologyCache::new();
    cache.set_cpu_ratios(None);
    let mut info = si(vec![], vec![]);
    let ev = cache.add_hints(&mut info);
    assert_event(&ev, REASON_DISABLED, INSUFFICIENT_NODE_INFO);
    assert!(info.to_create.is_empty() && info.to_update.is_empty());
    assert_eq!(cache.hints_of("ns/svc"), None);
}

#[test]
fn add_hints_slice_to_create_without_zone_ratios() {
    let cache = TopologyCache::new();
    let mut info = si(vec![slice(vec![ready("10.1.2.3", "zone-a")])], vec![]);
    let ev = cache.add_hints(&mut info);
    assert_event(&ev, REASON_DISABLED, INSUFFICIENT_NODE_INFO);
    assert_eq!(hints_of(&info.to_create), want(&[&[("10.1.2.3", None)]]));
    assert_eq!(cache.hints_of("ns/svc"), None);
}

#[test]
fn add_hints_two_endpoints_for_three_zones_is_insufficient() {
    let cache = TopologyCache::new();
    cache.set_cpu_ratios(ratios(&[("zone-a", 0.3), ("zone-b", 0.4), ("zone-c", 0.3)]));
    let mut info = si(
        vec![slice(vec![
            ready("10.1.2.3", "zone-a"),
            ready("10.1.2.4", "zone-b"),
        ])],
        vec![],
    );
    let ev = cache.add_hints(&mut info);
    assert_event(&ev, REASON_DISABLED, INSUFFICIENT_NUMBER_OF_ENDPOINTS);
    assert_eq!(
        ev[0].message,
        "Insufficient number of endpoints (2 endpoints, 3 zones), addressType: IPv4"
    );
    assert_eq!(
        hints_of(&info.to_create),
        want(&[&[("10.1.2.3", None), ("10.1.2.4", None)]])
    );
    assert_eq!(cache.hints_of("ns/svc"), None);
}

#[test]
fn add_hints_two_endpoints_for_two_zones() {
    let cache = TopologyCache::new();
    cache.set_cpu_ratios(ratios(&[("zone-a", 0.45), ("zone-b", 0.55)]));
    let mut info = si(
        vec![slice(vec![
            ready("10.1.2.3", "zone-a"),
            ready("10.1.2.4", "zone-b"),
        ])],
        vec![],
    );
    let ev = cache.add_hints(&mut info);
    assert_event(&ev, REASON_ENABLED, TOPOLOGY_AWARE_HINTS_ENABLED);
    assert_eq!(
        hints_of(&info.to_create),
        want(&[&[("10.1.2.3", Some("zone-a")), ("10.1.2.4", Some("zone-b"))]])
    );
    assert_eq!(
        cache.hints_of("ns/svc"),
        Some(BTreeMap::from([(
            "IPv4".to_string(),
            counts(&[("zone-a", 1), ("zone-b", 1)])
        )]))
    );
    // Already enabled: no second Event.
    let mut again = si(
        vec![slice(vec![
            ready("10.1.2.3", "zone-a"),
            ready("10.1.2.4", "zone-b"),
        ])],
        vec![],
    );
    assert!(cache.add_hints(&mut again).is_empty());
}

#[test]
fn add_hints_skips_unready_and_unknown_endpoints() {
    let cache = TopologyCache::new();
    cache.set_cpu_ratios(ratios(&[("zone-a", 0.45), ("zone-b", 0.55)]));
    let mut info = si(
        vec![slice(vec![
            ready("10.1.2.3", "zone-a"),
            ready("10.1.2.4", "zone-b"),
            ep("10.1.2.5", Some("zone-b"), Some(false), None),
            ep("10.1.2.6", Some("zone-b"), None, None),
        ])],
        vec![],
    );
    let ev = cache.add_hints(&mut info);
    assert_event(&ev, REASON_ENABLED, TOPOLOGY_AWARE_HINTS_ENABLED);
    assert_eq!(
        hints_of(&info.to_create),
        want(&[&[
            ("10.1.2.3", Some("zone-a")),
            ("10.1.2.4", Some("zone-b")),
            ("10.1.2.5", None),
            ("10.1.2.6", None)
        ]])
    );
    assert_eq!(
        cache.hints_of("ns/svc").unwrap()["IPv4"],
        counts(&[("zone-a", 1), ("zone-b", 1)])
    );
}

#[test]
fn add_hints_slices_to_create_and_update_within_three_zone_threshold() {
    let cache = TopologyCache::new();
    cache.set_cpu_ratios(ratios(&[
        ("zone-a", 0.35),
        ("zone-b", 0.35),
        ("zone-c", 0.30),
    ]));
    let mut info = si(
        vec![
            slice(vec![
                ready("10.1.2.3", "zone-a"),
                ready("10.1.2.4", "zone-b"),
            ]),
            slice(vec![
                ready("10.1.3.3", "zone-c"),
                ready("10.1.3.4", "zone-c"),
                ready("10.1.3.4", "zone-a"),
            ]),
        ],
        vec![
            slice(vec![
                ready("10.2.2.3", "zone-a"),
                ready("10.2.2.4", "zone-a"),
            ]),
            slice(vec![
                ready("10.2.3.3", "zone-b"),
                ready("10.2.3.4", "zone-c"),
                ready("10.2.3.4", "zone-a"),
            ]),
        ],
    );
    let ev = cache.add_hints(&mut info);
    assert_event(&ev, REASON_ENABLED, TOPOLOGY_AWARE_HINTS_ENABLED);
    // zone-a has 5 endpoints for a desired 3.5, zone-b 2 for 3.5: the first zone-a endpoint
    // is lent to zone-b.
    assert_eq!(
        hints_of(&info.to_create),
        want(&[
            &[("10.1.2.3", Some("zone-b")), ("10.1.2.4", Some("zone-b"))],
            &[
                ("10.1.3.3", Some("zone-c")),
                ("10.1.3.4", Some("zone-c")),
                ("10.1.3.4", Some("zone-a"))
            ],
        ])
    );
    assert_eq!(
        hints_of(&info.to_update),
        want(&[
            &[("10.2.2.3", Some("zone-a")), ("10.2.2.4", Some("zone-a"))],
            &[
                ("10.2.3.3", Some("zone-b")),
                ("10.2.3.4", Some("zone-c")),
                ("10.2.3.4", Some("zone-a"))
            ],
        ])
    );
    assert_eq!(
        cache.hints_of("ns/svc").unwrap()["IPv4"],
        counts(&[("zone-a", 4), ("zone-b", 3), ("zone-c", 3)])
    );
}

#[test]
fn add_hints_endpoint_without_zone_removes_every_hint() {
    let cache = TopologyCache::new();
    cache.set_cpu_ratios(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)]));
    let mut info = si(
        vec![slice(vec![
            ready("10.1.2.3", "zone-a"),
            ep("10.1.2.4", None, Some(true), None),
        ])],
        vec![],
    );
    info.unchanged = vec![named(
        "old",
        vec![
            hinted("10.1.2.5", "zone-b", "zone-b"),
            hinted("10.1.2.6", "zone-a", "zone-a"),
        ],
    )];
    let ev = cache.add_hints(&mut info);
    assert_event(&ev, REASON_DISABLED, NO_ZONE_SPECIFIED);
    assert_eq!(
        ev[0].message,
        "One or more endpoints do not have a zone specified, addressType: IPv4"
    );
    assert!(info.unchanged.is_empty(), "the hinted slice is rewritten");
    assert_eq!(
        hints_of(&info.to_create),
        want(&[&[("10.1.2.3", None), ("10.1.2.4", None)]])
    );
    assert_eq!(
        hints_of(&info.to_update),
        want(&[&[("10.1.2.5", None), ("10.1.2.6", None)]])
    );
    assert!(!cache.has_populated_hints("ns/svc"));
}

#[test]
fn add_hints_keeps_unchanged_slices_whose_hints_still_fit() {
    let cache = TopologyCache::new();
    cache.set_cpu_ratios(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)]));
    let mut info = si(vec![], vec![]);
    info.unchanged = vec![
        named(
            "fits",
            vec![
                hinted("10.0.0.1", "zone-a", "zone-a"),
                hinted("10.0.0.2", "zone-b", "zone-b"),
            ],
        ),
        // A hint for a zone with no Nodes any more: rewritten.
        named("stale", vec![hinted("10.0.0.3", "zone-a", "zone-gone")]),
        // No hints: rewritten.
        named("bare", vec![ready("10.0.0.4", "zone-b")]),
    ];
    let ev = cache.add_hints(&mut info);
    assert_event(&ev, REASON_ENABLED, TOPOLOGY_AWARE_HINTS_ENABLED);
    assert_eq!(info.unchanged.len(), 1);
    assert_eq!(info.unchanged[0].metadata.name.as_deref(), Some("fits"));
    assert_eq!(
        hints_of(&info.to_update),
        want(&[
            &[("10.0.0.3", Some("zone-a"))],
            &[("10.0.0.4", Some("zone-b"))]
        ])
    );
    assert_eq!(
        cache.hints_of("ns/svc").unwrap()["IPv4"],
        counts(&[("zone-a", 2), ("zone-b", 2)])
    );
}

#[test]
fn min_allocation_beyond_the_threshold_removes_hints() {
    // Two even zones and 3 endpoints: each zone needs ceil(1.5 / 1.2) = 2.
    let r = ratios(&[("zone-a", 0.5), ("zone-b", 0.5)]).unwrap();
    let err = allocations(&r, 3).unwrap_err();
    assert_eq!(err.reason, REASON_DISABLED);
    assert_eq!(
        err.message,
        "Unable to allocate minimum required endpoints to each zone without exceeding overload threshold (3 endpoints, 2 zones)"
    );
    let a = allocations(&r, 4).unwrap();
    assert_eq!(
        a["zone-a"],
        Allocation {
            minimum: 2,
            maximum: 2,
            desired: 2.0
        }
    );
    let one = ratios(&[("zone-a", 1.0)]).unwrap();
    assert_eq!(
        allocations(&one, 4).unwrap_err().message,
        NODES_READY_IN_ONE_ZONE_ONLY
    );
}

#[test]
fn allocations_are_proportional_to_cpu() {
    // 3:1 CPU over 4 endpoints: 3 for zone-a (no fewer than 3), 1 for zone-b.
    let r = ratios(&[("zone-a", 0.75), ("zone-b", 0.25)]).unwrap();
    let a = allocations(&r, 4).unwrap();
    assert_eq!(
        (
            a["zone-a"].minimum,
            a["zone-a"].maximum,
            a["zone-a"].desired
        ),
        (3, 3, 3.0)
    );
    assert_eq!(
        (
            a["zone-b"].minimum,
            a["zone-b"].maximum,
            a["zone-b"].desired
        ),
        (1, 1, 1.0)
    );
    // 10 endpoints over 50/45/5 %: minimums 5, 4, 1, the one spare raises every maximum.
    let r = ratios(&[("zone-a", 0.5), ("zone-b", 0.45), ("zone-c", 0.05)]).unwrap();
    let a = allocations(&r, 10).unwrap();
    let got: Vec<(i64, i64)> = a.values().map(|a| (a.minimum, a.maximum)).collect();
    assert_eq!(got, [(5, 5), (4, 4), (1, 1)]);
    assert_eq!(a["zone-c"].desired, 1.0, "raised to the minimum");
}

// TestSetNodes

fn node(zone: Option<&str>, cpu: Option<&str>, ready: &str, labels: &[&str]) -> Node {
    let mut l: BTreeMap<String, String> = labels
        .iter()
        .map(|k| (k.to_string(), String::new()))
        .collect();
    if let Some(z) = zone {
        l.insert(crate::slices::ZONE_LABEL.into(), z.into());
    }
    Node {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("n".into()),
            labels: Some(l),
            ..Default::default()
        },
        status: Some(NodeStatus {
            allocatable: cpu.map(|c| BTreeMap::from([("cpu".to_string(), Quantity(c.into()))])),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: ready.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn set_nodes_ratios(nodes: &[Node]) -> Option<BTreeMap<String, f64>> {
    let cache = TopologyCache::new();
    cache.set_nodes(nodes);
    cache.cpu_ratios()
}

#[test]
fn set_nodes_cases() {
    let cp = "node-role.kubernetes.io/control-plane";
    let n = |z: &str, cpu: &str, ready: &str| node(Some(z), Some(cpu), ready, &[]);
    type Case<'a> = (&'a str, Vec<Node>, Option<Vec<(&'a str, f64)>>);
    let cases: Vec<Case> = vec![
        ("empty", vec![], None),
        ("single node", vec![n("zone-a", "1000m", "True")], None),
        (
            "single zone",
            vec![n("zone-a", "1000m", "True"), n("zone-a", "1000m", "True")],
            None,
        ),
        (
            "2 zones",
            vec![n("zone-a", "1000m", "True"), n("zone-b", "1000m", "True")],
            Some(vec![("zone-a", 0.5), ("zone-b", 0.5)]),
        ),
        (
            "2 zones, unready node in 1, ready node in 1",
            vec![n("zone-a", "1000m", "False"), n("zone-b", "1000m", "True")],
            None,
        ),
        (
            "2 zones, control plane node in 1, ready node in 1",
            vec![
                n("zone-a", "1000m", "True"),
                node(Some("zone-b"), Some("1000m"), "True", &[cp]),
            ],
            None,
        ),
        (
            "2 zones, unready node in 1, ready node in 2",
            vec![
                n("zone-a", "1000m", "True"),
                n("zone-b", "1000m", "True"),
                n("zone-b", "1000m", "False"),
            ],
            Some(vec![("zone-a", 0.5), ("zone-b", 0.5)]),
        ),
        (
            "2 zones, control plane node in 1, ready node in 2",
            vec![
                n("zone-a", "1000m", "True"),
                n("zone-b", "1000m", "True"),
                node(Some("zone-b"), Some("1000m"), "True", &[cp]),
            ],
            Some(vec![("zone-a", 0.5), ("zone-b", 0.5)]),
        ),
        (
            "3 zones, 4 nodes in 1, 2 nodes in 1, 1 node in 1",
            vec![
                n("zone-a", "1000m", "True"),
                n("zone-a", "1000m", "True"),
                n("zone-a", "1000m", "True"),
                n("zone-a", "2000m", "True"),
                n("zone-b", "3000m", "True"),
                n("zone-b", "1500m", "True"),
                n("zone-c", "500m", "True"),
            ],
            Some(vec![("zone-a", 0.5), ("zone-b", 0.45), ("zone-c", 0.05)]),
        ),
        // One ready Node without a zone or without CPU spoils the whole picture.
        (
            "a ready node without a zone",
            vec![
                n("zone-a", "1", "True"),
                n("zone-b", "1", "True"),
                node(None, Some("1"), "True", &[]),
            ],
            None,
        ),
        (
            "a ready node without allocatable cpu",
            vec![
                n("zone-a", "1", "True"),
                n("zone-b", "1", "True"),
                node(Some("zone-b"), None, "True", &[]),
            ],
            None,
        ),
        (
            "a node without a Ready condition is left out",
            vec![
                n("zone-a", "3", "True"),
                n("zone-b", "1", "True"),
                node(None, None, "Unknown", &[]),
            ],
            Some(vec![("zone-a", 0.75), ("zone-b", 0.25)]),
        ),
    ];
    for (name, nodes, want) in cases {
        let want = want.map(|w| {
            w.into_iter()
                .map(|(z, r)| (z.to_string(), r))
                .collect::<BTreeMap<_, _>>()
        });
        assert_eq!(set_nodes_ratios(&nodes), want, "{name}");
    }
}

#[test]
fn set_nodes_tells_whether_the_shares_changed() {
    let cache = TopologyCache::new();
    let a = node(Some("zone-a"), Some("1"), "True", &[]);
    let b = node(Some("zone-b"), Some("1"), "True", &[]);
    let b_bigger = node(Some("zone-b"), Some("3"), "True", &[]);
    assert!(
        !cache.set_nodes(std::slice::from_ref(&a)),
        "insufficient before and after"
    );
    assert!(cache.set_nodes(&[a.clone(), b.clone()]));
    assert!(!cache.set_nodes(&[b.clone(), a.clone()]));
    assert!(cache.set_nodes(&[a.clone(), b_bigger]));
    assert!(cache.set_nodes(&[a]));
}

#[test]
fn node_changes_that_move_the_shares() {
    let a = node(Some("zone-a"), Some("2"), "True", &[]);
    assert!(node_changed(None, Some(&a)));
    assert!(node_changed(Some(&a), None));
    assert!(!node_changed(Some(&a), Some(&a.clone())));
    for b in [
        node(Some("zone-b"), Some("2"), "True", &[]),
        node(Some("zone-a"), Some("2500m"), "True", &[]),
        node(Some("zone-a"), Some("2"), "False", &[]),
        node(
            Some("zone-a"),
            Some("2"),
            "True",
            &["node-role.kubernetes.io/master"],
        ),
    ] {
        assert!(node_changed(Some(&a), Some(&b)), "{b:?}");
    }
    // 2 and 2000m are the same CPU.
    let same = node(Some("zone-a"), Some("2000m"), "True", &[]);
    assert!(!node_changed(Some(&a), Some(&same)));
}

// Test_redistributeHints

#[test]
fn redistribute_hints_cases() {
    type Case<'a> = (
        &'a str,
        Vec<EndpointSlice>,
        Vec<(&'a str, i64)>,
        Vec<(&'a str, i64)>,
        Vec<(&'a str, i64)>,
    );
    let cases: Vec<Case> = vec![
        ("empty", vec![], vec![], vec![], vec![]),
        (
            "single endpoint",
            vec![slice(vec![hinted("10.0.0.1", "zone-a", "zone-a")])],
            vec![("zone-a", 1)],
            vec![("zone-b", 1)],
            vec![("zone-a", -1), ("zone-b", 1)],
        ),
        (
            "endpoints from 1 zone redistributed to 2 other zones",
            vec![slice(vec![
                hinted("10.0.0.1", "zone-a", "zone-a"),
                hinted("10.0.0.2", "zone-a", "zone-a"),
                hinted("10.0.0.3", "zone-a", "zone-a"),
            ])],
            vec![("zone-a", 2)],
            vec![("zone-b", 1), ("zone-c", 1)],
            vec![("zone-a", -2), ("zone-b", 1), ("zone-c", 1)],
        ),
    ];
    for (name, mut slices, giving, receiving, expected) in cases {
        let mut g = counts(&giving);
        let mut r = counts(&receiving);
        let moved = redistribute_hints(slices.iter_mut(), &mut g, &mut r);
        assert_eq!(moved, counts(&expected), "{name}");
    }
}

// Test_getGivingAndReceivingZones

#[test]
fn giving_and_receiving_zones_cases() {
    let alloc = |d: &[(&str, f64)]| -> BTreeMap<String, Allocation> {
        d.iter()
            .map(|(z, desired)| {
                (
                    z.to_string(),
                    Allocation {
                        minimum: 0,
                        maximum: 0,
                        desired: *desired,
                    },
                )
            })
            .collect()
    };
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, f64)>,
        Vec<(&'a str, i64)>,
        Vec<(&'a str, i64)>,
        Vec<(&'a str, i64)>,
    );
    let even = vec![("zone-a", 5.0), ("zone-b", 5.0), ("zone-c", 5.0)];
    let uneven = vec![("zone-a", 5.0), ("zone-b", 5.6), ("zone-c", 5.4)];
    let cases: Vec<Case> = vec![
        ("empty", vec![], vec![], vec![], vec![]),
        (
            "simple allocation with no need for rebalancing",
            vec![("zone-a", 1.2), ("zone-b", 1.1), ("zone-c", 1.0)],
            vec![("zone-a", 1), ("zone-b", 1), ("zone-c", 1)],
            vec![],
            vec![],
        ),
        (
            "preference for same zone even when giving an extra endpoint would result in slightly better distribution",
            vec![("zone-a", 5.1), ("zone-b", 5.1), ("zone-c", 5.8)],
            vec![("zone-a", 16)],
            vec![("zone-a", 10)],
            vec![("zone-b", 5), ("zone-c", 5)],
        ),
        (
            "when 2 zones need < 1 endpoint, give to zone that needs endpoint most",
            uneven.clone(),
            vec![("zone-a", 16)],
            vec![("zone-a", 11)],
            vec![("zone-b", 6), ("zone-c", 5)],
        ),
        (
            "when 2 zones have extra endpoints, give from zone with most extra",
            uneven,
            vec![("zone-b", 8), ("zone-c", 8)],
            vec![("zone-b", 2), ("zone-c", 3)],
            vec![("zone-a", 5)],
        ),
        (
            "ensure function can handle unexpected data (more allocated than allocations)",
            even.clone(),
            vec![("zone-a", 6), ("zone-b", 6), ("zone-c", 6)],
            vec![],
            vec![],
        ),
        (
            "ensure function can handle unexpected data (negative allocations)",
            vec![("zone-a", -5.0), ("zone-b", -5.0), ("zone-c", -5.0)],
            vec![("zone-a", 6), ("zone-b", 6), ("zone-c", 6)],
            vec![],
            vec![],
        ),
        (
            "ensure function can handle unexpected data (negative allocated)",
            even.clone(),
            vec![("zone-a", -4), ("zone-b", -3), ("zone-c", -2)],
            vec![],
            vec![],
        ),
        (
            "ensure function can handle unexpected data (negative for 1 zone)",
            even,
            vec![("zone-a", -40), ("zone-b", 20), ("zone-c", 20)],
            vec![("zone-b", 15), ("zone-c", 15)],
            vec![("zone-a", 30)],
        ),
    ];
    for (name, desired, allocated, giving, receiving) in cases {
        let (g, r) = giving_and_receiving_zones(&alloc(&desired), &counts(&allocated));
        assert_eq!((g, r), (counts(&giving), counts(&receiving)), "{name}");
    }
}

// Test_getHintsByZone

#[test]
fn hints_by_zone_cases() {
    let max = |m: &[(&str, i64)]| -> BTreeMap<String, Allocation> {
        m.iter()
            .map(|(z, maximum)| {
                (
                    z.to_string(),
                    Allocation {
                        minimum: 0,
                        maximum: *maximum,
                        desired: 0.0,
                    },
                )
            })
            .collect()
    };
    type Case<'a> = (
        &'a str,
        Vec<Endpoint>,
        Vec<(&'a str, i64)>,
        Vec<(&'a str, i64)>,
        Option<Vec<(&'a str, i64)>>,
    );
    let cases: Vec<Case> = vec![
        ("empty", vec![], vec![], vec![], Some(vec![])),
        (
            "single zone hint",
            vec![hinted("10.0.0.1", "zone-a", "zone-a")],
            vec![("zone-a", 3)],
            vec![("zone-a", 1)],
            Some(vec![("zone-a", 1)]),
        ),
        (
            "single zone hint with 1 unready endpoint and 1 unknown endpoint",
            vec![
                hinted("10.0.0.1", "zone-a", "zone-a"),
                ep("10.0.0.2", Some("zone-a"), Some(false), Some(&["zone-a"])),
                ep("10.0.0.3", Some("zone-a"), None, Some(&["zone-a"])),
            ],
            vec![("zone-a", 3)],
            vec![("zone-a", 1)],
            Some(vec![("zone-a", 1)]),
        ),
        (
            "multiple zone hints",
            vec![
                hinted("10.0.0.1", "zone-a", "zone-a"),
                hinted("10.0.0.2", "zone-a", "zone-b"),
                hinted("10.0.0.3", "zone-b", "zone-b"),
            ],
            vec![("zone-a", 3), ("zone-b", 3), ("zone-c", 3)],
            vec![("zone-a", 1), ("zone-b", 1), ("zone-c", 1)],
            Some(vec![("zone-a", 1), ("zone-b", 2)]),
        ),
        (
            "invalid by zones that no longer requires any allocations",
            vec![hinted("10.0.0.1", "zone-a", "zone-non-existent")],
            vec![("zone-a", 3)],
            vec![("zone-a", 1), ("zone-b", 1), ("zone-c", 1)],
            None,
        ),
        (
            "invalid by endpoints with nil hints",
            vec![ready("10.0.0.1", "zone-a")],
            vec![("zone-a", 3)],
            vec![],
            None,
        ),
        (
            "invalid by endpoint with no hints",
            vec![ep("10.0.0.1", Some("zone-a"), Some(true), Some(&[]))],
            vec![("zone-a", 3)],
            vec![],
            None,
        ),
        (
            "invalid by hints that would make minimum allocations impossible",
            vec![
                hinted("10.0.0.1", "zone-a", "zone-a"),
                hinted("10.0.0.2", "zone-a", "zone-a"),
            ],
            vec![("zone-a", 2)],
            vec![("zone-a", 1)],
            None,
        ),
    ];
    for (name, endpoints, maximums, allocated, expected) in cases {
        let got = hints_by_zone(&slice(endpoints), &counts(&allocated), &max(&maximums));
        assert_eq!(got, expected.map(|e| counts(&e)), "{name}");
    }
    // Ours: node hints (left by PreferSameNode) are rewritten, so proxies route by zone.
    let mut e = hinted("10.0.0.1", "zone-a", "zone-a");
    e.hints.as_mut().unwrap().for_nodes = Some(vec![ForNode {
        name: "node-1".into(),
    }]);
    assert_eq!(
        hints_by_zone(&slice(vec![e]), &counts(&[]), &max(&[("zone-a", 3)])),
        None
    );
}

// Test_getTotalReadyEndpoints

fn slice_with(ready_n: usize, unready_n: usize) -> EndpointSlice {
    slice(
        (0..ready_n + unready_n)
            .map(|i| ep(&format!("10.1.2.{i}"), None, Some(i < ready_n), None))
            .collect(),
    )
}

#[test]
fn total_ready_endpoints_cases() {
    let info = |c: Vec<EndpointSlice>, u: Vec<EndpointSlice>, k: Vec<EndpointSlice>| SliceInfo {
        to_create: c,
        to_update: u,
        unchanged: k,
        ..Default::default()
    };
    assert_eq!(info(vec![], vec![], vec![]).total_ready_endpoints(), 0);
    assert_eq!(
        info(vec![slice_with(0, 0)], vec![], vec![]).total_ready_endpoints(),
        0
    );
    assert_eq!(
        info(vec![slice_with(15, 0), slice_with(8, 0)], vec![], vec![]).total_ready_endpoints(),
        23
    );
    assert_eq!(
        info(
            vec![slice_with(15, 0), slice_with(8, 0)],
            vec![slice_with(2, 0)],
            vec![slice_with(100, 0), slice_with(90, 0)]
        )
        .total_ready_endpoints(),
        215
    );
    assert_eq!(
        info(
            vec![slice_with(15, 3), slice_with(5, 4)],
            vec![slice_with(3, 8)],
            vec![slice_with(98, 2), slice_with(90, 6)]
        )
        .total_ready_endpoints(),
        211
    );
}

// serviceOverloaded / GetOverloadedServices

#[test]
fn overloaded_services_follow_the_node_shares() {
    let even = ratios(&[("zone-a", 0.5), ("zone-b", 0.5)]).unwrap();
    assert!(!service_overloaded(&counts(&[]), &even));
    assert!(service_overloaded(
        &counts(&[("zone-a", 1)]),
        &BTreeMap::new()
    ));
    assert!(!service_overloaded(
        &counts(&[("zone-a", 2), ("zone-b", 2)]),
        &even
    ));
    // A zone with no hinted endpoints, or fewer than its minimum (ceil(5 * 0.5 / 1.2) = 3).
    assert!(service_overloaded(&counts(&[("zone-a", 2)]), &even));
    assert!(service_overloaded(
        &counts(&[("zone-a", 3), ("zone-b", 2)]),
        &ratios(&[("zone-a", 0.2), ("zone-b", 0.8)]).unwrap()
    ));

    let cache = TopologyCache::new();
    cache.set_cpu_ratios(Some(even));
    let mut info = si(
        vec![slice(vec![
            ready("10.0.0.1", "zone-a"),
            ready("10.0.0.2", "zone-b"),
        ])],
        vec![],
    );
    cache.add_hints(&mut info);
    assert!(cache.overloaded_services().is_empty());
    // zone-b loses its Nodes: a 2-zone picture is gone, the Service must be looked at.
    cache.set_cpu_ratios(None);
    assert_eq!(cache.overloaded_services(), ["ns/svc"]);
    cache.remove_hints("ns/svc", "IPv4");
    assert!(cache.overloaded_services().is_empty());
    assert!(!cache.has_populated_hints("ns/svc"));
}

#[test]
fn cpu_quantities_in_millicores() {
    for (q, m) in [
        ("1", Some(1000)),
        ("1000m", Some(1000)),
        ("1500m", Some(1500)),
        ("0.5", Some(500)),
        (".25", Some(250)),
        ("2.0005", Some(2001)), // rounded up, as MilliValue
        ("1e3", Some(1_000_000)),
        ("1E-3", Some(1)),
        ("1k", Some(1_000_000)),
        ("1Ki", Some(1_024_000)),
        ("100u", Some(1)),
        ("+3", Some(3000)),
        ("0", Some(0)),
        ("", None),
        ("abc", None),
        ("1.2.3", None),
        ("5x", None),
    ] {
        assert_eq!(quantity_millis(q), m, "{q:?}");
    }
}
