//! The userspace proxier on its own, in network namespaces (test-support's netlab): snapshots
//! built from Service and EndpointSlice objects, the proxier running on a runtime inside the
//! node namespace, real traffic from a LAN client to echo servers in pod namespaces. What the
//! agent tests do not reach: connections that outlive their endpoint and later syncs, the
//! addresses on `lo` that are not ours, externalTrafficPolicy Local, ClientIP affinity and the
//! UDP idle timeout. Needs root.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy_core::{ProxyConfig, Scheduler, Snapshot};
use proxy_userspace::UserspaceProxier;
use serde_json::{json, Value};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::time::Duration;
use test_support::netlab::{parse_answer, Lab, Node, Pod, StreamClient};

const T: Duration = Duration::from_secs(3);

/// One lab at a time: the machine is small and shared.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The proxier and the runtime its sockets run on, both inside `node`'s namespace.
struct Proxy {
    node: Node,
    proxier: Option<UserspaceProxier>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    fn start(node: &Node, cfg: ProxyConfig, udp_idle: Option<Duration>) -> Proxy {
        // Worker threads are started by the thread that builds the runtime, so they live in
        // the node's namespace too (and so do the sockets the tasks make).
        let runtime = node.run(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
        });
        let handle = runtime.handle().clone();
        let mut proxier = node
            .run(move || UserspaceProxier::new(cfg, handle, None))
            .expect("proxier");
        if let Some(idle) = udp_idle {
            proxier.set_udp_idle_timeout(idle);
        }
        Proxy {
            node: node.clone(),
            proxier: Some(proxier),
            runtime: Some(runtime),
        }
    }

    /// Syncs `snap` inside the node (the proxier runs `ip` there).
    fn sync(&mut self, snap: Snapshot) -> proxy_userspace::SyncReport {
        let mut p = self.proxier.take().expect("proxier");
        let (p, r) = self.node.run(move || {
            let r = p.sync(&snap);
            (p, r)
        });
        self.proxier = Some(p);
        r.expect("sync")
    }

    fn stop(&mut self) {
        if let Some(p) = self.proxier.take() {
            self.node.run(move || drop(p));
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn service(name: &str, cluster_ip: &str, spec: Value, annotations: Value) -> Service {
    let mut s = json!({
        "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
        "ports": [{"name": "stream", "port": 9000, "protocol": "TCP"},
                  {"name": "http", "port": 80, "protocol": "TCP"},
                  {"name": "dns", "port": 53, "protocol": "UDP"}],
    });
    for (k, v) in spec.as_object().expect("spec object") {
        s[k] = v.clone();
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": s,
    }))
    .expect("Service")
}

fn slice(service: &str, pods: &[&Pod]) -> EndpointSlice {
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|p| json!({"addresses": [p.ip.to_string()], "conditions": {"ready": true}, "nodeName": p.node}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{service}-x"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "stream", "port": 9000, "protocol": "TCP"},
                  {"name": "http", "port": 80, "protocol": "TCP"},
                  {"name": "dns", "port": 53, "protocol": "UDP"}],
    }))
    .expect("EndpointSlice")
}

fn config(node: &Node, scheduler: Scheduler) -> ProxyConfig {
    ProxyConfig {
        node_name: node.name.clone(),
        node_ips: vec![node.ip.into()],
        scheduler,
        ..ProxyConfig::default()
    }
}

fn snapshot(services: &[Service], slices: &[EndpointSlice], cfg: &ProxyConfig) -> Snapshot {
    Snapshot::build(services, slices, cfg)
}

fn lo(node: &Node) -> String {
    String::from_utf8_lossy(&node.exec(&["ip", "-o", "addr", "show", "dev", "lo"]).stdout)
        .to_string()
}

fn pods(lab: &Lab, node: &Node, names: &[&str]) -> Vec<Pod> {
    names
        .iter()
        .map(|n| {
            let p = lab.pod(node, n);
            lab.http_echo(&p, 80);
            lab.stream_echo(&p, 9000);
            lab.udp_echo(&p, 53);
            p
        })
        .collect()
}

fn ask_http(client: &test_support::netlab::Client, addr: SocketAddr) -> std::io::Result<String> {
    let body = client.run(move || test_support::netlab::http_get(addr, T))?;
    Ok(parse_answer(&body).expect("echo answer").0)
}

#[test]
fn connections_outlive_their_endpoint_and_only_our_addresses_are_removed() {
    let _turn = serial();
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let client = lab.client_via("c1", &n1);
    let ps = pods(&lab, &n1, &["p1", "p2"]);
    // Someone else's addresses on lo: one a Service will use, one unrelated.
    n1.ip(&["addr", "add", "10.43.9.9/32", "dev", "lo"]);
    n1.ip(&["addr", "add", "10.99.0.1/32", "dev", "lo"]);

    let cfg = config(&n1, Scheduler::RoundRobin);
    let mut proxy = Proxy::start(&n1, cfg.clone(), None);
    let web = service("web", "10.43.0.20", json!({}), json!({}));
    let other = service("other", "10.43.9.9", json!({}), json!({}));
    let report = proxy.sync(snapshot(
        &[web.clone(), other.clone()],
        &[slice("web", &[&ps[0], &ps[1]]), slice("other", &[&ps[0]])],
        &cfg,
    ));
    assert!(report.full && report.bind_errors.is_empty(), "{report:?}");
    assert_eq!(report.addresses_added, 1, "10.43.9.9 was there already");
    assert!(
        lo(&n1).contains("inet 10.43.0.20/32 scope global lo:sbus"),
        "{}",
        lo(&n1)
    );

    // Two held connections, one per pod (rr).
    let addr: SocketAddr = "10.43.0.20:9000".parse().unwrap();
    let mut held: Vec<(StreamClient, String)> = (0..2)
        .map(|_| {
            let mut s = client
                .run(move || StreamClient::connect(addr, T))
                .expect("connect");
            let pod = parse_answer(&s.ask("x").expect("answer")).expect("echo").0;
            (s, pod)
        })
        .collect();
    let mut names: Vec<&str> = held.iter().map(|(_, p)| p.as_str()).collect();
    names.sort();
    assert_eq!(names, ["p1", "p2"]);
    // The Service other, on someone else's address, is served too.
    assert_eq!(
        ask_http(&client, "10.43.9.9:80".parse().unwrap()).unwrap(),
        "p1"
    );

    // p2 leaves: new connections go to p1 only, the held connection to p2 goes on, and the
    // listener was not reopened.
    let report = proxy.sync(snapshot(
        &[web.clone(), other.clone()],
        &[slice("web", &[&ps[0]]), slice("other", &[&ps[0]])],
        &cfg,
    ));
    assert!(report.unchanged, "{report:?}");
    for _ in 0..4 {
        assert_eq!(
            ask_http(&client, "10.43.0.20:80".parse().unwrap()).unwrap(),
            "p1"
        );
    }
    for (s, pod) in held.iter_mut() {
        let a = s.ask("still").expect("held connection answers");
        assert!(a.starts_with(&format!("pod={pod} ")), "{a}");
    }

    // The Service other goes: its listener closes, and the address stays (not ours).
    let report = proxy.sync(snapshot(&[web], &[slice("web", &[&ps[0]])], &cfg));
    assert_eq!(report.listeners_closed, 3, "{report:?}");
    assert_eq!(report.addresses_removed, 0, "{report:?}");
    assert!(lo(&n1).contains("inet 10.43.9.9/32"));

    // Stopping removes exactly what the proxier added.
    proxy.stop();
    let after = lo(&n1);
    assert!(!after.contains("10.43.0.20"), "{after}");
    assert!(
        after.contains("inet 10.43.9.9/32") && after.contains("inet 10.99.0.1/32"),
        "{after}"
    );
}

#[test]
fn a_restarted_proxier_adopts_and_removes_what_a_previous_one_left() {
    let _turn = serial();
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let ps = pods(&lab, &n1, &["p1"]);
    let cfg = config(&n1, Scheduler::Random);
    let mut first = Proxy::start(&n1, cfg.clone(), None);
    first.sync(snapshot(
        &[service("web", "10.43.0.20", json!({}), json!({}))],
        &[slice("web", &[&ps[0]])],
        &cfg,
    ));
    // A crash: the proxier is never dropped, its addresses stay.
    std::mem::forget(first.proxier.take());
    first.stop();
    assert!(lo(&n1).contains("10.43.0.20/32"));
    let mut second = Proxy::start(&n1, cfg.clone(), None);
    let report = second.sync(snapshot(
        &[service("api", "10.43.0.30", json!({}), json!({}))],
        &[slice("api", &[&ps[0]])],
        &cfg,
    ));
    assert_eq!(
        (report.addresses_added, report.addresses_removed),
        (1, 1),
        "{report:?}"
    );
    let now = lo(&n1);
    assert!(
        !now.contains("10.43.0.20/") && now.contains("10.43.0.30/32"),
        "{now}"
    );
}

#[test]
fn external_traffic_policy_local_and_client_ip_affinity() {
    let _turn = serial();
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let n2 = lab.node("n2");
    let client = lab.client_via("c1", &n1);
    let mut ps = pods(&lab, &n1, &["p1", "p2"]);
    ps.extend(pods(&lab, &n2, &["p3"]));
    let all: Vec<&Pod> = ps.iter().collect();
    let cfg = config(&n1, Scheduler::RoundRobin);
    let mut proxy = Proxy::start(&n1, cfg.clone(), None);
    let local = service(
        "local",
        "10.43.0.40",
        json!({"type": "NodePort", "externalTrafficPolicy": "Local", "ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30090}]}),
        json!({}),
    );
    let sticky = service(
        "sticky",
        "10.43.0.41",
        json!({"sessionAffinity": "ClientIP",
               "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
        json!({}),
    );
    proxy.sync(snapshot(
        &[local, sticky],
        &[slice("local", &all), slice("sticky", &all)],
        &cfg,
    ));

    // From the LAN, the NodePort of an externalTrafficPolicy Local Service reaches only n1's
    // pods; its ClusterIP (internal traffic, policy Cluster) reaches every pod.
    let np = SocketAddr::new(n1.ip.into(), 30090);
    let mut via_np: Vec<String> = (0..6).map(|_| ask_http(&client, np).unwrap()).collect();
    via_np.sort();
    via_np.dedup();
    assert_eq!(via_np, ["p1", "p2"]);
    let mut via_cip: Vec<String> = (0..6)
        .map(|_| ask_http(&client, "10.43.0.40:80".parse().unwrap()).unwrap())
        .collect();
    via_cip.sort();
    via_cip.dedup();
    assert_eq!(via_cip, ["p1", "p2", "p3"]);
    // The LAN client is not on the NodePort addresses' localhost either.
    let lh: SocketAddr = "127.0.0.1:30090".parse().unwrap();
    assert!(n1
        .run(move || test_support::netlab::http_get(lh, T))
        .is_err());

    // ClientIP affinity beats rr: one client, one pod.
    let addr: SocketAddr = "10.43.0.41:80".parse().unwrap();
    let first = ask_http(&client, addr).unwrap();
    for _ in 0..5 {
        assert_eq!(ask_http(&client, addr).unwrap(), first);
    }
}

#[test]
fn udp_sessions_answer_from_the_service_address_and_end_when_idle() {
    let _turn = serial();
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let client = lab.client_via("c1", &n1);
    let ps = pods(&lab, &n1, &["p1", "p2"]);
    let cfg = config(&n1, Scheduler::RoundRobin);
    let mut proxy = Proxy::start(&n1, cfg.clone(), Some(Duration::from_millis(500)));
    proxy.sync(snapshot(
        &[service("dns", "10.43.0.50", json!({}), json!({}))],
        &[slice("dns", &[&ps[0], &ps[1]])],
        &cfg,
    ));
    let addr: SocketAddr = "10.43.0.50:53".parse().unwrap();
    // One client socket, unconnected, so the source of each answer can be checked.
    let sock = client
        .run(|| UdpSocket::bind("0.0.0.0:0"))
        .expect("client socket");
    sock.set_read_timeout(Some(T)).unwrap();
    let ask = |s: &UdpSocket| -> (String, SocketAddr) {
        s.send_to(b"q", addr).expect("send");
        let mut buf = [0u8; 512];
        let (n, from) = s.recv_from(&mut buf).expect("answer");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        (parse_answer(&text).expect("echo").0, from)
    };
    let (first, from) = ask(&sock);
    assert_eq!(from, addr, "answers come from the Service address");
    // The session holds: the same pod, as long as it is not idle.
    for _ in 0..3 {
        assert_eq!(ask(&sock).0, first);
    }
    // Idle past the timeout: a new session, rr's next pod.
    std::thread::sleep(Duration::from_millis(1200));
    let (second, _) = ask(&sock);
    assert_ne!(second, first);
}

#[test]
fn ipv6_cluster_ip_node_port_and_udp() {
    let _turn = serial();
    let lab = Lab::dual_stack();
    let n1 = lab.node("n1");
    let client = lab.client_via("c1", &n1);
    let ps = pods(&lab, &n1, &["p1", "p2"]);
    let node6 = n1.ip6.expect("dual-stack node");
    let cfg = ProxyConfig {
        node_ips: vec![n1.ip.into(), node6.into()],
        ..config(&n1, Scheduler::RoundRobin)
    };
    let mut proxy = Proxy::start(&n1, cfg.clone(), None);
    let svc = service(
        "web6",
        "fd43::20",
        json!({"type": "NodePort", "ipFamilies": ["IPv6"], "ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30091},
            {"name": "dns", "port": 53, "protocol": "UDP"}]}),
        json!({}),
    );
    let endpoints: Vec<Value> = ps
        .iter()
        .map(|p| json!({"addresses": [p.ip6.expect("pod ip6").to_string()], "nodeName": p.node}))
        .collect();
    let slice6: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "web6-x", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "web6"}},
        "addressType": "IPv6",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                  {"name": "dns", "port": 53, "protocol": "UDP"}],
    }))
    .unwrap();
    let report = proxy.sync(snapshot(&[svc], &[slice6], &cfg));
    assert!(report.bind_errors.is_empty(), "{report:?}");
    assert!(lo(&n1).contains("inet6 fd43::20/128"), "{}", lo(&n1));

    let cip: SocketAddr = "[fd43::20]:80".parse().unwrap();
    let mut seen: Vec<String> = (0..4).map(|_| ask_http(&client, cip).unwrap()).collect();
    assert_eq!(seen[..2], seen[2..], "rr over two pods: {seen:?}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["p1", "p2"]);
    let np = SocketAddr::new(node6.into(), 30091);
    assert!(["p1", "p2"].contains(&ask_http(&client, np).unwrap().as_str()));

    let udp: SocketAddr = "[fd43::20]:53".parse().unwrap();
    let (answer, from) = client
        .run(move || -> std::io::Result<(String, SocketAddr)> {
            let s = UdpSocket::bind("[::]:0")?;
            s.set_read_timeout(Some(T))?;
            s.send_to(b"q", udp)?;
            let mut buf = [0u8; 512];
            let (n, from) = s.recv_from(&mut buf)?;
            Ok((String::from_utf8_lossy(&buf[..n]).to_string(), from))
        })
        .expect("UDP answer over IPv6");
    assert_eq!(from, udp);
    assert!(parse_answer(&answer).is_some(), "{answer}");

    proxy.stop();
    assert!(!lo(&n1).contains("fd43::20"), "{}", lo(&n1));
}
