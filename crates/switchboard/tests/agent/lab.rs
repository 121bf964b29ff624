//! The lab against a real server, without an agent: what the agent tests stand on. A process
//! inside a node namespace reaches the API through the lab's forwarder, and registered Pods
//! become EndpointSlice endpoints with their namespace's address.

use serde_json::Value;
use test_support::netlab::{k8s, Lab};
use test_support::{output_text, TestServer};

#[test]
fn kubectl_inside_a_node_reaches_the_server_and_registered_pods_become_endpoints() {
    let _turn = crate::support::serial();
    std::env::set_var("NO_COLOR", "1");
    let server = TestServer::start(env!("CARGO_BIN_EXE_switchboard"));
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let n2 = lab.node("n2");
    k8s::register_node(&server, &n1);
    k8s::register_node(&server, &n2);
    let p1 = lab.pod(&n1, "p1");
    let p2 = lab.pod(&n2, "p2");
    k8s::register_pod(&server, &p1, "default", &[("app", "web")]);
    k8s::register_pod(&server, &p2, "default", &[("app", "web")]);
    let svc = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}});
    k8s::apply(&server, &svc);

    // kubectl in n1's namespace, whose loopback is not the server's: only the forwarder
    // connects it.
    let kubeconfig = lab.kubeconfig_for(&n1, &server);
    let kubectl = test_support::kubectl_path();
    let out = n1
        .command(&kubectl)
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "get",
            "node",
            "n1",
            "-o",
            "json",
        ])
        .env("KUBECACHEDIR", lab.dir().join("kubecache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl inside n1: {}",
        output_text(&out)
    );
    let node: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(node["spec"]["podCIDR"], "10.42.1.0/24");
    let internal = node["status"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .unwrap();
    assert_eq!(internal["address"], n1.ip.to_string());

    // The server's EndpointSlice controller publishes both pods, ready, with their nodes.
    crate::support::eventually(20, "EndpointSlice with both pods", || {
        let out = server.kubectl(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "json",
        ]);
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        let mut got: Vec<(String, String, bool)> = list["items"]
            .as_array()?
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .map(|e| {
                (
                    e["addresses"][0].as_str().unwrap_or("").to_string(),
                    e["nodeName"].as_str().unwrap_or("").to_string(),
                    e["conditions"]["ready"] == true,
                )
            })
            .collect();
        got.sort();
        let want = vec![
            (p1.ip.to_string(), "n1".to_string(), true),
            (p2.ip.to_string(), "n2".to_string(), true),
        ];
        (got == want).then_some(())
    });

    // Readiness through the status subresource takes the pod out of the ready set.
    k8s::set_pod_ready(&server, &p2, "default", false);
    crate::support::eventually(20, "p2 not ready in the slice", || {
        let out = server.kubectl(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "json",
        ]);
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        let p2_ready = list["items"]
            .as_array()?
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .find(|e| e["addresses"][0] == p2.ip.to_string())
            .map(|e| e["conditions"]["ready"] == true);
        (p2_ready == Some(false)).then_some(())
    });
}
