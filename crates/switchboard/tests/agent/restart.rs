//! Restarting the agent does not break a TCP stream running through a ClusterIP: the new agent
//! adopts the rules it finds instead of tearing them down and rebuilding.

use crate::support::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn agent_restart_keeps_a_running_tcp_stream_through_a_clusterip() {
    let mut c = Cluster::start(&[]);
    c.three_pods();
    let svc = c.service("web", &[("app", "web")], json!({}), json!({}));
    let addr = cluster_ip(&svc, 9000);
    eventually(20, "the stream port answers", || {
        c.client
            .run(move || StreamClient::connect(addr, T).and_then(|mut s| s.ask("probe")))
            .ok()
    });
    let mut stream = c
        .client
        .run(move || StreamClient::connect(addr, T))
        .expect("stream through the ClusterIP");
    let first = stream.ask("line 0").expect("first line");
    let (pod, seen) = parse_answer(&first).unwrap();
    let mut n = 1;
    let mut talk = |stream: &mut StreamClient, what: &str| {
        for _ in 0..5 {
            let line = format!("line {n}");
            let got = stream
                .ask(&line)
                .unwrap_or_else(|e| panic!("stream broke {what}: {e}"));
            assert_eq!(got, format!("pod={pod} client={seen} {line}"), "{what}");
            n += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    talk(&mut stream, "before the restart");

    // The agent on n1 (the client's way in) stops as a restart stops it...
    let status = c.agent(0).terminate(Duration::from_secs(10));
    assert!(
        status.is_some(),
        "the agent did not exit on SIGTERM within 10 s"
    );
    talk(&mut stream, "while no agent runs");
    // ...a change happens meanwhile, and a new agent starts.
    let other = c.service("other", &[("app", "web")], json!({}), json!({}));
    let agent = c.spawn_agent(0);
    c.agents[0] = Some(agent);
    talk(&mut stream, "while the new agent starts");
    // The new agent has synced once the change made while it was down is live.
    c.wait_all_answer(cluster_ip(&other, 80), &["p1", "p2", "p3"]);
    talk(&mut stream, "after the new agent synced");
    // A second restart, a hard one this time.
    c.agent(0).kill();
    let agent = c.spawn_agent(0);
    c.agents[0] = Some(agent);
    c.kubectl(&["delete", "service", "other"]);
    let other = cluster_ip(&other, 80);
    eventually(20, "the deleted Service is gone from the rules", || {
        c.client
            .run(move || std::net::TcpStream::connect_timeout(&other, Duration::from_millis(500)))
            .err()
    });
    talk(&mut stream, "after a SIGKILL restart and a sync");
}
