//! The network-namespace lab itself: pods reach each other across nodes, a client reaches pods
//! through their node, echo servers report who answered and whom they saw, the API forwarder
//! reaches a listener on the root namespace's loopback, and nothing is left behind (also when
//! a test panics).

use std::net::SocketAddr;
use std::time::Duration;
use test_support::netlab::{http_get, parse_answer, udp_ask, Lab, StreamClient};

const T: Duration = Duration::from_secs(3);

fn namespaces_named(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with(&format!("{prefix}-")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pod_reaches_pod_on_another_node() {
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let n2 = lab.node("n2");
    let p1 = lab.pod(&n1, "p1");
    let p2 = lab.pod(&n2, "p2");
    let p3 = lab.pod(&n1, "p3");
    let a2 = lab.http_echo(&p2, 80);
    let a3 = lab.http_echo(&p3, 80);

    // Across nodes: routed n1 -> LAN -> n2, no NAT, so p2 sees p1's own address.
    let body = p1
        .run(move || http_get(a2, T))
        .expect("p1 -> p2 across nodes");
    let (pod, seen) = parse_answer(&body).unwrap();
    assert_eq!(pod, "p2");
    assert_eq!(seen.ip(), std::net::IpAddr::V4(p1.ip));
    // Same node, through the pod bridge.
    let body = p1
        .run(move || http_get(a3, T))
        .expect("p1 -> p3 on the same node");
    assert_eq!(parse_answer(&body).unwrap().0, "p3");
    // curl, a real process inside the namespace.
    let out = p1.exec(&[
        "curl",
        "-sS",
        "--max-time",
        "3",
        &format!("http://{a2}/anything"),
    ]);
    assert!(out.status.success(), "{}", test_support::output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("pod=p2 client="));
}

#[test]
fn client_reaches_pods_through_their_nodes_and_echo_servers_answer() {
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let c1 = lab.client("c1");
    // A node made after the client still gets a route from it.
    let n2 = lab.node("n2");
    let p1 = lab.pod(&n1, "p1");
    let p2 = lab.pod(&n2, "p2");
    let h = lab.http_echo(&p2, 8080);
    let u = lab.udp_echo(&p1, 5353);
    let s = lab.stream_echo(&p2, 9000);

    let body = c1.run(move || http_get(h, T)).unwrap();
    assert_eq!(
        parse_answer(&body).unwrap(),
        ("p2".to_string(), parse_answer(&body).unwrap().1)
    );
    assert_eq!(
        parse_answer(&body).unwrap().1.ip(),
        std::net::IpAddr::V4(c1.ip)
    );

    let answer = c1.run(move || udp_ask(u, T)).unwrap();
    let (pod, seen) = parse_answer(&answer).unwrap();
    assert_eq!(
        (pod.as_str(), seen.ip()),
        ("p1", std::net::IpAddr::V4(c1.ip))
    );

    // The stream keeps one connection: same client port on every line.
    let mut stream = c1.run(move || StreamClient::connect(s, T)).unwrap();
    let local = stream.local_addr().unwrap();
    for i in 0..3 {
        let line = stream.ask(&format!("hello {i}")).unwrap();
        assert_eq!(line, format!("pod=p2 client={local} hello {i}"));
    }

    // A port nobody listens on is refused, not silently dropped.
    let closed = SocketAddr::new(p2.ip.into(), 81);
    let err = c1.run(move || http_get(closed, T)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    // The node's forwarding and addresses are as documented.
    let out = n1.exec(&["sysctl", "-n", "net.ipv4.ip_forward"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    assert_eq!(n2.pod_cidr, "10.42.2.0/24");
}

#[test]
fn removed_pod_stops_answering() {
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let c1 = lab.client("c1");
    let p1 = lab.pod(&n1, "p1");
    let a = lab.http_echo(&p1, 80);
    c1.run(move || http_get(a, T)).unwrap();
    let name = p1.name().to_string();
    lab.remove_pod(&p1);
    assert!(!std::path::Path::new(&format!("/run/netns/{name}")).exists());
    assert!(c1
        .run(move || http_get(a, Duration::from_millis(500)))
        .is_err());
    assert!(lab.pods().is_empty());
}

#[test]
fn forwarder_reaches_the_root_namespace_loopback() {
    // A stand-in for the TestServer: a listener on the root namespace's 127.0.0.1.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in upstream.incoming().flatten() {
            use std::io::{BufRead, Write};
            let mut w = conn.try_clone().unwrap();
            let mut line = String::new();
            std::io::BufReader::new(conn).read_line(&mut line).unwrap();
            let _ = w.write_all(format!("root got {line}").as_bytes());
        }
    });
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let local = lab.forward_to_root(&n1, target);
    assert_eq!(local.ip().to_string(), "127.0.0.1");
    assert_eq!(
        lab.forward_to_root(&n1, target),
        local,
        "one forwarder per pair"
    );
    let got = n1.run(move || {
        use std::io::{BufRead, Write};
        let mut s = std::net::TcpStream::connect(local).unwrap();
        s.write_all(b"hi\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(s).read_line(&mut line).unwrap();
        line
    });
    assert_eq!(got, "root got hi\n");
    // The node's loopback is its own: the root listener is not directly reachable there
    // (unless by chance the same port is the forwarder's, which is the point of it).
    let out = n1.exec(&["ip", "-br", "addr"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("cbr0"));
}

#[test]
fn spawned_processes_run_inside_and_die_with_the_lab() {
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let mut cmd = n1.command("sleep");
    cmd.arg("300");
    let p = n1.spawn(cmd);
    let pid = p.id();
    // `ip netns exec` enters the namespace and then execs the program under the same pid.
    let deadline = std::time::Instant::now() + T;
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        != "sleep"
    {
        assert!(std::time::Instant::now() < deadline, "sleep did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The process is in the node's namespace, not ours.
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let its = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(ours, its);
    // Forget the guard: the lab must still kill it.
    std::mem::forget(p);
    let prefix = lab.prefix().to_string();
    drop(lab);
    std::thread::sleep(Duration::from_millis(100));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Gone, or a zombie nobody reaped (we forgot its Child).
    assert!(
        stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z"),
        "still running: {stat}"
    );
    assert!(namespaces_named(&prefix).is_empty());
}

#[test]
fn dropping_the_lab_removes_every_namespace_even_on_panic() {
    let prefix = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let p2 = prefix.clone();
    let result = std::panic::catch_unwind(move || {
        let lab = Lab::new();
        *p2.lock().unwrap() = lab.prefix().to_string();
        let n1 = lab.node("n1");
        let n2 = lab.node("n2");
        let p = lab.pod(&n1, "p1");
        lab.pod(&n2, "p2");
        lab.client("c1");
        lab.http_echo(&p, 80);
        assert_eq!(
            namespaces_named(lab.prefix()).len(),
            6,
            "{:?}",
            lab.namespaces()
        );
        panic!("a failing test");
    });
    assert!(result.is_err());
    let prefix = prefix.lock().unwrap().clone();
    assert!(!prefix.is_empty());
    assert!(
        namespaces_named(&prefix).is_empty(),
        "left behind: {:?}",
        namespaces_named(&prefix)
    );
}
