//! The IP family fields (`ipFamilyPolicy`, `ipFamilies`, `clusterIPs`) as kube-apiserver settles
//! them before allocating (`initIPFamilyFields`): the policy defaults to the old object's, or
//! to `RequireDualStack` for a headless Service without selector, else `SingleStack`; families
//! are inferred from given addresses, then from the cluster's primary family; a dual-stack
//! policy on a dual-stack cluster adds the other family.

use crate::config::Family;
use crate::netval::parse_ip_sloppy;
use crate::types::*;
use crate::validation::validate_cluster_ips_related_fields;
use model::Cause;
use serde_json::json;

fn family_of(ip: &str) -> Option<Family> {
    parse_ip_sloppy(ip).map(Family::of)
}

/// Upstream `isMatchingPreferDualStackClusterIPFields`: an update of a `PreferDualStack`
/// Service that touches none of its IP fields is left as it is, whatever the cluster became.
pub fn is_matching_prefer_dual_stack(spec: &ServiceSpec, old: Option<&ServiceSpec>) -> bool {
    let Some(old) = old else { return false };
    let Some(policy) = &spec.ip_family_policy else {
        return false;
    };
    if old.type_ != spec.type_
        || !spec.needs_cluster_ip()
        || !matches!(spec.type_.as_str(), CLUSTER_IP | NODE_PORT | LOAD_BALANCER)
    {
        return false;
    }
    if policy != PREFER_DUAL_STACK
        || old
            .ip_family_policy
            .as_deref()
            .is_some_and(|p| p != PREFER_DUAL_STACK)
    {
        return false;
    }
    old.cluster_ips == spec.cluster_ips && old.ip_families == spec.ip_families
}

/// Upstream `initIPFamilyFields`. `cluster` lists the configured families, primary first.
pub fn init_ip_family_fields(
    spec: &mut ServiceSpec,
    old: Option<&ServiceSpec>,
    cluster: &[Family],
) -> Result<(), Vec<Cause>> {
    if spec.is_type(EXTERNAL_NAME) || is_matching_prefer_dual_stack(spec, old) {
        return Ok(());
    }
    if spec.ip_family_policy.is_none() {
        spec.ip_family_policy = Some(match old.and_then(|o| o.ip_family_policy.clone()) {
            Some(p) => p,
            None if spec.cluster_ip == NONE && spec.selector.is_empty() => {
                REQUIRE_DUAL_STACK.to_string()
            }
            None => SINGLE_STACK.to_string(),
        });
    }
    let errs = validate_cluster_ips_related_fields(spec, old);
    if !errs.is_empty() {
        return Err(errs);
    }
    let policy = spec.policy().to_string();
    let policy_value = json!(policy);
    let mut errs = Vec::new();
    if let Some(old) = old {
        if policy == SINGLE_STACK {
            // Saying single-stack without touching the fields is how a user downgrades.
            if old.cluster_ips == spec.cluster_ips && spec.cluster_ips.len() > 1 {
                spec.cluster_ips.truncate(1);
            }
            if old.ip_families == spec.ip_families && spec.ip_families.len() > 1 {
                spec.ip_families.truncate(1);
            }
        } else {
            if !spec.cluster_ips.is_empty() && spec.cluster_ips.len() < old.cluster_ips.len() {
                errs.push(Cause::invalid(
                    "spec.ipFamilyPolicy",
                    &policy_value,
                    "must be 'SingleStack' to release the secondary cluster IP",
                ));
            }
            if !spec.ip_families.is_empty() && spec.ip_families.len() < old.ip_families.len() {
                errs.push(Cause::invalid(
                    "spec.ipFamilyPolicy",
                    &policy_value,
                    "must be 'SingleStack' to release the secondary IP family",
                ));
            }
        }
    }
    if policy == SINGLE_STACK {
        if spec.cluster_ips.len() == 2 {
            errs.push(Cause::invalid(
                "spec.ipFamilyPolicy",
                &policy_value,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if spec.ip_families.len() == 2 {
            errs.push(Cause::invalid(
                "spec.ipFamilyPolicy",
                &policy_value,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    // Families from the given addresses.
    let ips = spec.cluster_ips.clone();
    for (i, ip) in ips.iter().enumerate() {
        if ip == NONE {
            break;
        }
        let Some(fam) = family_of(ip) else { continue };
        if i >= spec.ip_families.len() {
            if cluster.contains(&fam) {
                spec.ip_families.push(fam.as_str().to_string());
            } else {
                errs.push(Cause::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    &json!(ips),
                    &format!("{fam} is not configured on this cluster"),
                ));
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let primary = cluster[0];
    // Headless without selector may claim families the cluster does not have: its endpoints
    // are whatever the user puts there.
    if spec.cluster_ip == NONE && spec.selector.is_empty() {
        if spec.ip_families.is_empty() {
            spec.ip_families = vec![primary.as_str().to_string()];
        }
        if spec.ip_families.len() < 2 && policy != SINGLE_STACK {
            let other = Family::parse(&spec.ip_families[0])
                .unwrap_or(primary)
                .other();
            spec.ip_families.push(other.as_str().to_string());
        }
        return Ok(());
    }
    if policy == REQUIRE_DUAL_STACK && cluster.len() < 2 {
        errs.push(Cause::invalid(
            "spec.ipFamilyPolicy",
            &policy_value,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, f) in spec.ip_families.iter().enumerate() {
        if !Family::parse(f).is_some_and(|f| cluster.contains(&f)) {
            errs.push(Cause::invalid(
                format!("spec.ipFamilies[{i}]"),
                &json!(f),
                "not configured on this cluster",
            ));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    if spec.ip_families.is_empty() {
        spec.ip_families = vec![primary.as_str().to_string()];
    }
    if policy != SINGLE_STACK && spec.ip_families.len() == 1 && cluster.len() == 2 {
        let other = Family::parse(&spec.ip_families[0])
            .unwrap_or(primary)
            .other();
        spec.ip_families.push(other.as_str().to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &[Family] = &[Family::IPv4];
    const DUAL: &[Family] = &[Family::IPv4, Family::IPv6];

    fn spec(v: serde_json::Value) -> ServiceSpec {
        let mut s: ServiceSpec = serde_json::from_value(v).unwrap();
        if s.type_.is_empty() {
            s.type_ = CLUSTER_IP.to_string();
        }
        crate::strategy::normalize_cluster_ips(&mut s, None);
        s
    }

    fn init(mut s: ServiceSpec, cluster: &[Family]) -> Result<(String, Vec<String>), Vec<String>> {
        match init_ip_family_fields(&mut s, None, cluster) {
            Ok(()) => Ok((s.policy().to_string(), s.ip_families)),
            Err(e) => Err(e
                .iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect()),
        }
    }

    #[test]
    fn single_stack_cluster() {
        assert_eq!(
            init(spec(json!({"selector": {"a": "b"}})), V4),
            Ok(("SingleStack".into(), vec!["IPv4".into()]))
        );
        assert_eq!(
            init(
                spec(json!({"ipFamilyPolicy": "PreferDualStack", "selector": {"a": "b"}})),
                V4
            ),
            Ok(("PreferDualStack".into(), vec!["IPv4".into()]))
        );
        assert_eq!(
            init(spec(json!({"ipFamilyPolicy": "RequireDualStack", "selector": {"a": "b"}})), V4),
            Err(vec!["spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services".into()])
        );
        assert_eq!(
            init(
                spec(json!({"ipFamilies": ["IPv6"], "selector": {"a": "b"}})),
                V4
            ),
            Err(vec![
                "spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"
                    .into()
            ])
        );
        assert_eq!(
            init(spec(json!({"clusterIP": "fd00::10"})), V4),
            Err(vec!["spec.clusterIPs[0]: Invalid value: [\"fd00::10\"]: IPv6 is not configured on this cluster".into()])
        );
        assert_eq!(
            init(spec(json!({"ipFamilies": ["IPv5"], "ipFamilyPolicy": "Sometimes"})), V4),
            Err(vec![
                "spec.ipFamilies[0]: Unsupported value: \"IPv5\": supported values: \"IPv4\", \"IPv6\"".into(),
                "spec.ipFamilyPolicy: Unsupported value: \"Sometimes\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\"".into(),
            ])
        );
    }

    #[test]
    fn headless_without_selector_claims_both_families_anywhere() {
        assert_eq!(
            init(spec(json!({"clusterIP": "None"})), V4),
            Ok((
                "RequireDualStack".into(),
                vec!["IPv4".into(), "IPv6".into()]
            ))
        );
        assert_eq!(
            init(
                spec(json!({"clusterIP": "None", "selector": {"app": "nginx"}})),
                V4
            ),
            Ok(("SingleStack".into(), vec!["IPv4".into()]))
        );
    }

    #[test]
    fn dual_stack_cluster() {
        assert_eq!(
            init(spec(json!({})), DUAL),
            Ok(("SingleStack".into(), vec!["IPv4".into()]))
        );
        assert_eq!(
            init(spec(json!({"ipFamilyPolicy": "PreferDualStack"})), DUAL),
            Ok(("PreferDualStack".into(), vec!["IPv4".into(), "IPv6".into()]))
        );
        assert_eq!(
            init(
                spec(json!({"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6"]})),
                DUAL
            ),
            Ok((
                "RequireDualStack".into(),
                vec!["IPv6".into(), "IPv4".into()]
            ))
        );
        assert_eq!(
            init(spec(json!({"clusterIP": "fd00:43::10"})), DUAL),
            Ok(("SingleStack".into(), vec!["IPv6".into()]))
        );
        assert_eq!(
            init(spec(json!({"clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5", "fd00:43::5"]})), DUAL),
            Err(vec!["spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified".into()])
        );
    }

    #[test]
    fn update_keeps_the_old_policy_and_downgrades_on_single_stack() {
        let old = spec(
            json!({"clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5", "fd00:43::5"], "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"}),
        );
        let mut same = old.clone();
        same.ip_family_policy = None;
        init_ip_family_fields(&mut same, Some(&old), DUAL).unwrap();
        assert_eq!(same.policy(), REQUIRE_DUAL_STACK);
        let mut down = old.clone();
        down.ip_family_policy = Some(SINGLE_STACK.into());
        init_ip_family_fields(&mut down, Some(&old), DUAL).unwrap();
        assert_eq!(down.cluster_ips, vec!["10.43.0.5"]);
        assert_eq!(down.ip_families, vec!["IPv4"]);
    }
}
