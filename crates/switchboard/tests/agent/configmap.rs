//! `kubectl edit cm kube-proxy -n kube-system` as in the seeds: the scheduler goes from ""
//! (random) to "rr" and the distribution changes without restarting anything.

use crate::support::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

/// kubeadm's kube-proxy ConfigMap, trimmed to what matters here.
const CONFIG: &str = "apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
clusterCIDR: 10.42.0.0/16
ipvs:
  scheduler: \"\"
  strictARP: false
mode: \"\"
";

#[test]
fn kubectl_edit_of_the_kube_proxy_configmap_switches_random_to_rr_live() {
    let mut c = Cluster::start(&[]);
    // kube-apiserver makes kube-system itself; apply is a no-op then.
    test_support::netlab::k8s::apply(
        &c.server,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}),
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"app": "kube-proxy"}},
        "data": {"config.conf": CONFIG}});
    test_support::netlab::k8s::apply(&c.server, &cm);
    c.three_pods();
    let svc = c.service("web", &[("app", "web")], json!({}), json!({}));
    let addr = cluster_ip(&svc, 80);
    c.wait_all_answer(addr, &["p1", "p2", "p3"]);
    let pids: Vec<u32> = c.agents.iter().flatten().map(|a| a.id()).collect();

    // random: 30 answers in strict turn would happen with probability 2·3^-28.
    let seq = c.ask_many(addr, 30);
    assert!(
        !strict_rotation(&seq, 3),
        "random should not rotate strictly: {seq:?}"
    );

    // The edit, through kubectl edit itself, with an editor that changes one line.
    let editor = c.lab.dir().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/scheduler: \"\"/scheduler: \"rr\"/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = c
        .server
        .kubectl_cmd()
        .args(["edit", "cm", "kube-proxy", "-n", "kube-system"])
        .env("KUBE_EDITOR", &editor)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl edit: {}",
        test_support::output_text(&out)
    );
    let data = c.get_json(&["get", "cm", "kube-proxy", "-n", "kube-system"]);
    assert!(
        data["data"]["config.conf"]
            .as_str()
            .unwrap()
            .contains("scheduler: \"rr\""),
        "{data}"
    );

    eventually(20, "rr in strict turn after the edit", || {
        let seq = c.ask_many(addr, 12);
        strict_rotation(&seq, 3).then_some(())
    });
    let seq = c.ask_many(addr, 30);
    assert!(
        strict_rotation(&seq, 3),
        "not a strict turn after the edit: {seq:?}"
    );
    // Nothing restarted: the same agent processes, still running.
    for (i, pid) in pids.iter().enumerate() {
        assert_eq!(c.agent(i).id(), *pid);
        assert!(c.agent(i).is_running(), "agent {i} exited");
    }
}
