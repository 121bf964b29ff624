//! The speaker on a real kernel, in network namespaces: a node namespace answers `arping` and
//! `ndisc6` from a client on the same bridge for the addresses it owns and for nothing else,
//! and its gratuitous ARP / unsolicited NA rewrite the client's neighbour entries; the node
//! joins the solicited-node group of each IPv6 address it owns.

use announce::speaker::{Speaker, Table};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};
use test_support::netlab::{Lab, Netns};

fn mac_of(ns: &Netns) -> String {
    let o = ns.exec(&["cat", "/sys/class/net/eth0/address"]);
    String::from_utf8_lossy(&o.stdout).trim().to_lowercase()
}

fn out(ns: &Netns, args: &[&str]) -> (bool, String) {
    let o = ns.exec(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text.to_lowercase())
}

/// Waits until the namespace's IPv6 link-local address has finished duplicate address
/// detection (NDP needs a usable source address).
fn wait_link_local(ns: &Netns) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = out(
            ns,
            &["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"],
        );
        if text.contains("fe80") && !text.contains("tentative") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no usable link-local address: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn neigh_mac(ns: &Netns, ip: &str) -> Option<String> {
    let (_, text) = out(ns, &["ip", "neigh", "show", ip]);
    let mut w = text.split_whitespace();
    w.find(|x| *x == "lladdr")?;
    w.next().map(str::to_string)
}

fn eventually_neigh(ns: &Netns, ip: &str, mac: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while neigh_mac(ns, ip).as_deref() != Some(mac) {
        assert!(
            Instant::now() < deadline,
            "{ip} never pointed at {mac}: {:?}",
            neigh_mac(ns, ip)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the namespace's eth0 is a member of the IPv6 multicast `group` (`ip -6 maddr`).
fn member_of(ns: &Netns, group: &str) -> bool {
    let (_, text) = out(ns, &["ip", "-6", "maddr", "show", "dev", "eth0"]);
    text.split_whitespace().any(|w| w == group)
}

#[test]
fn answers_arp_and_ndp_for_owned_addresses_and_announces_takeovers() {
    let lab = Lab::new();
    let node = lab.node("speaker");
    let client = lab.client("asker");
    wait_link_local(&node);
    wait_link_local(&client);
    // Sockets (and the reader threads) are made inside the node namespace.
    let speaker = node.run(|| {
        let s = Speaker::new();
        s.refresh_interfaces();
        s
    });
    assert!(
        speaker.interfaces().contains(&"eth0".to_string()),
        "{:?}",
        speaker.interfaces()
    );
    let vip4 = lab.lan_ip(250);
    let vip6: Ipv6Addr = "fd00:5b::250".parse().unwrap();
    let mut table = Table::new();
    table.insert(IpAddr::V4(vip4), BTreeSet::new());
    table.insert(IpAddr::V6(vip6), BTreeSet::from(["eth0".to_string()]));
    speaker.set_table(table);
    let mac = mac_of(&node);
    // The IPv6 address's solicited-node group is joined on eth0 (MLD), as MetalLB does.
    let group = "ff02::1:ff00:250";
    assert!(member_of(&node, group), "{group} not joined");

    let (ok, text) = out(
        &client,
        &[
            "arping",
            "-c",
            "1",
            "-w",
            "3",
            "-I",
            "eth0",
            &vip4.to_string(),
        ],
    );
    assert!(ok && text.contains(&mac), "arping {vip4}: {text}");
    let (ok, text) = out(
        &client,
        &[
            "ndisc6",
            "-1",
            "-r",
            "3",
            "-w",
            "1000",
            &vip6.to_string(),
            "eth0",
        ],
    );
    assert!(ok && text.contains(&mac), "ndisc6 {vip6}: {text}");

    // Addresses it does not own: no answer.
    let other = lab.lan_ip(251).to_string();
    let (ok, text) = out(
        &client,
        &["arping", "-c", "1", "-w", "1", "-I", "eth0", &other],
    );
    assert!(!ok && !text.contains(&mac), "arping {other}: {text}");
    let (ok, text) = out(
        &client,
        &[
            "ndisc6",
            "-1",
            "-r",
            "1",
            "-w",
            "500",
            "fd00:5b::251",
            "eth0",
        ],
    );
    assert!(!ok && !text.contains(&mac), "ndisc6: {text}");

    // Takeover: the client has the address at another MAC; the announcement rewrites it.
    for ip in [vip4.to_string(), vip6.to_string()] {
        client.ip(&[
            "neigh",
            "replace",
            &ip,
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            "eth0",
            "nud",
            "stale",
        ]);
        assert_eq!(
            neigh_mac(&client, &ip).as_deref(),
            Some("02:00:00:00:00:99")
        );
    }
    speaker.announce(IpAddr::V4(vip4), &BTreeSet::new());
    speaker.announce(IpAddr::V6(vip6), &BTreeSet::from(["eth0".to_string()]));
    eventually_neigh(&client, &vip4.to_string(), &mac);
    eventually_neigh(&client, &vip6.to_string(), &mac);

    // An emptied table stops the answers.
    speaker.set_table(Table::new());
    let (ok, _) = out(
        &client,
        &[
            "arping",
            "-c",
            "1",
            "-w",
            "1",
            "-I",
            "eth0",
            &vip4.to_string(),
        ],
    );
    assert!(!ok, "still answering after the table was emptied");
    assert!(!member_of(&node, group), "{group} still joined");
}
