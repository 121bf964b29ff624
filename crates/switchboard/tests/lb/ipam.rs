//! MetalLB-style pools: the EXTERNAL-IP `kubectl get svc` shows, sharing, a full pool, a
//! taken address, release on delete and type change, and foreign loadBalancerClasses.

use crate::support::*;

const POOL: &str = "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: lab
  namespace: metallb-system
spec:
  addresses:
  - 192.168.77.240-192.168.77.241
";

fn server_with_pool() -> test_support::TestServer {
    let s = start_server();
    namespace(&s, "metallb-system");
    apply(&s, POOL);
    s
}

#[test]
fn external_ip_comes_from_the_pool_and_is_released_on_delete() {
    let s = server_with_pool();
    apply(&s, &lb_service("default", "web", 80, "", ""));
    let ip = external_ip(&s, "default", "web", |c| c != "<pending>");
    assert_eq!(ip, "192.168.77.240");
    let d = describe_shows_event(&s, "default", "web", "IPAllocated", "192.168.77.240");
    assert!(
        d.contains("LoadBalancer Ingress:     192.168.77.240"),
        "{d}"
    );

    // The pool has two addresses: a third Service waits, and says why.
    apply(&s, &lb_service("default", "api", 81, "", ""));
    assert_eq!(
        external_ip(&s, "default", "api", |c| c != "<pending>"),
        "192.168.77.241"
    );
    apply(&s, &lb_service("default", "late", 82, "", ""));
    describe_shows_event(
        &s,
        "default",
        "late",
        "AllocationFailed",
        "no available IPs",
    );
    assert_eq!(external_ip(&s, "default", "late", |_| true), "<pending>");

    // Deleting a holder frees its address for the waiting Service.
    kubectl(&s, &["delete", "svc", "web"]);
    assert_eq!(
        external_ip(&s, "default", "late", |c| c != "<pending>"),
        "192.168.77.240"
    );

    // A type change releases too.
    kubectl(
        &s,
        &[
            "patch",
            "svc",
            "api",
            "--type=merge",
            "-p",
            r#"{"spec":{"type":"ClusterIP"}}"#,
        ],
    );
    apply(&s, &lb_service("default", "later", 83, "", ""));
    assert_eq!(
        external_ip(&s, "default", "later", |c| c != "<pending>"),
        "192.168.77.241"
    );
}

#[test]
fn sharing_taken_addresses_and_classes() {
    let s = server_with_pool();
    let shared = "  annotations:\n    metallb.universe.tf/allow-shared-ip: dns";
    let want = "  loadBalancerIP: 192.168.77.241";
    apply(&s, &lb_service("default", "dns-tcp", 53, shared, want));
    apply(
        &s,
        &lb_service("default", "dns-metrics", 9153, shared, want),
    );
    assert_eq!(
        external_ip(&s, "default", "dns-tcp", |c| c != "<pending>"),
        "192.168.77.241"
    );
    assert_eq!(
        external_ip(&s, "default", "dns-metrics", |c| c != "<pending>"),
        "192.168.77.241"
    );

    // The same address without the sharing key: taken, pending with the reason.
    apply(&s, &lb_service("default", "thief", 80, "", want));
    describe_shows_event(
        &s,
        "default",
        "thief",
        "AllocationFailed",
        "address also in use by",
    );
    // Same key but a clashing port: refused as well.
    apply(&s, &lb_service("default", "dns-clash", 53, shared, want));
    describe_shows_event(
        &s,
        "default",
        "dns-clash",
        "AllocationFailed",
        "port TCP/53 is already in use",
    );
    // An address outside every pool.
    apply(
        &s,
        &lb_service("default", "outside", 80, "", "  loadBalancerIP: 10.200.0.1"),
    );
    describe_shows_event(
        &s,
        "default",
        "outside",
        "AllocationFailed",
        "is not allowed in config",
    );

    // Another controller's class is left alone: no status, no Event from us.
    apply(
        &s,
        &lb_service(
            "default",
            "foreign",
            80,
            "",
            "  loadBalancerClass: example.com/other",
        ),
    );
    // Ours (the default class) is served, so wait for a later Service of ours to be served
    // before checking that the foreign one was not touched.
    apply(
        &s,
        &lb_service(
            "default",
            "mine",
            80,
            "",
            "  loadBalancerClass: switchboard.io/lb",
        ),
    );
    assert_eq!(
        external_ip(&s, "default", "mine", |c| c != "<pending>"),
        "192.168.77.240"
    );
    assert_eq!(external_ip(&s, "default", "foreign", |_| true), "<pending>");
    let d = kubectl(&s, &["describe", "svc", "foreign"]);
    assert!(d.contains("Events:                   <none>"), "{d}");
}
