//! The Service manifests of the seed notes (ClusterIP with `clusterIP: ""`, NodePort 30080,
//! ExternalName, LoadBalancer, headless), applied as written and applied again.

use crate::harness::*;
use serde_json::json;

fn nginx(spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-service", "namespace": "default", "labels": {"app": "nginx"}}, "spec": spec})
}

#[test]
fn seed_manifests_apply_and_reapply() {
    let seeds = [
        json!({"type": "ClusterIP", "clusterIP": "", "selector": {"app": "nginx"},
               "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80}]}),
        json!({"type": "NodePort", "selector": {"app": "nginx"},
               "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80, "nodePort": 30080}]}),
        json!({"type": "ExternalName", "externalName": "nginx-service.ns2.svc.cluster.local"}),
        json!({"type": "LoadBalancer", "selector": {"app": "nginx"}, "ports": [{"port": 80, "targetPort": 80}]}),
        json!({"clusterIP": "None", "selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "port": 80, "targetPort": 80}]}),
        json!({"type": "ClusterIP", "selector": {"app": "nginx"}, "externalIPs": ["192.168.150.41"],
               "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 82, "targetPort": 80}]}),
    ];
    for seed in seeds {
        let mut c = Cluster::new();
        let created = c.create(nginx(seed.clone())).unwrap().object;
        let spec = &created["spec"];
        match spec["type"].as_str().unwrap() {
            "ExternalName" => assert!(spec.get("clusterIP").is_none()),
            _ if seed.get("clusterIP") == Some(&json!("None")) => {
                assert_eq!(spec["clusterIPs"], json!(["None"]))
            }
            _ => assert!(spec["clusterIP"].as_str().unwrap().starts_with("10.43.")),
        }
        if seed["type"] == "NodePort" {
            assert_eq!(spec["ports"][0]["nodePort"], 30080);
        }
        // `kubectl apply` of the same file again, as a PUT of the manifest: nothing moves.
        let again = c
            .replace("nginx-service", nginx(seed.clone()))
            .unwrap()
            .object;
        assert_eq!(
            again["spec"], created["spec"],
            "re-applying {seed} changed the Service"
        );
        assert_eq!(c.adm.allocations().pending, 0);
    }
}
