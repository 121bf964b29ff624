//! Topology-aware routing end to end: EndpointSlice zone hints (as the EndpointSlice controller
//! writes them for `trafficDistribution: PreferClose`) and the Node's
//! `topology.kubernetes.io/zone` label. The client's traffic enters at n1, so which pods answer
//! is what n1's agent chose.

use crate::support::*;
use serde_json::json;
use std::collections::BTreeSet;

#[test]
fn zone_hints_keep_traffic_in_the_nodes_zone_until_no_endpoint_is_hinted_for_it() {
    let c = Cluster::start(&[]);
    let p1 = c.pod("n1", "p1", &[("app", "topo")]);
    let p3 = c.pod("n2", "p3", &[("app", "topo")]);
    c.kubectl(&["label", "node", "n1", "topology.kubernetes.io/zone=zone-a"]);
    c.kubectl(&["label", "node", "n2", "topology.kubernetes.io/zone=zone-b"]);
    // No selector: the test writes the EndpointSlice and its hints, to vary them one by one.
    k8s_apply(
        &c,
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "topo", "namespace": "default"},
               "spec": {"trafficDistribution": "PreferClose",
                        "ports": [{"name": "http", "port": 80, "targetPort": 80}]}}),
    );
    let slice = |hints: bool| {
        let ep = |ip: String, node: &str, zone: &str| {
            let mut e = json!({"addresses": [ip], "nodeName": node, "zone": zone,
                               "conditions": {"ready": true}});
            if hints {
                e["hints"] = json!({"forZones": [{"name": zone}]});
            }
            e
        };
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "topo-1", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "topo",
                                       "endpointslice.kubernetes.io/managed-by": "test"}},
               "addressType": "IPv4",
               "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
               "endpoints": [ep(p1.ip.to_string(), "n1", "zone-a"),
                             ep(p3.ip.to_string(), "n2", "zone-b")]})
    };
    let svc = c.get_json(&["get", "service", "topo", "-n", "default"]);
    let addr = cluster_ip(&svc, 80);

    // Without hints: both zones.
    k8s_apply(&c, slice(false));
    c.wait_all_answer(addr, &["p1", "p3"]);

    // Hinted: n1 (zone-a) sends only to the zone-a endpoint.
    k8s_apply(&c, slice(true));
    only_p1(&c, addr);

    // n1 moves to a zone no endpoint is hinted for: hints are ignored, both answer again.
    c.kubectl(&[
        "label",
        "node",
        "n1",
        "topology.kubernetes.io/zone=zone-c",
        "--overwrite",
    ]);
    c.wait_all_answer(addr, &["p1", "p3"]);

    // Back in zone-a, and then one endpoint loses its hint: topology off for everyone.
    c.kubectl(&[
        "label",
        "node",
        "n1",
        "topology.kubernetes.io/zone=zone-a",
        "--overwrite",
    ]);
    only_p1(&c, addr);
    let mut partial = slice(true);
    partial["endpoints"][1]
        .as_object_mut()
        .unwrap()
        .remove("hints");
    k8s_apply(&c, partial);
    c.wait_all_answer(addr, &["p1", "p3"]);
}

/// Waits until 20 requests in a row are all answered by p1.
fn only_p1(c: &Cluster, addr: std::net::SocketAddr) {
    eventually(20, "only p1 (zone-a) answers from n1", || {
        let got: BTreeSet<String> = try_ask_many_from(&c.client, addr, 20)?
            .into_iter()
            .collect();
        (got == BTreeSet::from(["p1".to_string()])).then_some(())
    });
}

fn k8s_apply(c: &Cluster, obj: serde_json::Value) {
    test_support::netlab::k8s::apply(&c.server, &obj);
}

#[test]
fn prefer_close_service_stays_in_each_nodes_zone_with_the_controllers_hints() {
    let c = Cluster::start(&[]);
    c.kubectl(&["label", "node", "n1", "topology.kubernetes.io/zone=zone-a"]);
    c.kubectl(&["label", "node", "n2", "topology.kubernetes.io/zone=zone-b"]);
    c.pod("n1", "p1", &[("app", "zoned")]);
    c.pod("n2", "p3", &[("app", "zoned")]);
    // The server's EndpointSlice controller hints each ready endpoint for its node's zone.
    let svc = c.service(
        "zoned",
        &[("app", "zoned")],
        json!({"trafficDistribution": "PreferClose"}),
        json!({}),
    );
    let addr = cluster_ip(&svc, 80);
    // c1 enters at n1 (zone-a), c2 at n2 (zone-b): each node keeps to its zone's pod.
    let c2 = c.lab.client_via("c2", &c.nodes[1]);
    for (client, want) in [(&c.client, "p1"), (&c2, "p3")] {
        eventually(30, &format!("only {want} answers {}", client.name), || {
            let got: BTreeSet<String> = try_ask_many_from(client, addr, 20)?.into_iter().collect();
            (got == BTreeSet::from([want.to_string()])).then_some(())
        });
    }
    // Without trafficDistribution the controller removes the hints: both pods again.
    let svc = c.service("zoned", &[("app", "zoned")], json!({}), json!({}));
    assert!(svc["spec"].get("trafficDistribution").is_none(), "{svc}");
    c.wait_all_answer(addr, &["p1", "p3"]);
}
