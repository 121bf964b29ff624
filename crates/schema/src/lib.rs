//! The OpenAPI schema of every served kind: the vendored Kubernetes 1.36 definitions (see
//! `data/README.md`) plus Switchboard's own (MetalLB CRDs). It is the one source for the
//! OpenAPI documents kubectl reads, for strict field validation, and for the patch strategies
//! (merge keys, list types) that strategic merge patch and server-side apply follow.
//! Start at [`Schema::get`].

use serde_json::{Map, Value};
use std::io::Read;
use std::sync::OnceLock;

mod convert;
pub mod decode;
mod extra;
mod gotime;
pub mod openapi;
pub mod protobuf;


pub use decode::{
    check_types, custom_resource_errors, duplicate_fields, normalize, prune_unknown, strict_errors, unknown_fields, DecodeError, FieldError,
    StrictError,
};
pub use openapi::{openapi_v2, openapi_v3, openapi_v3_document, openapi_v3_index, Document};

static VENDORED: &[u8] = include_bytes!("../data/definitions-1.36.json.gz");

/// All definitions by name (`io.k8s.api.core.v1.Service`).
pub struct Schema {
    defs: Map<String, Value>,
}

impl Schema {
    /// The process-wide schema, loaded on first use.
    pub fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(Schema::load)
    }

    fn load() -> Schema {
        let mut raw = String::new();
        flate2::read::GzDecoder::new(VENDORED).read_to_string(&mut raw).expect("vendored schema is gzip");
        let mut defs: Map<String, Value> = serde_json::from_str(&raw).expect("vendored schema is JSON");
        for (name, def) in extra::definitions() {
            defs.insert(name, def);
        }
        Schema { defs }
    }

    pub fn definitions(&self) -> &Map<String, Value> {
        &self.defs
    }

    pub fn definition(&self, name: &str) -> Option<&Value> {
        self.defs.get(name)
    }

    /// Whether a definition is a custom resource's (MetalLB's), which kube-apiserver handles with
    /// apiextensions semantics (structural pruning, schema validation) rather than Go structs.
    pub fn is_custom(name: &str) -> bool {
        name.starts_with(extra::CUSTOM_PREFIX)
    }

    /// Follows `$ref` (also a lone `allOf: [{$ref}]`) to the definition a node stands for.
    pub fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        let mut cur = node;
        for _ in 0..16 {
            if let Some(r) = cur.get("$ref").and_then(Value::as_str) {
                match self.defs.get(ref_name(r)) {
                    Some(d) => cur = d,
                    None => return cur,
                }
            } else if let Some([single]) = cur.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
                cur = single;
            } else {
                return cur;
            }
        }
        cur
    }

    /// The schema node of property `name` of an object node (resolved first). The returned node is
    /// the property's own node, which carries the `x-kubernetes-*` extensions; resolve it to
    /// descend further.
    pub fn property<'a>(&'a self, node: &'a Value, name: &str) -> Option<&'a Value> {
        self.resolve(node).get("properties")?.get(name)
    }

    /// The element schema of an array node.
    pub fn items<'a>(&'a self, node: &'a Value) -> Option<&'a Value> {
        self.resolve(node).get("items")
    }

    /// The value schema of a map node (`additionalProperties`).
    pub fn additional_properties<'a>(&'a self, node: &'a Value) -> Option<&'a Value> {
        self.resolve(node).get("additionalProperties").filter(|v| v.is_object())
    }

    /// The definition name of a node that is a `$ref`, if it is one.
    pub fn ref_of(node: &Value) -> Option<&str> {
        node.get("$ref").and_then(Value::as_str).map(ref_name)
    }
}

/// `#/$defs/io.k8s...Service` or `#/definitions/...` or `#/components/schemas/...` to the name.
pub fn ref_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// The primary JSON type of a node, ignoring the `null` the vendored form adds.
pub fn node_type(node: &Value) -> Option<&str> {
    match node.get("type")? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ports_carry_merge_key() {
        let s = Schema::get();
        let svc = s.definition("io.k8s.api.core.v1.Service").unwrap();
        let spec = s.property(svc, "spec").unwrap();
        let ports = s.property(spec, "ports").unwrap();
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "port");
        assert_eq!(ports["x-kubernetes-list-map-keys"], serde_json::json!(["port", "protocol"]));
        let port = s.items(ports).unwrap();
        assert_eq!(node_type(s.property(port, "port").unwrap()), Some("integer"));
    }
}
