//! The controller's work is linear in the Services created: the server runs with
//! `--load-balancer-mode off` and this test runs `lb::run` itself, to read its counters while
//! ClusterIP and LoadBalancer Services are created one by one through the API (each
//! LoadBalancer Service waited for, so every one is its own round). Before the controller was
//! incremental, every round re-decided every LoadBalancer Service: n(n+1)/2 decisions here.

use crate::support::apply;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::TestServer;

const POOL: &str = "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: incremental
  namespace: metallb-system
spec:
  addresses:
  - 198.18.40.0/24
";

#[test]
fn services_created_one_by_one_cost_linear_work() {
    std::env::set_var("NO_COLOR", "1");
    let server = TestServer::start_with(
        env!("CARGO_BIN_EXE_switchboard"),
        &["--load-balancer-mode", "off"],
    );
    let ns = server.kubectl(&["create", "namespace", "metallb-system"]);
    assert!(ns.status.success());
    apply(&server, POOL);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = controllers::client_from_kubeconfig(&server.kubeconfig)
            .await
            .unwrap();
        let stats = Arc::new(lb::controller::LbStats::default());
        let cfg = lb::LbConfig {
            stats: stats.clone(),
            ..Default::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let ctl = tokio::spawn(lb::run(client.clone(), cfg, async move {
            let _ = stopped.await;
        }));
        let services: Api<Service> = Api::namespaced(client, "default");
        let n = 40;
        for i in 0..n {
            for j in 0..5 {
                let c: Service = serde_json::from_value(json!({"metadata": {"name": format!("c{i}-{j}")},
                    "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}}))
                .unwrap();
                services.create(&PostParams::default(), &c).await.unwrap();
            }
            let name = format!("lb{i}");
            let s: Service = serde_json::from_value(json!({"metadata": {"name": name},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": "x"}}}))
            .unwrap();
            services.create(&PostParams::default(), &s).await.unwrap();
            // A generous bound for "eventually", not a performance assertion.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got = services.get(&name).await.unwrap();
                let ip = got
                    .status
                    .and_then(|s| s.load_balancer)
                    .and_then(|l| l.ingress)
                    .and_then(|i| i.first().and_then(|i| i.ip.clone()));
                if let Some(ip) = ip {
                    assert_eq!(ip, format!("198.18.40.{i}"));
                    break;
                }
                assert!(Instant::now() < deadline, "{name} got no address");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Let the last status write come back through the watch.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let decided = stats.decided.load(Ordering::Relaxed);
        let whole = stats.whole_rounds.load(Ordering::Relaxed);
        let writes = stats.status_writes.load(Ordering::Relaxed);
        eprintln!("{n} LoadBalancer + {} ClusterIP Services: {decided} decisions, {whole} whole rounds, {writes} status writes", 5 * n);
        assert_eq!(writes, n, "one status write per LoadBalancer Service");
        // Each LoadBalancer Service is decided at its creation and when its status write
        // comes back; a relist or resync could add a whole round, nothing grows with n².
        assert!(whole <= 3, "{whole} whole rounds");
        assert!(decided <= 2 * n + whole * n, "{decided} decisions for {n} Services");
        assert!(decided >= n, "every LoadBalancer Service was decided");
        let _ = stop.send(());
        let _ = ctl.await;
    });
    rt.shutdown_timeout(Duration::from_secs(10));
}

/// Creates `n` ClusterIP Services through the API, `inflight` at a time; the wall time.
async fn create_cluster_ips(client: kube::Client, n: usize, inflight: usize) -> Duration {
    use futures::StreamExt;
    let services: Api<Service> = Api::namespaced(client, "default");
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let services = services.clone();
            async move {
                let c: Service =
                    serde_json::from_value(json!({"metadata": {"name": format!("c{i}")},
                    "spec": {"ports": [{"port": 80}], "selector": {"app": format!("a{i}")}}}))
                    .unwrap();
                services.create(&PostParams::default(), &c).await.unwrap();
            }
        })
        .buffer_unordered(inflight)
        .collect::<Vec<()>>()
        .await;
    started.elapsed()
}

/// Benchmark (`cargo test -p switchboard --test lb -- --ignored bench_cluster_ip_writes
/// --nocapture`; LB_BENCH_SERVICES, default 5000): the time to create ClusterIP Services
/// through the API with the server's LoadBalancer controller on (`auto`, the default) and
/// off, alternating in the same run. Before the controller was incremental every Service
/// write started a round over every Service, so `auto` grew quadratically.
#[test]
#[ignore = "benchmark"]
fn bench_cluster_ip_writes_lb_auto_vs_off() {
    let n: usize = std::env::var("LB_BENCH_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    std::env::set_var("NO_COLOR", "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut results: Vec<(&str, Duration)> = Vec::new();
    for mode in ["off", "auto", "off", "auto"] {
        let mut server = TestServer::start_with(
            env!("CARGO_BIN_EXE_switchboard"),
            &["--load-balancer-mode", mode],
        );
        let took = rt.block_on(async {
            let client = controllers::client_from_kubeconfig(&server.kubeconfig)
                .await
                .unwrap();
            create_cluster_ips(client, n, 8).await
        });
        eprintln!(
            "lb mode {mode:>4}: {n} ClusterIP Services in {:.2} s ({:.0}/s)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
        results.push((mode, took));
        server.stop();
    }
    let total = |m: &str| -> f64 {
        results
            .iter()
            .filter(|(x, _)| *x == m)
            .map(|(_, d)| d.as_secs_f64())
            .sum()
    };
    eprintln!(
        "auto / off: {:.2} (sum of two runs each)",
        total("auto") / total("off")
    );
}
