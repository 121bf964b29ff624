//! The agent's kube-proxy compatibility endpoints, against the agent process in a node
//! namespace and a real server: `/proxyMode`, `/metrics` (kube-proxy's names, moving with real
//! changes), `/healthz` and `/livez` (kube-proxy's JSON; 503 on a node being drained), the
//! kube-proxy ConfigMap's bad edits refused without harm, flags that cannot run refused at
//! start, and `switchboard up` registering its Node and running the agent.

use crate::support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use test_support::netlab::{self, Lab, Node};
use test_support::output_text;

/// `curl -s -i URL` inside `node`: (status, lower-cased head, body).
fn curl(node: &Node, url: &str, extra: &[&str]) -> (u16, String, String) {
    let mut args = vec!["curl", "-s", "-i", "--max-time", "3"];
    args.extend(extra);
    args.push(url);
    let out = node.exec(&args);
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let Some((head, body)) = text.split_once("\n\n") else {
        return (0, String::new(), text);
    };
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_lowercase(), body.to_string())
}

/// The value of the first sample line of `/metrics` that starts with `series` (name and labels
/// exactly as printed).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn metrics(node: &Node) -> String {
    let (code, head, body) = curl(node, "http://127.0.0.1:10249/metrics", &[]);
    assert_eq!(code, 200, "{head}{body}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body
}

fn wait_synced(c: &mut Cluster) {
    for i in 0..c.agents.len() {
        assert!(
            c.agent(i)
                .wait_for_log("SyncProxyRules complete", Duration::from_secs(30)),
            "agent {i} never synced"
        );
    }
}

#[test]
fn proxy_mode_metrics_healthz_and_livez_answer_as_kube_proxy() {
    // A short re-list period, to see the watches start over (kube-rs has no informer resync).
    let mut c = Cluster::start(&["--config-sync-period", "3s"]);
    wait_synced(&mut c);
    let started = chrono::Utc::now().timestamp() as f64 - 120.0;
    let n1 = c.node("n1").clone();

    let (code, head, body) = curl(&n1, "http://127.0.0.1:10249/proxyMode", &[]);
    assert_eq!((code, body.as_str()), (200, "nftables"), "{head}");

    // /healthz: kube-proxy's headers and JSON, both families synced, the Node eligible.
    let (code, head, body) = curl(&n1, "http://127.0.0.1:10256/healthz", &[]);
    assert_eq!(code, 200, "{head}{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let v: Value = serde_json::from_str(&body).expect("healthz JSON");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "lastUpdated",
            "currentTime",
            "nodeEligible",
            "healthy",
            "status"
        ],
        "{body}"
    );
    assert_eq!(v["nodeEligible"], true);
    assert_eq!(v["status"]["IPv4"]["healthy"], true, "{body}");
    assert_eq!(v["status"]["IPv6"]["healthy"], true, "{body}");
    let (code, _, body) = curl(&n1, "http://127.0.0.1:10256/livez", &[]);
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).expect("livez JSON");
    assert!(v.get("nodeEligible").is_none(), "{body}");
    // The health port listens on every address, as kube-proxy's default 0.0.0.0:10256.
    let (code, _, _) = curl(&n1, &format!("http://{}:10256/healthz", n1.ip), &[]);
    assert_eq!(code, 200);

    // /metrics after the first sync.
    let m = metrics(&n1);
    for line in [
        "# HELP kubeproxy_sync_proxy_rules_duration_seconds [ALPHA] SyncProxyRules latency in seconds",
        "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram",
        "# TYPE kubeproxy_sync_proxy_rules_endpoint_changes_total counter",
        "# TYPE kubeproxy_sync_proxy_rules_service_changes_total counter",
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line:?} in\n{m}");
    }
    let last = sample(
        &m,
        "kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"IPv4\"}",
    )
    .expect("last sync time");
    assert!(last > started, "{last}");
    assert!(
        sample(
            &m,
            "kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(sample(&m, "kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family=\"IPv4\",traffic_policy=\"external\"}"), Some(0.0));
    let endpoint_changes =
        sample(&m, "kubeproxy_sync_proxy_rules_endpoint_changes_total").expect("endpoint changes");
    let service_changes =
        sample(&m, "kubeproxy_sync_proxy_rules_service_changes_total").expect("service changes");

    // Real changes move the counters, and the slices' trigger times (written by the endpoint
    // controllers after the agent started) give programming latencies.
    c.three_pods();
    let svc = c.service("web", &[("app", "web")], json!({}), json!({}));
    c.wait_all_answer(cluster_ip(&svc, 80), &["p1", "p2", "p3"]);
    let m = eventually(20, "network programming latency observed", || {
        let m = metrics(&n1);
        (sample(
            &m,
            "kubeproxy_network_programming_duration_seconds_count{ip_family=\"IPv4\"}",
        )? >= 1.0)
            .then_some(m)
    });
    assert!(
        sample(&m, "kubeproxy_sync_proxy_rules_endpoint_changes_total").unwrap() > endpoint_changes
    );
    assert!(
        sample(&m, "kubeproxy_sync_proxy_rules_service_changes_total").unwrap() > service_changes
    );
    assert!(
        m.lines().any(|l| l.starts_with(
            "kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.25\"}"
        )),
        "{m}"
    );
    assert!(
        sample(&m, "kubeproxy_proxy_healthz_total{code=\"200\"}").unwrap_or(0.0) >= 1.0,
        "{m}"
    );

    // A Prometheus scraper that asks for OpenMetrics gets it.
    let (code, head, body) = curl(
        &n1,
        "http://127.0.0.1:10249/metrics",
        &["-H", "Accept: application/openmetrics-text;version=1.0.0"],
    );
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"));

    // The cluster autoscaler's taint makes /healthz 503 (not eligible), /livez stays 200.
    c.kubectl(&[
        "taint",
        "node",
        "n1",
        "ToBeDeletedByClusterAutoscaler=1:NoSchedule",
    ]);
    let body = eventually(20, "healthz 503 on a node being drained", || {
        let (code, _, body) = curl(&n1, "http://127.0.0.1:10256/healthz", &[]);
        (code == 503).then_some(body)
    });
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["nodeEligible"].clone(), v["healthy"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(curl(&n1, "http://127.0.0.1:10256/livez", &[]).0, 200);
    c.kubectl(&["taint", "node", "n1", "ToBeDeletedByClusterAutoscaler-"]);
    eventually(20, "healthz 200 again", || {
        (curl(&n1, "http://127.0.0.1:10256/healthz", &[]).0 == 200).then_some(())
    });

    // Without any Service write, the re-list every 3 s delivers every Service again.
    let total = |m: &str| sample(m, "kubeproxy_sync_proxy_rules_service_changes_total").unwrap();
    let before = total(&metrics(&n1));
    eventually(20, "a re-list of the Services", || {
        (total(&metrics(&n1)) >= before + 2.0).then_some(())
    });
}

fn put_config(c: &Cluster, conf: &str) {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        "data": {"config.conf": conf}});
    netlab::k8s::apply(&c.server, &cm);
}

#[test]
fn a_bad_kube_proxy_configmap_is_refused_and_the_rules_stay() {
    let mut c = Cluster::start(&[]);
    wait_synced(&mut c);
    c.three_pods();
    let svc = c.service("web", &[("app", "web")], json!({}), json!({}));
    let addr = cluster_ip(&svc, 80);
    c.wait_all_answer(addr, &["p1", "p2", "p3"]);
    // kube-system may exist already (the server makes it); apply either way.
    netlab::k8s::apply(
        &c.server,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}),
    );

    // lc: nftables cannot do it; the agent says which data plane would, and keeps random.
    put_config(&c, "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nipvs:\n  scheduler: lc\n");
    assert!(
        c.agent(0)
            .wait_for_log("the lc scheduler is provided by the userspace data plane (--proxy-mode userspace); the nftables data plane offers random, rr, sh, mh", Duration::from_secs(20)),
        "no word on lc:\n{}",
        c.agent(0).log()
    );
    c.wait_all_answer(addr, &["p1", "p2", "p3"]);

    // Not YAML, and a mode nobody serves: refused as a whole, with the reasons.
    put_config(&c, "mode: [unclosed\n");
    assert!(c
        .agent(0)
        .wait_for_log("is not a KubeProxyConfiguration", Duration::from_secs(20)));
    put_config(&c, "mode: kernelspace\n");
    assert!(
        c.agent(0).wait_for_log(
            "mode \"kernelspace\" is not supported",
            Duration::from_secs(20)
        ),
        "{}",
        c.agent(0).log()
    );
    assert!(c.agent(0).log_contains("keeping the current configuration"));
    c.wait_all_answer(addr, &["p1", "p2", "p3"]);

    // A good edit then applies, without a restart: ipvs mode alone means rr, as in IPVS.
    put_config(
        &c,
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n",
    );
    assert!(
        c.agent(0)
            .wait_for_log("scheduler=rr", Duration::from_secs(20)),
        "{}",
        c.agent(0).log()
    );
    assert!(c.agent(0).log_contains("served by the nftables data plane"));
    eventually(20, "strict rotation after mode: ipvs", || {
        let seq = c.ask_many(addr, 9);
        strict_rotation(&seq, 3).then_some(())
    });
    // A Service that asks for lc by annotation is still served (as random), and the agent says
    // which data plane would provide lc.
    let lc = c.service(
        "web-lc",
        &[("app", "web")],
        json!({}),
        json!({"switchboard.dev/scheduler": "lc"}),
    );
    assert!(
        c.agent(0).wait_for_log(
            "default/web-lc: switchboard.dev/scheduler: the lc scheduler is provided by the userspace data plane (--proxy-mode userspace)",
            Duration::from_secs(20)
        ),
        "{}",
        c.agent(0).log()
    );
    c.wait_all_answer(cluster_ip(&lc, 80), &["p1", "p2", "p3"]);
    // /proxyMode tells the truth about what programs the rules.
    let (_, _, body) = curl(c.node("n1"), "http://127.0.0.1:10249/proxyMode", &[]);
    assert_eq!(body, "nftables");
}

/// Runs `switchboard agent ARGS` in a fresh lab node; returns (exited non-zero, log).
fn agent_refuses(args: &[&str]) -> String {
    let server = test_support::TestServer::start(env!("CARGO_BIN_EXE_switchboard"));
    let lab = Lab::new();
    let node = lab.node("n1");
    let kubeconfig = lab.kubeconfig_for(&node, &server);
    let mut cmd = node.command(env!("CARGO_BIN_EXE_switchboard"));
    cmd.arg("agent")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--node-name", "n1"])
        .args(args)
        .env("NO_COLOR", "1");
    let mut p = node.spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(20);
    while p.is_running() {
        assert!(
            Instant::now() < deadline,
            "agent {args:?} kept running:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = node.exec(&["nft", "list", "tables"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("switchboard"),
        "a refused agent programmed nothing"
    );
    p.log()
}

#[test]
fn flags_that_cannot_run_are_refused_at_start() {
    let _turn = serial();
    let log = agent_refuses(&["--scheduler", "lc"]);
    assert!(
        log.contains("the lc scheduler is provided by the userspace data plane (--proxy-mode userspace); the nftables data plane offers random, rr, sh, mh"),
        "{log}"
    );
    let log = agent_refuses(&["--nodeport-addresses", "192.168.0.0/33"]);
    assert!(log.contains("--nodeport-addresses"), "{log}");
}

#[test]
fn switchboard_up_registers_its_node_and_runs_the_agent() {
    let _turn = serial();
    let lab = Lab::new();
    let node = lab.node("up");
    let data = tempfile::tempdir().unwrap();
    let mut cmd = node.command(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(["up", "--listen", "127.0.0.1:0", "--node-name", "machine-1"])
        .arg("--data-dir")
        .arg(data.path())
        .env("NO_COLOR", "1");
    let p = node.spawn(cmd);
    assert!(
        p.wait_for_log("Switchboard is up", Duration::from_secs(60)),
        "{}",
        p.log()
    );
    assert!(
        p.wait_for_log("SyncProxyRules complete", Duration::from_secs(60)),
        "{}",
        p.log()
    );
    let kubeconfig = data.path().join("kubeconfig");
    let kubectl = |args: &[&str]| {
        let mut a = vec![test_support::kubectl_path().to_string_lossy().to_string()];
        a.extend([
            "--kubeconfig".to_string(),
            kubeconfig.to_string_lossy().to_string(),
        ]);
        a.extend(args.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        node.exec(&a)
    };
    let out = kubectl(&["get", "nodes"]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("machine-1 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.split_whitespace().nth(1) == Some("Ready"), "{text}");
    let out = kubectl(&["get", "node", "machine-1", "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("node JSON");
    let addrs: Vec<&str> = v["status"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "InternalIP")
        .filter_map(|a| a["address"].as_str())
        .collect();
    assert!(addrs.contains(&node.ip.to_string().as_str()), "{addrs:?}");
    let (code, _, body) = curl(&node, "http://127.0.0.1:10249/proxyMode", &[]);
    assert_eq!((code, body.as_str()), (200, "nftables"));
    let out = node.exec(&["nft", "list", "table", "ip", "switchboard"]);
    assert!(out.status.success(), "{}", output_text(&out));
}
