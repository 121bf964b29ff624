//! The resources Switchboard serves: one static table, the single source for discovery,
//! OpenAPI paths, routing, storage keys and printing.

/// One served resource (a group/version/plural), as discovery describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; `""` for the core (legacy `/api/v1`) group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Lower-case plural, the URL segment (`services`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    /// Has a `/status` subresource whose writes change only `.status`.
    pub has_status: bool,
    pub verbs: &'static [&'static str],
    /// The OpenAPI definition name of the kind, e.g. `io.k8s.api.core.v1.Service`.
    pub definition: &'static str,
}

impl ResourceInfo {
    /// `v1` or `discovery.k8s.io/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// `services` or `endpointslices.discovery.k8s.io`, as kube-apiserver names a resource in messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Storage key prefix of every object of this resource: `/registry/<group>/<plural>/`.
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() { "core" } else { self.group };
        format!("/registry/{}/{}/", group, self.plural)
    }

    /// Key prefix for one namespace (namespaced resources) or all objects (cluster-scoped).
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{}/", self.key_prefix(), ns),
            _ => self.key_prefix(),
        }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{}/{}", self.key_prefix(), ns, name),
            _ => format!("{}{}", self.key_prefix(), name),
        }
    }

    /// The URL path of the collection: `/api/v1/namespaces/ns/services`.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let root = if self.group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{root}/namespaces/{ns}/{}", self.plural),
            _ => format!("{root}/{}", self.plural),
        }
    }
}

const ALL_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/// Namespaces have no deletecollection in kube-apiserver.
const NAMESPACE_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, [$($short:expr),*], [$($cat:expr),*], $ns:expr, $status:expr, $verbs:expr, $def:expr) => {
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            namespaced: $ns,
            has_status: $status,
            verbs: $verbs,
            definition: $def,
        }
    };
}

/// Every served resource, in discovery order (core first, then groups alphabetically, as kube-apiserver).
pub static RESOURCES: &[ResourceInfo] = &[
    res!("", "v1", "ConfigMap", "configmaps", "configmap", ["cm"], [], true, false, ALL_VERBS, "io.k8s.api.core.v1.ConfigMap"),
    res!("", "v1", "Endpoints", "endpoints", "endpoints", ["ep"], [], true, false, ALL_VERBS, "io.k8s.api.core.v1.Endpoints"),
    res!("", "v1", "Event", "events", "event", ["ev"], [], true, false, ALL_VERBS, "io.k8s.api.core.v1.Event"),
    res!("", "v1", "Namespace", "namespaces", "namespace", ["ns"], [], false, true, NAMESPACE_VERBS, "io.k8s.api.core.v1.Namespace"),
    res!("", "v1", "Node", "nodes", "node", ["no"], [], false, true, ALL_VERBS, "io.k8s.api.core.v1.Node"),
    res!("", "v1", "Pod", "pods", "pod", ["po"], ["all"], true, true, ALL_VERBS, "io.k8s.api.core.v1.Pod"),
    res!("", "v1", "Secret", "secrets", "secret", [], [], true, false, ALL_VERBS, "io.k8s.api.core.v1.Secret"),
    res!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", ["sa"], [], true, false, ALL_VERBS, "io.k8s.api.core.v1.ServiceAccount"),
    res!("", "v1", "Service", "services", "service", ["svc"], ["all"], true, true, ALL_VERBS, "io.k8s.api.core.v1.Service"),
    res!("coordination.k8s.io", "v1", "Lease", "leases", "lease", [], [], true, false, ALL_VERBS, "io.k8s.api.coordination.v1.Lease"),
    res!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", [], [], true, false, ALL_VERBS, "io.k8s.api.discovery.v1.EndpointSlice"),
    res!("metallb.io", "v1beta1", "IPAddressPool", "ipaddresspools", "ipaddresspool", [], [], true, true, ALL_VERBS, "io.metallb.v1beta1.IPAddressPool"),
    res!("metallb.io", "v1beta1", "L2Advertisement", "l2advertisements", "l2advertisement", [], [], true, true, ALL_VERBS, "io.metallb.v1beta1.L2Advertisement"),
    res!("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", [], [], false, false, ALL_VERBS, "io.k8s.api.networking.v1.IngressClass"),
    res!("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", ["ing"], [], true, true, ALL_VERBS, "io.k8s.api.networking.v1.Ingress"),
    res!("networking.k8s.io", "v1", "IPAddress", "ipaddresses", "ipaddress", ["ip"], [], false, false, ALL_VERBS, "io.k8s.api.networking.v1.IPAddress"),
    res!("networking.k8s.io", "v1", "ServiceCIDR", "servicecidrs", "servicecidr", [], [], false, true, ALL_VERBS, "io.k8s.api.networking.v1.ServiceCIDR"),
];

/// The groups served under `/apis`, in discovery order, each with its versions (preferred first).
pub fn api_groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version)
                }
            }
            None => groups.push((r.group, vec![r.version])),
        }
    }
    groups
}

/// Resources of one group/version.
pub fn resources_in<'a>(group: &'a str, version: &'a str) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    RESOURCES.iter().filter(move |r| r.group == group && r.version == version)
}

/// The resource served at `group/version/plural`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of a kind (the served version of it).
pub fn lookup_kind(group: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.group == group && r.kind == kind)
}

/// Splits an `apiVersion` into group and version.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_paths() {
        let svc = lookup("", "v1", "services").unwrap();
        assert_eq!(svc.key(Some("default"), "nginx"), "/registry/core/services/default/nginx");
        assert_eq!(svc.namespace_prefix(None), "/registry/core/services/");
        assert_eq!(svc.collection_path(Some("ns1")), "/api/v1/namespaces/ns1/services");
        let ns = lookup("", "v1", "namespaces").unwrap();
        assert_eq!(ns.key(Some("ignored"), "default"), "/registry/core/namespaces/default");
        let eps = lookup("discovery.k8s.io", "v1", "endpointslices").unwrap();
        assert_eq!(eps.collection_path(None), "/apis/discovery.k8s.io/v1/endpointslices");
        assert_eq!(eps.qualified_plural(), "endpointslices.discovery.k8s.io");
    }

    #[test]
    fn groups_in_order() {
        let groups: Vec<_> = api_groups().into_iter().map(|(g, _)| g).collect();
        assert_eq!(groups, ["coordination.k8s.io", "discovery.k8s.io", "metallb.io", "networking.k8s.io"]);
    }
}
