//! From a pod's and a LAN client's network namespace through the cluster DNS address
//! 10.43.0.10: the real `switchboard agent` in the node's namespace publishes itself as the
//! kube-dns endpoint and its nftables proxy DNATs 10.43.0.10:53 to the DNS server it runs.

use std::time::{Duration, Instant};

use test_support::netlab::{k8s, Lab, Netns};
use test_support::{output_text, TestServer};

use crate::support::{serial, status_of};

fn dig(ns: &Netns, args: &[&str]) -> String {
    let out = ns.exec(&[&["dig", "@10.43.0.10", "+time=2", "+tries=1"][..], args].concat());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn short(ns: &Netns, name: &str, qtype: &str) -> Vec<String> {
    let mut v: Vec<String> = dig(ns, &["+short", name, qtype])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn pods_and_clients_resolve_through_the_cluster_dns_address() {
    let _s = serial();
    std::env::set_var("NO_COLOR", "1");
    let server = TestServer::start(env!("CARGO_BIN_EXE_switchboard"));
    let lab = Lab::new();
    let node = lab.node("n1");
    k8s::register_node(&server, &node);
    let pod = lab.pod(&node, "p1");
    k8s::register_pod(&server, &pod, "default", &[("app", "web")]);
    let client = lab.client_via("c1", &node);
    let kubeconfig = lab.kubeconfig_for(&node, &server);
    let mut cmd = node.command(env!("CARGO_BIN_EXE_switchboard"));
    cmd.arg("agent")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--node-name", &node.name, "--cluster-cidr", "10.42.0.0/16"])
        // Only cluster names are asked here; nothing may leave the lab.
        .args(["--dns-upstream", "127.0.0.1:1"])
        .env("RUST_LOG", test_support::log_filter())
        .env("NO_COLOR", "1");
    let agent = node.spawn(cmd);

    let out = server.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n\
         spec: {selector: {app: web}, ports: [{name: http, port: 80}]}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: hl, namespace: default}\n\
         spec: {clusterIP: None, selector: {app: web}, ports: [{name: http, port: 80}]}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: alias, namespace: default}\n\
         spec: {type: ExternalName, externalName: web.default.svc.cluster.local}\n",
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let ip =
        output_text(&server.kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]))
            .trim()
            .to_string();

    // The agent starts, publishes kube-dns, its proxy programs the DNAT: generous deadline.
    let web = "web.default.svc.cluster.local";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if short(&pod, web, "A") == [ip.clone()] {
            break;
        }
        if Instant::now() > deadline {
            let svc = output_text(&server.kubectl(&[
                "-n",
                "kube-system",
                "get",
                "svc,endpointslices",
                "-o",
                "wide",
            ]));
            panic!(
                "{web} not answered through 10.43.0.10 from the pod: {:?}\n{svc}\nagent log:\n{}",
                dig(&pod, &[web]),
                agent.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // The published Service, as k3s has it.
    let svc = output_text(&server.kubectl(&[
        "-n",
        "kube-system",
        "get",
        "svc",
        "kube-dns",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]));
    assert_eq!(svc.trim(), "10.43.0.10");

    // From the pod: every kind of record.
    let p = pod.ip.to_string();
    let dashed = p.replace('.', "-");
    assert_eq!(
        short(&pod, "dns-version.cluster.local", "TXT"),
        ["\"1.1.0\""]
    );
    assert_eq!(
        short(&pod, "_http._tcp.web.default.svc.cluster.local", "SRV"),
        [format!("0 100 80 {web}.")]
    );
    assert_eq!(dig(&pod, &["+short", "-x", &ip]).trim(), format!("{web}."));
    assert_eq!(
        short(&pod, "hl.default.svc.cluster.local", "A"),
        [p.clone()]
    );
    assert_eq!(
        short(&pod, &format!("{dashed}.hl.default.svc.cluster.local"), "A"),
        [p.clone()]
    );
    assert_eq!(
        short(&pod, "_http._tcp.hl.default.svc.cluster.local", "SRV"),
        [format!("0 100 80 {dashed}.hl.default.svc.cluster.local.")]
    );
    assert_eq!(
        dig(&pod, &["+short", "-x", &p]).trim(),
        format!("{dashed}.hl.default.svc.cluster.local.")
    );
    assert_eq!(
        short(&pod, "alias.default.svc.cluster.local", "A"),
        [ip.clone(), format!("{web}.")]
    );
    assert_eq!(
        short(&pod, &format!("{dashed}.default.pod.cluster.local"), "A"),
        [p.clone()]
    );
    assert_eq!(
        status_of(&dig(&pod, &["nope.default.svc.cluster.local"])),
        "NXDOMAIN"
    );
    assert_eq!(dig(&pod, &["+tcp", "+short", web]).trim(), ip);

    // From a LAN client routed via the node: UDP and TCP.
    assert_eq!(short(&client, web, "A"), [ip.clone()]);
    assert_eq!(dig(&client, &["+tcp", "+short", web]).trim(), ip);
}
