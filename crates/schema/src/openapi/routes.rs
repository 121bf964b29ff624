//! The REST operations kube-apiserver's installer registers for each served resource
//! (`apiserver/pkg/endpoints/installer.go`), described independently of the OpenAPI flavour
//! they are rendered in. Operation ids and tags follow `GetOperationIDAndTagsFromRoute`.

use super::params::{self, Param};
use model::registry::ResourceInfo;

pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(super) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

/// Media types of responses. Switchboard serves JSON only (no protobuf, CBOR or YAML bodies), so
/// that is all the documents promise.
pub(super) const JSON: &[&str] = &["application/json"];
pub(super) const JSON_STREAM: &[&str] = &["application/json", "application/json;stream=watch"];
/// Patch media types: built-in kinds take strategic merge patch too, custom resources don't.
const PATCH_TYPES: &[&str] =
    &["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"];
const CRD_PATCH_TYPES: &[&str] = &["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"];

pub(super) enum Body {
    /// A whole object of this definition (create, replace).
    Object(String),
    /// A patch document in one of these media types.
    Patch(&'static [&'static str]),
    /// Optional DeleteOptions.
    DeleteOptions,
}

pub(super) struct Op {
    /// `get`, `put`, `post`, `delete`, `patch`.
    pub method: &'static str,
    pub description: String,
    pub operation_id: String,
    pub tag: String,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    /// (status code, description, response definition).
    pub responses: Vec<(&'static str, &'static str, String)>,
    pub produces: &'static [&'static str],
    /// `x-kubernetes-action` and `x-kubernetes-group-version-kind` (group, version, kind).
    pub action: Option<(&'static str, [String; 3])>,
}

pub(super) struct PathItem {
    pub path: String,
    pub ops: Vec<Op>,
    /// Parameters common to every operation of the path, sorted by name as kube-openapi does.
    pub params: Vec<Param>,
}

/// `ToValidOperationID`: drops non-letters (digits only after the first character), upper-casing
/// the letter after each dropped one.
pub(super) fn operation_id_part(s: &str, capitalize_first: bool) -> String {
    let mut out = String::new();
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_ascii_digit()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

fn group_part(group: &str) -> &str {
    if group.is_empty() {
        "core"
    } else {
        group.strip_suffix(".k8s.io").unwrap_or(group)
    }
}

/// `CoreV1`, `CoordinationV1`, `MetallbIoV1beta1`.
pub(super) fn id_infix(group: &str, version: &str) -> String {
    operation_id_part(group_part(group), true) + &operation_id_part(version, true)
}

/// `core_v1`, `metallbIo_v1beta1`.
pub(super) fn tag(group: &str, version: Option<&str>) -> String {
    let g = operation_id_part(group_part(group), false);
    match version {
        Some(v) => format!("{g}_{}", operation_id_part(v, false)),
        None => g,
    }
}

pub(super) fn root(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

fn sorted(mut p: Vec<Param>) -> Vec<Param> {
    p.sort_by(|a, b| a.name.cmp(b.name));
    p
}

/// `GET /api/v1/`: the APIResourceList of a group version.
pub(super) fn resource_list(group: &str, version: &str) -> PathItem {
    PathItem {
        path: format!("{}/", root(group, version)),
        ops: vec![Op {
            method: "get",
            description: "get available resources".into(),
            operation_id: format!("get{}APIResources", id_infix(group, version)),
            tag: tag(group, Some(version)),
            params: vec![],
            body: None,
            responses: vec![("200", "OK", API_RESOURCE_LIST.into())],
            produces: JSON,
            action: None,
        }],
        params: vec![],
    }
}

/// Every path of one resource, in the shape kube-apiserver registers them.
pub(super) fn resource_paths(r: &ResourceInfo, custom: bool) -> Vec<PathItem> {
    let kind = r.kind;
    let def = r.definition.to_string();
    let list_def = format!("{def}List");
    let infix = id_infix(r.group, r.version);
    let tag = tag(r.group, Some(r.version));
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let gvk = || [r.group.to_string(), r.version.to_string(), kind.to_string()];
    let can = |verb: &str| r.verbs.contains(&verb);
    let root = root(r.group, r.version);
    let scope = if r.namespaced { "/namespaces/{namespace}" } else { "" };
    let scope_params = || {
        let mut p = vec![params::pretty()];
        if r.namespaced {
            p.push(params::namespace());
        }
        p
    };
    let op = |method, description: String, verb: &str, suffix: &str, action, params, body, responses, produces| Op {
        method,
        description,
        operation_id: format!("{verb}{infix}{suffix}"),
        tag: tag.clone(),
        params,
        body,
        responses,
        produces,
        action: Some((action, gvk())),
    };
    let ok = |d: &str| vec![("200", "OK", d.to_string())];
    let write = |d: &str| vec![("200", "OK", d.to_string()), ("201", "Created", d.to_string())];
    let mut out = Vec::new();

    // The collection.
    let mut ops = Vec::new();
    if can("list") {
        ops.push(op("get", format!("list or watch objects of kind {kind}"), "list", &format!("{ns}{kind}"), "list", params::list(), None, ok(&list_def), JSON_STREAM));
    }
    if can("create") {
        let mut responses = write(&def);
        responses.push(("202", "Accepted", def.clone()));
        ops.push(op(
            "post",
            format!("create a {kind}"),
            "create",
            &format!("{ns}{kind}"),
            "post",
            vec![params::dry_run(), params::field_manager(), params::field_validation()],
            Some(Body::Object(def.clone())),
            responses,
            JSON,
        ));
    }
    if can("deletecollection") {
        ops.push(op(
            "delete",
            format!("delete collection of {kind}"),
            "delete",
            &format!("Collection{ns}{kind}"),
            "deletecollection",
            params::delete_collection(),
            Some(Body::DeleteOptions),
            ok(STATUS),
            JSON,
        ));
    }
    if !ops.is_empty() {
        out.push(PathItem { path: format!("{root}{scope}/{}", r.plural), ops, params: sorted(scope_params()) });
    }

    // One object, and its status.
    let object_params = || {
        let mut p = scope_params();
        p.push(params::name(kind));
        sorted(p)
    };
    let patch_types = if custom { CRD_PATCH_TYPES } else { PATCH_TYPES };
    let object_ops = |status: bool| {
        let (what, suffix) = if status { ("status of ", "Status") } else { ("", "") };
        let mut ops = Vec::new();
        if can("get") {
            ops.push(op("get", format!("read {what}the specified {kind}"), "read", &format!("{ns}{kind}{suffix}"), "get", vec![], None, ok(&def), JSON));
        }
        if can("update") {
            ops.push(op(
                "put",
                format!("replace {what}the specified {kind}"),
                "replace",
                &format!("{ns}{kind}{suffix}"),
                "put",
                vec![params::dry_run(), params::field_manager(), params::field_validation()],
                Some(Body::Object(def.clone())),
                write(&def),
                JSON,
            ));
        }
        if can("delete") && !status {
            ops.push(op(
                "delete",
                format!("delete a {kind}"),
                "delete",
                &format!("{ns}{kind}"),
                "delete",
                params::delete(),
                Some(Body::DeleteOptions),
                vec![("200", "OK", STATUS.to_string()), ("202", "Accepted", STATUS.to_string())],
                JSON,
            ));
        }
        if can("patch") {
            ops.push(op(
                "patch",
                format!("partially update {what}the specified {kind}"),
                "patch",
                &format!("{ns}{kind}{suffix}"),
                "patch",
                vec![params::dry_run(), params::field_manager_patch(), params::field_validation(), params::force()],
                Some(Body::Patch(patch_types)),
                write(&def),
                JSON,
            ));
        }
        ops
    };
    let ops = object_ops(false);
    if !ops.is_empty() {
        out.push(PathItem { path: format!("{root}{scope}/{}/{{name}}", r.plural), ops, params: object_params() });
    }
    if r.has_status {
        let ops = object_ops(true);
        if !ops.is_empty() {
            out.push(PathItem { path: format!("{root}{scope}/{}/{{name}}/status", r.plural), ops, params: object_params() });
        }
    }

    // Listing across namespaces: the one operation's parameters all sit on the path.
    if r.namespaced && can("list") {
        let mut p = params::list();
        p.push(params::pretty());
        out.push(PathItem {
            path: format!("{root}/{}", r.plural),
            ops: vec![op("get", format!("list or watch objects of kind {kind}"), "list", &format!("{kind}ForAllNamespaces"), "list", vec![], None, ok(&list_def), JSON_STREAM)],
            params: sorted(p),
        });
    }

    // The deprecated /watch/ paths.
    if can("watch") {
        let watch_list = format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead.");
        let watch_one = format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.");
        let with_list = |mut p: Vec<Param>| {
            p.extend(params::list());
            sorted(p)
        };
        out.push(PathItem {
            path: format!("{root}/watch{scope}/{}", r.plural),
            ops: vec![op("get", watch_list.clone(), "watch", &format!("{ns}{kind}List"), "watchlist", vec![], None, ok(WATCH_EVENT), JSON_STREAM)],
            params: with_list(scope_params()),
        });
        let mut p = scope_params();
        p.push(params::name(kind));
        out.push(PathItem {
            path: format!("{root}/watch{scope}/{}/{{name}}", r.plural),
            ops: vec![op("get", watch_one, "watch", &format!("{ns}{kind}"), "watch", vec![], None, ok(WATCH_EVENT), JSON_STREAM)],
            params: with_list(p),
        });
        if r.namespaced {
            out.push(PathItem {
                path: format!("{root}/watch/{}", r.plural),
                ops: vec![op("get", watch_list, "watch", &format!("{kind}ListForAllNamespaces"), "watchlist", vec![], None, ok(WATCH_EVENT), JSON_STREAM)],
                params: with_list(vec![params::pretty()]),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_the_apiserver() {
        assert_eq!(id_infix("", "v1"), "CoreV1");
        assert_eq!(id_infix("coordination.k8s.io", "v1"), "CoordinationV1");
        assert_eq!(id_infix("metallb.io", "v1beta1"), "MetallbIoV1beta1");
        assert_eq!(tag("metallb.io", Some("v1beta1")), "metallbIo_v1beta1");
        assert_eq!(tag("networking.k8s.io", Some("v1")), "networking_v1");
    }
}
