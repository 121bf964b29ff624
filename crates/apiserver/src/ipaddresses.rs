//! networking.k8s.io/v1 `IPAddress` objects, as kube-apiserver's MultiCIDRServiceAllocator
//! keeps them: one cluster-scoped object per allocated ClusterIP, named by the address, pointing
//! at its Service. Switchboard's allocator lives in memory (crates/services); [`run`] mirrors
//! what it holds into the store from the Services themselves, within milliseconds of each write.
//!
//! Not enforced, unlike kube: a hand-made `IPAddress` does not reserve its address (the allocator
//! may give it to a Service, and the mirror then points the object at that Service), and the
//! mirror recreates a managed `IPAddress` deleted by hand while its Service still holds the IP
//! (kube's repair loop does the same, only later). [`IpAddressAdmission`] validates what kube's
//! `ValidateIPAddress` does: a canonical IP as name, a parentRef with resource and name, and an
//! immutable spec.

use model::admission::{Admission, AdmissionRequest, Operation};
use model::errors::Cause;
use model::{meta, ApiError, ResourceInfo};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use tokio_stream::StreamExt;

/// The label kube's allocator sets on the objects it owns.
pub const MANAGED_BY: &str = "ipaddress.kubernetes.io/managed-by";
pub const ALLOCATOR: &str = "ipallocator.k8s.io";
pub const IP_FAMILY: &str = "ipaddress.kubernetes.io/ip-family";

fn ip_res() -> &'static ResourceInfo {
    model::lookup("networking.k8s.io", "v1", "ipaddresses").expect("ipaddresses are served")
}

fn services_res() -> &'static ResourceInfo {
    model::lookup("", "v1", "services").expect("services are served")
}

/// The Service holding an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub namespace: String,
    pub name: String,
}

/// The ClusterIPs a stored Service holds (none for headless and ExternalName Services).
pub fn held_ips(svc: &Value) -> Vec<IpAddr> {
    let spec = svc.get("spec");
    let mut ips: Vec<&str> = spec
        .and_then(|s| s.get("clusterIPs"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        ips.extend(
            spec.and_then(|s| s.get("clusterIP"))
                .and_then(Value::as_str),
        );
    }
    ips.iter().filter_map(|s| s.parse().ok()).collect()
}

fn parent_of(svc: &Value) -> Parent {
    Parent {
        namespace: meta::namespace(svc).unwrap_or("").to_string(),
        name: meta::name(svc).to_string(),
    }
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn parent_ref(parent: &Parent) -> Value {
    json!({"resource": "services", "namespace": parent.namespace, "name": parent.name})
}

/// Does `obj` point at `parent` with the allocator's labels?
fn is_current(obj: &Value, ip: IpAddr, parent: &Parent) -> bool {
    let labels = meta::metadata(obj).and_then(|m| m.get("labels"));
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    obj.pointer("/spec/parentRef") == Some(&parent_ref(parent))
        && label(MANAGED_BY) == Some(ALLOCATOR)
        && label(IP_FAMILY) == Some(family(ip))
}

/// Whether the allocator made this IPAddress (kube-apiserver's managed-by label).
fn is_managed(obj: &Value) -> bool {
    meta::metadata(obj)
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.get(MANAGED_BY))
        .and_then(Value::as_str)
        == Some(ALLOCATOR)
}

fn is_managed_for(obj: &Value, parent: &Parent) -> bool {
    is_managed(obj) && obj.pointer("/spec/parentRef") == Some(&parent_ref(parent))
}

fn writer_time() -> String {
    meta::format_time(chrono::Utc::now())
}

/// Keeps the store's IPAddress objects equal to what the Services hold.
pub struct Mirror {
    store: Arc<store::Store>,
    holders: HashMap<IpAddr, Parent>,
    /// Key prefixes of Services and IPAddresses: the watch sees every write of the cluster,
    /// so each event is sorted by these without formatting them again.
    services_prefix: String,
    ips_prefix: String,
}

impl Mirror {
    /// Reads every Service and IPAddress and fixes the difference (objects left by a previous
    /// run, Services stored before IPAddress objects existed). Returns the revision to watch from.
    pub async fn start(store: Arc<store::Store>) -> (Mirror, store::Revision) {
        let services = store.list(&services_res().key_prefix(), None, None);
        let mut holders = HashMap::new();
        for svc in &services.items {
            for ip in held_ips(&svc.value) {
                holders.insert(ip, parent_of(&svc.value));
            }
        }
        let mirror = Mirror {
            store,
            holders,
            services_prefix: services_res().key_prefix(),
            ips_prefix: ip_res().key_prefix(),
        };
        for obj in mirror.store.list(&ip_res().key_prefix(), None, None).items {
            let managed = is_managed(&obj.value);
            let held = meta::name(&obj.value)
                .parse::<IpAddr>()
                .ok()
                .filter(|ip| mirror.holders.contains_key(ip));
            if managed && held.is_none() {
                mirror.delete(&obj).await;
            }
        }
        for (ip, parent) in &mirror.holders {
            mirror.ensure(*ip, parent).await;
        }
        (mirror, services.revision)
    }

    /// Creates or corrects the object of `ip`.
    async fn ensure(&self, ip: IpAddr, parent: &Parent) {
        let res = ip_res();
        let name = ip.to_string();
        let key = res.key(None, &name);
        let result = match self.store.get(&key) {
            Some(cur)
                if meta::deletion_timestamp(&cur.value).is_some()
                    || is_current(&cur.value, ip, parent) =>
            {
                return
            }
            Some(cur) => {
                let mut obj = Value::clone(&cur.value);
                let labels = labels_with(&obj, ip);
                meta::set_meta(&mut obj, "labels", labels);
                obj["spec"] = json!({"parentRef": parent_ref(parent)});
                crate::strategy::prepare_update(res, &cur.value, &mut obj, None);
                let writer = patch::Writer {
                    manager: "kube-apiserver",
                    subresource: None,
                    time: &writer_time(),
                };
                patch::record_update(res, Some(&cur.value), &mut obj, &writer);
                crate::strategy::canonical_order(&mut obj);
                self.store
                    .update(&key, obj, Some(cur.mod_revision))
                    .await
                    .map(|_| ())
            }
            None => {
                let mut obj = json!({
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "IPAddress",
                    "metadata": {"name": name, "labels": {IP_FAMILY: family(ip), MANAGED_BY: ALLOCATOR}},
                    "spec": {"parentRef": parent_ref(parent)}
                });
                crate::strategy::prepare_create(res, &mut obj);
                let writer = patch::Writer {
                    manager: "kube-apiserver",
                    subresource: None,
                    time: &writer_time(),
                };
                patch::record_update(res, None, &mut obj, &writer);
                crate::strategy::canonical_order(&mut obj);
                self.store.create(&key, obj).await.map(|_| ())
            }
        };
        // A concurrent write (a user's create, delete or update) produces an event that
        // brings us back here; nothing to retry now.
        if let Err(e) = result {
            tracing::debug!(ip = %ip, error = %e, "IPAddress write raced");
        }
    }

    async fn delete(&self, obj: &store::StoredObject) {
        if let Err(e) = self.store.delete(&obj.key, Some(obj.mod_revision)).await {
            tracing::debug!(key = %obj.key, error = %e, "IPAddress delete raced");
        }
    }

    /// Deletes the object of `ip` if it is the allocator's for `parent`.
    async fn release(&self, ip: IpAddr, parent: &Parent) {
        let key = ip_res().key(None, &ip.to_string());
        if let Some(cur) = self.store.get(&key) {
            if is_managed_for(&cur.value, parent) {
                self.delete(&cur).await;
            }
        }
    }

    /// Applies one store event.
    pub async fn handle(&mut self, ev: &store::Event) {
        let key = ev.key();
        if key.starts_with(&self.services_prefix) {
            let deleted = ev.kind == store::EventType::Deleted;
            // A delete's last state is what was held, whether or not `prev` carries it too.
            let before: Vec<IpAddr> = match (&ev.prev, deleted) {
                (_, true) => held_ips(&ev.object.value),
                (Some(p), false) => held_ips(&p.value),
                (None, false) => Vec::new(),
            };
            let after: Vec<IpAddr> = if deleted {
                Vec::new()
            } else {
                held_ips(&ev.object.value)
            };
            let parent = parent_of(&ev.object.value);
            for ip in before.iter().filter(|ip| !after.contains(ip)) {
                if self.holders.get(ip) == Some(&parent) {
                    self.holders.remove(ip);
                }
                self.release(*ip, &parent).await;
            }
            for ip in after.iter().filter(|ip| !before.contains(ip)) {
                self.holders.insert(*ip, parent.clone());
                self.ensure(*ip, &parent).await;
            }
        } else if key.starts_with(&self.ips_prefix) {
            // Deleted or changed by someone else while a Service holds it: put it back.
            let Ok(ip) = meta::name(&ev.object.value).parse::<IpAddr>() else {
                return;
            };
            if let Some(parent) = self.holders.get(&ip).cloned() {
                self.ensure(ip, &parent).await;
            }
        }
    }
}

fn labels_with(obj: &Value, ip: IpAddr) -> Value {
    let mut labels = meta::metadata(obj)
        .and_then(|m| m.get("labels"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        l.insert(IP_FAMILY.into(), json!(family(ip)));
        l.insert(MANAGED_BY.into(), json!(ALLOCATOR));
    }
    labels
}

/// Mirrors Services' ClusterIPs into IPAddress objects until the store goes away.
pub async fn run(store: Arc<store::Store>) {
    loop {
        let (mut mirror, revision) = Mirror::start(store.clone()).await;
        let mut watch = match store.watch("/registry/", Some(revision)) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "IPAddress mirror: watch failed; resyncing");
                continue;
            }
        };
        loop {
            match watch.next().await {
                Some(Ok(ev)) => mirror.handle(&ev).await,
                Some(Err(e)) => {
                    // Fell behind the store's history: start over from a fresh list.
                    tracing::warn!(error = %e, "IPAddress mirror: watch ended; resyncing");
                    break;
                }
                None => return,
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// kube-apiserver's `ValidateIPAddress` / `ValidateIPAddressUpdate` for hand-written objects.
pub struct IpAddressAdmission;

impl Admission for IpAddressAdmission {
    fn admit(&self, req: &AdmissionRequest<'_>, obj: &mut Value) -> Result<Vec<String>, ApiError> {
        if req.resource.group != "networking.k8s.io" || req.resource.plural != "ipaddresses" {
            return Ok(Vec::new());
        }
        if req.operation == Operation::Delete {
            return Ok(Vec::new());
        }
        let mut causes = Vec::new();
        let name = meta::name(obj);
        if req.operation == Operation::Create {
            match name.parse::<IpAddr>() {
                Err(_) => causes.push(Cause::invalid(
                    "metadata.name",
                    &json!(name),
                    &format!("ParseAddr({name:?}): unable to parse IP"),
                )),
                Ok(ip) if ip.to_string() != name => causes.push(Cause::invalid(
                    "metadata.name",
                    &json!(name),
                    "must be a canonical format IP address",
                )),
                Ok(_) => {}
            }
            match obj.pointer("/spec/parentRef") {
                None => causes.push(Cause::required("spec.parentRef", "")),
                Some(p) => {
                    for field in ["resource", "name"] {
                        if p.get(field)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .is_empty()
                        {
                            causes.push(Cause::required(format!("spec.parentRef.{field}"), ""));
                        }
                    }
                }
            }
        } else if let Some(old) = req.old {
            if old.get("spec") != obj.get("spec") && req.subresource.is_none() {
                let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
                causes.push(Cause::invalid(
                    "spec.parentRef",
                    &spec["parentRef"],
                    "field is immutable",
                ));
            }
        }
        if causes.is_empty() {
            Ok(Vec::new())
        } else {
            Err(ApiError::invalid(
                req.resource.group,
                req.resource.kind,
                name,
                causes,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, ips: &[&str]) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": "default"},
               "spec": {"clusterIP": ips.first().copied().unwrap_or("None"), "clusterIPs": ips}})
    }

    /// Feeds every store event after `from` to the mirror.
    async fn drain(
        mirror: &mut Mirror,
        store: &store::Store,
        from: store::Revision,
    ) -> store::Revision {
        let to = store.current_revision();
        let mut watch = store.watch("/registry/", Some(from)).unwrap();
        let mut last = from;
        while last < to {
            let ev = watch.next().await.unwrap().unwrap();
            last = ev.revision();
            mirror.handle(&ev).await;
        }
        last
    }

    fn ip_names(store: &store::Store) -> Vec<String> {
        store
            .list(&ip_res().key_prefix(), None, None)
            .items
            .iter()
            .map(|o| meta::name(&o.value).to_string())
            .collect()
    }

    #[tokio::test]
    async fn created_with_the_service_and_released_on_delete() {
        let store = Arc::new(store::Store::in_memory());
        let svc_key = services_res().key(Some("default"), "web");
        store
            .create(
                &services_res().key(Some("default"), "kubernetes"),
                service("kubernetes", &["10.96.0.1"]),
            )
            .await
            .unwrap();
        // Left by an earlier run for a Service that is gone: removed at start.
        store
            .create(
                &ip_res().key(None, "10.96.0.9"),
                json!({"metadata": {"name": "10.96.0.9", "labels": {MANAGED_BY: ALLOCATOR}},
                       "spec": {"parentRef": {"resource": "services", "namespace": "default", "name": "gone"}}}),
            )
            .await
            .unwrap();
        let (mut mirror, rev) = Mirror::start(store.clone()).await;
        assert_eq!(ip_names(&store), ["10.96.0.1"]);
        let kube = store.get(&ip_res().key(None, "10.96.0.1")).unwrap();
        assert_eq!(
            kube.value["spec"]["parentRef"],
            json!({"resource": "services", "namespace": "default", "name": "kubernetes"})
        );
        assert_eq!(kube.value["metadata"]["labels"][IP_FAMILY], "IPv4");

        store
            .create(&svc_key, service("web", &["10.96.0.5", "fd00::5"]))
            .await
            .unwrap();
        let rev = drain(&mut mirror, &store, rev).await;
        assert_eq!(ip_names(&store), ["10.96.0.1", "10.96.0.5", "fd00::5"]);
        assert_eq!(
            store.get(&ip_res().key(None, "fd00::5")).unwrap().value["metadata"]["labels"]
                [IP_FAMILY],
            "IPv6"
        );

        // Deleted by hand while held: back at once.
        store
            .delete(&ip_res().key(None, "10.96.0.5"), None)
            .await
            .unwrap();
        let rev = drain(&mut mirror, &store, rev).await;
        assert_eq!(ip_names(&store), ["10.96.0.1", "10.96.0.5", "fd00::5"]);

        // Headless now: both released.
        let cur = store.get(&svc_key).unwrap();
        store
            .update(&svc_key, service("web", &["None"]), Some(cur.mod_revision))
            .await
            .unwrap();
        let rev = drain(&mut mirror, &store, rev).await;
        assert_eq!(ip_names(&store), ["10.96.0.1"]);

        let cur = store.get(&svc_key).unwrap();
        store
            .update(
                &svc_key,
                service("web", &["10.96.0.7"]),
                Some(cur.mod_revision),
            )
            .await
            .unwrap();
        let rev = drain(&mut mirror, &store, rev).await;
        assert_eq!(ip_names(&store), ["10.96.0.1", "10.96.0.7"]);

        store.delete(&svc_key, None).await.unwrap();
        drain(&mut mirror, &store, rev).await;
        assert_eq!(ip_names(&store), ["10.96.0.1"]);
    }

    #[test]
    fn names_must_be_canonical_ips() {
        let res = ip_res();
        let req = AdmissionRequest {
            resource: res,
            operation: Operation::Create,
            subresource: None,
            old: None,
            dry_run: false,
        };
        let parent = json!({"resource": "services", "name": "a", "namespace": "default"});
        let mut ok = json!({"metadata": {"name": "2001:db8::1"}, "spec": {"parentRef": parent}});
        assert!(IpAddressAdmission.admit(&req, &mut ok).is_ok());
        let mut long =
            json!({"metadata": {"name": "2001:db8:0::1"}, "spec": {"parentRef": parent}});
        let e = IpAddressAdmission.admit(&req, &mut long).unwrap_err();
        assert!(
            e.message.contains("must be a canonical format IP address"),
            "{}",
            e.message
        );
        let mut bad = json!({"metadata": {"name": "web"}, "spec": {}});
        let e = IpAddressAdmission.admit(&req, &mut bad).unwrap_err();
        assert!(
            e.message.contains("spec.parentRef: Required value"),
            "{}",
            e.message
        );
    }
}
