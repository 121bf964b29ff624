//! A Service created, changed or deleted is answered accordingly within a second of the API
//! write; with the API server gone, the last known records keep being served.

use std::time::Duration;

use crate::support::*;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn changes_are_answered_within_a_second_and_records_outlive_the_api_server() {
    let _s = serial();
    let mut c = DnsCluster::start(None);
    c.kubectl(&["create", "namespace", "churn"]);
    let name = "api.churn.svc.cluster.local";
    assert_eq!(c.status(name, "A"), "NXDOMAIN");

    // Created.
    c.kubectl_apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: churn}\n\
         spec: {clusterIP: 10.43.77.7, ports: [{name: http, port: 80}]}\n",
    );
    let took = c.wait_for(name, "A", |a| a == ["10.43.77.7"], SECOND);
    eprintln!("create answered after {took:?}");

    // Changed: the named port moves, the SRV record follows.
    c.kubectl(&[
        "-n",
        "churn",
        "patch",
        "service",
        "api",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/ports/0/port","value":8080}]"#,
    ]);
    let took = c.wait_for(
        "_http._tcp.api.churn.svc.cluster.local",
        "SRV",
        |a| a == ["0 100 8080 api.churn.svc.cluster.local."],
        SECOND,
    );
    eprintln!("change answered after {took:?}");

    // A headless Service's endpoints changing.
    c.kubectl_apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: hl, namespace: churn}\nspec: {clusterIP: None}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {name: hl-1, namespace: churn, labels: {kubernetes.io/service-name: hl}}\n\
         addressType: IPv4\nendpoints: [{addresses: [10.42.5.1]}]\n",
    );
    c.wait_for(
        "hl.churn.svc.cluster.local",
        "A",
        |a| a == ["10.42.5.1"],
        SECOND,
    );
    c.kubectl_apply(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {name: hl-1, namespace: churn, labels: {kubernetes.io/service-name: hl}}\n\
         addressType: IPv4\nendpoints: [{addresses: [10.42.5.1], conditions: {ready: false}}, {addresses: [10.42.5.2]}]\n",
    );
    c.wait_for(
        "hl.churn.svc.cluster.local",
        "A",
        |a| a == ["10.42.5.2"],
        SECOND,
    );

    // Deleted.
    c.kubectl(&["-n", "churn", "delete", "service", "api", "--wait=false"]);
    let took = c.wait_for(name, "A", |a| a.is_empty(), SECOND);
    eprintln!("delete answered after {took:?}");
    assert_eq!(c.status(name, "A"), "NXDOMAIN");

    // The API server goes away: the last known records stay.
    c.server.kill9();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(c.short("hl.churn.svc.cluster.local", "A"), ["10.42.5.2"]);
    assert_eq!(c.status(name, "A"), "NXDOMAIN");
    assert_eq!(
        c.short("kubernetes.default.svc.cluster.local", "A").len(),
        1
    );
}
