//! The OpenAPI documents kubectl reads: `/openapi/v3` (an index of group versions), one OpenAPI
//! 3.0 document per group version under `/openapi/v3/<path>`, and the Swagger 2.0 `/openapi/v2`.
//! All are generated from [`model::registry::RESOURCES`] and the [`Schema`](crate::Schema)
//! definitions once, on first use, and kept as serialised bytes with their hash.

mod params;
mod routes;

use crate::convert::{self, Flavor};
use crate::Schema;
use model::registry;
use routes::{Body, Op, PathItem};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// `info.version` of every document: the Kubernetes minor the schema comes from.
const KUBERNETES_VERSION: &str = "1.36";

/// One served document.
pub struct Document {
    bytes: Vec<u8>,
    hash: String,
}

impl Document {
    fn new(value: &Value) -> Document {
        let bytes = serde_json::to_vec(value).expect("a Value serialises");
        let hash = hex_upper(&Sha512::digest(&bytes));
        Document { bytes, hash }
    }

    /// The JSON body.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Upper-case hex SHA-512 of [`bytes`](Self::bytes), as kube-openapi computes it: the value of
    /// `?hash=` in the `/openapi/v3` index.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The `ETag` header value (the hash, quoted).
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.hash)
    }

    /// The body parsed again (for tests and tools; serve [`bytes`](Self::bytes)).
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.bytes).expect("generated JSON parses")
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

struct V3 {
    index: Document,
    docs: BTreeMap<String, Document>,
}

fn v3() -> &'static V3 {
    static V3: OnceLock<V3> = OnceLock::new();
    V3.get_or_init(build_v3)
}

/// The body of `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}`.
pub fn openapi_v3_index() -> &'static Document {
    &v3().index
}

/// The document of one group version (`""`, `"v1"` for the core group), served at
/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub fn openapi_v3_document(group: &str, version: &str) -> Option<&'static Document> {
    let key = if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") };
    v3().docs.get(&key)
}

/// The document listed under `path` in the index (`api/v1`, `apis/metallb.io/v1beta1`, `api`,
/// `apis`, `apis/<group>`, `version`): what `/openapi/v3/<path>` serves. When the request's
/// `?hash=` differs from [`Document::hash`], kube-apiserver answers 301 to the current URL; when
/// it matches, it adds `Cache-Control: public, immutable`.
pub fn openapi_v3(path: &str) -> Option<&'static Document> {
    v3().docs.get(path.trim_matches('/'))
}

/// The body of `/openapi/v2`: one Swagger 2.0 document with every path and definition. kubectl
/// 1.32 asks for it only in protobuf (gnostic), see the crate README.
pub fn openapi_v2() -> &'static Document {
    static V2: OnceLock<Document> = OnceLock::new();
    V2.get_or_init(build_v2)
}

fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut gvs = vec![("", "v1")];
    for (group, versions) in registry::api_groups() {
        gvs.extend(versions.into_iter().map(|v| (group, v)));
    }
    gvs
}

fn paths_of(group: &str, version: &str) -> Vec<PathItem> {
    let mut paths = vec![routes::resource_list(group, version)];
    for r in registry::resources_in(group, version) {
        paths.extend(routes::resource_paths(r, Schema::is_custom(r.definition)));
    }
    paths
}

/// The discovery documents' own paths (`/api/`, `/apis/`, `/apis/<group>/`, `/version/`).
fn discovery_path(path: &str, description: &str, operation_id: &str, tag: &str, def: &str) -> PathItem {
    PathItem {
        path: path.to_string(),
        ops: vec![Op {
            method: "get",
            description: description.into(),
            operation_id: operation_id.into(),
            tag: tag.into(),
            params: vec![],
            body: None,
            responses: vec![("200", "OK", def.into())],
            produces: routes::JSON,
            action: None,
        }],
        params: vec![],
    }
}

fn core_versions_path() -> PathItem {
    discovery_path("/api/", "get available API versions", "getCoreAPIVersions", "core", "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions")
}

fn group_list_path() -> PathItem {
    discovery_path("/apis/", "get available API versions", "getAPIVersions", "apis", "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList")
}

fn group_path(group: &str) -> PathItem {
    discovery_path(
        &format!("/apis/{group}/"),
        "get information of a group",
        &format!("get{}APIGroup", routes::operation_id_part(group.strip_suffix(".k8s.io").unwrap_or(group), true)),
        &routes::tag(group, None),
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup",
    )
}

fn version_path() -> PathItem {
    discovery_path("/version/", "get the version information for this server", "getCodeVersion", "version", "io.k8s.apimachinery.pkg.version.Info")
}

fn build_v3() -> V3 {
    let mut docs = BTreeMap::new();
    for (group, version) in group_versions() {
        let key = if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") };
        docs.insert(key, Document::new(&v3_document(&paths_of(group, version))));
    }
    docs.insert("api".into(), Document::new(&v3_document(&[core_versions_path()])));
    docs.insert("apis".into(), Document::new(&v3_document(&[group_list_path()])));
    for (group, _) in registry::api_groups() {
        docs.insert(format!("apis/{group}"), Document::new(&v3_document(&[group_path(group)])));
    }
    docs.insert("version".into(), Document::new(&v3_document(&[version_path()])));
    let paths: Map<String, Value> = docs
        .iter()
        .map(|(key, doc)| (key.clone(), json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", doc.hash) })))
        .collect();
    V3 { index: Document::new(&json!({ "paths": paths })), docs }
}

fn security_scheme() -> Value {
    json!({"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}})
}

fn v3_document(items: &[PathItem]) -> Value {
    let mut paths = BTreeMap::new();
    let mut wanted = Vec::new();
    for item in items {
        let rendered = v3_path_item(item);
        convert::refs(&rendered, &mut wanted);
        paths.insert(item.path.clone(), rendered);
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": KUBERNETES_VERSION },
        "paths": paths,
        "components": {
            "schemas": schemas(wanted, Flavor::V3),
            "securitySchemes": security_scheme(),
        },
        "security": [{ "BearerToken": [] }],
    })
}

/// The named definitions, and everything they reference, in published form, sorted by name.
fn schemas(mut wanted: Vec<String>, flavor: Flavor) -> Map<String, Value> {
    let s = Schema::get();
    let mut done = BTreeMap::new();
    while let Some(name) = wanted.pop() {
        if done.contains_key(&name) {
            continue;
        }
        let Some(def) = s.definition(&name) else { continue };
        let published = convert::definition(&name, def, flavor);
        convert::refs(&published, &mut wanted);
        done.insert(name, published);
    }
    done.into_iter().collect()
}

fn gvk_extension(gvk: &[String; 3]) -> Value {
    json!({ "group": gvk[0], "kind": gvk[2], "version": gvk[1] })
}

fn v3_param(p: &params::Param) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(p.name));
    m.insert("in".into(), json!(p.location));
    m.insert("description".into(), json!(p.description));
    if p.required {
        m.insert("required".into(), json!(true));
    }
    m.insert("schema".into(), json!({ "type": p.ty, "uniqueItems": true }));
    Value::Object(m)
}

fn v3_path_item(item: &PathItem) -> Value {
    let mut out = Map::new();
    // spec3.PathProps order.
    for method in ["get", "put", "post", "delete", "patch"] {
        if let Some(op) = item.ops.iter().find(|o| o.method == method) {
            out.insert(method.into(), v3_operation(op));
        }
    }
    if !item.params.is_empty() {
        out.insert("parameters".into(), item.params.iter().map(v3_param).collect());
    }
    Value::Object(out)
}

fn v3_operation(op: &Op) -> Value {
    let schema_ref = |def: &str| json!({ "schema": { "$ref": Flavor::V3.reference(def) } });
    let mut m = Map::new();
    m.insert("tags".into(), json!([op.tag]));
    m.insert("description".into(), json!(op.description));
    m.insert("operationId".into(), json!(op.operation_id));
    if !op.params.is_empty() {
        m.insert("parameters".into(), op.params.iter().map(v3_param).collect());
    }
    match &op.body {
        Some(Body::Object(def)) => {
            m.insert("requestBody".into(), json!({ "content": { "*/*": schema_ref(def) }, "required": true }));
        }
        Some(Body::Patch(types)) => {
            let mut types = types.to_vec();
            types.sort_unstable();
            let content: Map<String, Value> = types.iter().map(|t| (t.to_string(), schema_ref(routes::PATCH))).collect();
            m.insert("requestBody".into(), json!({ "content": content, "required": true }));
        }
        Some(Body::DeleteOptions) => {
            m.insert("requestBody".into(), json!({ "content": { "*/*": schema_ref(routes::DELETE_OPTIONS) } }));
        }
        None => {}
    }
    let mut responses = Map::new();
    for (code, description, def) in &op.responses {
        let content: Map<String, Value> = op.produces.iter().map(|t| (t.to_string(), schema_ref(def))).collect();
        responses.insert(code.to_string(), json!({ "description": description, "content": content }));
    }
    responses.insert("401".into(), json!({ "description": "Unauthorized" }));
    m.insert("responses".into(), Value::Object(responses));
    if let Some((action, gvk)) = &op.action {
        m.insert("x-kubernetes-action".into(), json!(action));
        m.insert("x-kubernetes-group-version-kind".into(), gvk_extension(gvk));
    }
    Value::Object(m)
}

fn v2_value() -> Value {
    let mut items = vec![core_versions_path(), group_list_path(), version_path()];
    for (group, _) in registry::api_groups() {
        items.push(group_path(group));
    }
    for (group, version) in group_versions() {
        items.extend(paths_of(group, version));
    }
    let paths: BTreeMap<String, Value> = items.iter().map(|i| (i.path.clone(), v2_path_item(i))).collect();
    // Every definition, as kube-apiserver's v2 document carries the whole schema.
    let all: Vec<String> = Schema::get().definitions().keys().cloned().collect();
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": KUBERNETES_VERSION },
        "paths": paths,
        "definitions": schemas(all, Flavor::V2),
        "securityDefinitions": security_scheme(),
        "security": [{ "BearerToken": [] }],
    })
}

fn build_v2() -> Document {
    Document::new(&v2_value())
}

fn v2_param(p: &params::Param) -> Value {
    let mut m = Map::new();
    m.insert("uniqueItems".into(), json!(true));
    m.insert("type".into(), json!(p.ty));
    m.insert("description".into(), json!(p.description));
    m.insert("name".into(), json!(p.name));
    m.insert("in".into(), json!(p.location));
    if p.required {
        m.insert("required".into(), json!(true));
    }
    Value::Object(m)
}

fn v2_path_item(item: &PathItem) -> Value {
    let mut out = Map::new();
    for method in ["get", "put", "post", "delete", "patch"] {
        if let Some(op) = item.ops.iter().find(|o| o.method == method) {
            out.insert(method.into(), v2_operation(op));
        }
    }
    if !item.params.is_empty() {
        out.insert("parameters".into(), item.params.iter().map(v2_param).collect());
    }
    Value::Object(out)
}

fn v2_operation(op: &Op) -> Value {
    let schema_ref = |def: &str| json!({ "$ref": Flavor::V2.reference(def) });
    let mut m = Map::new();
    m.insert("description".into(), json!(op.description));
    let consumes: Vec<&str> = match &op.body {
        Some(Body::Patch(types)) => types.to_vec(),
        _ => vec!["*/*"],
    };
    m.insert("consumes".into(), json!(consumes));
    m.insert("produces".into(), json!(op.produces));
    m.insert("schemes".into(), json!(["https"]));
    m.insert("tags".into(), json!([op.tag]));
    m.insert("operationId".into(), json!(op.operation_id));
    let mut params: Vec<Value> = Vec::new();
    match &op.body {
        Some(Body::Object(def)) => params.push(json!({"name": "body", "in": "body", "required": true, "schema": schema_ref(def)})),
        Some(Body::Patch(_)) => params.push(json!({"name": "body", "in": "body", "required": true, "schema": schema_ref(routes::PATCH)})),
        Some(Body::DeleteOptions) => params.push(json!({"name": "body", "in": "body", "schema": schema_ref(routes::DELETE_OPTIONS)})),
        None => {}
    }
    params.extend(op.params.iter().map(v2_param));
    if !params.is_empty() {
        m.insert("parameters".into(), Value::Array(params));
    }
    let mut responses = Map::new();
    for (code, description, def) in &op.responses {
        responses.insert(code.to_string(), json!({ "description": description, "schema": schema_ref(def) }));
    }
    responses.insert("401".into(), json!({ "description": "Unauthorized" }));
    m.insert("responses".into(), Value::Object(responses));
    if let Some((action, gvk)) = &op.action {
        m.insert("x-kubernetes-action".into(), json!(action));
        m.insert("x-kubernetes-group-version-kind".into(), gvk_extension(gvk));
    }
    Value::Object(m)
}


/// `/openapi/v2` as a cheaply clonable body.
pub fn v2_bytes() -> bytes::Bytes {
    bytes::Bytes::from_static(openapi_v2().bytes())
}

/// `/openapi/v3` as a value (it is small).
pub fn v3_index() -> Value {
    openapi_v3_index().to_value()
}

/// The body of `/openapi/v3/<path>` (`path` as listed in the index, e.g. `api/v1`).
pub fn v3_document_bytes(path: &str) -> Option<bytes::Bytes> {
    openapi_v3(path).map(|d| bytes::Bytes::from_static(d.bytes()))
}
