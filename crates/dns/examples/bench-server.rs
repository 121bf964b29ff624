//! Serves a synthetic cluster zone without an API server, for bench/dns: N ClusterIP Services
//! (`svc-<i>.bench.svc.<zone>`) plus headless ones with 3 ready endpoints each. Writes the
//! same names as a hosts file (for dnsmasq) and a dnsperf query file.
//!
//! usage: bench-server LISTEN_ADDR SERVICES OUT_DIR

use std::io::Write;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listen = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("127.0.0.1:5300")
        .parse()?;
    let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let out = std::path::PathBuf::from(args.get(3).cloned().unwrap_or_else(|| ".".into()));
    let mut services = Vec::new();
    let mut slices = Vec::new();
    let mut hosts = std::fs::File::create(out.join("hosts"))?;
    let mut queries = std::fs::File::create(out.join("queries"))?;
    for i in 0..n {
        let ip = format!("10.43.{}.{}", i / 250, i % 250 + 1);
        services.push(serde_json::from_value::<Service>(json!({
            "metadata": {"name": format!("svc-{i}"), "namespace": "bench"},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]},
        }))?);
        writeln!(hosts, "{ip} svc-{i}.bench.svc.cluster.local")?;
        writeln!(queries, "svc-{i}.bench.svc.cluster.local A")?;
        if i % 10 == 0 {
            let name = format!("hl-{i}");
            services.push(serde_json::from_value::<Service>(json!({
                "metadata": {"name": name, "namespace": "bench"}, "spec": {"clusterIP": "None"},
            }))?);
            let eps: Vec<_> = (0..3)
                .map(|k| json!({"addresses": [format!("10.42.{}.{}", i / 250, k + 1)]}))
                .collect();
            slices.push(serde_json::from_value::<EndpointSlice>(json!({
                "metadata": {"name": format!("{name}-1"), "namespace": "bench", "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4", "endpoints": eps,
            }))?);
            for k in 0..3 {
                writeln!(
                    hosts,
                    "10.42.{}.{} {name}.bench.svc.cluster.local",
                    i / 250,
                    k + 1
                )?;
            }
            writeln!(queries, "{name}.bench.svc.cluster.local A")?;
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut registry = prometheus_client::registry::Registry::default();
        let cfg = dns::DnsConfig {
            bind: vec![listen],
            upstreams: Some(vec![]),
            ..Default::default()
        };
        let mut server = dns::Dns::new(cfg.clone(), &mut registry);
        server.set_zone(dns::Zone::build(&cfg.zone, &services, &slices));
        let addrs = server.bind()?;
        eprintln!("serving {} services on {:?}", services.len(), addrs);
        server
            .run(None, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}
