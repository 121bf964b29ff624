//! Field selectors: syntax and escaping, the labels each resource supports, and matching.

use crate::res;
use model::fields::{
    escape_value, field_set, supported_fields, unescape_value, FieldOperator, FieldSelector,
};
use serde_json::json;

fn parse(s: &str) -> FieldSelector {
    FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn convert_err(group: &str, plural: &str, s: &str) -> String {
    parse(s)
        .convert_for(res(group, plural))
        .expect_err(s)
        .to_string()
}

#[test]
fn operators_and_printing() {
    let s = parse("spec.type==NodePort");
    assert_eq!(s.terms()[0].operator, FieldOperator::Equals);
    assert_eq!(s.to_string(), "spec.type=NodePort");
    let s = parse("metadata.namespace!=default");
    assert_eq!(s.terms()[0].operator, FieldOperator::NotEquals);
    assert_eq!(s.to_string(), "metadata.namespace!=default");
    // Terms are ordered by their text, as upstream sorts them before parsing.
    assert_eq!(
        parse("spec.type=NodePort,metadata.name=a").to_string(),
        "metadata.name=a,spec.type=NodePort"
    );
    assert_eq!(
        parse("metadata.name=a").requires_exact_match("metadata.name"),
        Some("a")
    );
    assert_eq!(
        parse("metadata.name!=a").requires_exact_match("metadata.name"),
        None
    );
}

#[test]
fn empty_terms_are_ignored() {
    assert!(parse("").is_empty());
    assert!(parse(",,").is_empty());
    assert_eq!(parse("a=b,").terms().len(), 1);
    assert_eq!(parse("a=").terms()[0].value, "");
}

#[test]
fn escaping_commas_equals_and_backslashes() {
    let s = parse(r"a=x\,y\=z\\w,b=c");
    assert_eq!(s.terms()[0].value, r"x,y=z\w");
    assert_eq!(s.to_string(), r"a=x\,y\=z\\w,b=c");
    assert_eq!(escape_value(r"a,b=c\"), r"a\,b\=c\\");
    assert_eq!(unescape_value(r"a\,b\=c\\").unwrap(), r"a,b=c\");
    assert_eq!(unescape_value("plain").unwrap(), "plain");
}

#[test]
fn syntax_errors() {
    let err = |s: &str| FieldSelector::parse(s).expect_err(s).to_string();
    assert_eq!(
        err("abc"),
        "invalid selector: 'abc'; can't understand 'abc'"
    );
    assert_eq!(
        err("a=b,cd"),
        "invalid selector: 'a=b,cd'; can't understand 'cd'"
    );
    assert_eq!(
        err("a=b=c"),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        err(r"a=x\y"),
        r"invalid field selector: invalid escape sequence: \y"
    );
    assert_eq!(
        err(r"a=x\"),
        r"invalid field selector: invalid escape sequence: \"
    );
    let e: model::ApiError = FieldSelector::parse("abc").unwrap_err().into();
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
}

#[test]
fn supported_labels_per_resource() {
    assert_eq!(
        supported_fields(res("", "services")),
        [
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type"
        ]
    );
    assert_eq!(
        supported_fields(res("", "nodes")),
        ["metadata.name", "spec.unschedulable"]
    );
    assert_eq!(
        supported_fields(res("", "namespaces")),
        ["status.phase", "metadata.name"]
    );
    assert_eq!(
        supported_fields(res("", "secrets")),
        ["type", "metadata.namespace", "metadata.name"]
    );
    assert_eq!(
        supported_fields(res("", "configmaps")),
        ["metadata.name", "metadata.namespace"]
    );
    assert_eq!(
        supported_fields(res("discovery.k8s.io", "endpointslices")),
        ["metadata.name", "metadata.namespace"]
    );
    assert!(supported_fields(res("", "pods")).contains(&"status.nominatedNodeName"));
    assert!(supported_fields(res("", "events")).contains(&"involvedObject.uid"));
    for r in model::RESOURCES {
        for f in supported_fields(r) {
            let sel = parse(&format!("{f}=x"));
            assert_eq!(sel.convert_for(r).unwrap(), sel, "{} {f}", r.plural);
        }
    }
}

#[test]
fn unsupported_labels_have_kube_apiserver_errors() {
    assert_eq!(
        convert_err("", "services", "spec.ports=80"),
        "field label not supported: spec.ports"
    );
    assert_eq!(
        convert_err("", "pods", "spec.containers=x"),
        "field label not supported: spec.containers"
    );
    assert_eq!(
        convert_err("", "nodes", "metadata.namespace=x"),
        "field label not supported: metadata.namespace"
    );
    assert_eq!(
        convert_err("", "namespaces", "metadata.namespace=x"),
        "field label not supported: metadata.namespace"
    );
    assert_eq!(
        convert_err("", "configmaps", "data.x=y"),
        "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    assert_eq!(
        convert_err("discovery.k8s.io", "endpointslices", "addressType=IPv4"),
        "\"addressType\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    assert_eq!(
        convert_err("metallb.io", "ipaddresspools", "spec.autoAssign=true"),
        "field label not supported: spec.autoAssign"
    );
    // The first offending term in sorted order is reported.
    assert_eq!(
        convert_err("", "services", "spec.zzz=1,metadata.bad=2"),
        "field label not supported: metadata.bad"
    );
    assert!(
        model::fields::check_supported(res("", "services"), &parse("spec.type=NodePort")).is_ok()
    );
}

#[test]
fn pods_accept_the_legacy_spec_host() {
    let converted = parse("spec.host=node1")
        .convert_for(res("", "pods"))
        .unwrap();
    assert_eq!(converted.to_string(), "spec.nodeName=node1");
}

/// Reference 09: `--field-selector spec.type=NodePort`, `spec.clusterIP=None`,
/// `metadata.namespace!=default`.
#[test]
fn service_fields() {
    let r = res("", "services");
    let np = json!({"metadata": {"name": "nginx-np", "namespace": "default"}, "spec": {"type": "NodePort", "clusterIP": "10.96.171.143"}});
    let headless = json!({"metadata": {"name": "nginx-headless", "namespace": "default"}, "spec": {"type": "ClusterIP", "clusterIP": "None"}});
    let other = json!({"metadata": {"name": "alpine-svc", "namespace": "ns1"}, "spec": {"type": "NodePort", "clusterIP": "10.96.60.227"}});
    let pick = |s: &str| -> Vec<&str> {
        let sel = parse(s).convert_for(r).unwrap();
        [&np, &headless, &other]
            .into_iter()
            .filter(|o| sel.matches_object(r, o))
            .map(model::meta::name)
            .collect()
    };
    assert_eq!(pick("spec.type=NodePort"), ["nginx-np", "alpine-svc"]);
    assert_eq!(pick("spec.clusterIP=None"), ["nginx-headless"]);
    assert_eq!(pick("metadata.namespace!=default"), ["alpine-svc"]);
    assert_eq!(
        pick("metadata.namespace=default,metadata.name=nginx-np"),
        ["nginx-np"]
    );
    assert_eq!(pick(""), ["nginx-np", "nginx-headless", "alpine-svc"]);
}

#[test]
fn pod_fields_use_internal_defaults() {
    let r = res("", "pods");
    let pod = json!({"metadata": {"name": "p", "namespace": "default"},
        "spec": {"nodeName": "node1", "restartPolicy": "Always", "schedulerName": "default-scheduler", "serviceAccount": "legacy"},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.42.0.11"}, {"ip": "fd00::11"}]}});
    let set = field_set(r, &pod);
    assert_eq!(set["spec.hostNetwork"], "false");
    assert_eq!(set["spec.serviceAccountName"], "legacy");
    assert_eq!(set["status.podIP"], "10.42.0.11");
    assert_eq!(set["status.nominatedNodeName"], "");
    assert!(!set.contains_key("status.podIPs"));
    assert!(parse("status.phase=Running,spec.nodeName=node1").matches_object(r, &pod));
    assert!(parse("status.podIP=10.42.0.11").matches_object(r, &pod));
    // Accepted, but never set: it reads as "".
    assert!(!parse("status.podIPs=10.42.0.11").matches_object(r, &pod));
    assert!(parse("status.podIPs!=10.42.0.11").matches_object(r, &pod));
    assert!(model::fields::FieldSelector::parse("spec.nodeName=node1")
        .unwrap()
        .matches(|f| model::fields::field_value(r, &pod, f)));
}

/// Reference 13: `--field-selector involvedObject.kind=Service,involvedObject.name=nginx-lb`
/// and `type=Warning`.
#[test]
fn event_fields() {
    let r = res("", "events");
    let manual2 = json!({"metadata": {"name": "nginx-lb.manual2", "namespace": "default"},
        "involvedObject": {"apiVersion": "v1", "kind": "Service", "name": "nginx-lb", "namespace": "default", "uid": "d57019e7"},
        "reason": "EnsuredLoadBalancer", "reportingComponent": "service-controller", "source": {}, "type": "Normal"});
    let readyz = json!({"metadata": {"name": "openshift-kube-apiserver.18ea331a70d9df91", "namespace": "default"},
        "involvedObject": {"kind": "Namespace", "name": "openshift-kube-apiserver"},
        "reason": "KubeAPIReadyz", "source": {"component": "apiserver", "host": "vm"}, "type": "Warning"});
    let sel = parse("involvedObject.kind=Service,involvedObject.name=nginx-lb")
        .convert_for(r)
        .unwrap();
    assert!(sel.matches_object(r, &manual2));
    assert!(!sel.matches_object(r, &readyz));
    assert!(parse("type=Warning").matches_object(r, &readyz));
    // `source` falls back to reportingComponent for events of the new API.
    assert!(parse("source=service-controller").matches_object(r, &manual2));
    assert!(parse("source=apiserver,reportingComponent=").matches_object(r, &readyz));
    assert!(parse("involvedObject.uid=d57019e7").matches_object(r, &manual2));
}

#[test]
fn node_namespace_and_secret_fields() {
    let node = json!({"metadata": {"name": "node1"}, "spec": {}});
    assert!(parse("spec.unschedulable=false,metadata.name=node1")
        .matches_object(res("", "nodes"), &node));
    let ns = json!({"metadata": {"name": "ns1"}, "status": {"phase": "Terminating"}});
    assert!(parse("status.phase=Terminating").matches_object(res("", "namespaces"), &ns));
    let secret =
        json!({"metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/tls"});
    assert!(parse("type=kubernetes.io/tls").matches_object(res("", "secrets"), &secret));
    // A cluster-scoped object has no namespace: `metadata.namespace=` selects it.
    let class = json!({"metadata": {"name": "nginx"}, "spec": {}});
    let ic = res("networking.k8s.io", "ingressclasses");
    assert!(parse("metadata.namespace=")
        .convert_for(ic)
        .unwrap()
        .matches_object(ic, &class));
    assert!(!parse("metadata.namespace=default").matches_object(ic, &class));
}

/// Values with every special character survive escape, print and parse; nothing panics.
#[test]
fn escape_round_trip_and_no_panics() {
    use crate::selectors::Lcg;
    const CHARS: &[char] = &['a', 'b', '\\', ',', '=', '!', ' ', 'é', '/', '.'];
    let mut rng = Lcg(11);
    for _ in 0..20_000 {
        let value: String = (0..rng.next(8))
            .map(|_| CHARS[rng.next(CHARS.len())])
            .collect();
        let sel = parse(&format!("metadata.name={}", escape_value(&value)));
        assert_eq!(sel.terms()[0].value, value);
        assert_eq!(parse(&sel.to_string()), sel);
        // Raw soup: an error or a selector, never a panic.
        let _ = FieldSelector::parse(&value);
    }
}
