//! The EndpointSlice and Endpoints reconcilers replayed through reference 03 (and 07): the
//! same objects, in the same order of events, must give what kube-controller-manager wrote.

use super::*;
use crate::endpoints;
use crate::golden::{reference_output, strip_server_fields, Sim};
use k8s_openapi::api::core::v1::Endpoints;
use serde_json::{json, Value};

const NGINX_1: &str = "88582919-09f3-4dd1-8f92-88b68d1d115c";
const NGINX_2: &str = "d64edecd-f5d6-4dc4-88f4-54206235ec65";
const NGINX_3: &str = "f6cf6698-2e2d-441d-92e3-9b92b9e6825f";
const NGINX_NOPORT: &str = "d64de75d-92fb-461c-812e-046e12a8a340";
const NGINX_TERM: &str = "8504bc07-e1aa-406c-a3ca-411767e69519";

fn service(name: &str, uid: &str, created: &str, spec: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": uid, "labels": {"app": "nginx"}, "creationTimestamp": created},
        "spec": spec,
    }))
    .unwrap()
}

fn nginx_service(selector: &str) -> Service {
    service(
        "nginx-service",
        "9d107a2b-a6a3-4adf-8237-fb63730f6c1a",
        "2026-11-21T23:26:38Z",
        json!({"clusterIP": "10.96.17.252", "clusterIPs": ["10.96.17.252"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
               "ports": [{"name": "nginx-port", "port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"app": selector}, "type": "ClusterIP"}),
    )
}

fn nginx_named() -> Service {
    service(
        "nginx-named",
        "2b89f3c9-5792-4d8c-9b25-5fb7faced8c1",
        "2026-11-21T23:26:57Z",
        json!({"clusterIP": "10.96.104.203", "clusterIPs": ["10.96.104.203"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
               "ports": [{"name": "web", "port": 8080, "protocol": "TCP", "targetPort": "http"}], "selector": {"app": "nginx"}, "type": "ClusterIP"}),
    )
}

/// A pod as scenario 03 creates it (spec.nodeName node1, container port 80 named http).
fn pod(name: &str, uid: &str, port: (i32, &str)) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": uid, "labels": {"app": "nginx"}},
        "spec": {"nodeName": "node1", "containers": [{"name": "container-nginx", "image": "nginx:1.26.2",
                 "ports": [{"containerPort": port.0, "name": port.1, "protocol": "TCP"}]}]},
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }))
    .unwrap()
}

/// `kubectl patch pod --subresource=status` as the reference does it (no lastTransitionTime).
fn patch_status(p: &mut Pod, ip: &str, ready: bool) {
    p.status = Some(
        serde_json::from_value(json!({
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "qosClass": "BestEffort",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        }))
        .unwrap(),
    );
}

fn compare(what: &str, reference: Value, ours: Value) {
    let (r, o) = (strip_server_fields(reference), strip_server_fields(ours));
    assert_eq!(
        o,
        r,
        "{what}:\n--- ours\n{}\n--- reference\n{}",
        serde_json::to_string_pretty(&o).unwrap(),
        serde_json::to_string_pretty(&r).unwrap()
    );
}

fn slice_list(yaml: &str) -> Vec<Value> {
    let v: Value = serde_saphyr::from_str(yaml).expect("reference YAML");
    v["items"].as_array().cloned().unwrap_or_default()
}

/// The endpoints of a freshly created slice come out of a Go map upstream (random order);
/// ours are in IP order. Compare those as sets.
fn sort_endpoints(mut v: Value) -> Value {
    if let Some(eps) = v["endpoints"].as_array_mut() {
        eps.sort_by_key(|e| e["addresses"][0].as_str().unwrap_or("").to_string());
    }
    v
}

#[test]
fn reference_03_endpoints_and_slices_follow_pods_selector_and_named_port() {
    let ref03 = "03-pods-and-endpoints.txt";
    let mut sim = Sim::new();
    let mut svc = nginx_service("nginx");
    let mut pods = vec![
        pod("nginx-1", NGINX_1, (80, "http")),
        pod("nginx-2", NGINX_2, (80, "http")),
        pod("nginx-3", NGINX_3, (80, "http")),
    ];
    sim.sync(&svc, &pods);
    // Pending pods have no address: only the placeholder slice, and no subsets.
    assert_eq!(sim.slices_of("nginx-service").len(), 1);
    assert!(sim.slices_of("nginx-service")[0].endpoints.is_empty());
    assert!(sim.endpoints["nginx-service"].subsets.is_none());

    patch_status(&mut pods[0], "10.42.0.11", true);
    sim.sync(&svc, &pods);
    patch_status(&mut pods[1], "10.42.0.12", true);
    sim.sync(&svc, &pods);
    patch_status(&mut pods[2], "10.42.0.13", false);
    sim.sync(&svc, &pods);
    let expected = slice_list(&reference_output(
        ref03,
        "kubectl get endpointslices -l kubernetes.io/service-name=nginx-service -o yaml",
        0,
    ));
    compare(
        "slices after the status patches",
        expected[0].clone(),
        sim.slice_json("nginx-service", 0),
    );
    let expected: Value = serde_saphyr::from_str(&reference_output(
        ref03,
        "kubectl get ep nginx-service -o yaml",
        0,
    ))
    .unwrap();
    compare(
        "Endpoints after the status patches",
        expected,
        sim.endpoints_json("nginx-service"),
    );

    // The selector of seed 001 changes to app=myapp: nothing matches.
    svc = nginx_service("myapp");
    sim.sync(&svc, &pods);
    let expected = slice_list(&reference_output(
        ref03,
        "kubectl get endpointslices -l kubernetes.io/service-name=nginx-service -o yaml",
        1,
    ));
    compare(
        "slices after the selector change",
        expected[0].clone(),
        sim.slice_json("nginx-service", 0),
    );
    let expected: Value = serde_saphyr::from_str(&reference_output(
        ref03,
        "kubectl get ep nginx-service -o yaml",
        1,
    ))
    .unwrap();
    compare(
        "Endpoints after the selector change",
        expected,
        sim.endpoints_json("nginx-service"),
    );
    assert_eq!(sim.created, 1, "the placeholder is reused, never recreated");

    svc = nginx_service("nginx");
    sim.sync(&svc, &pods);
    assert_eq!(sim.slices_of("nginx-service").len(), 1);

    // The named targetPort, and a pod without that port.
    let named = nginx_named();
    sim.sync(&named, &pods);
    pods.push(pod("nginx-noport", NGINX_NOPORT, (8080, "alt")));
    sim.sync_all(&[&svc, &named], &pods);
    patch_status(&mut pods[3], "10.42.0.14", true);
    sim.sync_all(&[&svc, &named], &pods);
    let expected: Value = serde_saphyr::from_str(&reference_output(
        ref03,
        "kubectl get ep nginx-named -o yaml",
        0,
    ))
    .unwrap();
    compare(
        "Endpoints of nginx-named",
        expected,
        sim.endpoints_json("nginx-named"),
    );
    let expected: Value = serde_saphyr::from_str(&reference_output(
        ref03,
        "kubectl get ep nginx-service -o yaml",
        2,
    ))
    .unwrap();
    compare(
        "Endpoints of nginx-service with nginx-noport",
        expected,
        sim.endpoints_json("nginx-service"),
    );
    let expected = slice_list(&reference_output(
        ref03,
        "kubectl get endpointslices -l kubernetes.io/service-name=nginx-named -o yaml",
        0,
    ));
    // Upstream lists by generated name; match each reference slice by its ports.
    for want in expected {
        let ours = sim
            .slices_of("nginx-named")
            .into_iter()
            .map(|s| sim.to_json(&s))
            .find(|s| s["ports"] == want["ports"])
            .expect("a slice with these ports");
        compare(
            "a slice of nginx-named",
            sort_endpoints(want),
            sort_endpoints(ours),
        );
    }

    // A terminating endpoint: ready=false, serving=true, terminating=true; gone from v1 Endpoints.
    pods.push(pod("nginx-term", NGINX_TERM, (80, "http")));
    sim.sync_all(&[&svc, &named], &pods);
    patch_status(&mut pods[4], "10.42.0.15", true);
    sim.sync_all(&[&svc, &named], &pods);
    let expected = slice_list(&reference_output(
        ref03,
        "kubectl get endpointslices -l kubernetes.io/service-name=nginx-service -o yaml",
        2,
    ));
    compare(
        "slices with nginx-term",
        expected[0].clone(),
        sim.slice_json("nginx-service", 0),
    );
    pods[4].metadata.deletion_timestamp =
        Some(serde_json::from_value(json!("2026-11-21T23:27:32Z")).unwrap());
    sim.sync_all(&[&svc, &named], &pods);
    let expected = slice_list(&reference_output(
        ref03,
        "kubectl get endpointslices -l kubernetes.io/service-name=nginx-service -o yaml",
        3,
    ));
    compare(
        "slices with nginx-term terminating",
        expected[0].clone(),
        sim.slice_json("nginx-service", 0),
    );
    let expected: Value = serde_saphyr::from_str(&reference_output(
        ref03,
        "kubectl get ep nginx-service -o yaml",
        3,
    ))
    .unwrap();
    compare(
        "Endpoints with nginx-term terminating",
        expected,
        sim.endpoints_json("nginx-service"),
    );

    // Force-deleted: gone from the slice; the other endpoints keep their places.
    pods.pop();
    sim.sync_all(&[&svc, &named], &pods);
    let ips: Vec<String> = sim.slices_of("nginx-service")[0]
        .endpoints
        .iter()
        .map(|e| e.addresses[0].clone())
        .collect();
    assert_eq!(
        ips,
        ["10.42.0.11", "10.42.0.12", "10.42.0.13", "10.42.0.14"]
    );
    assert_eq!(
        sim.created, 3,
        "nginx-service-9c9v9, nginx-named-ztbhh and nginx-named-4pxjh"
    );

    // Nothing changed: nothing is written.
    let writes = sim.writes;
    sim.sync_all(&[&svc, &named], &pods);
    assert_eq!(sim.writes, writes);
}

#[test]
fn reference_07_headless_and_publish_not_ready_addresses() {
    let ref07 = "07-headless-and-clusterip.txt";
    let mut pods = vec![
        pod("nginx-1", NGINX_1, (80, "http")),
        pod("nginx-2", NGINX_2, (80, "http")),
        pod("nginx-3", NGINX_3, (80, "http")),
        pod("nginx-noport", NGINX_NOPORT, (8080, "alt")),
    ];
    for (p, ip, ready) in [
        (0, "10.42.0.11", true),
        (1, "10.42.0.12", true),
        (2, "10.42.0.13", false),
        (3, "10.42.0.14", true),
    ] {
        patch_status(&mut pods[p], ip, ready);
    }
    let headless = service(
        "nginx-headless",
        "8d940d91-2d74-4c2c-8f53-363eb16044e2",
        "2026-11-21T23:27:21Z",
        json!({"clusterIP": "None", "clusterIPs": ["None"], "ipFamilies": ["IPv4"], "ports": [{"name": "nginx-port", "port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"app": "nginx"}}),
    );
    let mut sim = Sim::new();
    sim.sync(&headless, &pods);
    let expected: Value = serde_saphyr::from_str(&reference_output(
        ref07,
        "kubectl get ep nginx-headless -o yaml",
        0,
    ))
    .unwrap();
    compare(
        "headless Endpoints",
        expected,
        sim.endpoints_json("nginx-headless"),
    );
    let expected = slice_list(&reference_output(
        ref07,
        "kubectl get endpointslices -l kubernetes.io/service-name=nginx-headless -o yaml",
        0,
    ));
    compare(
        "headless slice",
        sort_endpoints(expected[0].clone()),
        sort_endpoints(sim.slice_json("nginx-headless", 0)),
    );

    let mut pnr = service(
        "nginx-headless-pnr",
        "083d8a96-9c0f-4492-80dd-80843a5319b6",
        "2026-11-21T23:27:24Z",
        json!({"clusterIP": "None", "clusterIPs": ["None"], "ipFamilies": ["IPv4"], "publishNotReadyAddresses": true, "ports": [{"name": "nginx-port", "port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"app": "nginx"}}),
    );
    pnr.metadata.labels = None;
    sim.sync(&pnr, &pods);
    let expected = slice_list(&reference_output(
        ref07,
        "kubectl get endpointslices -l kubernetes.io/service-name=nginx-headless-pnr -o yaml",
        0,
    ));
    compare(
        "publishNotReadyAddresses slice",
        expected[0].clone(),
        sim.slice_json("nginx-headless-pnr", 0),
    );
    let ep = &sim.endpoints["nginx-headless-pnr"];
    assert_eq!(
        ep.subsets.as_ref().unwrap()[0]
            .addresses
            .as_ref()
            .unwrap()
            .len(),
        4,
        "all four published as ready"
    );
}

fn many_pods(n: usize) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            let mut p = pod(&format!("p{i}"), &format!("uid-{i}"), (80, "http"));
            patch_status(
                &mut p,
                &format!("10.{}.{}.{}", 42 + i / 65536, (i / 256) % 256, i % 256),
                true,
            );
            p
        })
        .collect()
}

#[test]
fn a_thousand_endpoints_fill_ten_slices_of_a_hundred() {
    let svc = nginx_service("nginx");
    let mut pods = many_pods(1000);
    let mut sim = Sim::new();
    sim.sync(&svc, &pods);
    let slices = sim.slices_of("nginx-service");
    assert_eq!(slices.len(), 10);
    assert!(slices.iter().all(|s| s.endpoints.len() == 100));
    // One pod goes: the Endpoints and exactly one slice are rewritten.
    let writes = sim.writes;
    pods.remove(500);
    sim.sync(&svc, &pods);
    assert_eq!(sim.writes - writes, 2);
    // A new pod fills the gap in that slice instead of making an eleventh.
    let mut p = pod("new", "uid-new", (80, "http"));
    patch_status(&mut p, "10.99.0.1", true);
    pods.push(p);
    let writes = sim.writes;
    sim.sync(&svc, &pods);
    assert_eq!(sim.writes - writes, 2);
    assert_eq!(sim.slices_of("nginx-service").len(), 10);
    // Readiness flips update the endpoint in place.
    patch_status(&mut pods[0], "10.42.0.0", false);
    let writes = sim.writes;
    sim.sync(&svc, &pods);
    assert_eq!(sim.writes - writes, 2);
}

#[test]
fn a_service_of_another_uid_loses_its_slices_and_an_address_family_change_replaces_them() {
    let pods = many_pods(3);
    let mut sim = Sim::new();
    let svc = nginx_service("nginx");
    sim.sync(&svc, &pods);
    let old_name = sim.slices_of("nginx-service")[0].metadata.name.clone();
    // Recreated with a new uid: the old slice is not reused (the garbage collector may be
    // deleting it), a new one is made.
    let mut again = svc.clone();
    again.metadata.uid = Some("another-uid".into());
    let existing = sim.slices_of("nginx-service");
    let refs: Vec<&EndpointSlice> = existing.iter().collect();
    let pod_refs: Vec<&Pod> = pods.iter().collect();
    let plan = reconcile(
        &again,
        &pod_refs,
        &refs,
        &|_| NodeLookup::Known(None),
        &Options::default(),
        None,
    );
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.delete.len(), 1);
    assert_eq!(plan.delete[0].metadata.name, old_name);
}

#[test]
fn zones_come_from_nodes_and_unknown_nodes_are_skipped_only_when_required() {
    let svc = nginx_service("nginx");
    let pods = many_pods(2);
    let refs: Vec<&Pod> = pods.iter().collect();
    let zone = |_: &str| NodeLookup::Known(Some("zone-a".into()));
    let plan = reconcile(&svc, &refs, &[], &zone, &Options::default(), None);
    assert_eq!(plan.create[0].endpoints[0].zone.as_deref(), Some("zone-a"));
    let unknown = |_: &str| NodeLookup::Unknown;
    let plan = reconcile(&svc, &refs, &[], &unknown, &Options::default(), None);
    assert_eq!(plan.create[0].endpoints.len(), 2);
    let strict = Options {
        require_nodes: true,
        ..Options::default()
    };
    let plan = reconcile(&svc, &refs, &[], &unknown, &strict, None);
    assert!(plan.create[0].endpoints.is_empty(), "only the placeholder");
}

/// Applies a plan to a list of slices, as the API would (creates get a name).
fn apply(slices: &mut Vec<EndpointSlice>, plan: Plan) {
    for d in &plan.delete {
        slices.retain(|s| s.metadata.name != d.metadata.name);
    }
    for u in plan.update {
        let i = slices
            .iter()
            .position(|s| s.metadata.name == u.metadata.name)
            .expect("updated slice exists");
        slices[i] = u;
    }
    for (i, mut c) in plan.create.into_iter().enumerate() {
        c.metadata.name = Some(format!("created-{}-{i}", slices.len()));
        slices.push(c);
    }
}

#[test]
fn traffic_distribution_hints_follow_the_service_and_are_then_stable() {
    let mut svc = nginx_service("nginx");
    let mut pods = many_pods(250);
    // Pods on two nodes in two zones; one is not ready.
    for (i, p) in pods.iter_mut().enumerate() {
        p.spec.as_mut().unwrap().node_name = Some(format!("node{}", i % 2));
    }
    patch_status(&mut pods[3], "10.42.0.3", false);
    let zone_of = |n: &str| NodeLookup::Known(Some(format!("zone-{n}")));
    let opts = Options::default();
    let mut slices: Vec<EndpointSlice> = Vec::new();
    let sync = |svc: &Service, pods: &[Pod], slices: &mut Vec<EndpointSlice>| {
        let pod_refs: Vec<&Pod> = pods.iter().collect();
        let refs: Vec<&EndpointSlice> = slices.iter().collect();
        let plan = reconcile(svc, &pod_refs, &refs, &zone_of, &opts, None);
        let writes = plan.create.len() + plan.update.len() + plan.delete.len();
        apply(slices, plan);
        writes
    };
    let hinted = |slices: &[EndpointSlice]| -> Vec<(Option<String>, Option<String>)> {
        slices
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .filter_map(|e| e.hints.as_ref())
            .map(|h| {
                (
                    h.for_zones.as_ref().map(|z| z[0].name.clone()),
                    h.for_nodes.as_ref().map(|n| n[0].name.clone()),
                )
            })
            .collect()
    };
    assert_eq!(sync(&svc, &pods, &mut slices), 3);
    assert!(
        hinted(&slices).is_empty(),
        "no trafficDistribution, no hints"
    );
    // PreferClose: every slice was unchanged, each is rewritten with zone hints once.
    svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferClose".into());
    assert_eq!(sync(&svc, &pods, &mut slices), 3);
    for e in slices.iter().flat_map(|s| s.endpoints.iter()) {
        let ready = e.conditions.as_ref().unwrap().ready == Some(true);
        let want = ready.then(|| format!("zone-{}", e.node_name.as_deref().unwrap()));
        let got = e
            .hints
            .as_ref()
            .and_then(|h| h.for_zones.as_ref())
            .map(|z| z[0].name.clone());
        assert_eq!(got, want, "{e:?}");
        assert!(e.hints.as_ref().is_none_or(|h| h.for_nodes.is_none()));
    }
    assert_eq!(hinted(&slices).len(), 249);
    assert_eq!(sync(&svc, &pods, &mut slices), 0, "stable");
    // A new pod lands in one slice, hinted; the others stay untouched.
    let mut p = pod("new", "uid-new", (80, "http"));
    p.spec.as_mut().unwrap().node_name = Some("node1".into());
    patch_status(&mut p, "10.99.0.1", true);
    pods.push(p);
    assert_eq!(sync(&svc, &pods, &mut slices), 1);
    assert_eq!(hinted(&slices).len(), 250);
    // PreferSameNode adds node hints; removing trafficDistribution removes every hint.
    svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferSameNode".into());
    assert_eq!(sync(&svc, &pods, &mut slices), 3);
    assert!(hinted(&slices)
        .iter()
        .all(|(z, n)| z.as_deref().unwrap().strip_prefix("zone-") == n.as_deref()));
    svc.spec.as_mut().unwrap().traffic_distribution = None;
    assert_eq!(sync(&svc, &pods, &mut slices), 3);
    assert!(hinted(&slices).is_empty());
    assert_eq!(sync(&svc, &pods, &mut slices), 0, "stable");
}

/// A Node with a zone, allocatable CPU and a Ready condition.
fn zoned_node(zone: &str, cpu: &str) -> k8s_openapi::api::core::v1::Node {
    serde_json::from_value(json!({
        "metadata": {"name": format!("node-{zone}"), "labels": {ZONE_LABEL: zone}},
        "status": {"allocatable": {"cpu": cpu}, "conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .unwrap()
}

#[test]
fn topology_mode_auto_hints_in_proportion_to_cpu_and_are_then_stable() {
    use crate::topology::TopologyCache;
    let mut svc = nginx_service("nginx");
    svc.metadata.annotations = Some(
        [(
            crate::hints::ANNOTATION_TOPOLOGY_MODE.to_string(),
            "Auto".to_string(),
        )]
        .into(),
    );
    // trafficDistribution is ignored while topology-mode is Auto.
    svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferSameNode".into());
    let mut pods = many_pods(250);
    for (i, p) in pods.iter_mut().enumerate() {
        p.spec.as_mut().unwrap().node_name = Some(format!("node{}", i % 2));
    }
    patch_status(&mut pods[3], "10.42.0.3", false);
    // zone-a has 3 CPUs, zone-b 1: 75 % and 25 % of the 249 ready endpoints.
    let cache = TopologyCache::new();
    cache.set_nodes(&[zoned_node("zone-a", "3"), zoned_node("zone-b", "1000m")]);
    let zone_of =
        |n: &str| NodeLookup::Known(Some(if n == "node0" { "zone-a" } else { "zone-b" }.into()));
    let opts = Options::default();
    let mut slices: Vec<EndpointSlice> = Vec::new();
    let sync = |svc: &Service, pods: &[Pod], slices: &mut Vec<EndpointSlice>| {
        let pod_refs: Vec<&Pod> = pods.iter().collect();
        let refs: Vec<&EndpointSlice> = slices.iter().collect();
        let (plan, events) =
            reconcile_with_topology(svc, &pod_refs, &refs, &zone_of, &opts, None, Some(&cache));
        let writes = plan.create.len() + plan.update.len() + plan.delete.len();
        apply(slices, plan);
        let events: Vec<String> = events
            .iter()
            .map(|e| format!("{} {}: {}", e.type_, e.reason, e.message))
            .collect();
        (writes, events)
    };
    // (endpoint zone, hinted zone) -> count, for ready endpoints.
    let split = |slices: &[EndpointSlice]| -> BTreeMap<(String, String), usize> {
        let mut m = BTreeMap::new();
        for e in slices.iter().flat_map(|s| s.endpoints.iter()) {
            let ready = e.conditions.as_ref().unwrap().ready == Some(true);
            let hint = e.hints.as_ref().map(|h| {
                assert!(
                    h.for_nodes.is_none(),
                    "no node hints from the topology cache"
                );
                let z = h.for_zones.as_ref().unwrap();
                assert_eq!(z.len(), 1);
                z[0].name.clone()
            });
            if !ready {
                assert!(hint.is_none(), "not-ready endpoints are not hinted");
                continue;
            }
            *m.entry((e.zone.clone().unwrap(), hint.unwrap_or_default()))
                .or_insert(0) += 1;
        }
        m
    };
    let (writes, events) = sync(&svc, &pods, &mut slices);
    assert_eq!(writes, 3);
    assert_eq!(
        events,
        ["Normal TopologyAwareHintsEnabled: Topology Aware Hints has been enabled, addressType: IPv4"]
    );
    // zone-a desires 186.75 of 249 and has 125; zone-b lends it 61 of its 124 (the last
    // 0.75 is not worth moving an endpoint).
    let want: BTreeMap<(String, String), usize> = [
        (("zone-a".to_string(), "zone-a".to_string()), 125),
        (("zone-b".to_string(), "zone-a".to_string()), 61),
        (("zone-b".to_string(), "zone-b".to_string()), 63),
    ]
    .into();
    assert_eq!(split(&slices), want);
    assert_eq!(
        cache.hints_of("default/nginx-service").unwrap()["IPv4"],
        [("zone-a".to_string(), 186), ("zone-b".to_string(), 63)].into()
    );
    assert_eq!(sync(&svc, &pods, &mut slices), (0, vec![]), "stable");
    // A new ready pod in zone-b is placed in one slice, hinted there, nothing else moves.
    let mut p = pod("new", "uid-new", (80, "http"));
    p.spec.as_mut().unwrap().node_name = Some("node1".into());
    patch_status(&mut p, "10.99.0.1", true);
    pods.push(p);
    assert_eq!(sync(&svc, &pods, &mut slices), (1, vec![]));
    assert_eq!(split(&slices).values().sum::<usize>(), 250);
    // zone-b's Node is gone: one zone left, no hints anywhere, and the Service is told why.
    cache.set_nodes(&[zoned_node("zone-a", "3")]);
    assert_eq!(cache.overloaded_services(), ["default/nginx-service"]);
    let (writes, events) = sync(&svc, &pods, &mut slices);
    assert_eq!(writes, 3);
    assert_eq!(
        events,
        ["Warning TopologyAwareHintsDisabled: Insufficient Node information: allocatable CPU or zone not specified on one or more nodes, addressType: IPv4"]
    );
    assert!(slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .all(|e| e.hints.is_none()));
    // Back to two zones: hinted again; then the annotation goes and trafficDistribution
    // (PreferSameNode) takes over, with the cache's Disabled Event.
    cache.set_nodes(&[zoned_node("zone-a", "3"), zoned_node("zone-b", "1")]);
    let (writes, events) = sync(&svc, &pods, &mut slices);
    assert_eq!((writes, events.len()), (3, 1));
    svc.metadata.annotations = None;
    let (writes, events) = sync(&svc, &pods, &mut slices);
    assert_eq!(writes, 3);
    assert_eq!(
        events,
        ["Warning TopologyAwareHintsDisabled: Topology Aware Hints has been disabled, addressType: IPv4"]
    );
    assert!(slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().unwrap().ready == Some(true))
        .all(|e| e.hints.as_ref().unwrap().for_nodes.is_some()));
    assert_eq!(sync(&svc, &pods, &mut slices), (0, vec![]), "stable");
}

#[test]
fn dual_stack_services_get_one_slice_group_per_family() {
    let svc = service(
        "ds",
        "ds-uid",
        "2026-11-21T23:26:38Z",
        json!({"clusterIP": "10.43.0.5", "ipFamilies": ["IPv4", "IPv6"], "ports": [{"port": 80, "targetPort": 80}], "selector": {"app": "nginx"}}),
    );
    let mut p = pod("p", "uid-p", (80, "http"));
    p.status = Some(serde_json::from_value(json!({"phase": "Running", "podIP": "10.42.0.1", "podIPs": [{"ip": "10.42.0.1"}, {"ip": "fd00::0001"}], "conditions": [{"type": "Ready", "status": "True"}]})).unwrap());
    let plan = reconcile(
        &svc,
        &[&p],
        &[],
        &|_| NodeLookup::Known(None),
        &Options::default(),
        None,
    );
    let mut types: Vec<(&str, &str)> = plan
        .create
        .iter()
        .map(|s| {
            (
                s.address_type.as_str(),
                s.endpoints[0].addresses[0].as_str(),
            )
        })
        .collect();
    types.sort();
    assert_eq!(types, [("IPv4", "10.42.0.1"), ("IPv6", "fd00::1")]);
    // Unnamed Service ports are published with an empty name, as upstream does.
    assert_eq!(
        plan.create[0].ports.as_ref().unwrap()[0].name.as_deref(),
        Some("")
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the history of pod changes, the slices hold each desired endpoint exactly
        /// once, no slice exceeds the maximum, and a second sync writes nothing.
        #[test]
        fn slices_converge_and_are_stable(steps in proptest::collection::vec((0usize..60, any::<bool>(), any::<bool>()), 1..40), max in 1usize..12) {
            let svc = nginx_service("nginx");
            let mut pods = many_pods(60);
            let mut present = vec![true; 60];
            let mut sim = Sim::new();
            sim.options.max_endpoints_per_slice = max;
            for (i, ready, keep) in steps {
                present[i] = keep;
                patch_status(&mut pods[i], &format!("10.42.0.{i}"), ready);
                let current: Vec<Pod> = pods.iter().zip(&present).filter(|(_, k)| **k).map(|(p, _)| p.clone()).collect();
                sim.sync(&svc, &current);
                let slices = sim.slices_of("nginx-service");
                let mut seen: Vec<String> = slices.iter().flat_map(|s| s.endpoints.iter().map(|e| e.addresses[0].clone())).collect();
                prop_assert!(slices.iter().all(|s| s.endpoints.len() <= max));
                seen.sort();
                let mut want: Vec<String> = (0..60).filter(|i| present[*i]).map(|i| format!("10.42.0.{i}")).collect();
                want.sort();
                prop_assert_eq!(seen, want);
                let writes = sim.writes;
                sim.sync(&svc, &current);
                prop_assert_eq!(sim.writes, writes);
            }
        }
    }
}

#[test]
fn endpoints_follow_the_same_replay() {
    // The Endpoints reconciler alone: the trigger time is the Service's creation on the first
    // sync and goes away on the next write.
    let svc = nginx_named();
    let mut pods = [pod("nginx-1", NGINX_1, (80, "http"))];
    patch_status(&mut pods[0], "10.42.0.11", true);
    let refs: Vec<&Pod> = pods.iter().collect();
    let tracker = crate::trigger::TriggerTimeTracker::new();
    let t = tracker.compute("default/nginx-named", &svc, &refs);
    let Some(endpoints::Write::Create(ep)) = endpoints::reconcile(&svc, &refs, None, t) else {
        panic!("create")
    };
    assert_eq!(
        ep.metadata.annotations.clone().unwrap()[crate::trigger::ANNOTATION],
        "2026-11-21T23:26:57Z"
    );
    let _: &Endpoints = &ep;
}

/// Upstream's `TestReconcileTopology` setup: 3 zones of 10 Nodes (100m CPU each), pod `j` of
/// zone `i` on Node `j` of that zone; returns the pods and the cache fed with the Nodes.
fn three_zones() -> (Vec<Pod>, crate::topology::TopologyCache) {
    let zones = ["zone-a", "zone-b", "zone-c"];
    let mut pods = many_pods(30);
    let mut nodes = Vec::new();
    for (i, zone) in zones.iter().enumerate() {
        for j in 0..10 {
            let mut n = zoned_node(zone, "100m");
            n.metadata.name = Some(format!("node-{zone}-{j}"));
            nodes.push(n);
            pods[i * 10 + j].spec.as_mut().unwrap().node_name = Some(format!("node-{zone}-{j}"));
        }
    }
    let cache = crate::topology::TopologyCache::new();
    cache.set_nodes(&nodes);
    (pods, cache)
}

fn zone_of_node(n: &str) -> NodeLookup {
    NodeLookup::Known(Some(n["node-".len().."node-zone-a".len()].to_string()))
}

/// One slice holding exactly `pods` (written without hints), named `name`.
fn slice_of(svc: &Service, pods: &[&Pod], name: &str) -> EndpointSlice {
    let plan = reconcile(svc, pods, &[], &zone_of_node, &Options::default(), None);
    let mut s = plan.create.into_iter().next().unwrap();
    s.metadata.name = Some(name.into());
    s
}

/// (hinted zone -> endpoints, endpoints hinted for another zone than their own); panics on a
/// ready endpoint without exactly one zone hint.
fn hint_counts(slices: &[EndpointSlice]) -> (BTreeMap<String, usize>, usize) {
    let mut by_zone = BTreeMap::new();
    let mut cross = 0;
    for e in slices.iter().flat_map(|s| s.endpoints.iter()) {
        let zones = e.hints.as_ref().unwrap().for_zones.as_ref().unwrap();
        assert_eq!(zones.len(), 1, "{e:?}");
        if e.zone.as_deref() != Some(zones[0].name.as_str()) {
            cross += 1;
        }
        *by_zone.entry(zones[0].name.clone()).or_insert(0) += 1;
    }
    (by_zone, cross)
}

fn counts(c: &[(&str, usize)]) -> BTreeMap<String, usize> {
    c.iter().map(|(z, n)| (z.to_string(), *n)).collect()
}

/// Upstream's `TestReconcileTopology`, case by case (the annotation is the deprecated
/// `topology-aware-hints`, as there).
#[test]
fn reconcile_topology_cases_from_upstream() {
    let (pods, cache) = three_zones();
    let with_annotation = |v: &str| {
        let mut svc = nginx_service("nginx");
        svc.metadata.annotations = Some(
            [(
                crate::hints::ANNOTATION_TOPOLOGY_AWARE_HINTS.to_string(),
                v.to_string(),
            )]
            .into(),
        );
        svc
    };
    let plain = nginx_service("nginx");
    let pick = |ix: &[usize]| -> Vec<&Pod> { ix.iter().map(|i| &pods[*i]).collect() };
    let zone_a_b = pick(&[7, 8, 16, 17, 18]);
    let zone_a_c = pick(&[5, 6, 25, 26]);
    let zone_c = pick(&[27, 28, 29]);
    let run = |svc: &Service,
               pods: &[&Pod],
               existing: &[EndpointSlice],
               cache: Option<&crate::topology::TopologyCache>| {
        let refs: Vec<&EndpointSlice> = existing.iter().collect();
        let (plan, _) = reconcile_with_topology(
            svc,
            pods,
            &refs,
            &zone_of_node,
            &Options::default(),
            None,
            cache,
        );
        assert!(plan.create.is_empty() && plan.delete.is_empty());
        let updated = plan.update.len();
        let mut slices = existing.to_vec();
        apply(&mut slices, plan);
        (updated, slices)
    };
    let no_hints = |slices: &[EndpointSlice]| {
        slices
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .all(|e| e.hints.is_none())
    };

    // "no change, topologyCache disabled, annotation == auto"
    let c = [slice_of(&plain, &zone_c, "zone-c")];
    let (updated, slices) = run(&with_annotation("auto"), &zone_c, &c, None);
    assert_eq!(updated, 0);
    assert!(no_hints(&slices));

    // "enabling topologyCache, hintsAnnotation == auto": 3 endpoints of zone-c, one per zone.
    let (updated, slices) = run(&with_annotation("auto"), &zone_c, &c, Some(&cache));
    assert_eq!(updated, 1);
    assert_eq!(
        hint_counts(&slices),
        (counts(&[("zone-a", 1), ("zone-b", 1), ("zone-c", 1)]), 2)
    );

    // "ratio beyond threshold": 4 endpoints cannot give 3 zones ceil(1.33 / 1.2) = 2 each.
    let ac = [slice_of(&plain, &zone_a_c, "zone-a-c")];
    let (updated, slices) = run(&with_annotation("auto"), &zone_a_c, &ac, Some(&cache));
    assert_eq!(updated, 0);
    assert!(no_hints(&slices));

    // "more slices and endpoints": 9 endpoints (4 in zone-a, 3 in zone-b, 2 in zone-c) are
    // hinted 3 per zone, one zone-a endpoint lent to zone-c; both slices rewritten.
    let two = [
        slice_of(&plain, &zone_a_c, "zone-a-c"),
        slice_of(&plain, &zone_a_b, "zone-a-b"),
    ];
    let all: Vec<&Pod> = zone_a_c.iter().chain(&zone_a_b).copied().collect();
    let (updated, slices) = run(&with_annotation("Auto"), &all, &two, Some(&cache));
    assert_eq!(updated, 2);
    assert_eq!(
        hint_counts(&slices),
        (counts(&[("zone-a", 3), ("zone-b", 3), ("zone-c", 3)]), 1)
    );

    // "hintsAnnotation==disabled": nothing to write.
    let (updated, slices) = run(&with_annotation("disabled"), &all, &two, Some(&cache));
    assert_eq!(updated, 0);
    assert!(no_hints(&slices));
}

/// Upstream's `TestReconcile_TrafficDistribution`, the cases with the topology annotation:
/// zone-a has 1 pod, zone-b 3, zone-c 2, on Nodes of equal CPU.
#[test]
fn topology_annotation_wins_over_traffic_distribution() {
    let mut pods = many_pods(6);
    for (i, zone) in ["a", "b", "b", "b", "c", "c"].iter().enumerate() {
        pods[i].spec.as_mut().unwrap().node_name = Some(format!("node-zone-{zone}-0"));
    }
    let cache = crate::topology::TopologyCache::new();
    cache.set_nodes(&[
        zoned_node("zone-a", "100m"),
        zoned_node("zone-b", "100m"),
        zoned_node("zone-c", "100m"),
    ]);
    let refs: Vec<&Pod> = pods.iter().collect();
    let hints_for = |annotation: &str| {
        let mut svc = nginx_service("nginx");
        svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferClose".into());
        svc.metadata.annotations = Some(
            [(
                crate::hints::ANNOTATION_TOPOLOGY_MODE.to_string(),
                annotation.to_string(),
            )]
            .into(),
        );
        let (plan, _) = reconcile_with_topology(
            &svc,
            &refs,
            &[],
            &zone_of_node,
            &Options::default(),
            None,
            Some(&cache),
        );
        hint_counts(&plan.create)
    };
    // PreferClose decides: every endpoint in its own zone.
    assert_eq!(
        hints_for("Disabled"),
        (counts(&[("zone-a", 1), ("zone-b", 3), ("zone-c", 2)]), 0)
    );
    // Auto decides: two per zone, one zone-b endpoint lent to zone-a.
    assert_eq!(
        hints_for("Auto"),
        (counts(&[("zone-a", 2), ("zone-b", 2), ("zone-c", 2)]), 1)
    );
}
