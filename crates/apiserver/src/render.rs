//! Rendering responses: JSON (compact, or indented for curl as kube-apiserver does), YAML,
//! Tables and PartialObjectMetadata, and `Status` errors.

use crate::negotiate::Output;
use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use model::{ApiError, ResourceInfo};
use serde_json::{json, Map, Value};

/// Per-request rendering choices.
#[derive(Debug, Clone, Copy)]
pub struct Render {
    pub output: Output,
    /// Indent JSON (kube-apiserver does so for curl/wget/browsers, and for `?pretty=true`).
    pub pretty: bool,
    /// `includeObject` for Tables: None, Metadata (default) or Object.
    pub include_object: IncludeObject,
}

pub use model::table::IncludeObject;

/// Does this User-Agent get indented JSON by default (kube-apiserver's `isPrettyPrint`)?
pub fn pretty_for_user_agent(ua: Option<&str>) -> bool {
    let ua = ua.unwrap_or("");
    ["curl", "Wget", "Mozilla/"].iter().any(|p| ua.starts_with(p))
}

pub fn to_json_bytes(v: &Value, pretty: bool) -> Vec<u8> {
    if pretty {
        // kube-apiserver's indented output ends at the closing brace; compact output ends
        // with Go's encoder newline.
        serde_json::to_vec_pretty(v).unwrap_or_default()
    } else {
        let mut b = serde_json::to_vec(v).unwrap_or_default();
        b.push(b'\n');
        b
    }
}

pub fn to_yaml_bytes(v: &Value) -> Vec<u8> {
    serde_saphyr::to_string(v).unwrap_or_default().into_bytes()
}

fn response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    r
}

/// An error as a `Status` body with its code.
pub fn error_response(e: &ApiError, pretty: bool) -> Response<Body> {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response(status, "application/json", to_json_bytes(&e.to_status(), pretty))
}

/// A plain JSON document (discovery, version, status).
pub fn json_response(status: StatusCode, v: &Value, pretty: bool) -> Response<Body> {
    response(status, "application/json", to_json_bytes(v, pretty))
}

/// The object as PartialObjectMetadata.
pub fn partial_metadata(obj: &Value) -> Value {
    model::table::partial_object_metadata(obj)
}

/// A Table of `objects` (one for a GET, many for a LIST, one per watch event).
pub fn table(
    res: &ResourceInfo,
    objects: &[&Value],
    list_meta: Map<String, Value>,
    include: IncludeObject,
    v1beta1: bool,
    with_columns: bool,
) -> Value {
    let now = chrono::Utc::now();
    let mut t = Map::new();
    t.insert("kind".into(), json!("Table"));
    t.insert("apiVersion".into(), json!(if v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" }));
    t.insert("metadata".into(), Value::Object(list_meta));
    if with_columns {
        t.insert("columnDefinitions".into(), Value::Array(model::table::column_definitions(res)));
    }
    t.insert("rows".into(), Value::Array(objects.iter().map(|o| model::table::row(res, o, now, include)).collect()));
    Value::Object(t)
}

/// Renders one object as asked.
pub fn object_response(res: &ResourceInfo, obj: &Value, status: StatusCode, r: Render) -> Response<Body> {
    match r.output {
        Output::Yaml => response(status, "application/yaml", to_yaml_bytes(obj)),
        Output::Table { v1beta1 } => {
            let mut meta = Map::new();
            if let Some(rv) = model::meta::resource_version(obj) {
                meta.insert("resourceVersion".into(), json!(rv));
            }
            let t = table(res, &[obj], meta, r.include_object, v1beta1, true);
            response(status, "application/json", to_json_bytes(&t, r.pretty))
        }
        Output::PartialMetadata => response(status, "application/json", to_json_bytes(&partial_metadata(obj), r.pretty)),
        Output::Json | Output::AggregatedDiscovery => response(status, "application/json", to_json_bytes(obj, r.pretty)),
    }
}

/// Strips `kind`/`apiVersion` from a list item, as kube-apiserver's typed lists serialise.
pub fn list_item(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.shift_remove("kind");
        m.shift_remove("apiVersion");
    }
    o
}

/// A stored object as a list item: typed lists carry no `kind`/`apiVersion` per item.
/// Serialised in place, without copying the object.
struct ListItem<'a>(&'a Value);

impl serde::Serialize for ListItem<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            Value::Object(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m.iter().filter(|(k, _)| *k != "kind" && *k != "apiVersion") {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

#[derive(serde::Serialize)]
struct ListBody<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: &'a Map<String, Value>,
    items: Vec<ListItem<'a>>,
}

/// Renders a list as asked.
pub fn list_response(res: &ResourceInfo, objects: &[&Value], list_meta: Map<String, Value>, r: Render) -> Response<Body> {
    match r.output {
        Output::Table { v1beta1 } => {
            let t = table(res, objects, list_meta, r.include_object, v1beta1, true);
            response(StatusCode::OK, "application/json", to_json_bytes(&t, r.pretty))
        }
        Output::PartialMetadata => {
            let items: Vec<Value> = objects
                .iter()
                .map(|o| json!({"metadata": model::table::ordered_metadata(o)}))
                .collect();
            let v = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "items": items});
            response(StatusCode::OK, "application/json", to_json_bytes(&v, r.pretty))
        }
        out => {
            let body = ListBody {
                kind: res.list_kind(),
                api_version: res.api_version(),
                metadata: &list_meta,
                items: objects.iter().map(|o| ListItem(o)).collect(),
            };
            if out == Output::Yaml {
                response(StatusCode::OK, "application/yaml", serde_saphyr::to_string(&body).unwrap_or_default().into_bytes())
            } else if r.pretty {
                response(StatusCode::OK, "application/json", serde_json::to_vec_pretty(&body).unwrap_or_default())
            } else {
                let mut b = serde_json::to_vec(&body).unwrap_or_default();
                b.push(b'\n');
                response(StatusCode::OK, "application/json", b)
            }
        }
    }
}

/// Adds `Warning: 299 - "..."` headers.
pub fn add_warnings(resp: &mut Response<Body>, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append("warning", v);
        }
    }
}
