//! Reference transcript 06: LoadBalancer Services, externalIPs, source ranges, health check
//! NodePorts, and writes to `status.loadBalancer`.

use crate::harness::*;
use serde_json::json;

const EXTERNAL_IPS_WARNING: &str =
    "spec.externalIPs is deprecated and may no longer be implemented in some clusters";

fn lb(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({"type": "LoadBalancer", "selector": {"app": "nginx"}, "ports": [{"port": 80, "targetPort": 80}]});
    merge_patch(&mut spec, &extra);
    svc(name, spec)
}

#[test]
fn load_balancer_defaults() {
    let mut c = Cluster::new();
    let w = c.create(lb("nginx-lb", json!({}))).unwrap();
    let spec = &w.object["spec"];
    let ip = spec["clusterIP"].clone();
    let np = spec["ports"][0]["nodePort"].clone();
    assert_eq!(
        spec,
        &json!({"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80, "nodePort": np}], "selector": {"app": "nginx"},
                "clusterIP": ip, "clusterIPs": [ip], "type": "LoadBalancer", "sessionAffinity": "None",
                "externalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "allocateLoadBalancerNodePorts": true, "internalTrafficPolicy": "Cluster"})
    );
}

#[test]
fn external_ips() {
    let mut c = Cluster::new();
    let x = c
        .create(svc("nginx-service-x", json!({"type": "ClusterIP", "selector": {"app": "nginx"}, "externalIPs": ["192.168.150.41"],
            "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 82, "targetPort": 80}]})))
        .unwrap();
    assert_eq!(x.warnings, vec![EXTERNAL_IPS_WARNING]);
    assert_eq!(
        x.object["spec"]["externalTrafficPolicy"], "Cluster",
        "externalIPs make a ClusterIP Service externally accessible"
    );
    let t = c
        .create(lb(
            "turbo-gateway-lb",
            json!({"externalIPs": ["192.168.150.41"]}),
        ))
        .unwrap();
    assert_eq!(t.warnings, vec![EXTERNAL_IPS_WARNING]);
    c.create(svc("nginx-np-x", json!({"type": "NodePort", "externalIPs": ["192.168.150.41", "192.168.150.42"], "ports": [{"name": "http", "port": 83, "targetPort": 80}]}))).unwrap();

    let e = c
        .create(svc("bad-extip", json!({"selector": {"app": "nginx"}, "ports": [{"port": 80}],
            "externalIPs": ["300.1.1.1", "127.0.0.1", "0.0.0.0", "224.0.0.1", "169.254.1.1", "192.168.150.041", "10.0.0.0/24"]})))
        .err()
        .unwrap();
    assert_eq!(
        kubectl(&e),
        "The Service \"bad-extip\" is invalid: \n\
         * spec.externalIPs[0]: Invalid value: \"300.1.1.1\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)\n\
         * spec.externalIPs[1]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)\n\
         * spec.externalIPs[2]: Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)\n\
         * spec.externalIPs[3]: Invalid value: \"224.0.0.1\": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)\n\
         * spec.externalIPs[4]: Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)\n\
         * spec.externalIPs[5]: Invalid value: \"192.168.150.041\": must not have leading 0s\n\
         * spec.externalIPs[6]: Invalid value: \"10.0.0.0/24\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    );
}

#[test]
fn load_balancer_ip_is_never_validated() {
    let mut c = Cluster::new();
    let w = c
        .create(lb(
            "nginx-lb-ip",
            json!({"loadBalancerIP": "192.168.150.50"}),
        ))
        .unwrap();
    assert_eq!(w.object["spec"]["loadBalancerIP"], "192.168.150.50");
    let bad = c
        .create(lb("bad-lbip", json!({"loadBalancerIP": "not-an-ip"})))
        .unwrap();
    assert!(bad.warnings.is_empty());
    let on_cip = c.create(svc("lbip-on-clusterip", json!({"type": "ClusterIP", "loadBalancerIP": "192.168.150.51", "ports": [{"port": 80}]}))).unwrap();
    assert_eq!(on_cip.object["spec"]["loadBalancerIP"], "192.168.150.51");

    // LoadBalancer -> ClusterIP keeps loadBalancerIP, drops the rest.
    c.patch_status("nginx-lb-ip", json!({"status": {"loadBalancer": {"ingress": [{"hostname": "only-hostname.example.com"}]}}})).unwrap();
    let w = c
        .patch("nginx-lb-ip", json!({"spec": {"type": "ClusterIP"}}))
        .unwrap();
    let ip = w.object["spec"]["clusterIP"].clone();
    assert_eq!(
        w.object["spec"],
        json!({"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}], "selector": {"app": "nginx"},
               "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None",
               "loadBalancerIP": "192.168.150.50", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
               "internalTrafficPolicy": "Cluster"})
    );
    assert_eq!(w.object["status"], json!({"loadBalancer": {}}));
}

#[test]
fn source_ranges() {
    let mut c = Cluster::new();
    c.create(lb(
        "nginx-lb-src",
        json!({"loadBalancerSourceRanges": ["10.0.0.0/8", "192.168.150.0/24", "203.0.113.7/32"]}),
    ))
    .unwrap();
    let e = c
        .create(lb(
            "bad-src-ranges",
            json!({"loadBalancerSourceRanges": ["10.0.0.0/33", "192.168.1.1", "10.1.2.3/8"]}),
        ))
        .err()
        .unwrap();
    assert_eq!(
        kubectl(&e),
        "The Service \"bad-src-ranges\" is invalid: \n\
         * spec.LoadBalancerSourceRanges[0]: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)\n\
         * spec.LoadBalancerSourceRanges[1]: Invalid value: \"192.168.1.1\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)\n\
         * spec.LoadBalancerSourceRanges[2]: Invalid value: \"10.1.2.3/8\": must not have bits set beyond the prefix length"
    );
    let e = c.create(svc("src-ranges-on-clusterip", json!({"type": "ClusterIP", "loadBalancerSourceRanges": ["10.0.0.0/8"], "ports": [{"port": 80}]}))).err().unwrap();
    assert_eq!(kubectl(&e), "The Service \"src-ranges-on-clusterip\" is invalid: spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'");

    let mut annotated = lb("src-ranges-annotation", json!({}));
    annotated["metadata"]["annotations"] = json!({"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8, 192.168.0.0/16"});
    c.create(annotated).unwrap();
    let mut bad = lb("src-ranges-annotation-bad", json!({}));
    bad["metadata"]["annotations"] =
        json!({"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8,bogus"});
    assert_eq!(
        kubectl(&c.create(bad).err().unwrap()),
        "The Service \"src-ranges-annotation-bad\" is invalid: metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: Invalid value: \"bogus\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
    );
}

#[test]
fn health_check_node_port() {
    let mut c = Cluster::new();
    let local = c.create(lb("nginx-lb-local", json!({"externalTrafficPolicy": "Local", "ports": [{"name": "http", "port": 80, "targetPort": 80}]}))).unwrap();
    let hc = local.object["spec"]["healthCheckNodePort"]
        .as_i64()
        .unwrap();
    assert!((30000..=32767).contains(&hc));
    assert!(c.adm.allocations().node_ports.contains_key(&(hc as u16)));

    let np_local = c.create(svc("nginx-np-local", json!({"type": "NodePort", "externalTrafficPolicy": "Local", "ports": [{"name": "http", "port": 80}]}))).unwrap();
    assert!(
        np_local.object["spec"].get("healthCheckNodePort").is_none(),
        "NodePort Services get no health check port"
    );

    let fixed = c
        .create(lb(
            "nginx-lb-local-hc",
            json!({"externalTrafficPolicy": "Local", "healthCheckNodePort": 32000}),
        ))
        .unwrap();
    assert_eq!(fixed.object["spec"]["healthCheckNodePort"], 32000);
    let e = c
        .create(lb(
            "bad-hc-cluster",
            json!({"externalTrafficPolicy": "Cluster", "healthCheckNodePort": 32001}),
        ))
        .err()
        .unwrap();
    assert_eq!(
        kubectl(&e),
        "The Service \"bad-hc-cluster\" is invalid: spec.healthCheckNodePort: Invalid value: 32001: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
    );
    let e = c
        .create(lb(
            "bad-hc-taken",
            json!({"externalTrafficPolicy": "Local", "healthCheckNodePort": 32000}),
        ))
        .err()
        .unwrap();
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    assert_eq!(e.message, "Internal error occurred: failed to allocate requested HealthCheck NodePort 32000: provided port is already allocated");
    let e = c
        .create(svc(
            "etp-local-clusterip",
            json!({"type": "ClusterIP", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
        ))
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), "The Service \"etp-local-clusterip\" is invalid: spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services");
    let e = c
        .create(lb("etp-bogus", json!({"externalTrafficPolicy": "Bogus"})))
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), "The Service \"etp-bogus\" is invalid: spec.externalTrafficPolicy: Unsupported value: \"Bogus\": supported values: \"Cluster\", \"Local\"");
    c.delete("nginx-lb-local-hc");
    assert!(!c.adm.allocations().node_ports.contains_key(&32000));

    // Local -> Cluster releases the health check port, back to Local allocates a new one.
    let cluster = c
        .patch(
            "nginx-lb-local",
            json!({"spec": {"externalTrafficPolicy": "Cluster"}}),
        )
        .unwrap();
    assert!(cluster.object["spec"].get("healthCheckNodePort").is_none());
    assert!(!c.adm.allocations().node_ports.contains_key(&(hc as u16)));
    let again = c
        .patch(
            "nginx-lb-local",
            json!({"spec": {"externalTrafficPolicy": "Local"}}),
        )
        .unwrap();
    let hc2 = again.object["spec"]["healthCheckNodePort"]
        .as_i64()
        .unwrap();
    assert!(c.adm.allocations().node_ports.contains_key(&(hc2 as u16)));
    assert_eq!(c.adm.allocations().pending, 0);
}

#[test]
fn no_node_ports_and_load_balancer_class() {
    let mut c = Cluster::new();
    let w = c.create(lb("nginx-lb-nonp", json!({"allocateLoadBalancerNodePorts": false, "loadBalancerClass": "example.com/my-lb"}))).unwrap();
    assert!(w.object["spec"]["ports"][0].get("nodePort").is_none());
    assert_eq!(w.object["spec"]["allocateLoadBalancerNodePorts"], false);
    assert_eq!(c.adm.allocations().node_ports.len(), 0);
    let e = c
        .patch(
            "nginx-lb-nonp",
            json!({"spec": {"loadBalancerClass": "example.com/other-lb"}}),
        )
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-lb-nonp\" is invalid: spec.loadBalancerClass: Invalid value: \"example.com/other-lb\": may not change once set");
    let e = c.create(svc("bad-lbclass", json!({"type": "ClusterIP", "loadBalancerClass": "example.com/my-lb", "ports": [{"port": 80}]}))).err().unwrap();
    assert_eq!(kubectl(&e), "The Service \"bad-lbclass\" is invalid: spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'");
    let e = c
        .create(lb(
            "bad-lbclass-2",
            json!({"loadBalancerClass": "Not A Qualified Name"}),
        ))
        .err()
        .unwrap();
    assert_eq!(
        kubectl(&e),
        "The Service \"bad-lbclass-2\" is invalid: spec.loadBalancerClass: Invalid value: \"Not A Qualified Name\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
}

#[test]
fn status_writes() {
    let mut c = Cluster::new();
    c.create(lb("nginx-lb", json!({}))).unwrap();
    let w = c
        .patch_status(
            "nginx-lb",
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.168.150.100"}]}}}),
        )
        .unwrap();
    assert_eq!(
        w.object["status"],
        json!({"loadBalancer": {"ingress": [{"ip": "192.168.150.100", "ipMode": "VIP"}]}})
    );
    // Status through the main resource is dropped.
    let main = c
        .patch(
            "nginx-lb",
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}),
        )
        .unwrap();
    assert_eq!(
        main.object["status"],
        json!({"loadBalancer": {"ingress": [{"ip": "192.168.150.100", "ipMode": "VIP"}]}})
    );

    c.create(lb("turbo", json!({}))).unwrap();
    let w = c.patch_status("turbo", json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.168.150.101", "ipMode": "Proxy"}, {"hostname": "lb.example.com"}]}}})).unwrap();
    assert_eq!(
        w.object["status"],
        json!({"loadBalancer": {"ingress": [{"ip": "192.168.150.101", "ipMode": "Proxy"}, {"hostname": "lb.example.com"}]}})
    );

    c.create(lb("nginx-lb-src", json!({}))).unwrap();
    let e = c.patch_status("nginx-lb-src", json!({"status": {"loadBalancer": {"ingress": [{"hostname": "h.example.com", "ipMode": "VIP"}]}}})).err().unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-lb-src\" is invalid: status.loadBalancer.ingress[0].ipMode: Forbidden: may not be specified when `ip` is not set");
    let e = c
        .patch_status(
            "nginx-lb-src",
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "not-an-ip"}]}}}),
        )
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-lb-src\" is invalid: status.loadBalancer.ingress[0].ip: Invalid value: \"not-an-ip\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    let w = c.patch_status("nginx-lb-src", json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.168.150.102", "ports": [{"port": 80, "protocol": "TCP"}]}]}}})).unwrap();
    assert_eq!(
        serde_json::to_string(&w.object["status"]).unwrap(),
        r#"{"loadBalancer":{"ingress":[{"ip":"192.168.150.102","ipMode":"VIP","ports":[{"port":80,"protocol":"TCP"}]}]}}"#
    );

    c.create(svc(
        "nginx-service-x",
        json!({"type": "ClusterIP", "externalIPs": ["192.168.150.41"], "ports": [{"port": 82}]}),
    ))
    .unwrap();
    let e = c
        .patch_status(
            "nginx-service-x",
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.168.150.103"}]}}}),
        )
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), "The Service \"nginx-service-x\" is invalid: status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'");
}
