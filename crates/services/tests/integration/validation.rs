//! Reference transcript 08: validation errors, one message per refused manifest, and the raw
//! 422 `Status` body.

use crate::harness::*;
use serde_json::json;

fn create_err(c: &mut Cluster, name: &str, spec: serde_json::Value) -> String {
    kubectl(
        &c.create(svc(name, spec))
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted")),
    )
}

#[test]
fn ports() {
    let mut c = Cluster::new();
    assert_eq!(
        create_err(&mut c, "no-ports", json!({"selector": {"app": "nginx"}})),
        "The Service \"no-ports\" is invalid: spec.ports: Required value"
    );
    for p in [0, 70000, -1] {
        assert_eq!(
            create_err(&mut c, "p", json!({"selector": {"app": "nginx"}, "ports": [{"port": p}]})),
            format!("The Service \"p\" is invalid: \n* spec.ports[0].port: Invalid value: {p}: must be between 1 and 65535, inclusive\n* spec.ports[0].targetPort: Invalid value: {p}: must be between 1 and 65535, inclusive")
        );
    }
    let zero = c
        .create(svc(
            "targetport-zero",
            json!({"selector": {"app": "nginx"}, "ports": [{"port": 80, "targetPort": 0}]}),
        ))
        .unwrap();
    assert_eq!(
        zero.object["spec"]["ports"],
        json!([{"protocol": "TCP", "port": 80, "targetPort": 80}])
    );
    assert_eq!(
        create_err(&mut c, "targetport-70000", json!({"selector": {"app": "nginx"}, "ports": [{"port": 80, "targetPort": 70000}]})),
        "The Service \"targetport-70000\" is invalid: spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
    );
    assert_eq!(
        create_err(&mut c, "targetport-badnames", json!({"selector": {"app": "nginx"}, "ports": [
            {"name": "a", "port": 80, "targetPort": "HTTP_Port"}, {"name": "b", "port": 81, "targetPort": "this-name-is-too-long"},
            {"name": "c", "port": 82, "targetPort": "1234x"}, {"name": "d", "port": 83, "targetPort": "a--b"},
            {"name": "e", "port": 84, "targetPort": "8080"}]})),
        "The Service \"targetport-badnames\" is invalid: \n\
         * spec.ports[0].targetPort: Invalid value: \"HTTP_Port\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)\n\
         * spec.ports[1].targetPort: Invalid value: \"this-name-is-too-long\": must be no more than 15 characters\n\
         * spec.ports[3].targetPort: Invalid value: \"a--b\": must not contain consecutive hyphens\n\
         * spec.ports[4].targetPort: Invalid value: \"8080\": must contain at least one letter (a-z)"
    );
    assert_eq!(
        create_err(
            &mut c,
            "dup-names",
            json!({"selector": {"app": "nginx"}, "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]})
        ),
        "The Service \"dup-names\" is invalid: spec.ports[1].name: Duplicate value: \"http\""
    );
    assert_eq!(
        create_err(&mut c, "unnamed-multi", json!({"selector": {"app": "nginx"}, "ports": [{"port": 80}, {"port": 81}]})),
        "The Service \"unnamed-multi\" is invalid: \n* spec.ports[0].name: Required value\n* spec.ports[1].name: Required value"
    );
    assert_eq!(
        create_err(&mut c, "dup-port-proto", json!({"selector": {"app": "nginx"}, "ports": [{"name": "a", "port": 80, "targetPort": 8080}, {"name": "b", "port": 80, "targetPort": 9090}]})),
        "The Service \"dup-port-proto\" is invalid: spec.ports[1]: Duplicate value: {\"Name\":\"\",\"Protocol\":\"TCP\",\"AppProtocol\":null,\"Port\":80,\"TargetPort\":0,\"NodePort\":0}"
    );
    assert_eq!(
        create_err(&mut c, "bad-port-name", json!({"selector": {"app": "nginx"}, "ports": [{"name": "HTTP_Port", "port": 80}]})),
        "The Service \"bad-port-name\" is invalid: spec.ports[0].name: Invalid value: \"HTTP_Port\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    );
    assert_eq!(
        c.adm.allocations().cluster_ips.len(),
        2,
        "refused creates hold no ClusterIP"
    );
}

#[test]
fn protocols_affinity_type_and_policies() {
    let mut c = Cluster::new();
    let mixed = c
        .create(svc("mixed-proto", json!({"selector": {"app": "nginx"}, "ports": [
            {"name": "sctp", "protocol": "SCTP", "port": 9999}, {"name": "udp", "protocol": "UDP", "port": 53}, {"name": "tcp", "protocol": "TCP", "port": 53}]})))
        .unwrap();
    assert_eq!(mixed.object["spec"]["ports"].as_array().unwrap().len(), 3);
    for (name, proto) in [("lower-proto", "tcp"), ("icmp-proto", "ICMP")] {
        assert_eq!(
            create_err(&mut c, name, json!({"selector": {"app": "nginx"}, "ports": [{"protocol": proto, "port": 80}]})),
            format!("The Service \"{name}\" is invalid: spec.ports[0].protocol: Unsupported value: \"{proto}\": supported values: \"SCTP\", \"TCP\", \"UDP\"")
        );
    }
    let a = c.create(svc("affinity-default", json!({"selector": {"app": "nginx"}, "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}))).unwrap();
    assert_eq!(
        a.object["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
    for t in [0, 86401] {
        assert_eq!(
            create_err(&mut c, "affinity", json!({"selector": {"app": "nginx"}, "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": t}}, "ports": [{"port": 80}]})),
            format!("The Service \"affinity\" is invalid: spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: {t}: must be greater than 0 and less than 86400")
        );
    }
    c.create(svc("affinity-max", json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86400}}, "ports": [{"port": 80}]}))).unwrap();
    assert_eq!(
        create_err(&mut c, "affinity-bogus", json!({"sessionAffinity": "Sticky", "ports": [{"port": 80}]})),
        "The Service \"affinity-bogus\" is invalid: spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\""
    );
    let none = c.create(svc("affinity-none-with-config", json!({"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}, "ports": [{"port": 80}]}))).unwrap();
    assert!(none.object["spec"].get("sessionAffinityConfig").is_none());

    for (name, t) in [("type-foo", "Foo"), ("type-lowercase", "clusterip")] {
        assert_eq!(
            create_err(&mut c, name, json!({"type": t, "ports": [{"port": 80}]})),
            format!("The Service \"{name}\" is invalid: spec.type: Unsupported value: \"{t}\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"")
        );
    }
    assert_eq!(
        create_err(&mut c, "itp-bogus", json!({"internalTrafficPolicy": "Bogus", "ports": [{"port": 80}]})),
        "The Service \"itp-bogus\" is invalid: spec.internalTrafficPolicy: Unsupported value: \"Bogus\": supported values: \"Cluster\", \"Local\""
    );
    let td = c.create(svc("td-preferclose", json!({"trafficDistribution": "PreferClose", "internalTrafficPolicy": "Local", "ports": [{"port": 80}]}))).unwrap();
    assert_eq!(
        td.warnings,
        vec!["spec.trafficDistribution: \"PreferClose\" is deprecated; use \"PreferSameZone\""]
    );
    assert_eq!(td.object["spec"]["internalTrafficPolicy"], "Local");
    assert_eq!(
        create_err(&mut c, "td-bogus", json!({"trafficDistribution": "Anywhere", "ports": [{"port": 80}]})),
        "The Service \"td-bogus\" is invalid: spec.trafficDistribution: Unsupported value: \"Anywhere\": supported values: \"PreferClose\", \"PreferSameZone\", \"PreferSameNode\""
    );
    assert_eq!(
        create_err(&mut c, "app-protocol", json!({"ports": [{"name": "a", "port": 80, "appProtocol": "http"}, {"name": "b", "port": 81, "appProtocol": "kubernetes.io/h2c"}, {"name": "c", "port": 82, "appProtocol": "not valid!"}]})),
        "The Service \"app-protocol\" is invalid: spec.ports[2].appProtocol: Invalid value: \"not valid!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
}

#[test]
fn many_errors_at_once_and_the_raw_status() {
    let mut c = Cluster::new();
    assert_eq!(
        create_err(&mut c, "many-errors", json!({"type": "Foo", "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}},
            "ports": [{"name": "http", "port": 0}, {"name": "http", "port": 70000, "protocol": "ICMP"}]})),
        "The Service \"many-errors\" is invalid: \n\
         * spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive\n\
         * spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive\n\
         * spec.ports[1].name: Duplicate value: \"http\"\n\
         * spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive\n\
         * spec.ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"\n\
         * spec.ports[1].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive\n\
         * spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400\n\
         * spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
    );
    let e = c
        .create(svc("bad-svc", json!({"type": "ClusterIP", "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}},
            "selector": {"app": "nginx"}, "ports": [{"name": "http", "port": 0}, {"name": "http", "port": 70000}]})))
        .err()
        .unwrap();
    assert_eq!(
        serde_json::to_string(&e.to_status()).unwrap(),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Service \"bad-svc\" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[1].name: Duplicate value: \"http\", spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.ports[1].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400]","reason":"Invalid","details":{"name":"bad-svc","kind":"Service","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: 0: must be between 1 and 65535, inclusive","field":"spec.ports[0].port"},{"reason":"FieldValueInvalid","message":"Invalid value: 0: must be between 1 and 65535, inclusive","field":"spec.ports[0].targetPort"},{"reason":"FieldValueDuplicate","message":"Duplicate value: \"http\"","field":"spec.ports[1].name"},{"reason":"FieldValueInvalid","message":"Invalid value: 70000: must be between 1 and 65535, inclusive","field":"spec.ports[1].port"},{"reason":"FieldValueInvalid","message":"Invalid value: 70000: must be between 1 and 65535, inclusive","field":"spec.ports[1].targetPort"},{"reason":"FieldValueInvalid","message":"Invalid value: 0: must be greater than 0 and less than 86400","field":"spec.sessionAffinityConfig.clientIP.timeoutSeconds"}]},"code":422}"#
    );
}

#[test]
fn selector_and_update_time_validation() {
    let mut c = Cluster::new();
    assert_eq!(
        create_err(&mut c, "bad-selector", json!({"selector": {"app": "nginx!", "bad key/with/two/slashes": "x"}, "ports": [{"port": 80}]})),
        "The Service \"bad-selector\" is invalid: \n\
         * spec.selector: Invalid value: \"nginx!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')\n\
         * spec.selector: Invalid value: \"bad key/with/two/slashes\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    );
    c.create(svc(
        "nginx-service",
        json!({"selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "port": 80}]}),
    ))
    .unwrap();
    let mut zero = c.get("nginx-service");
    zero["spec"]["ports"][0]["port"] = json!(0);
    assert_eq!(
        kubectl(&c.replace("nginx-service", zero).err().unwrap()),
        "The Service \"nginx-service\" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
    );
    assert_eq!(
        kubectl(&c.patch("nginx-service", json!({"spec": {"type": "Foo"}})).err().unwrap()),
        "The Service \"nginx-service\" is invalid: spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
    );
    c.create(svc(
        "1nginx",
        json!({"selector": {"app": "nginx"}, "ports": [{"port": 80}]}),
    ))
    .unwrap();
}

#[test]
fn an_empty_name_fails_inside_ip_allocation() {
    let mut c = Cluster::new();
    let e = c
        .create(svc(
            "",
            json!({"selector": {"app": "nginx"}, "ports": [{"port": 80}]}),
        ))
        .err()
        .unwrap();
    let text = kubectl(&e);
    assert!(text.starts_with("The Service \"\" is invalid: spec.clusterIPs: Invalid value: [\"\"]: failed to allocate IP: IPAddress.networking.k8s.io \"10.43."), "{text}");
    assert!(
        text.ends_with("\" is invalid: spec.parentRef.name: Required value"),
        "{text}"
    );
    assert_eq!(c.adm.allocations().cluster_ips.len(), 1);
}

/// kube-apiserver allocates before it validates (`BeginCreate`), then validates metadata and
/// spec together: a headless Service named "" (no ClusterIP to allocate) gets the metadata
/// error, and a bad name is listed with the spec's errors, metadata first. Nothing stays
/// reserved.
#[test]
fn name_errors_come_after_allocation_with_the_spec_errors() {
    let mut c = Cluster::new();
    assert_eq!(
        create_err(&mut c, "", json!({"clusterIP": "None", "ports": [{"port": 80}]})),
        "The Service \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );
    assert_eq!(
        create_err(&mut c, "nginx.dotted", json!({"selector": {"app": "nginx"}, "ports": [{"port": 0}]})),
        "The Service \"nginx.dotted\" is invalid: \n* metadata.name: Invalid value: \"nginx.dotted\": must not contain dots\n* spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive\n* spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"
    );
    let a = c.adm.allocations();
    assert_eq!(
        (a.pending, a.cluster_ips.len(), a.node_ports.len()),
        (0, 1, 0),
        "{a:?}"
    );
}
