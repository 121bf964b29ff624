//! The k3s ServiceLB way: node IPs as EXTERNAL-IP when no pool serves the Service, the
//! `svccontroller.k3s.cattle.io/enablelb` label, and a port taken on the nodes.

use crate::support::*;

fn node(name: &str, ip: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels:
    kubernetes.io/hostname: {name}
{labels}
status:
  addresses:
  - type: InternalIP
    address: {ip}
"
    )
}

#[test]
fn node_ips_labels_and_port_conflicts() {
    let s = start_server();
    for (n, ip) in [
        ("node-a", "192.168.78.11"),
        ("node-b", "192.168.78.12"),
        ("node-c", "192.168.78.13"),
    ] {
        apply(&s, &node(n, ip, ""));
        // Node status goes through the status subresource, as kubelet writes it.
        kubectl(
            &s,
            &[
                "patch",
                "node",
                n,
                "--subresource=status",
                "--type=merge",
                "-p",
                &format!(
                    r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"{ip}"}}]}}}}"#
                ),
            ],
        );
    }
    apply(&s, &lb_service("default", "traefik", 80, "", ""));
    assert_eq!(
        external_ip(&s, "default", "traefik", |c| c.matches(',').count() == 2),
        "192.168.78.11,192.168.78.12,192.168.78.13"
    );
    describe_shows_event(&s, "default", "traefik", "IPAllocated", "ServiceLB");

    // Port 80 is taken on every node: the newer Service waits and says why.
    apply(&s, &lb_service("default", "web", 80, "", ""));
    describe_shows_event(
        &s,
        "default",
        "web",
        "AllocationFailed",
        "TCP/80 is already used by default/traefik",
    );
    assert_eq!(external_ip(&s, "default", "web", |_| true), "<pending>");

    // Labelling one node restricts ServiceLB to it.
    kubectl(
        &s,
        &[
            "label",
            "node",
            "node-b",
            "svccontroller.k3s.cattle.io/enablelb=true",
        ],
    );
    assert_eq!(
        external_ip(&s, "default", "traefik", |c| !c.contains(',')),
        "192.168.78.12"
    );

    // Removing the holder lets the waiting Service take the port.
    kubectl(&s, &["delete", "svc", "traefik"]);
    assert_eq!(
        external_ip(&s, "default", "web", |c| c != "<pending>"),
        "192.168.78.12"
    );
}
