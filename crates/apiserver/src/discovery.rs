//! Discovery documents: legacy (`/api`, `/apis`, group and resource lists) and aggregated
//! (apidiscovery.k8s.io/v2, which kubectl 1.32 asks for first), all from the model registry.

use model::registry::{api_groups, resources_in, ResourceInfo, RESOURCES};
use serde_json::{json, Map, Value};

fn status_verbs() -> Value {
    json!(["get", "patch", "update"])
}

/// `storageVersionHash` is an opaque per-resource string; kube derives it from the storage
/// version. We derive ours from group/version/kind so it is stable.
fn storage_version_hash(r: &ResourceInfo) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{}/{}/{}", r.group, r.version, r.kind));
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

/// `/api`
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_doc(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": {"groupVersion": format!("{name}/{}", versions[0]), "version": versions[0]},
    })
}

/// `/apis`
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = api_groups().iter().map(|(g, vs)| group_doc(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`
pub fn api_group(group: &str) -> Option<Value> {
    let (g, vs) = api_groups().into_iter().find(|(g, _)| *g == group)?;
    let mut doc = group_doc(g, &vs);
    let m = doc.as_object_mut().unwrap();
    let mut out = Map::new();
    out.insert("kind".into(), json!("APIGroup"));
    out.insert("apiVersion".into(), json!("v1"));
    out.append(m);
    Some(Value::Object(out))
}

/// `/api/v1`, `/apis/<group>/<version>`
pub fn api_resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in resources_in(group, version) {
        let mut m = Map::new();
        m.insert("name".into(), json!(r.plural));
        m.insert("singularName".into(), json!(r.singular));
        m.insert("namespaced".into(), json!(r.namespaced));
        m.insert("kind".into(), json!(r.kind));
        m.insert("verbs".into(), json!(r.verbs));
        if !r.short_names.is_empty() {
            m.insert("shortNames".into(), json!(r.short_names));
        }
        if !r.categories.is_empty() {
            m.insert("categories".into(), json!(r.categories));
        }
        m.insert("storageVersionHash".into(), json!(storage_version_hash(r)));
        resources.push(Value::Object(m));
        let sub = |name: &str, verbs: Value| json!({"name": format!("{}/{}", r.plural, name), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": verbs});
        if r.plural == "namespaces" {
            resources.push(sub("finalize", json!(["update"])));
        }
        if r.has_status {
            resources.push(sub("status", status_verbs()));
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let mut doc = Map::new();
    doc.insert("kind".into(), json!("APIResourceList"));
    if !group.is_empty() {
        doc.insert("apiVersion".into(), json!("v1"));
    }
    doc.insert("groupVersion".into(), json!(gv));
    doc.insert("resources".into(), Value::Array(resources));
    Value::Object(doc)
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("resource".into(), json!(r.plural));
    m.insert("responseKind".into(), json!({"group": "", "version": "", "kind": r.kind}));
    m.insert("scope".into(), json!(if r.namespaced { "Namespaced" } else { "Cluster" }));
    m.insert("singularResource".into(), json!(r.singular));
    m.insert("verbs".into(), json!(r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), json!(r.categories));
    }
    let mut subs = Vec::new();
    let kind = json!({"group": "", "version": "", "kind": r.kind});
    if r.plural == "namespaces" {
        subs.push(json!({"subresource": "finalize", "responseKind": kind, "verbs": ["update"]}));
    }
    if r.has_status {
        subs.push(json!({"subresource": "status", "responseKind": kind, "verbs": status_verbs()}));
    }
    if !subs.is_empty() {
        m.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(m)
}

fn aggregated_versions(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = resources_in(group, v).map(aggregated_resource).collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    Value::Array(vs)
}

/// Aggregated discovery for `/api` (legacy) or `/apis` (groups).
pub fn aggregated(legacy: bool) -> Value {
    let items: Vec<Value> = if legacy {
        vec![json!({"metadata": {}, "versions": aggregated_versions("", &["v1"])})]
    } else {
        api_groups()
            .iter()
            .map(|(g, vs)| json!({"metadata": {"name": g}, "versions": aggregated_versions(g, vs)}))
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Every resource's names, for tests and `api-resources`-like listings.
pub fn all_resources() -> impl Iterator<Item = &'static ResourceInfo> {
    RESOURCES.iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_has_services_and_status() {
        let doc = api_resource_list("", "v1");
        let names: Vec<&str> = doc["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"services") && names.contains(&"services/status") && names.contains(&"namespaces/finalize"));
        assert!(doc.get("apiVersion").is_none());
    }

    #[test]
    fn aggregated_lists_groups() {
        let doc = aggregated(false);
        assert_eq!(doc["items"][0]["metadata"]["name"], "coordination.k8s.io");
        let core = aggregated(true);
        assert_eq!(core["items"][0]["versions"][0]["version"], "v1");
    }
}
