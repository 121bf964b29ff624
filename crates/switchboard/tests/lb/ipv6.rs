//! IPv6 LoadBalancer addresses in a dual-stack lab: an IPv6-only Service gets an address from
//! an IPv6 pool, the elected node answers the client's Neighbor Solicitations for it, curl -6
//! reaches the pods, and when that node dies the next one takes the address over with an
//! unsolicited Neighbor Advertisement (the client's `ip -6 neigh` entry moves to its MAC); a
//! RequireDualStack Service gets one address of each family from a dual-stack pool.

use crate::l2::{until_success, L2Lab};
use crate::support::{apply, eventually, external_ip};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use test_support::netlab;

/// A LoadBalancer Service selecting the lab's echo pods, with `families` lines in its spec.
fn apply_service(l: &L2Lab, name: &str, families: &str) {
    apply(
        &l.server,
        &format!(
            "apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  type: LoadBalancer
{families}
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
"
        ),
    );
}

/// The LAN bridge ports (the lab's switch, MLD snooping on as Linux bridges default to)
/// that it learned members of `group` on, from MLD reports (`bridge mdb`).
fn switch_ports_in_group(l: &L2Lab, group: &str) -> Vec<String> {
    let o = l.lab.lan().exec(&["bridge", "mdb", "show"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let mut ports: Vec<String> = text
        .lines()
        .filter(|line| line.split_whitespace().any(|w| w == group))
        .filter_map(|line| {
            let mut w = line.split_whitespace();
            w.find(|x| *x == "port")?;
            w.next().map(str::to_string)
        })
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// The LAN bridge port node `i` is plugged into, by its MAC in the bridge's forwarding table.
fn switch_port_of(l: &L2Lab, i: usize) -> Option<String> {
    let mac = l.node_mac(i);
    let o = l.lab.lan().exec(&["bridge", "fdb", "show", "br", "lan0"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    text.lines().find_map(|line| {
        let mut w = line.split_whitespace();
        (w.next()? == mac).then_some(())?;
        w.find(|x| *x == "dev")?;
        w.next().map(str::to_string)
    })
}

/// The nodes whose `eth0` is a member of the multicast `group` (`ip -6 maddr`).
fn solicited_node_members(l: &L2Lab, group: &str) -> Vec<usize> {
    (0..l.nodes.len())
        .filter(|i| {
            let o = l.nodes[*i].exec(&["ip", "-6", "maddr", "show", "dev", "eth0"]);
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .any(|w| w == group)
        })
        .collect()
}

#[test]
fn ipv6_only_service_is_announced_by_ndp_reaches_the_pods_and_fails_over() {
    let mut l = L2Lab::start_dual_stack();
    // A CIDR and a range, both IPv6, inside the LAN's /64 (so the client asks by NDP).
    let vip = IpAddr::V6(l.lab.lan_ip6(0xf0));
    l.apply_pool(
        "v6",
        &[
            format!("{}/127", l.lab.lan_ip6(0xf0)),
            format!("{}-{}", l.lab.lan_ip6(0xf2), l.lab.lan_ip6(0xf3)),
        ],
    );
    apply_service(
        &l,
        "web6",
        "  ipFamilyPolicy: SingleStack\n  ipFamilies:\n  - IPv6",
    );
    assert_eq!(
        external_ip(&l.server, "default", "web6", |c| c != "<pending>"),
        vip.to_string()
    );

    let body = eventually("curl -6 to the EXTERNAL-IP", || {
        l.curl(vip, 80, Duration::from_millis(500))
    });
    assert!(body.starts_with("pod=web-node"), "{body}");
    // IPv6 all the way to the pod (with externalTrafficPolicy Cluster the pod sees a node's
    // address, masqueraded as kube-proxy does).
    let (_, seen) = netlab::parse_answer(&body).expect("an echo answer");
    assert!(seen.is_ipv6(), "{body}");
    let owner = l
        .announcing_node(vip)
        .expect("the client learned a node's MAC for the address by NDP");
    let named = eventually("nodeAssigned event", || l.assigned_node_event("web6"));
    assert_eq!(named, l.nodes[owner].name);
    // Only the owner listens on the address's solicited-node group (MLD-snooping switches
    // forward solicitations to members only).
    let group = "ff02::1:ff00:f0";
    assert_eq!(solicited_node_members(&l, group), vec![owner]);
    // The membership reached the wire: the switch learned the owner's port for the group.
    let port = switch_port_of(&l, owner).expect("the switch knows the owner's MAC");
    let ports = eventually("the switch learning the group", || {
        let p = switch_ports_in_group(&l, group);
        p.contains(&port).then_some(p)
    });
    assert_eq!(ports, vec![port], "only the owner's port");

    // The owner dies: another node announces the address and the client's neighbour entry
    // follows it.
    let t0 = Instant::now();
    l.kill_node(owner);
    let (took, body) = until_success(&l, vip, 80, t0, Duration::from_secs(30))
        .expect("the client never reached the Service again over IPv6");
    assert!(body.starts_with("pod=web-node"), "{body}");
    let new_owner = l
        .announcing_node(vip)
        .expect("a MAC for the address in ip -6 neigh");
    assert_ne!(new_owner, owner, "the address did not move");
    eprintln!(
        "IPv6 failover: {} dead, {} took over; first successful request after {:?}",
        l.nodes[owner].name, l.nodes[new_owner].name, took
    );
    let members = eventually("the new owner alone in the solicited-node group", || {
        let m = solicited_node_members(&l, group);
        (m == vec![new_owner]).then_some(m)
    });
    assert_eq!(members, vec![new_owner]);
    let port = switch_port_of(&l, new_owner).expect("the switch knows the new owner's MAC");
    eventually(
        "the switch learning the new owner's port for the group",
        || {
            switch_ports_in_group(&l, group)
                .contains(&port)
                .then_some(())
        },
    );
    let body = eventually("curl -6 after the failover", || {
        l.curl(vip, 80, Duration::from_millis(500))
    });
    assert!(body.starts_with("pod=web-node"), "{body}");
}

#[test]
fn require_dual_stack_gets_an_address_of_each_family_prefer_dual_stack_what_the_pool_has() {
    let l = L2Lab::start_dual_stack();
    let (vip4, vip6) = (l.lab.lan_ip(240), l.lab.lan_ip6(0xf0));
    l.apply_pool(
        "dual",
        &[
            format!("{vip4}-{}", l.lab.lan_ip(241)),
            format!("{vip6}/127"),
        ],
    );
    apply_service(&l, "both", "  ipFamilyPolicy: RequireDualStack");
    // The IPv4 address first, as MetalLB writes the status.
    assert_eq!(
        external_ip(&l.server, "default", "both", |c| c.contains(',')),
        format!("{vip4},{vip6}")
    );
    for vip in [IpAddr::V4(vip4), IpAddr::V6(vip6)] {
        let body = eventually(&format!("curl to {vip}"), || {
            l.curl(vip, 80, Duration::from_millis(500))
        });
        assert!(body.starts_with("pod=web-node"), "{vip}: {body}");
        assert!(l.announcing_node(vip).is_some(), "no MAC for {vip}");
    }

    // PreferDualStack from a pool of one family settles for that family (MetalLB's
    // behaviour), where RequireDualStack would stay pending.
    let only6 = l.lab.lan_ip6(0xf8);
    l.apply_pool("only6", &[format!("{only6}/128")]);
    apply(
        &l.server,
        "apiVersion: v1
kind: Service
metadata:
  name: prefer
  annotations:
    metallb.universe.tf/address-pool: only6
spec:
  type: LoadBalancer
  ipFamilyPolicy: PreferDualStack
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
",
    );
    assert_eq!(
        external_ip(&l.server, "default", "prefer", |c| c != "<pending>"),
        only6.to_string()
    );
    let body = eventually("curl -6 to the PreferDualStack Service", || {
        l.curl(IpAddr::V6(only6), 80, Duration::from_millis(500))
    });
    assert!(body.starts_with("pod=web-node"), "{body}");
}
