//! Schemas Switchboard adds to the vendored ones: MetalLB's CRDs, published the way
//! apiextensions-apiserver publishes a CRD's `openAPIV3Schema` (its OpenAPI builder,
//! `apiextensions-apiserver/pkg/controller/openapi/builder`): `apiVersion` and `kind` become the
//! TypeMeta properties, `metadata` a reference to ObjectMeta, the definition gets its
//! `x-kubernetes-group-version-kind`, and a `<Kind>List` definition is synthesised.

use serde_json::{json, Map, Value};

/// The CRDs as MetalLB ships them (`config/crd/bases`), byte for byte.
const CRDS: &[&str] = &[
    include_str!("../data/metallb/metallb.io_ipaddresspools.yaml"),
    include_str!("../data/metallb/metallb.io_l2advertisements.yaml"),
];

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const OBJECT_META_DESCRIPTION: &str =
    "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_META_DESCRIPTION: &str =
    "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The prefix of every definition this module adds; the rest are vendored Kubernetes types.
pub(crate) const CUSTOM_PREFIX: &str = "io.metallb.";

/// One served version of a CRD, as parsed from its manifest.
pub(crate) struct CrdVersion {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub schema: Value,
}

pub(crate) fn crd_versions() -> Vec<CrdVersion> {
    let mut out = Vec::new();
    for text in CRDS {
        let crd: Value = serde_saphyr::from_str(text).expect("vendored CRD is YAML");
        let spec = &crd["spec"];
        let names = &spec["names"];
        for v in spec["versions"].as_array().into_iter().flatten() {
            if v["served"] != Value::Bool(true) {
                continue;
            }
            out.push(CrdVersion {
                group: str_of(&spec["group"]),
                version: str_of(&v["name"]),
                kind: str_of(&names["kind"]),
                list_kind: str_of(&names["listKind"]),
                plural: str_of(&names["plural"]),
                schema: v["schema"]["openAPIV3Schema"].clone(),
            });
        }
    }
    out
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `metallb.io` + `v1beta1` + `IPAddressPool` → `io.metallb.v1beta1.IPAddressPool`
/// (apiextensions reverses the group's DNS labels).
pub(crate) fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), version, kind)
}

fn reference(name: &str) -> String {
    format!("#/$defs/{name}")
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{ "group": group, "kind": kind, "version": version }])
}

fn type_meta(props: &mut Map<String, Value>) {
    props.insert("apiVersion".into(), json!({ "description": API_VERSION_DESCRIPTION, "type": "string" }));
    props.insert("kind".into(), json!({ "description": KIND_DESCRIPTION, "type": "string" }));
}

pub fn definitions() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for crd in crd_versions() {
        let name = definition_name(&crd.group, &crd.version, &crd.kind);
        let mut def = crd.schema;
        if let Some(obj) = def.as_object_mut() {
            let props = obj.entry("properties").or_insert_with(|| json!({}));
            if let Some(props) = props.as_object_mut() {
                type_meta(props);
                props.insert(
                    "metadata".into(),
                    json!({
                        "$ref": reference("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
                        "description": OBJECT_META_DESCRIPTION,
                    }),
                );
            }
            obj.insert("x-kubernetes-group-version-kind".into(), gvk(&crd.group, &crd.version, &crd.kind));
        }
        let mut list_props = Map::new();
        type_meta(&mut list_props);
        list_props.insert(
            "items".into(),
            json!({
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/api-conventions.md", crd.plural),
                "items": { "$ref": reference(&name) },
                "type": "array",
            }),
        );
        list_props.insert(
            "metadata".into(),
            json!({
                "$ref": reference("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"),
                "description": LIST_META_DESCRIPTION,
            }),
        );
        let list = json!({
            "description": format!("{} is a list of {}", crd.list_kind, crd.kind),
            "properties": Value::Object(sorted(list_props)),
            "required": ["items"],
            "type": "object",
            "x-kubernetes-group-version-kind": gvk(&crd.group, &crd.version, &crd.list_kind),
        });
        out.push((definition_name(&crd.group, &crd.version, &crd.list_kind), list));
        out.push((name, def));
    }
    out
}

fn sorted(map: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<_> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_keeps_metallb_descriptions_and_defaults() {
        let defs: Map<String, Value> = definitions().into_iter().collect();
        let pool = &defs["io.metallb.v1beta1.IPAddressPool"];
        let spec = &pool["properties"]["spec"];
        assert_eq!(spec["required"], json!(["addresses"]));
        assert_eq!(spec["properties"]["autoAssign"]["default"], json!(true));
        assert_eq!(
            spec["properties"]["avoidBuggyIPs"]["description"],
            "AvoidBuggyIPs prevents addresses ending with .0 and .255\nto be used by a pool."
        );
        // A plain multi-line YAML scalar folds into one line.
        assert_eq!(
            spec["properties"]["serviceAllocation"]["properties"]["namespaces"]["description"],
            "Namespaces list of namespace(s) on which ip pool can be attached."
        );
        assert_eq!(pool["required"], json!(["spec"]));
        assert_eq!(pool["properties"]["metadata"]["$ref"], "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
        assert_eq!(
            pool["x-kubernetes-group-version-kind"],
            json!([{"group": "metallb.io", "kind": "IPAddressPool", "version": "v1beta1"}])
        );
        let list = &defs["io.metallb.v1beta1.IPAddressPoolList"];
        assert_eq!(list["properties"]["items"]["items"]["$ref"], "#/$defs/io.metallb.v1beta1.IPAddressPool");
        assert_eq!(list["description"], "IPAddressPoolList is a list of IPAddressPool");
    }

    #[test]
    fn l2_advertisement_selectors_are_atomic_label_selectors() {
        let defs: Map<String, Value> = definitions().into_iter().collect();
        let l2 = &defs["io.metallb.v1beta1.L2Advertisement"];
        let sel = &l2["properties"]["spec"]["properties"]["ipAddressPoolSelectors"];
        assert_eq!(sel["type"], "array");
        assert_eq!(sel["items"]["x-kubernetes-map-type"], "atomic");
        assert_eq!(sel["items"]["properties"]["matchExpressions"]["items"]["required"], json!(["key", "operator"]));
        assert!(defs.contains_key("io.metallb.v1beta1.L2AdvertisementList"));
    }
}
