//! MetalLB's `metallb.io/v1beta1` IPAddressPool and L2Advertisement as kube-rs resources, and
//! label-selector matching as Kubernetes defines it. Only the fields Switchboard acts on are
//! typed; unknown fields are kept by the server and ignored here.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

const GROUP: &str = "metallb.io";
const VERSION: &str = "v1beta1";

macro_rules! metallb_resource {
    ($ty:ident, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = kube::core::NamespaceResourceScope;
            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                GROUP.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                VERSION.into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// `metallb.io/v1beta1` IPAddressPool.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IpAddressPool {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: IpAddressPoolSpec,
}
metallb_resource!(IpAddressPool, "IPAddressPool", "ipaddresspools");

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddressPoolSpec {
    /// CIDRs (`192.168.1.0/24`) and ranges (`192.168.1.10-192.168.1.20`).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Defaults to true: the pool hands out addresses to Services that name no address or pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_assign: Option<bool>,
    /// Skip IPv4 addresses ending in .0 and .255 (some consumer routers drop them).
    #[serde(default)]
    pub avoid_buggy_ips: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

/// Which Services a pool serves, and in what order pools are tried.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Lower is tried first; pools without a priority come after every pool with one.
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub namespace_selectors: Vec<LabelSelector>,
    #[serde(default)]
    pub service_selectors: Vec<LabelSelector>,
}

/// `metallb.io/v1beta1` L2Advertisement.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct L2Advertisement {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: L2AdvertisementSpec,
}
metallb_resource!(L2Advertisement, "L2Advertisement", "l2advertisements");

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    /// Pools by name; with `ipAddressPoolSelectors` also empty, every pool.
    #[serde(default)]
    pub ip_address_pools: Vec<String>,
    #[serde(default)]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that may announce; empty means every node.
    #[serde(default)]
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to announce on; empty means every interface.
    #[serde(default)]
    pub interfaces: Vec<String>,
}

/// Whether `selector` matches `labels` (Kubernetes semantics: an empty selector matches
/// everything; an unknown operator matches nothing, as a selector that fails to parse).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(ml) = &selector.match_labels {
        if ml.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return false;
        }
    }
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default();
        let have = labels.get(&e.key);
        let ok = match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])));
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        assert!(selector_matches(&sel, &labels(&[("app", "web")])));
        assert!(selector_matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "fe")])
        ));
        assert!(!selector_matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "db")])
        ));
        assert!(!selector_matches(&sel, &labels(&[("app", "api")])));
    }

    #[test]
    fn pool_spec_parses_metallb_yaml_shape() {
        let p: IpAddressPool = serde_json::from_value(serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "p", "namespace": "metallb-system"},
            "spec": {"addresses": ["192.168.1.200-192.168.1.210"], "autoAssign": false,
                     "serviceAllocation": {"priority": 5, "namespaces": ["a"]}}
        }))
        .unwrap();
        assert_eq!(p.spec.auto_assign, Some(false));
        assert_eq!(p.spec.service_allocation.unwrap().priority, 5);
    }
}
