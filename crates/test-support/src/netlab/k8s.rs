//! The Kubernetes objects that describe a lab, registered through the real kubectl: a Node per
//! node namespace (InternalIP = its LAN address, podCIDR) and a Pod per pod namespace (labels,
//! nodeName, and through the status subresource podIP and the Ready condition, as a kubelet
//! would report them), so that the server's controllers publish EndpointSlices for Services
//! that select them. In a dual-stack lab both families are registered (IPv4 first).

use super::{Node, Pod};
use crate::{output_text, TestServer};
use serde_json::{json, Value};

/// The Node object for `node` (status included: a Node's status is kept on create).
pub fn node_object(node: &Node) -> Value {
    let mut pod_cidrs = vec![node.pod_cidr.clone()];
    pod_cidrs.extend(node.pod_cidr6.clone());
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux"}},
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": pod_cidrs},
        "status": node_status(node)["status"].clone(),
    })
}

fn node_status(node: &Node) -> Value {
    let mut addresses = vec![json!({"type": "InternalIP", "address": node.ip.to_string()})];
    if let Some(ip6) = node.ip6 {
        addresses.push(json!({"type": "InternalIP", "address": ip6.to_string()}));
    }
    addresses.push(json!({"type": "Hostname", "address": node.name}));
    json!({"status": {
        "addresses": addresses,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "netlab node"}],
    }})
}

/// Creates (or updates) the Node object of `node`, its status through the status subresource
/// too so that it holds against any API server.
pub fn register_node(server: &TestServer, node: &Node) {
    apply(server, &node_object(node));
    patch_status(server, "node", None, &node.name, &node_status(node));
}

/// A Pod object for `pod` in `namespace` with `labels`, on its node, one container with port 80
/// named `http` (TCP) and port 53 named `dns` (UDP). The status it carries is what
/// [`register_pod`] also writes through the status subresource.
pub fn pod_object(pod: &Pod, namespace: &str, labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": namespace, "labels": labels},
        "spec": {
            "nodeName": pod.node,
            "containers": [{"name": "echo", "image": "netlab/echo", "ports": [
                {"name": "http", "containerPort": 80, "protocol": "TCP"},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            ]}],
        },
        "status": pod_status(pod, true)["status"].clone(),
    })
}

/// The status patch a kubelet would write for `pod`: Running, its IP, Ready or not.
pub fn pod_status(pod: &Pod, ready: bool) -> Value {
    let ready = if ready { "True" } else { "False" };
    let mut pod_ips = vec![json!({"ip": pod.ip.to_string()})];
    if let Some(ip6) = pod.ip6 {
        pod_ips.push(json!({"ip": ip6.to_string()}));
    }
    json!({"status": {
        "phase": "Running",
        "podIP": pod.ip.to_string(),
        "podIPs": pod_ips,
        "conditions": [{"type": "Ready", "status": ready}, {"type": "ContainersReady", "status": ready}],
    }})
}

/// Creates the Pod object of `pod` and reports it Running and Ready with its IP.
pub fn register_pod(server: &TestServer, pod: &Pod, namespace: &str, labels: &[(&str, &str)]) {
    apply(server, &pod_object(pod, namespace, labels));
    patch_status(
        server,
        "pod",
        Some(namespace),
        &pod.name,
        &pod_status(pod, true),
    );
}

/// Sets the pod's Ready condition through the status subresource.
pub fn set_pod_ready(server: &TestServer, pod: &Pod, namespace: &str, ready: bool) {
    patch_status(
        server,
        "pod",
        Some(namespace),
        &pod.name,
        &pod_status(pod, ready),
    );
}

/// `kubectl apply -f -` of one object; panics with kubectl's output when it fails.
pub fn apply(server: &TestServer, object: &Value) {
    let out = server.kubectl_stdin(&["apply", "-f", "-"], &object.to_string());
    assert!(
        out.status.success(),
        "kubectl apply {}: {}",
        object["metadata"]["name"],
        output_text(&out)
    );
}

fn patch_status(
    server: &TestServer,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    patch: &Value,
) {
    let patch = patch.to_string();
    let mut args = vec![
        "patch",
        kind,
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ];
    if let Some(ns) = namespace {
        args.extend(["-n", ns]);
    }
    let out = server.kubectl(&args);
    assert!(
        out.status.success(),
        "kubectl patch {kind} {name} --subresource=status: {}",
        output_text(&out)
    );
}
