//! Server-side printing: the `meta.k8s.io/v1` Table kube-apiserver 1.36 answers to
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` (what `kubectl get` asks for).
//!
//! [`column_definitions`] and [`row_cells`] reproduce `pkg/printers/internalversion/printers.go`
//! (always in wide mode: the server sends every column and kubectl hides `priority > 0` ones
//! unless `-o wide`) and, for MetalLB's custom resources, the CRDs' `additionalPrinterColumns`.
//! [`table`] assembles the whole object, rows carrying the object as `includeObject` asks
//! (PartialObjectMetadata by default). Ages are computed from a given `now` with
//! [`human_duration`], so output is reproducible in tests.

mod cells;
mod columns;
pub mod descriptions;

pub use columns::{columns, Column};

use crate::errors::ApiError;
use crate::registry::ResourceInfo;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};

/// The `TableColumnDefinition`s for a resource, as JSON (`name`, `type`, `format`,
/// `description`, `priority`, in that order).
pub fn column_definitions(res: &ResourceInfo) -> Vec<Value> {
    columns(res).iter().map(Column::to_json).collect()
}

/// One row's `cells` for an object of `res`, with ages relative to `now`. Cells are strings
/// except where kube-apiserver sends numbers (ConfigMap/Secret DATA, ServiceAccount SECRETS, Event COUNT) or booleans
/// and nulls (custom resource columns).
pub fn row_cells(res: &ResourceInfo, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    cells::cells(res, obj, now)
}

/// A row's `conditions`: pods that Succeeded or Failed carry a `Completed` condition (kubectl
/// greys them out); every other row has none.
pub fn row_conditions(res: &ResourceInfo, obj: &Value) -> Option<Value> {
    cells::conditions(res, obj)
}

/// `?includeObject=`: what each row's `object` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `null`.
    None,
    /// A `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter; absent or empty means `Metadata`.
    pub fn parse(value: Option<&str>) -> Result<Self, UnknownIncludeObject> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(UnknownIncludeObject(other.to_string())),
        }
    }
}

/// An `?includeObject=` value other than `None`, `Metadata`, `Object`: 400 BadRequest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognized includeObject value: {0:?}")]
pub struct UnknownIncludeObject(pub String);

impl From<UnknownIncludeObject> for ApiError {
    fn from(e: UnknownIncludeObject) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// The Table's `metadata` (a `ListMeta`): empty fields are left out, as Go's `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListMeta {
    pub resource_version: String,
    pub continue_token: String,
    pub remaining_item_count: Option<i64>,
}

impl ListMeta {
    /// For a Table of one object (a GET or a watch event): the object's resourceVersion.
    pub fn for_object(obj: &Value) -> Self {
        ListMeta {
            resource_version: crate::meta::resource_version(obj).unwrap_or("").to_string(),
            ..Default::default()
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.resource_version.is_empty() {
            m.insert("resourceVersion".into(), json!(self.resource_version));
        }
        if !self.continue_token.is_empty() {
            m.insert("continue".into(), json!(self.continue_token));
        }
        if let Some(n) = self.remaining_item_count {
            m.insert("remainingItemCount".into(), json!(n));
        }
        Value::Object(m)
    }
}

/// `ObjectMeta` fields in the order Go serialises them.
const OBJECT_META_ORDER: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// `metadata` with its fields in Go's order (unknown fields last, in their order).
pub fn ordered_metadata(obj: &Value) -> Value {
    let Some(meta) = obj.get("metadata").and_then(Value::as_object) else {
        return json!({});
    };
    let mut out = Map::new();
    for k in OBJECT_META_ORDER {
        if let Some(v) = meta.get(*k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    for (k, v) in meta {
        if !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The object as `meta.k8s.io/v1` `PartialObjectMetadata`.
pub fn partial_object_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": ordered_metadata(obj)})
}

/// One `TableRow`: `cells`, `conditions` when there are any, and `object`.
pub fn row(res: &ResourceInfo, obj: &Value, now: DateTime<Utc>, include: IncludeObject) -> Value {
    let mut r = Map::new();
    r.insert("cells".into(), Value::Array(row_cells(res, obj, now)));
    if let Some(c) = row_conditions(res, obj) {
        r.insert("conditions".into(), c);
    }
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => partial_object_metadata(obj),
        IncludeObject::Object => {
            let mut o = obj.clone();
            if let Some(m) = o.as_object_mut() {
                if !m.contains_key("kind") || !m.contains_key("apiVersion") {
                    let mut typed = Map::new();
                    typed.insert("kind".into(), json!(res.kind));
                    typed.insert("apiVersion".into(), json!(res.api_version()));
                    for (k, v) in m.iter().filter(|(k, _)| *k != "kind" && *k != "apiVersion") {
                        typed.insert(k.clone(), v.clone());
                    }
                    *m = typed;
                }
            }
            o
        }
    };
    r.insert("object".into(), object);
    Value::Object(r)
}

/// The whole Table: `kind`, `apiVersion` (`meta.k8s.io/v1`), `metadata`, `columnDefinitions`,
/// `rows` (an empty list for no objects).
pub fn table<'a>(
    res: &ResourceInfo,
    objects: impl IntoIterator<Item = &'a Value>,
    now: DateTime<Utc>,
    include: IncludeObject,
    list_meta: &ListMeta,
) -> Value {
    let rows: Vec<Value> = objects
        .into_iter()
        .map(|o| row(res, o, now, include))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta.to_json(),
        "columnDefinitions": column_definitions(res),
        "rows": rows,
    })
}

/// Upstream `duration.HumanDuration`: `6s`, `119s`, `2m3s`, `10m`, `3h4m`, `10h`, `3d4h`,
/// `30d`, `2y10d`, `9y`; more than one second in the future is `<invalid>`, up to one second
/// is `0s` (clock skew).
pub fn human_duration(d: TimeDelta) -> String {
    // Go's int(d.Seconds()) truncates towards zero; so does num_seconds.
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream `translateTimestampSince`: the age of an RFC 3339 timestamp at `now`, `<unknown>`
/// for a missing (zero) one.
pub fn translate_timestamp_since(timestamp: Option<&str>, now: DateTime<Utc>) -> String {
    match timestamp.and_then(crate::meta::parse_time) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}
