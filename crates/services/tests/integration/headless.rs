//! Reference transcript 07: headless Services, fixed and taken ClusterIPs, immutability, and
//! the dual-stack fields on a single-stack cluster.

use crate::harness::*;
use serde_json::json;

fn cip(name: &str, cluster_ip: &str) -> serde_json::Value {
    svc(
        name,
        json!({"clusterIP": cluster_ip, "selector": {"app": "nginx"}, "ports": [{"port": 80}]}),
    )
}

#[test]
fn headless_services() {
    let mut c = Cluster::new();
    let h = c.create(svc("nginx-headless", json!({"clusterIP": "None", "selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "port": 80, "targetPort": 80}]}))).unwrap();
    assert_eq!(
        h.object["spec"],
        json!({"ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80}], "selector": {"app": "nginx"},
               "clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP", "sessionAffinity": "None",
               "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"})
    );
    let no_ports = c
        .create(svc("headless-noports", json!({"clusterIP": "None"})))
        .unwrap();
    assert_eq!(
        no_ports.object["spec"],
        json!({"clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP", "sessionAffinity": "None",
               "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack", "internalTrafficPolicy": "Cluster"})
    );
    c.create(svc("nginx-headless-pnr", json!({"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "port": 80}]}))).unwrap();
    for (t, name) in [("NodePort", "headless-np"), ("LoadBalancer", "headless-lb")] {
        let e = c.create(svc(name, json!({"type": t, "clusterIP": "None", "selector": {"app": "nginx"}, "ports": [{"port": 80}]}))).err().unwrap();
        assert_eq!(kubectl(&e), format!("The Service \"{name}\" is invalid: spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for {t} services"));
    }
    let a = c.adm.allocations();
    assert_eq!(a.cluster_ips.len(), 1);
    assert!(
        a.node_ports.is_empty(),
        "the refused NodePort/LoadBalancer creates gave their NodePorts back"
    );
}

#[test]
fn fixed_out_of_range_taken_and_invalid_cluster_ips() {
    let mut c = Cluster::new();
    let fixed = c.create(cip("nginx-fixed-ip", "10.43.100.100")).unwrap();
    assert_eq!(fixed.object["spec"]["clusterIPs"], json!(["10.43.100.100"]));
    for (name, ip) in [
        ("nginx-out-of-range", "10.97.0.10"),
        ("nginx-out-of-range-2", "192.168.1.1"),
        ("nginx-netaddr", "10.43.0.0"),
        ("nginx-bcast", "10.43.255.255"),
    ] {
        let e = c.create(cip(name, ip)).err().unwrap();
        assert_eq!(
            kubectl(&e),
            format!("The Service \"{name}\" is invalid: spec.clusterIPs: Invalid value: [\"{ip}\"]: failed to allocate IP {ip}: the provided network does not match the current range")
        );
    }
    for (name, ip) in [
        ("nginx-kubernetes-ip", "10.43.0.1"),
        ("nginx-taken", "10.43.100.100"),
    ] {
        let e = c.create(cip(name, ip)).err().unwrap();
        assert_eq!(kubectl(&e), format!("The Service \"{name}\" is invalid: spec.clusterIPs: Invalid value: [\"{ip}\"]: failed to allocate IP {ip}: provided IP is already allocated"));
    }
    let e = c.create(cip("nginx-bad-ip", "10.43.1")).err().unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-bad-ip\" is invalid: spec.clusterIPs[0]: Invalid value: \"10.43.1\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    let e = c
        .create(cip("nginx-bad-ip-2", "10.43.001.002"))
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-bad-ip-2\" is invalid: spec.clusterIPs[0]: Invalid value: \"10.43.001.002\": must not have leading 0s");
    let e = c.create(cip("nginx-ipv6", "fd00::10")).err().unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-ipv6\" is invalid: spec.clusterIPs[0]: Invalid value: [\"fd00::10\"]: IPv6 is not configured on this cluster");
    let e = c.create(svc("nginx-ip-mismatch", json!({"clusterIP": "10.43.100.101", "clusterIPs": ["10.43.100.102"], "ports": [{"port": 80}]}))).err().unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-ip-mismatch\" is invalid: spec.clusterIPs: Invalid value: [\"10.43.100.102\"]: first value must match `clusterIP`");
    assert_eq!(c.adm.allocations().cluster_ips.len(), 2);
}

#[test]
fn cluster_ip_is_immutable_but_clearing_it_keeps_it() {
    let mut c = Cluster::new();
    c.create(cip("nginx-fixed-ip", "10.43.100.100")).unwrap();
    c.create(svc(
        "nginx-headless",
        json!({"clusterIP": "None", "selector": {"app": "nginx"}, "ports": [{"port": 80}]}),
    ))
    .unwrap();
    let immutable = |ip: &str| {
        format!("The Service \"nginx-fixed-ip\" is invalid: spec.clusterIPs[0]: Invalid value: [\"{ip}\"]: may not change once set")
    };
    let e = c
        .patch(
            "nginx-fixed-ip",
            json!({"spec": {"clusterIP": "10.43.100.200"}}),
        )
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), immutable("10.43.100.200"));
    let e = c
        .patch(
            "nginx-fixed-ip",
            json!({"spec": {"clusterIP": "10.43.100.200", "clusterIPs": ["10.43.100.200"]}}),
        )
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), immutable("10.43.100.200"));
    let e = c
        .patch(
            "nginx-fixed-ip",
            json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"]}}),
        )
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), immutable("None"));
    let e = c
        .patch(
            "nginx-headless",
            json!({"spec": {"clusterIP": "10.43.100.201", "clusterIPs": ["10.43.100.201"]}}),
        )
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-headless\" is invalid: spec.clusterIPs[0]: Invalid value: [\"10.43.100.201\"]: may not change once set");
    assert!(!c
        .adm
        .allocations()
        .cluster_ips
        .contains_key(&"10.43.100.200".parse().unwrap()));

    let w = c
        .patch("nginx-fixed-ip", json!({"spec": {"clusterIP": ""}}))
        .unwrap();
    assert_eq!(
        (
            &w.object["spec"]["clusterIP"],
            &w.object["spec"]["clusterIPs"]
        ),
        (&json!("10.43.100.100"), &json!(["10.43.100.100"]))
    );
    let w = c
        .patch(
            "nginx-fixed-ip",
            json!({"spec": {"clusterIP": null, "clusterIPs": null}}),
        )
        .unwrap();
    assert_eq!(w.object["spec"]["clusterIPs"], json!(["10.43.100.100"]));
    let w = c.replace("nginx-fixed-ip", svc("nginx-fixed-ip", json!({"selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "port": 80, "targetPort": 80}]}))).unwrap();
    assert_eq!(w.object["spec"]["clusterIPs"], json!(["10.43.100.100"]));

    // Delete and reuse the same explicit IP.
    c.delete("nginx-fixed-ip");
    c.create(cip("nginx-fixed-ip2", "10.43.100.100")).unwrap();
}

#[test]
fn dual_stack_policies_on_a_single_stack_cluster() {
    let mut c = Cluster::new();
    let w = c.create(svc("nginx-prefer-ds", json!({"ipFamilyPolicy": "PreferDualStack", "selector": {"app": "nginx"}, "ports": [{"port": 80}]}))).unwrap();
    assert_eq!(w.object["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(w.object["spec"]["ipFamilyPolicy"], "PreferDualStack");
    assert_eq!(w.object["spec"]["clusterIPs"].as_array().unwrap().len(), 1);
    let e = c
        .create(svc(
            "nginx-require-ds",
            json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}),
        ))
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-require-ds\" is invalid: spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services");
    let e = c
        .create(svc(
            "nginx-ipv6-family",
            json!({"ipFamilies": ["IPv6"], "ports": [{"port": 80}]}),
        ))
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-ipv6-family\" is invalid: spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster");
    let e = c
        .create(svc(
            "nginx-bad-family",
            json!({"ipFamilies": ["IPv5"], "ipFamilyPolicy": "Sometimes", "ports": [{"port": 80}]}),
        ))
        .err()
        .unwrap();
    assert_eq!(
        kubectl(&e),
        "The Service \"nginx-bad-family\" is invalid: \n\
         * spec.ipFamilies[0]: Unsupported value: \"IPv5\": supported values: \"IPv4\", \"IPv6\"\n\
         * spec.ipFamilyPolicy: Unsupported value: \"Sometimes\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\""
    );
}

#[test]
fn dual_stack_cluster() {
    let config = services::ServiceConfig {
        rng_seed: Some(2),
        ..services::ServiceConfig::from_flags("10.43.0.0/16,fd00:43::/112", "30000-32767").unwrap()
    };
    let mut c = Cluster::with_config(config);
    let single = c
        .create(svc("single", json!({"ports": [{"port": 80}]})))
        .unwrap();
    assert_eq!(single.object["spec"]["ipFamilies"], json!(["IPv4"]));
    let dual = c
        .create(svc(
            "dual",
            json!({"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}),
        ))
        .unwrap();
    let ips = dual.object["spec"]["clusterIPs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(dual.object["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    assert!(ips[1].as_str().unwrap().starts_with("fd00:43::"));
    let v6 = c
        .create(svc(
            "v6",
            json!({"ipFamilies": ["IPv6"], "ports": [{"port": 80}]}),
        ))
        .unwrap();
    assert!(v6.object["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .contains(':'));
    assert_eq!(c.adm.allocations().cluster_ips.len(), 5);

    // Upgrade a single-stack Service, then downgrade it: the second address comes and goes.
    let up = c
        .patch(
            "single",
            json!({"spec": {"ipFamilyPolicy": "RequireDualStack"}}),
        )
        .unwrap();
    assert_eq!(up.object["spec"]["clusterIPs"].as_array().unwrap().len(), 2);
    assert_eq!(c.adm.allocations().cluster_ips.len(), 6);
    let e = c.patch("single", json!({"spec": {"ipFamilies": ["IPv4"], "clusterIPs": [up.object["spec"]["clusterIP"]]}})).err().unwrap();
    assert_eq!(
        kubectl(&e),
        "The Service \"single\" is invalid: \n\
         * spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": must be 'SingleStack' to release the secondary cluster IP\n\
         * spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": must be 'SingleStack' to release the secondary IP family"
    );
    let down = c
        .patch("single", json!({"spec": {"ipFamilyPolicy": "SingleStack"}}))
        .unwrap();
    assert_eq!(
        down.object["spec"]["clusterIPs"].as_array().unwrap().len(),
        1
    );
    assert_eq!(down.object["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(c.adm.allocations().cluster_ips.len(), 5);

    // Headless without selector on a dual-stack cluster.
    let h = c.create(svc("h", json!({"clusterIP": "None"}))).unwrap();
    assert_eq!(h.object["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
}

#[test]
fn the_cluster_dns_address_is_only_handed_out_on_request() {
    let config = services::ServiceConfig {
        service_cidrs: vec!["10.43.0.0/24".into()],
        rng_seed: Some(3),
        ..services::ServiceConfig::default()
    };
    let mut c = Cluster::with_config(config);
    // 254 usable addresses, the kubernetes Service has one, 10.43.0.10 is kept back.
    for i in 0..252 {
        let w = c
            .create(svc(&format!("s{i}"), json!({"ports": [{"port": 80}]})))
            .unwrap();
        assert_ne!(w.object["spec"]["clusterIP"], "10.43.0.10");
    }
    let e = c
        .create(svc("full", json!({"ports": [{"port": 80}]})))
        .err()
        .unwrap();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            500,
            "Internal error occurred: failed to allocate a serviceIP: range is full"
        )
    );
    let dns = c.create(svc("kube-dns", json!({"clusterIP": "10.43.0.10", "ports": [{"name": "dns", "protocol": "UDP", "port": 53}]}))).unwrap();
    assert_eq!(dns.object["spec"]["clusterIP"], "10.43.0.10");
}
