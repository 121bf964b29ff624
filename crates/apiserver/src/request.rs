//! What a request is about, parsed from its path and query the way kube-apiserver's
//! `RequestInfoFactory` does: discovery, or a verb on a resource (collection, object or subresource).

use model::{ApiError, ResourceInfo};

/// A parsed API path.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `/api`
    LegacyVersions,
    /// `/api/v1` or `/apis/<group>/<version>`: the resource list.
    ResourceList { group: String, version: String },
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// A resource path.
    Resource(ResourcePath),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePath {
    pub resource: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` prefix was used.
    pub watch_prefix: bool,
}

/// Subresources of namespaces that sit where a namespaced resource would (`/namespaces/x/status`).
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

fn not_found_path(_path: &str) -> ApiError {
    let mut e = ApiError::new(404, "NotFound", "the server could not find the requested resource");
    e.details = Some(serde_json::Map::new());
    e
}

/// Parses an API path (already percent-decoded segments are not expected; names are ASCII).
pub fn parse_path(path: &str) -> Result<Target, ApiError> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest): (&str, &str, &[&str]) = match parts.as_slice() {
        ["api"] => return Ok(Target::LegacyVersions),
        ["apis"] => return Ok(Target::Groups),
        ["api", v, rest @ ..] => ("", v, rest),
        ["apis", g] => {
            return if model::registry::api_groups().iter().any(|(name, _)| name == g) {
                Ok(Target::Group(g.to_string()))
            } else {
                Err(not_found_path(path))
            }
        }
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return Err(not_found_path(path)),
    };
    if model::registry::resources_in(group, version).next().is_none() {
        return Err(not_found_path(path));
    }
    if rest.is_empty() {
        return Ok(Target::ResourceList { group: group.to_string(), version: version.to_string() });
    }
    let mut rest = rest;
    let mut watch_prefix = false;
    if rest[0] == "watch" {
        watch_prefix = true;
        rest = &rest[1..];
    }
    let mut namespace = None;
    if rest.len() > 2 && rest[0] == "namespaces" && !(rest.len() == 3 && NAMESPACE_SUBRESOURCES.contains(&rest[2])) {
        namespace = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(not_found_path(path)),
    };
    let resource = model::lookup(group, version, plural).ok_or_else(|| not_found_path(path))?;
    if namespace.is_some() && !resource.namespaced {
        return Err(not_found_path(path));
    }
    if let Some(s) = &sub {
        let ok = (s == "status" && resource.has_status) || (resource.plural == "namespaces" && s == "finalize");
        if !ok {
            return Err(not_found_path(path));
        }
    }
    Ok(Target::Resource(ResourcePath { resource, namespace, name, subresource: sub, watch_prefix }))
}

/// Query parameters, in order, decoded.
#[derive(Debug, Default, Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query(raw.map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default()).unwrap_or_default())
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true") | Some("1"))
    }
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse_path(path).unwrap() {
            Target::Resource(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("/api").unwrap(), Target::LegacyVersions);
        assert_eq!(parse_path("/apis").unwrap(), Target::Groups);
        assert_eq!(parse_path("/apis/discovery.k8s.io").unwrap(), Target::Group("discovery.k8s.io".into()));
        let r = res("/api/v1/namespaces/default/services/nginx");
        assert_eq!((r.resource.plural, r.namespace.as_deref(), r.name.as_deref()), ("services", Some("default"), Some("nginx")));
        let r = res("/api/v1/namespaces/ns1");
        assert_eq!((r.resource.plural, r.name.as_deref()), ("namespaces", Some("ns1")));
        let r = res("/api/v1/namespaces/ns1/status");
        assert_eq!((r.resource.plural, r.name.as_deref(), r.subresource.as_deref()), ("namespaces", Some("ns1"), Some("status")));
        let r = res("/api/v1/namespaces/ns1/finalize");
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
        let r = res("/api/v1/services");
        assert_eq!((r.resource.plural, r.namespace), ("services", None));
        let r = res("/apis/discovery.k8s.io/v1/namespaces/x/endpointslices");
        assert_eq!(r.resource.kind, "EndpointSlice");
        let r = res("/api/v1/namespaces/default/services/nginx/status");
        assert_eq!(r.subresource.as_deref(), Some("status"));
        assert!(parse_path("/api/v1/namespaces/default/configmaps/x/status").is_err());
        assert!(parse_path("/api/v1/nothing").is_err());
        assert!(parse_path("/apis/apps/v1").is_err());
    }
}
