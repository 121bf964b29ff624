//! Every record of the specification, asked with dig over UDP and TCP.

use crate::support::*;

const OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: dnstest}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: dnstest}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: dnstest}
spec: {selector: {app: web}, ports: [{port: 9000, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: dnstest}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: nohost, namespace: dnstest}
spec: {clusterIP: None, selector: {app: nohost}, ports: [{port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: dnstest}
spec: {clusterIP: None, selector: {app: nothing}}
---
apiVersion: v1
kind: Service
metadata: {name: notready, namespace: dnstest}
spec: {clusterIP: None, publishNotReadyAddresses: true, selector: {app: nr}}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: dnstest}
spec: {type: ExternalName, externalName: www.example.test}
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: dnstest}
spec: {type: ExternalName, externalName: web.dnstest.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: v6, namespace: dnstest}
spec: {clusterIP: None, ports: [{name: grpc, port: 9090}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: v6-1, namespace: dnstest, labels: {kubernetes.io/service-name: v6}}
addressType: IPv6
endpoints: [{addresses: ["fd00:42::5"], hostname: h6, conditions: {ready: true}}]
ports: [{name: grpc, port: 9090, protocol: TCP}]
"#;

fn big_slice() -> String {
    let eps: Vec<String> = (1..=40)
        .map(|i| format!("{{addresses: [\"10.42.9.{i}\"]}}"))
        .collect();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: big, namespace: dnstest}}\nspec: {{clusterIP: None}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: big-1, namespace: dnstest, labels: {{kubernetes.io/service-name: big}}}}\n\
         addressType: IPv4\nendpoints: [{}]\n",
        eps.join(", ")
    )
}

#[test]
fn every_record_of_the_specification() {
    let _s = serial();
    let c = DnsCluster::start(Some(Upstream::start(
        "192.0.2.53 www.example.test\n192.0.2.54 other.example.test\n",
    )));
    c.kubectl_apply(OBJECTS);
    c.kubectl_apply(&big_slice());
    c.pod("dnstest", "web-1", "10.42.0.11", "app: web", "", true);
    c.pod(
        "dnstest",
        "db-0",
        "10.42.0.21",
        "app: db",
        ", hostname: db-0, subdomain: db",
        true,
    );
    c.pod(
        "dnstest",
        "db-1",
        "10.42.0.22",
        "app: db",
        ", hostname: db-1, subdomain: db",
        true,
    );
    c.pod(
        "dnstest",
        "db-2",
        "10.42.0.23",
        "app: db",
        ", hostname: db-2, subdomain: db",
        false,
    );
    c.pod("dnstest", "nohost-a", "10.42.0.31", "app: nohost", "", true);
    c.pod("dnstest", "nr-0", "10.42.0.41", "app: nr", "", false);
    let ip = test_support::output_text(&c.server.kubectl(&[
        "-n",
        "dnstest",
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]));
    let ip = ip.trim().to_string();
    assert!(ip.starts_with("10.43."), "{ip}");
    let z = "dnstest.svc.cluster.local";
    let limit = std::time::Duration::from_secs(20);
    c.wait_for(&format!("db.{z}"), "A", |a| a.len() == 2, limit);
    c.wait_for(&format!("notready.{z}"), "A", |a| a.len() == 1, limit);
    c.wait_for(&format!("nohost.{z}"), "A", |a| a.len() == 1, limit);

    // 2.2 schema version.
    assert_eq!(c.short("dns-version.cluster.local", "TXT"), ["\"1.1.0\""]);

    // 2.3 ClusterIP: A, SRV for the named port only, PTR; over UDP and TCP.
    assert_eq!(c.short(&format!("web.{z}"), "A"), [ip.clone()]);
    assert_eq!(
        c.dig(&["+tcp", "+short", &format!("web.{z}"), "A"]).trim(),
        ip
    );
    assert_eq!(
        c.short(&format!("_http._tcp.web.{z}"), "SRV"),
        [format!("0 100 80 web.{z}.")]
    );
    // An unnamed port (only a single-port Service may have one): A, but no SRV.
    assert_eq!(c.short(&format!("plain.{z}"), "A").len(), 1);
    assert_eq!(
        c.status(&format!("_9000._udp.plain.{z}"), "SRV"),
        "NXDOMAIN"
    );
    let srv = c.dig(&[&format!("_http._tcp.web.{z}"), "SRV"]);
    assert!(
        srv.contains(&format!(";; ADDITIONAL SECTION:\nweb.{z}. 5 IN A {ip}")),
        "{srv}"
    );
    let octets: Vec<&str> = ip.split('.').rev().collect();
    assert_eq!(
        c.short(&format!("{}.in-addr.arpa", octets.join(".")), "PTR"),
        [format!("web.{z}.")]
    );
    assert_eq!(c.dig(&["+short", "-x", &ip]).trim(), format!("web.{z}."));

    // 2.4 headless: ready endpoints only, hostnames, SRV per endpoint and named port, PTR.
    assert_eq!(
        c.short(&format!("db.{z}"), "A"),
        ["10.42.0.21", "10.42.0.22"]
    );
    assert_eq!(c.short(&format!("db-0.db.{z}"), "A"), ["10.42.0.21"]);
    assert_eq!(c.status(&format!("db-2.db.{z}"), "A"), "NXDOMAIN");
    assert_eq!(
        c.short(&format!("_pg._tcp.db.{z}"), "SRV"),
        [
            format!("0 50 5432 db-0.db.{z}."),
            format!("0 50 5432 db-1.db.{z}.")
        ]
    );
    assert_eq!(
        c.dig(&["+short", "-x", "10.42.0.22"]).trim(),
        format!("db-1.db.{z}.")
    );
    // Without a hostname: a generated one, the address with dashes.
    assert_eq!(
        c.short(&format!("10-42-0-31.nohost.{z}"), "A"),
        ["10.42.0.31"]
    );
    assert_eq!(
        c.dig(&["+short", "-x", "10.42.0.31"]).trim(),
        format!("10-42-0-31.nohost.{z}.")
    );
    // Unnamed port: no SRV.
    assert_eq!(
        c.status(&format!("_8080._tcp.nohost.{z}"), "SRV"),
        "NXDOMAIN"
    );
    // No ready endpoint: NXDOMAIN, with the SOA for negative caching.
    let empty = c.dig(&[&format!("empty.{z}"), "A"]);
    assert_eq!(status_of(&empty), "NXDOMAIN");
    assert!(
        empty.contains("AUTHORITY: 1")
            && empty.contains("IN SOA ns.dns.cluster.local. hostmaster.cluster.local."),
        "{empty}"
    );
    let soa = empty
        .lines()
        .find(|l| l.starts_with("cluster.local. 5 IN SOA"))
        .unwrap_or_else(|| panic!("{empty}"));
    assert!(soa.ends_with(" 7200 1800 86400 5"), "negative TTL 5: {soa}");
    // publishNotReadyAddresses: the not-ready pod is published.
    assert_eq!(c.short(&format!("notready.{z}"), "A"), ["10.42.0.41"]);
    // IPv6: AAAA, hostname, SRV, ip6.arpa PTR.
    assert_eq!(c.short(&format!("v6.{z}"), "AAAA"), ["fd00:42::5"]);
    assert_eq!(c.short(&format!("h6.v6.{z}"), "AAAA"), ["fd00:42::5"]);
    assert_eq!(
        c.short(&format!("_grpc._tcp.v6.{z}"), "SRV"),
        [format!("0 100 9090 h6.v6.{z}.")]
    );
    assert_eq!(
        c.dig(&["+short", "-x", "fd00:42::5"]).trim(),
        format!("h6.v6.{z}.")
    );
    // NODATA: the name exists without this type.
    let nodata = c.dig(&[&format!("v6.{z}"), "A"]);
    assert!(
        status_of(&nodata) == "NOERROR"
            && nodata.contains("ANSWER: 0")
            && nodata.contains("AUTHORITY: 1"),
        "{nodata}"
    );

    // 2.5 ExternalName: CNAME, plus the target's address (from the upstream, or the zone).
    assert_eq!(
        c.short(&format!("ext.{z}"), "A"),
        ["192.0.2.53", "www.example.test."]
    );
    assert_eq!(c.short(&format!("ext.{z}"), "CNAME"), ["www.example.test."]);
    assert_eq!(
        c.short(&format!("alias.{z}"), "A"),
        [ip.clone(), format!("web.{z}.")]
    );

    // 2.6 pod records.
    assert_eq!(
        c.short("10-42-0-11.dnstest.pod.cluster.local", "A"),
        ["10.42.0.11"]
    );

    // Case-insensitive, the question's case echoed.
    let mixed = c.dig(&["+noall", "+answer", "WEB.DnsTest.SVC.cluster.LOCAL", "A"]);
    assert!(
        mixed.starts_with("WEB.DnsTest.SVC.cluster.LOCAL. 5 IN A"),
        "{mixed}"
    );

    // Truncation: 40 addresses don't fit 512 bytes; TC set over UDP, all of them over TCP
    // (and dig's automatic retry over TCP gets them too).
    let tc = c.dig(&["+noedns", "+ignore", &format!("big.{z}"), "A"]);
    assert!(
        tc.contains(" tc ") || tc.contains("flags: qr tc") || tc.contains(" tc;"),
        "{tc}"
    );
    assert_eq!(
        c.dig(&["+tcp", "+short", &format!("big.{z}"), "A"])
            .lines()
            .count(),
        40
    );
    assert_eq!(
        c.dig(&["+noedns", "+short", &format!("big.{z}"), "A"])
            .lines()
            .count(),
        40
    );
    // EDNS: our OPT with our payload size; none when the client sent none.
    assert!(c.dig(&[&format!("web.{z}")]).contains("udp: 1232"));
    assert!(!c
        .dig(&["+noedns", &format!("web.{z}")])
        .contains("OPT PSEUDOSECTION"));

    // Zone transfers are refused.
    let axfr = c.dig(&["cluster.local", "AXFR"]);
    assert!(axfr.contains("Transfer failed"), "{axfr}");

    // Other names go upstream, and come from the cache the second time.
    let before = metric(&c.metrics(), "switchboard_dns_forwarded_queries_total");
    assert_eq!(c.short("other.example.test", "A"), ["192.0.2.54"]);
    assert_eq!(c.short("other.example.test", "A"), ["192.0.2.54"]);
    assert_eq!(c.status("nothing.example.test", "A"), "NXDOMAIN");
    let m = c.metrics();
    assert_eq!(
        metric(&m, "switchboard_dns_forwarded_queries_total") - before,
        2.0,
        "{m}"
    );
    assert!(metric(&m, "switchboard_dns_cache_hits_total") >= 1.0, "{m}");
    // The ndots:5 search storm: names below svc.<zone> are answered here, never forwarded.
    let before = metric(&m, "switchboard_dns_forwarded_queries_total");
    for suffix in [
        "dnstest.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
    ] {
        assert_eq!(
            c.status(&format!("www.example.test.{suffix}"), "A"),
            "NXDOMAIN"
        );
    }
    let m = c.metrics();
    assert_eq!(
        metric(&m, "switchboard_dns_forwarded_queries_total"),
        before
    );
    assert!(
        metric(
            &m,
            "switchboard_dns_queries_total{type=\"A\",rcode=\"NXDOMAIN\"}"
        ) >= 3.0,
        "{m}"
    );
    assert!(
        metric(&m, "switchboard_dns_request_duration_seconds_count") > 10.0,
        "{m}"
    );
}
