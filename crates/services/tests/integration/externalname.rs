//! Reference transcript 05: ExternalName Services.

use crate::harness::*;
use serde_json::json;

#[test]
fn external_name_is_defaulted_with_nothing_kubernetes_does_not_set() {
    let mut c = Cluster::new();
    let alias = c
        .create(svc(
            "nginx-alias",
            json!({"type": "ExternalName", "externalName": "nginx-service.ns2.svc.cluster.local"}),
        ))
        .unwrap();
    assert_eq!(
        alias.object["spec"],
        json!({"type": "ExternalName", "sessionAffinity": "None", "externalName": "nginx-service.ns2.svc.cluster.local"})
    );
    assert_eq!(alias.object["status"], json!({"loadBalancer": {}}));

    let ports = c
        .create(svc("nginx-alias-ports", json!({"type": "ExternalName", "externalName": "www.example.com", "selector": {"app": "nginx"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]})))
        .unwrap();
    assert_eq!(
        ports.object["spec"],
        json!({"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}], "selector": {"app": "nginx"},
               "type": "ExternalName", "sessionAffinity": "None", "externalName": "www.example.com"})
    );
    assert_eq!(
        c.adm.allocations().cluster_ips.len(),
        1,
        "ExternalName gets no ClusterIP"
    );
}

#[test]
fn external_name_validation() {
    let mut c = Cluster::new();
    let regex = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    let e = c
        .create(svc(
            "bad-alias-1",
            json!({"type": "ExternalName", "externalName": "Nginx_Service.ns2"}),
        ))
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), format!("The Service \"bad-alias-1\" is invalid: spec.externalName: Invalid value: \"Nginx_Service.ns2\": {regex}"));
    let e = c
        .create(svc("bad-alias-2", json!({"type": "ExternalName"})))
        .err()
        .unwrap();
    assert_eq!(
        kubectl(&e),
        "The Service \"bad-alias-2\" is invalid: spec.externalName: Required value"
    );
    let e = c
        .create(svc(
            "bad-alias-3",
            json!({"type": "ExternalName", "externalName": "-leading-dash.example.com"}),
        ))
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), format!("The Service \"bad-alias-3\" is invalid: spec.externalName: Invalid value: \"-leading-dash.example.com\": {regex}"));
    // Only the subdomain rule and its 253 characters are checked.
    c.create(svc("bad-alias-4", json!({"type": "ExternalName", "externalName": "this-label-is-way-too-long-for-dns-because-it-has-more-than-63-chars.example.com"}))).unwrap();
    let long = vec!["a".repeat(60); 5].join(".");
    let e = c
        .create(svc(
            "bad-alias-5",
            json!({"type": "ExternalName", "externalName": long}),
        ))
        .err()
        .unwrap();
    assert_eq!(kubectl(&e), format!("The Service \"bad-alias-5\" is invalid: spec.externalName: Invalid value: \"{long}\": must be no more than 253 characters"));
    c.create(svc(
        "alias-fqdn-dot",
        json!({"type": "ExternalName", "externalName": "www.example.com."}),
    ))
    .unwrap();
    c.create(svc(
        "alias-ip",
        json!({"type": "ExternalName", "externalName": "192.168.150.41"}),
    ))
    .unwrap();
    let e = c.create(svc("bad-alias-cip", json!({"type": "ExternalName", "externalName": "www.example.com", "clusterIP": "10.43.50.50"}))).err().unwrap();
    assert_eq!(kubectl(&e), "The Service \"bad-alias-cip\" is invalid: spec.clusterIPs: Forbidden: may not be set for ExternalName services");
    assert_eq!(c.adm.allocations().cluster_ips.len(), 1);
}

#[test]
fn external_name_on_a_cluster_ip_service_is_kept_with_a_warning() {
    let mut c = Cluster::new();
    let w = c.create(svc("cip-with-extname", json!({"type": "ClusterIP", "externalName": "www.example.com", "selector": {"app": "nginx"}, "ports": [{"port": 80}]}))).unwrap();
    assert_eq!(
        w.warnings,
        vec!["spec.externalName is ignored when spec.type is not \"ExternalName\""]
    );
    assert_eq!(w.object["spec"]["externalName"], "www.example.com");
    assert_eq!(
        w.object["spec"]["ports"],
        json!([{"protocol": "TCP", "port": 80, "targetPort": 80}])
    );
}

#[test]
fn type_conversions_allocate_and_release_the_cluster_ip() {
    let mut c = Cluster::new();
    c.create(svc("nginx-alias-ports", json!({"type": "ExternalName", "externalName": "www.example.com", "selector": {"app": "nginx"},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}))).unwrap();
    let to_cip = c
        .patch("nginx-alias-ports", json!({"spec": {"type": "ClusterIP"}}))
        .unwrap();
    assert_eq!(
        to_cip.warnings,
        vec!["spec.externalName is ignored when spec.type is not \"ExternalName\""]
    );
    let ip = to_cip.object["spec"]["clusterIP"].clone();
    assert_eq!(
        to_cip.object["spec"],
        json!({"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}], "selector": {"app": "nginx"},
               "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None", "externalName": "www.example.com",
               "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"})
    );
    assert_eq!(c.adm.allocations().cluster_ips.len(), 2);

    let back = c
        .patch(
            "nginx-alias-ports",
            json!({"spec": {"type": "ExternalName", "externalName": "www.example.com"}}),
        )
        .unwrap();
    assert!(back.warnings.is_empty());
    assert_eq!(
        back.object["spec"],
        json!({"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}], "selector": {"app": "nginx"},
               "type": "ExternalName", "sessionAffinity": "None", "externalName": "www.example.com"})
    );
    assert_eq!(
        c.adm.allocations().cluster_ips.len(),
        1,
        "released on the change to ExternalName"
    );

    c.create(svc(
        "nginx-alias",
        json!({"type": "ExternalName", "externalName": "nginx-service.ns2.svc.cluster.local"}),
    ))
    .unwrap();
    let e = c
        .patch("nginx-alias", json!({"spec": {"type": "ClusterIP"}}))
        .err()
        .unwrap();
    assert_eq!(
        kubectl(&e),
        "The Service \"nginx-alias\" is invalid: spec.ports: Required value"
    );
    let a = c.adm.allocations();
    assert_eq!(a.cluster_ips.len(), 1);
    assert_eq!(a.pending, 0);
}
