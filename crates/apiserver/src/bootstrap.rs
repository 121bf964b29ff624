//! Objects that exist from the start, as in every Kubernetes cluster: the system namespaces,
//! the `kubernetes` Service in `default` and the `kubernetes` ServiceCIDR (every configured
//! `--service-cidr`). Created once; never overwritten.

use crate::strategy;
use model::{meta, ApiError};
use serde_json::{json, Value};
use std::net::IpAddr;

pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

async fn ensure(store: &store::Store, plural: &str, obj: Value) -> Result<(), ApiError> {
    ensure_in(store, "", plural, obj).await
}

async fn ensure_in(store: &store::Store, group: &str, plural: &str, mut obj: Value) -> Result<(), ApiError> {
    let res = model::lookup(group, "v1", plural).unwrap();
    let key = res.key(meta::namespace(&obj), meta::name(&obj));
    if store.get(&key).is_some() {
        return Ok(());
    }
    // prepare_create drops a given status (as for any create); a bootstrap object's stays.
    let status = obj.get("status").cloned();
    strategy::prepare_create(res, &mut obj);
    if let Some(status) = status {
        obj["status"] = status;
    }
    let now = meta::format_time(chrono::Utc::now());
    patch::record_update(res, None, &mut obj, &patch::Writer { manager: "kube-apiserver", subresource: None, time: &now });
    strategy::canonical_order(&mut obj);
    match store.create(&key, obj).await {
        Ok(_) | Err(store::StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// Creates the system namespaces, the `kubernetes` Service (ClusterIP `kubernetes_ip`, port 443
/// to the API server's `api_port`) and the `kubernetes` ServiceCIDR listing `service_cidrs`
/// (what kube-apiserver's default ServiceCIDR controller makes of `--service-cluster-ip-range`).
pub async fn run(store: &store::Store, kubernetes_ip: IpAddr, api_port: u16, service_cidrs: &[String]) -> Result<(), ApiError> {
    for ns in SYSTEM_NAMESPACES {
        ensure(store, "namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})).await?;
    }
    let family = if kubernetes_ip.is_ipv4() { "IPv4" } else { "IPv6" };
    ensure(
        store,
        "services",
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": api_port}],
                "clusterIP": kubernetes_ip.to_string(),
                "clusterIPs": [kubernetes_ip.to_string()],
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "ipFamilies": [family],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster"
            }
        }),
    )
    .await?;
    let now = meta::format_time(chrono::Utc::now());
    ensure_in(
        store,
        "networking.k8s.io",
        "servicecidrs",
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "ServiceCIDR",
            "metadata": {"name": "kubernetes", "finalizers": ["networking.k8s.io/service-cidr-finalizer"]},
            "spec": {"cidrs": service_cidrs},
            "status": {"conditions": [{
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "",
                "message": "Kubernetes Service CIDR is ready"
            }]}
        }),
    )
    .await
}

/// Stores Events (the allocation repair report) in their namespaces. Failures are logged:
/// a report that cannot be written must not keep the server from starting.
pub async fn record_events(store: &store::Store, events: Vec<Value>) {
    let res = model::lookup("", "v1", "events").unwrap();
    for mut ev in events {
        tracing::warn!(event = %ev, "allocation repair");
        strategy::prepare_create(res, &mut ev);
        let key = res.key(meta::namespace(&ev), meta::name(&ev));
        if let Err(e) = store.create(&key, ev).await {
            tracing::warn!(error = %e, "recording repair event failed");
        }
    }
}
