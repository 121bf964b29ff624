//! Reference transcripts 02 (a ClusterIP Service) and 04 (NodePort Services), with the
//! reference cluster's 10.96.0.0/16 replaced by our 10.43.0.0/16.

use crate::harness::*;
use serde_json::json;

fn in_dynamic_block(ip: &str) -> bool {
    // 10.43.0.0/16: the first 256 usable addresses are the static block.
    let ip: std::net::Ipv4Addr = ip.parse().unwrap();
    let o = ip.octets();
    o[0] == 10 && o[1] == 43 && (o[2] >= 2 || (o[2] == 1 && o[3] >= 1))
}

#[test]
fn cluster_ip_service_comes_back_defaulted_and_allocated() {
    let mut c = Cluster::new();
    let created = c
        .create(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "nginx-service", "namespace": "default", "labels": {"app": "nginx"}},
            "spec": {"selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80}]}}))
        .unwrap();
    assert!(created.warnings.is_empty());
    let spec = &created.object["spec"];
    let ip = spec["clusterIP"].as_str().unwrap().to_string();
    assert!(in_dynamic_block(&ip), "{ip}");
    assert_eq!(
        spec,
        &json!({"ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80}],
                "selector": {"app": "nginx"}, "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP",
                "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster"})
    );
    assert_eq!(created.object["status"], json!({"loadBalancer": {}}));
    // The Go field order, as curl sees it.
    assert_eq!(
        spec.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "ports",
            "selector",
            "clusterIP",
            "clusterIPs",
            "type",
            "sessionAffinity",
            "ipFamilies",
            "ipFamilyPolicy",
            "internalTrafficPolicy"
        ]
    );

    // apply with a changed selector (a patch): the ClusterIP stays.
    let patched = c
        .patch(
            "nginx-service",
            json!({"spec": {"selector": {"tier": "frontend"}}}),
        )
        .unwrap();
    assert_eq!(patched.object["spec"]["clusterIP"], json!(ip));
    assert_eq!(
        patched.object["spec"]["selector"],
        json!({"app": "nginx", "tier": "frontend"})
    );
}

#[test]
fn server_dry_run_reports_placeholders_and_reserves_nothing() {
    let mut c = Cluster::new();
    let body = svc(
        "my-cs",
        json!({"ports": [{"name": "5678-8080", "protocol": "TCP", "port": 5678, "targetPort": 8080}], "selector": {"app": "my-cs"}, "type": "ClusterIP"}),
    );
    for _ in 0..2 {
        let dry = c.create_dry_run(body.clone()).unwrap();
        assert_eq!(dry.object["spec"]["clusterIP"], "10.43.0.0");
        assert_eq!(dry.object["spec"]["clusterIPs"], json!(["10.43.0.0"]));
        assert_eq!(dry.object["spec"]["ipFamilyPolicy"], "SingleStack");
    }
    let np = c.create_dry_run(svc("dry2", json!({"type": "NodePort", "ports": [{"name": "80-80", "port": 80, "targetPort": 80}], "selector": {"app": "dry2"}}))).unwrap();
    assert_eq!(np.object["spec"]["clusterIP"], "10.43.0.0");
    assert_eq!(np.object["spec"]["ports"][0]["nodePort"], 32769);
    let two = c.create_dry_run(svc("dry3", json!({"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}))).unwrap();
    assert_eq!(two.object["spec"]["ports"][0]["nodePort"], 32769);
    assert_eq!(two.object["spec"]["ports"][1]["nodePort"], 32770);
    let allocs = c.adm.allocations();
    assert_eq!(allocs.cluster_ips.len(), 1, "only the kubernetes Service");
    assert!(allocs.node_ports.is_empty());
}

#[test]
fn create_of_an_existing_name_gives_back_what_it_reserved() {
    let mut c = Cluster::new();
    c.create(svc(
        "nginx-service",
        json!({"selector": {"app": "nginx"}, "ports": [{"port": 80}]}),
    ))
    .unwrap();
    let err = c
        .create(svc(
            "nginx-service",
            json!({"selector": {"app": "nginx"}, "ports": [{"port": 80}]}),
        ))
        .err()
        .unwrap();
    assert_eq!(err.message, "services \"nginx-service\" already exists");
    assert_eq!(c.adm.allocations().cluster_ips.len(), 2);
    assert_eq!(c.adm.allocations().pending, 0);
}

#[test]
fn fixed_node_port_and_its_conflicts() {
    let mut c = Cluster::new();
    let np = c
        .create(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-np", "labels": {"app": "nginx"}},
            "spec": {"type": "NodePort", "selector": {"app": "nginx"},
                     "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80, "nodePort": 30080}]}}))
        .unwrap();
    let spec = &np.object["spec"];
    assert_eq!(spec["externalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ports"][0]["nodePort"], 30080);
    assert!(spec.get("allocateLoadBalancerNodePorts").is_none());

    let dup = c.create(svc("nginx-np-dup", json!({"type": "NodePort", "selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "port": 80, "targetPort": 80, "nodePort": 30080}]})));
    assert_eq!(
        kubectl(&dup.err().unwrap()),
        "The Service \"nginx-np-dup\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    for (name, port) in [
        ("nginx-np-80", 80),
        ("nginx-np-32768", 32768),
        ("nginx-np-70000", 70000),
    ] {
        let e = c.create(svc(name, json!({"type": "NodePort", "selector": {"app": "nginx"}, "ports": [{"port": 80, "nodePort": port}]})));
        assert_eq!(
            kubectl(&e.err().unwrap()),
            format!("The Service \"{name}\" is invalid: spec.ports[0].nodePort: Invalid value: {port}: provided port is not in the valid range. The range of valid ports is 30000-32767")
        );
    }
    let cip = c.create(svc("nginx-cip-with-np", json!({"type": "ClusterIP", "selector": {"app": "nginx"}, "ports": [{"port": 80, "nodePort": 30999}]})));
    assert_eq!(
        kubectl(&cip.err().unwrap()),
        "The Service \"nginx-cip-with-np\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    );
    let self_dup = c.create(svc("np-self-dup", json!({"type": "NodePort", "selector": {"app": "x"},
        "ports": [{"name": "a", "port": 80, "nodePort": 30100}, {"name": "b", "port": 81, "nodePort": 30100}]})));
    assert_eq!(
        kubectl(&self_dup.err().unwrap()),
        "The Service \"np-self-dup\" is invalid: spec.ports[1].nodePort: Invalid value: 30100: provided port is already allocated"
    );
    // Nothing a refused create reserved is left behind.
    let a = c.adm.allocations();
    assert_eq!(
        a.node_ports.keys().copied().collect::<Vec<_>>(),
        vec![30080]
    );
    assert_eq!(a.cluster_ips.len(), 2);
    assert_eq!(a.pending, 0);
}

#[test]
fn auto_allocation_shares_a_node_port_between_tcp_and_udp_of_one_port() {
    let mut c = Cluster::new();
    let auto = c.create(svc("nginx-np-auto", json!({"type": "NodePort", "selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80}]}))).unwrap();
    let np = auto.object["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .unwrap();
    assert!(
        (30086..=32767).contains(&np),
        "{np} is outside the dynamic block"
    );

    let dns = c
        .create(svc(
            "dns-np",
            json!({"type": "NodePort", "selector": {"app": "dns"}, "ports": [
            {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": 53, "nodePort": 30053},
            {"name": "dns-udp", "protocol": "UDP", "port": 53, "targetPort": 53, "nodePort": 30053},
            {"name": "metrics", "protocol": "TCP", "port": 9153}]}),
        ))
        .unwrap();
    let ports = &dns.object["spec"]["ports"];
    assert_eq!(ports[0]["nodePort"], 30053);
    assert_eq!(ports[1]["nodePort"], 30053);
    assert_eq!(ports[2]["targetPort"], 9153);
    assert_ne!(ports[2]["nodePort"], 30053);

    let lb = c.create(svc("dns-lb", json!({"type": "LoadBalancer", "selector": {"app": "dns"}, "ports": [
        {"name": "dns-tcp", "protocol": "TCP", "port": 53}, {"name": "dns-udp", "protocol": "UDP", "port": 53}]}))).unwrap();
    let ports = &lb.object["spec"]["ports"];
    assert_eq!(ports[0]["nodePort"], ports[1]["nodePort"]);
}

#[test]
fn put_without_node_port_keeps_it_and_type_changes_release_and_reallocate() {
    let mut c = Cluster::new();
    let auto = c.create(svc("nginx-np-auto", json!({"type": "NodePort", "selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80}]}))).unwrap();
    let ip = auto.object["spec"]["clusterIP"].clone();
    let np = auto.object["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .unwrap();

    let replaced = c
        .replace("nginx-np-auto", json!({"metadata": {"name": "nginx-np-auto", "labels": {"app": "nginx"}},
            "spec": {"type": "NodePort", "selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80}]}}))
        .unwrap();
    assert_eq!(replaced.object["spec"]["clusterIP"], ip);
    assert_eq!(replaced.object["spec"]["ports"][0]["nodePort"], np);

    let to_cip = c
        .patch("nginx-np-auto", json!({"spec": {"type": "ClusterIP"}}))
        .unwrap();
    assert_eq!(
        to_cip.object["spec"],
        json!({"ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80}], "selector": {"app": "nginx"},
               "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None",
               "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"})
    );
    assert!(
        !c.adm.allocations().node_ports.contains_key(&(np as u16)),
        "the NodePort is released"
    );

    let back = c
        .patch("nginx-np-auto", json!({"spec": {"type": "NodePort"}}))
        .unwrap();
    let new_np = back.object["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .unwrap();
    assert!(new_np != 0);
    assert_eq!(back.object["spec"]["externalTrafficPolicy"], "Cluster");

    // Move another Service's NodePort onto it: refused; onto a free one and back: fine.
    c.create(svc("nginx-np", json!({"type": "NodePort", "ports": [{"name": "nginx-port", "port": 80, "nodePort": 30080}]}))).unwrap();
    let mut patched = c.get("nginx-np");
    patched["spec"]["ports"][0]["nodePort"] = json!(new_np);
    let e = c.replace("nginx-np", patched).err().unwrap();
    assert_eq!(kubectl(&e), format!("The Service \"nginx-np\" is invalid: spec.ports[0].nodePort: Invalid value: {new_np}: provided port is already allocated"));
    c.patch(
        "nginx-np",
        json!({"spec": {"ports": [{"name": "nginx-port", "port": 80, "nodePort": 30081}]}}),
    )
    .unwrap();
    assert!(!c.adm.allocations().node_ports.contains_key(&30080));
    c.patch(
        "nginx-np",
        json!({"spec": {"ports": [{"name": "nginx-port", "port": 80, "nodePort": 30080}]}}),
    )
    .unwrap();
    let a = c.adm.allocations();
    assert!(a.node_ports.contains_key(&30080) && !a.node_ports.contains_key(&30081));
}

#[test]
fn deleting_a_service_frees_its_node_port_for_the_next() {
    let mut c = Cluster::new();
    let imperative = |name: &str| {
        svc(
            name,
            json!({"type": "NodePort", "selector": {"app": name}, "ports": [{"name": "8080-80", "protocol": "TCP", "port": 8080, "targetPort": 80, "nodePort": 30090}]}),
        )
    };
    c.create(imperative("np-imperative")).unwrap();
    assert!(c.create(imperative("np-imperative2")).is_err());
    c.delete("np-imperative");
    let again = c.create(imperative("np-imperative2")).unwrap();
    assert_eq!(again.object["spec"]["ports"][0]["nodePort"], 30090);
    c.delete("np-imperative2");
    assert_eq!(c.adm.allocations().node_ports.len(), 0);
    assert_eq!(c.adm.allocations().cluster_ips.len(), 1);
}

#[test]
fn a_lost_update_race_gives_back_only_what_it_reserved() {
    let mut c = Cluster::new();
    c.create(svc(
        "np",
        json!({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30080}]}),
    ))
    .unwrap();
    assert!(c
        .patch_lost_race(
            "np",
            json!({"spec": {"ports": [{"name": "a", "port": 80, "nodePort": 30081}]}})
        )
        .is_err());
    let a = c.adm.allocations();
    assert!(
        a.node_ports.contains_key(&30080),
        "the stored NodePort stays"
    );
    assert!(
        !a.node_ports.contains_key(&30081),
        "the reserved one is given back"
    );
    assert_eq!(a.pending, 0);
}
