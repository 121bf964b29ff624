//! Turns a stored definition back into the form kube-apiserver publishes.
//!
//! The vendored definitions went through a JSON-Schema derivation that made every optional
//! `"type": T` into `[T, "null"]`, spelt IntOrString and Quantity as `oneOf`s, added a one-value
//! `enum` to every `apiVersion` and `kind`, and points `$ref`s at `#/$defs/`. Upstream instead has:
//! plain types; IntOrString as `type: string, format: int-or-string` in Swagger 2.0 and as
//! `oneOf: [integer, string]` + `format: int-or-string` in OpenAPI 3 (kube-openapi's
//! `OpenAPIV3OneOfTypes`); Quantity as `type: string` (v2) / `oneOf: [string, number]` (v3); refs
//! into `#/definitions/` (v2) or `#/components/schemas/` (v3); and in v3 a `$ref` with siblings
//! (a description) wrapped in `allOf`, because OpenAPI 3.0 ignores a `$ref`'s siblings
//! (kube-openapi `builder3/util.WrapRefs`). Keys are emitted in go-openapi's field order, so the
//! output reads like the real server's.

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Swagger 2.0, `/openapi/v2`.
    V2,
    /// OpenAPI 3.0, `/openapi/v3/...`.
    V3,
}

impl Flavor {
    pub(crate) fn reference(self, name: &str) -> String {
        match self {
            Flavor::V2 => format!("#/definitions/{name}"),
            Flavor::V3 => format!("#/components/schemas/{name}"),
        }
    }
}

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

const INT_OR_STRING_DESCRIPTION: &str = "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.";
const QUANTITY_DESCRIPTION: &str = "Quantity is a fixed-point representation of a number. It provides convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.\n\nThe serialization format is:\n\n``` <quantity>        ::= <signedNumber><suffix>\n\n\t(Note that <suffix> may be empty, from the \"\" case in <decimalSI>.)\n\n<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | <digit><digits> <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits> <sign>            ::= \"+\" | \"-\" <signedNumber>    ::= <number> | <sign><number> <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI> <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n\n\t(International System of units; See: http://physics.nist.gov/cuu/Units/binary.html)\n\n<decimalSI>       ::= m | \"\" | k | M | G | T | P | E\n\n\t(Note that 1024 = 1Ki but 1000 = 1k; I didn't choose the capitalization.)\n\n<decimalExponent> ::= \"e\" <signedNumber> | \"E\" <signedNumber> ```\n\nNo matter which of the three exponent forms is used, no quantity may represent a number greater than 2^63-1 in magnitude, nor may it have more than 3 decimal places. Numbers larger or more precise will be capped or rounded up. (E.g.: 0.1m will rounded up to 1m.) This may be extended in the future if we require larger or smaller quantities.\n\nWhen a Quantity is parsed from a string, it will remember the type of suffix it had, and will use the same type again when it is serialized.\n\nBefore serializing, Quantity will be put in \"canonical form\". This means that Exponent/suffix will be adjusted up or down (with a corresponding increase or decrease in Mantissa) such that:\n\n- No precision is lost - No fractional digits will be emitted - The exponent (or suffix) is as large as possible.\n\nThe sign will be omitted unless the number is negative.\n\nExamples:\n\n- 1.5 will be serialized as \"1500m\" - 1.5Gi will be serialized as \"1536Mi\"\n\nNote that the quantity will NEVER be internally represented by a floating point number. That is the whole point of this exercise.\n\nNon-canonical values will still parse as long as they are well formed, but will be re-emitted in their canonical form. (So always use canonical form, or don't diff.)\n\nThis format is intended to make it difficult to use these numbers without writing some sort of special handling code in the hopes that that will cause implementors to also use a fixed point implementation.";

/// The published form of definition `name`.
pub(crate) fn definition(name: &str, def: &Value, flavor: Flavor) -> Value {
    match (name, flavor) {
        (INT_OR_STRING, Flavor::V2) => {
            json!({"description": INT_OR_STRING_DESCRIPTION, "type": "string", "format": "int-or-string"})
        }
        (INT_OR_STRING, Flavor::V3) => json!({
            "description": INT_OR_STRING_DESCRIPTION,
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        }),
        (QUANTITY, Flavor::V2) => json!({"description": QUANTITY_DESCRIPTION, "type": "string"}),
        (QUANTITY, Flavor::V3) => json!({
            "description": QUANTITY_DESCRIPTION,
            "oneOf": [{"type": "string"}, {"type": "number"}],
        }),
        _ => node(def, flavor),
    }
}

/// go-openapi's `SchemaProps` + `SwaggerSchemaProps` field order; vendor extensions follow, sorted.
const KEY_ORDER: &[&str] = &[
    "id",
    "$ref",
    "$schema",
    "description",
    "type",
    "nullable",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "discriminator",
    "readOnly",
    "xml",
    "externalDocs",
    "example",
];

fn node(n: &Value, flavor: Flavor) -> Value {
    let Some(obj) = n.as_object() else { return n.clone() };
    let mut out = Map::new();
    for (k, v) in obj {
        let converted = match k.as_str() {
            "type" => match v {
                Value::Array(types) => match types.iter().filter(|t| *t != "null").collect::<Vec<_>>().as_slice() {
                    [single] => (*single).clone(),
                    _ => v.clone(),
                },
                _ => v.clone(),
            },
            "$ref" => match v.as_str() {
                Some(r) => Value::String(flavor.reference(crate::ref_name(r))),
                None => v.clone(),
            },
            "properties" | "patternProperties" => match v.as_object() {
                Some(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, p)| {
                            let mut p = node(p, flavor);
                            // Added by the JSON-Schema derivation; upstream has no enum there.
                            if name == "apiVersion" || name == "kind" {
                                if let Some(p) = p.as_object_mut() {
                                    p.remove("enum");
                                }
                            }
                            (name.clone(), p)
                        })
                        .collect(),
                ),
                None => v.clone(),
            },
            "items" | "additionalProperties" | "not" => node(v, flavor),
            "allOf" | "oneOf" | "anyOf" => match v.as_array() {
                Some(a) => Value::Array(a.iter().map(|x| node(x, flavor)).collect()),
                None => v.clone(),
            },
            _ => v.clone(),
        };
        out.insert(k.clone(), converted);
    }
    if flavor == Flavor::V3 && out.len() > 1 {
        if let Some(r) = out.remove("$ref") {
            out.insert("allOf".into(), json!([{ "$ref": r }]));
        }
    }
    Value::Object(ordered(out))
}

fn ordered(mut map: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for k in KEY_ORDER {
        if let Some(v) = map.remove(*k) {
            out.insert((*k).to_string(), v);
        }
    }
    let mut rest: Vec<_> = map.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(rest);
    out
}

/// Every definition name a published node refers to.
pub(crate) fn refs(n: &Value, out: &mut Vec<String>) {
    match n {
        Value::Object(obj) => {
            for (k, v) in obj {
                if k == "$ref" {
                    if let Some(r) = v.as_str() {
                        out.push(crate::ref_name(r).to_string());
                    }
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Schema;

    #[test]
    fn nullable_types_and_refs_come_back_in_upstream_form() {
        let s = Schema::get();
        let port = definition("io.k8s.api.core.v1.ServicePort", s.definition("io.k8s.api.core.v1.ServicePort").unwrap(), Flavor::V3);
        assert_eq!(port["properties"]["nodePort"], json!({
            "description": port["properties"]["nodePort"]["description"],
            "type": "integer",
            "format": "int32",
        }));
        let target = &port["properties"]["targetPort"];
        assert_eq!(target["allOf"], json!([{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}]));
        assert!(target.get("$ref").is_none());

        let v2 = definition("io.k8s.api.core.v1.ServicePort", s.definition("io.k8s.api.core.v1.ServicePort").unwrap(), Flavor::V2);
        assert_eq!(v2["properties"]["targetPort"]["$ref"], "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString");
        let keys: Vec<_> = v2["properties"]["targetPort"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["$ref", "description"]);
    }

    #[test]
    fn type_meta_loses_the_derived_enum() {
        let s = Schema::get();
        let svc = definition("io.k8s.api.core.v1.Service", s.definition("io.k8s.api.core.v1.Service").unwrap(), Flavor::V2);
        assert!(svc["properties"]["kind"].get("enum").is_none());
        assert_eq!(svc["properties"]["kind"]["type"], "string");
        assert_eq!(svc["type"], "object");
    }

    #[test]
    fn int_or_string_per_flavor() {
        let v2 = definition(INT_OR_STRING, &Value::Null, Flavor::V2);
        assert_eq!((v2["type"].as_str(), v2["format"].as_str()), (Some("string"), Some("int-or-string")));
        let v3 = definition(INT_OR_STRING, &Value::Null, Flavor::V3);
        assert_eq!(v3["oneOf"], json!([{"type": "integer"}, {"type": "string"}]));
        assert_eq!(v3["format"], "int-or-string");
    }
}
