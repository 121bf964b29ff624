//! Service validation with kube-apiserver's messages and field paths: upstream
//! `ValidateService`, `ValidateServiceUpdate` and `ValidateServiceStatusUpdate`
//! (`pkg/apis/core/validation`), in upstream's order, for what follows the generic
//! `ObjectMeta` checks (the API server runs those itself). Causes come back in the order
//! kube-apiserver lists them.

use crate::netval::{validate_cidr, validate_ip, validate_non_special_ip};
use crate::types::*;
use model::validation::{
    is_dns1123_label, is_dns1123_subdomain, is_label_value, is_qualified_name,
};
use model::Cause;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const ANNOTATION_SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
pub const ANNOTATION_TOPOLOGY_HINTS: &str = "service.kubernetes.io/topology-aware-hints";
pub const ANNOTATION_TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
/// The largest `sessionAffinityConfig.clientIP.timeoutSeconds` (one day).
pub const MAX_CLIENT_IP_TIMEOUT_SECONDS: i64 = 86400;

const PORT_RANGE_MSG: &str = "must be between 1 and 65535, inclusive";

fn opt_value(v: &Option<String>) -> Value {
    v.as_ref().map(|s| json!(s)).unwrap_or(Value::Null)
}

fn is_valid_port_num(p: i64) -> bool {
    (1..=65535).contains(&p)
}

/// Upstream `IsValidPortName` (an IANA service name).
pub fn port_name_messages(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push(model::validation::max_len_error(15));
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// Upstream `ValidateLabels` for `spec.selector`, keys in sorted order (Go's map order is
/// random). A key with more than one `/` gets 1.36's "a valid label key" wording.
fn validate_selector(selector: &BTreeMap<String, String>, field: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    for (k, v) in selector {
        for m in is_qualified_name(k) {
            let m = match m.strip_prefix("a qualified name ") {
                Some(rest) => format!("a valid label key {rest}"),
                None => m,
            };
            out.push(Cause::invalid(field, &json!(k), &m));
        }
        for m in is_label_value(v) {
            out.push(Cause::invalid(field, &json!(v), &m));
        }
    }
    out
}

/// The Go struct kube-apiserver prints for a duplicate port (`core.ServicePort` with only the
/// protocol and port set, marshalled without JSON tags).
fn duplicate_port_value(protocol: &str, port: i64) -> String {
    format!(
        "{{\"Name\":\"\",\"Protocol\":{},\"AppProtocol\":null,\"Port\":{port},\"TargetPort\":0,\"NodePort\":0}}",
        json!(protocol)
    )
}

fn validate_service_port(
    sp: &ServicePort,
    require_name: bool,
    names: &mut BTreeSet<String>,
    i: usize,
) -> Vec<Cause> {
    let path = format!("spec.ports[{i}]");
    let mut out = Vec::new();
    if require_name && sp.name.is_empty() {
        out.push(Cause::required(format!("{path}.name"), ""));
    } else if !sp.name.is_empty() {
        for m in is_dns1123_label(&sp.name) {
            out.push(Cause::invalid(format!("{path}.name"), &json!(sp.name), &m));
        }
        if !names.insert(sp.name.clone()) {
            out.push(Cause::duplicate(format!("{path}.name"), &json!(sp.name)));
        }
    }
    if !is_valid_port_num(sp.port) {
        out.push(Cause::invalid(
            format!("{path}.port"),
            &json!(sp.port),
            PORT_RANGE_MSG,
        ));
    }
    if sp.protocol.is_empty() {
        out.push(Cause::required(format!("{path}.protocol"), ""));
    } else if !matches!(sp.protocol.as_str(), "SCTP" | "TCP" | "UDP") {
        out.push(Cause::not_supported(
            format!("{path}.protocol"),
            &json!(sp.protocol),
            &["SCTP", "TCP", "UDP"],
        ));
    }
    match &sp.target_port {
        IntOrString::Int(p) => {
            if !is_valid_port_num(*p) {
                out.push(Cause::invalid(
                    format!("{path}.targetPort"),
                    &json!(p),
                    PORT_RANGE_MSG,
                ));
            }
        }
        IntOrString::Str(s) => {
            for m in port_name_messages(s) {
                out.push(Cause::invalid(format!("{path}.targetPort"), &json!(s), &m));
            }
        }
    }
    if let Some(ap) = &sp.app_protocol {
        for m in is_qualified_name(ap) {
            out.push(Cause::invalid(
                format!("{path}.appProtocol"),
                &json!(ap),
                &m,
            ));
        }
    }
    out
}

fn validate_client_ip_affinity_config(config: &Option<SessionAffinityConfig>) -> Vec<Cause> {
    let detail = "when session affinity type is ClientIP";
    let path = "spec.sessionAffinityConfig";
    let Some(config) = config else {
        return vec![Cause::required(path, detail)];
    };
    let Some(client_ip) = &config.client_ip else {
        return vec![Cause::required(format!("{path}.clientIP"), detail)];
    };
    let Some(t) = client_ip.timeout_seconds else {
        return vec![Cause::required(
            format!("{path}.clientIP.timeoutSeconds"),
            detail,
        )];
    };
    if t <= 0 || t > MAX_CLIENT_IP_TIMEOUT_SECONDS {
        return vec![Cause::invalid(
            format!("{path}.clientIP.timeoutSeconds"),
            &json!(t),
            &format!("must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT_SECONDS}"),
        )];
    }
    Vec::new()
}

/// Upstream `ValidateServiceClusterIPsRelatedFields`: `clusterIP` and `clusterIPs` agree, the
/// families and policy are known values, the addresses parse and match their families. Also
/// run before allocation, which relies on it.
pub fn validate_cluster_ips_related_fields(
    spec: &ServiceSpec,
    old: Option<&ServiceSpec>,
) -> Vec<Cause> {
    if spec.is_type(EXTERNAL_NAME) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let ips_field = "spec.clusterIPs";
    let ips_value = json!(spec.cluster_ips);
    if !spec.cluster_ip.is_empty() {
        if spec.cluster_ips.is_empty() {
            out.push(Cause::required(ips_field, ""));
        } else if spec.cluster_ips[0] != spec.cluster_ip {
            out.push(Cause::invalid(
                ips_field,
                &ips_value,
                "first value must match `clusterIP`",
            ));
        }
    } else if !spec.cluster_ips.is_empty() {
        out.push(Cause::invalid(
            ips_field,
            &ips_value,
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, f) in spec.ip_families.iter().enumerate() {
        let field = format!("spec.ipFamilies[{i}]");
        if f != "IPv4" && f != "IPv6" {
            out.push(Cause::not_supported(
                field.clone(),
                &json!(f),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(f.as_str()) {
            out.push(Cause::duplicate(field, &json!(f)));
        }
    }
    if let Some(p) = &spec.ip_family_policy {
        if !matches!(
            p.as_str(),
            SINGLE_STACK | PREFER_DUAL_STACK | REQUIRE_DUAL_STACK
        ) {
            out.push(Cause::not_supported(
                "spec.ipFamilyPolicy",
                &json!(p),
                &[PREFER_DUAL_STACK, REQUIRE_DUAL_STACK, SINGLE_STACK],
            ));
        }
    }
    let old_ips: &[String] = old.map(|o| o.cluster_ips.as_slice()).unwrap_or(&[]);
    let mut has_invalid = false;
    for (i, ip) in spec.cluster_ips.iter().enumerate() {
        if i == 0 && ip == NONE {
            if spec.cluster_ips.len() > 1 {
                has_invalid = true;
                out.push(Cause::invalid(
                    ips_field,
                    &ips_value,
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let errs = validate_ip(&format!("spec.clusterIPs[{i}]"), ip, old_ips);
        has_invalid |= !errs.is_empty();
        out.extend(errs);
    }
    if spec.cluster_ips.len() > 2 {
        out.push(Cause::invalid(
            ips_field,
            &ips_value,
            "may only hold up to 2 values",
        ));
    }
    if has_invalid {
        return out;
    }
    if spec.cluster_ips.len() > 1 {
        let families: BTreeSet<bool> = spec.cluster_ips.iter().map(|ip| ip.contains(':')).collect();
        if families.len() != spec.cluster_ips.len() {
            out.push(Cause::invalid(
                ips_field,
                &ips_value,
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !spec.is_headless() && !spec.cluster_ips.is_empty() && !spec.ip_families.is_empty() {
        for (i, ip) in spec
            .cluster_ips
            .iter()
            .enumerate()
            .take(spec.ip_families.len())
        {
            let v6 = ip.contains(':');
            if spec.ip_families[i] == "IPv4" && v6 {
                out.push(Cause::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    &json!(ip),
                    &format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if spec.ip_families[i] == "IPv6" && !v6 {
                out.push(Cause::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    &json!(ip),
                    &format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    out
}

fn validate_load_balancer_class(old: Option<&ServiceSpec>, spec: &ServiceSpec) -> Vec<Cause> {
    let mut out = Vec::new();
    let field = "spec.loadBalancerClass";
    if let Some(old) = old {
        if old.is_type(LOAD_BALANCER)
            && spec.is_type(LOAD_BALANCER)
            && old.load_balancer_class != spec.load_balancer_class
        {
            out.push(Cause::invalid(
                field,
                &opt_value(&spec.load_balancer_class),
                "may not change once set",
            ));
        }
    }
    if spec.is_type(LOAD_BALANCER) {
        if let Some(class) = &spec.load_balancer_class {
            out.extend(
                is_qualified_name(class)
                    .iter()
                    .map(|m| Cause::invalid(field, &json!(class), m)),
            );
        }
    } else if spec.load_balancer_class.is_some() {
        out.push(Cause::forbidden(
            field,
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    out
}

fn validate_external_traffic_policy(spec: &ServiceSpec) -> Vec<Cause> {
    let mut out = Vec::new();
    let etp = &spec.external_traffic_policy;
    if !spec.externally_accessible() {
        if !etp.is_empty() {
            out.push(Cause::invalid(
                "spec.externalTrafficPolicy",
                &json!(etp),
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        out.push(Cause::required("spec.externalTrafficPolicy", ""));
    } else if etp != CLUSTER && etp != LOCAL {
        out.push(Cause::not_supported(
            "spec.externalTrafficPolicy",
            &json!(etp),
            &[CLUSTER, LOCAL],
        ));
    }
    let hc = spec.health_check_node_port;
    if !spec.needs_health_check() {
        if hc != 0 {
            out.push(Cause::invalid(
                "spec.healthCheckNodePort",
                &json!(hc),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc == 0 {
        out.push(Cause::required("spec.healthCheckNodePort", ""));
    } else if !is_valid_port_num(hc) {
        out.push(Cause::invalid(
            "spec.healthCheckNodePort",
            &json!(hc),
            PORT_RANGE_MSG,
        ));
    }
    out
}

/// Upstream `ValidateService` minus `ValidateObjectMeta`. `old` is the stored Service on
/// update: addresses it already had stay valid under the stricter IP rules.
pub fn validate_service(
    spec: &ServiceSpec,
    annotations: &BTreeMap<String, String>,
    old: Option<&ServiceSpec>,
) -> Vec<Cause> {
    let mut out = Vec::new();
    if let (Some(mode), Some(hints)) = (
        annotations.get(ANNOTATION_TOPOLOGY_MODE),
        annotations.get(ANNOTATION_TOPOLOGY_HINTS),
    ) {
        if mode != hints {
            out.push(Cause::invalid(
                format!("metadata.annotations[{ANNOTATION_TOPOLOGY_MODE}]"),
                &json!(mode),
                &format!(
                    "must match annotations[{ANNOTATION_TOPOLOGY_HINTS}] when both are specified"
                ),
            ));
        }
    }
    let headless = spec.is_headless();
    if spec.ports.is_empty() && !headless && !spec.is_type(EXTERNAL_NAME) {
        out.push(Cause::required("spec.ports", ""));
    }
    match spec.type_.as_str() {
        LOAD_BALANCER | NODE_PORT if headless => {
            out.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &json!(spec.cluster_ips[0]),
                &format!("may not be set to 'None' for {} services", spec.type_),
            ));
        }
        EXTERNAL_NAME => {
            if !spec.cluster_ips.is_empty() {
                out.push(Cause::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !spec.ip_families.is_empty() {
                out.push(Cause::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                out.push(Cause::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            // A trailing dot marks the name as fully qualified.
            let cname = spec
                .external_name
                .strip_suffix('.')
                .unwrap_or(&spec.external_name);
            if cname.is_empty() {
                out.push(Cause::required("spec.externalName", ""));
            } else {
                out.extend(
                    is_dns1123_subdomain(cname)
                        .iter()
                        .map(|m| Cause::invalid("spec.externalName", &json!(cname), m)),
                );
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in spec.ports.iter().enumerate() {
        out.extend(validate_service_port(
            p,
            spec.ports.len() > 1,
            &mut names,
            i,
        ));
    }
    out.extend(validate_selector(&spec.selector, "spec.selector"));
    match spec.session_affinity.as_str() {
        "" => out.push(Cause::required("spec.sessionAffinity", "")),
        "ClientIP" => out.extend(validate_client_ip_affinity_config(
            &spec.session_affinity_config,
        )),
        NONE => {
            if spec.session_affinity_config.is_some() {
                out.push(Cause::forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => out.push(Cause::not_supported(
            "spec.sessionAffinity",
            &json!(other),
            &["ClientIP", NONE],
        )),
    }
    out.extend(validate_cluster_ips_related_fields(spec, old));
    let old_external: &[String] = old.map(|o| o.external_ips.as_slice()).unwrap_or(&[]);
    for (i, ip) in spec.external_ips.iter().enumerate() {
        let field = format!("spec.externalIPs[{i}]");
        let errs = validate_ip(&field, ip, old_external);
        if errs.is_empty() {
            out.extend(validate_non_special_ip(&field, ip));
        } else {
            out.extend(errs);
        }
    }
    if spec.type_.is_empty() {
        out.push(Cause::required("spec.type", ""));
    } else if !matches!(
        spec.type_.as_str(),
        CLUSTER_IP | NODE_PORT | LOAD_BALANCER | EXTERNAL_NAME
    ) {
        out.push(Cause::not_supported(
            "spec.type",
            &json!(spec.type_),
            &[CLUSTER_IP, EXTERNAL_NAME, LOAD_BALANCER, NODE_PORT],
        ));
    }
    if spec.is_type(CLUSTER_IP) {
        for (i, p) in spec.ports.iter().enumerate() {
            if p.node_port != 0 {
                out.push(Cause::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, p) in spec.ports.iter().enumerate() {
        if p.node_port != 0 && !node_ports.insert((p.protocol.as_str(), p.node_port)) {
            out.push(Cause::duplicate(
                format!("spec.ports[{i}].nodePort"),
                &json!(p.node_port),
            ));
        }
    }
    let mut ports = BTreeSet::new();
    for (i, p) in spec.ports.iter().enumerate() {
        if !ports.insert((p.protocol.as_str(), p.port)) {
            out.push(Cause::new(
                "FieldValueDuplicate",
                format!("spec.ports[{i}]"),
                format!(
                    "Duplicate value: {}",
                    duplicate_port_value(&p.protocol, p.port)
                ),
            ));
        }
    }
    if !spec.load_balancer_source_ranges.is_empty() {
        // Upstream's field path really is capitalised here.
        let field = "spec.LoadBalancerSourceRanges";
        if !spec.is_type(LOAD_BALANCER) {
            out.push(Cause::forbidden(
                field,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let old_ranges: &[String] = old
            .map(|o| o.load_balancer_source_ranges.as_slice())
            .unwrap_or(&[]);
        for (i, r) in spec.load_balancer_source_ranges.iter().enumerate() {
            // Historically space-padded values are allowed.
            out.extend(validate_cidr(
                &format!("{field}[{i}]"),
                r.trim(),
                old_ranges,
            ));
        }
    } else if let Some(val) = annotations.get(ANNOTATION_SOURCE_RANGES) {
        let field = format!("metadata.annotations[{ANNOTATION_SOURCE_RANGES}]");
        if !spec.is_type(LOAD_BALANCER) {
            out.push(Cause::forbidden(
                field.clone(),
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let val = val.trim();
        if !val.is_empty() {
            for r in val.split(',') {
                out.extend(validate_cidr(&field, r.trim(), &[]));
            }
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && !spec.is_type(LOAD_BALANCER) {
        out.push(Cause::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if spec.is_type(LOAD_BALANCER) && spec.allocate_load_balancer_node_ports.is_none() {
        // Upstream's path lacks the `spec.` here.
        out.push(Cause::required("allocateLoadBalancerNodePorts", ""));
    }
    out.extend(validate_load_balancer_class(None, spec));
    out.extend(validate_external_traffic_policy(spec));
    match &spec.internal_traffic_policy {
        None if spec.is_type(NODE_PORT)
            || spec.is_type(LOAD_BALANCER)
            || spec.is_type(CLUSTER_IP) =>
        {
            out.push(Cause::required("spec.internalTrafficPolicy", ""));
        }
        Some(itp) if itp != CLUSTER && itp != LOCAL => {
            out.push(Cause::not_supported(
                "spec.internalTrafficPolicy",
                &json!(itp),
                &[CLUSTER, LOCAL],
            ));
        }
        _ => {}
    }
    if let Some(td) = &spec.traffic_distribution {
        const SUPPORTED: [&str; 3] = ["PreferClose", "PreferSameZone", "PreferSameNode"];
        if !SUPPORTED.contains(&td.as_str()) {
            out.push(Cause::not_supported(
                "spec.trafficDistribution",
                &json!(td),
                &SUPPORTED,
            ));
        }
    }
    out
}

/// Upstream `validateUpgradeDowngradeClusterIPs`.
fn validate_upgrade_downgrade_cluster_ips(old: &ServiceSpec, spec: &ServiceSpec) -> Vec<Cause> {
    let mut out = Vec::new();
    if spec.is_type(EXTERNAL_NAME) || old.is_type(EXTERNAL_NAME) {
        return out;
    }
    if old.is_headless() && spec.is_headless() {
        return out;
    }
    let value = json!(spec.cluster_ips);
    let (o, n) = (&old.cluster_ips, &spec.cluster_ips);
    if o.len() == n.len() {
        for (i, ip) in o.iter().enumerate() {
            if *ip != n[i] {
                out.push(Cause::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    &value,
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            out.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &value,
                "primary clusterIP can not be unset",
            ));
        }
        if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
            out.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &value,
                "may not change once set",
            ));
        }
        if n.len() == 1 && spec.policy() != SINGLE_STACK {
            out.push(Cause::invalid(
                "spec.ipFamilyPolicy",
                &opt_value(&spec.ip_family_policy),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        out.push(Cause::invalid(
            "spec.clusterIPs[0]",
            &value,
            "may not change once set",
        ));
    }
    out
}

/// Upstream `validateUpgradeDowngradeIPFamilies` (its odd choice of values included).
fn validate_upgrade_downgrade_ip_families(old: &ServiceSpec, spec: &ServiceSpec) -> Vec<Cause> {
    let mut out = Vec::new();
    if spec.is_type(EXTERNAL_NAME) || old.is_type(EXTERNAL_NAME) {
        return out;
    }
    if spec.is_headless() != old.is_headless() || spec.is_headless() {
        return out;
    }
    let (o, n) = (&old.ip_families, &spec.ip_families);
    if o.len() == n.len() {
        for (i, f) in o.iter().enumerate() {
            if *f != n[i] {
                out.push(Cause::invalid(
                    "spec.ipFamilies[0]",
                    &json!(n),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if spec.cluster_ips.is_empty() {
            out.push(Cause::invalid(
                "spec.ipFamilies[0]",
                &json!(n),
                "primary ipFamily can not be unset",
            ));
        }
        if !n.is_empty() && n[0] != o[0] {
            out.push(Cause::invalid(
                "spec.ipFamilies[0]",
                &json!(spec.cluster_ips),
                "may not change once set",
            ));
        }
        if n.len() == 1 && spec.policy() != SINGLE_STACK {
            out.push(Cause::invalid(
                "spec.ipFamilyPolicy",
                &opt_value(&spec.ip_family_policy),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
        out.push(Cause::invalid(
            "spec.ipFamilies[0]",
            &json!(spec.cluster_ips),
            "may not change once set",
        ));
    }
    out
}

/// Upstream `ValidateServiceUpdate` minus `ValidateObjectMetaUpdate`.
pub fn validate_service_update(
    spec: &ServiceSpec,
    old: &ServiceSpec,
    annotations: &BTreeMap<String, String>,
) -> Vec<Cause> {
    let mut out = validate_upgrade_downgrade_cluster_ips(old, spec);
    out.extend(validate_upgrade_downgrade_ip_families(old, spec));
    out.extend(validate_load_balancer_class(Some(old), spec));
    if old.needs_health_check()
        && spec.needs_health_check()
        && old.health_check_node_port != spec.health_check_node_port
    {
        out.push(Cause::forbidden(
            "spec.healthCheckNodePort",
            "field is immutable",
        ));
    }
    out.extend(validate_service(spec, annotations, Some(old)));
    out
}

/// Upstream `ValidateLoadBalancerStatus` as `ValidateServiceStatusUpdate` runs it. `old` is
/// the stored status: ingress IPs it had stay valid.
pub fn validate_status(
    status: &ServiceStatus,
    spec: &ServiceSpec,
    old: Option<&ServiceStatus>,
) -> Vec<Cause> {
    let mut out = Vec::new();
    let path = "status.loadBalancer.ingress";
    let ingress = &status.load_balancer.ingress;
    if !spec.is_type(LOAD_BALANCER) && !ingress.is_empty() {
        out.push(Cause::forbidden(
            path,
            "may only be used when `spec.type` is 'LoadBalancer'",
        ));
        return out;
    }
    let old_ips: Vec<String> = old
        .map(|s| {
            s.load_balancer
                .ingress
                .iter()
                .filter(|i| !i.ip.is_empty())
                .map(|i| i.ip.clone())
                .collect()
        })
        .unwrap_or_default();
    for (i, ing) in ingress.iter().enumerate() {
        let idx = format!("{path}[{i}]");
        if !ing.ip.is_empty() {
            out.extend(validate_ip(&format!("{idx}.ip"), &ing.ip, &old_ips));
        }
        match &ing.ip_mode {
            None if !ing.ip.is_empty() => out.push(Cause::required(
                format!("{idx}.ipMode"),
                "must be specified when `ip` is set",
            )),
            None => {}
            Some(_) if ing.ip.is_empty() => {
                out.push(Cause::forbidden(
                    format!("{idx}.ipMode"),
                    "may not be specified when `ip` is not set",
                ));
            }
            Some(mode) if mode != "VIP" && mode != "Proxy" => {
                out.push(Cause::not_supported(
                    format!("{idx}.ipMode"),
                    &json!(mode),
                    &["Proxy", "VIP"],
                ));
            }
            Some(_) => {}
        }
        if !ing.hostname.is_empty() {
            let field = format!("{idx}.hostname");
            out.extend(
                is_dns1123_subdomain(&ing.hostname)
                    .iter()
                    .map(|m| Cause::invalid(field.clone(), &json!(ing.hostname), m)),
            );
            if crate::netval::parse_ip_sloppy(&ing.hostname).is_some() {
                out.push(Cause::invalid(
                    field,
                    &json!(ing.hostname),
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> ServiceSpec {
        let mut svc = Service::from_object(&json!({ "spec": v })).unwrap();
        crate::defaults::set_defaults(&mut svc);
        crate::strategy::normalize_cluster_ips(&mut svc.spec, None);
        svc.spec
    }

    fn lines(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    fn check(v: Value) -> Vec<String> {
        lines(&validate_service(&spec(v), &BTreeMap::new(), None))
    }

    #[test]
    fn port_names() {
        assert!(port_name_messages("http").is_empty());
        assert!(port_name_messages("1234x").is_empty());
        assert_eq!(
            port_name_messages("HTTP_Port"),
            vec!["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]
        );
        assert_eq!(
            port_name_messages("this-name-is-too-long"),
            vec!["must be no more than 15 characters"]
        );
        assert_eq!(
            port_name_messages("a--b"),
            vec!["must not contain consecutive hyphens"]
        );
        assert_eq!(
            port_name_messages("8080"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert_eq!(
            port_name_messages("-ab"),
            vec!["must not begin or end with a hyphen"]
        );
    }

    #[test]
    fn a_valid_cluster_ip_service() {
        assert!(check(json!({"selector": {"app": "nginx"}, "ports": [{"port": 80}], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"})).is_empty());
    }

    #[test]
    fn selector_keys_and_values() {
        assert_eq!(
            check(json!({"ports": [{"port": 80}], "selector": {"app": "nginx!", "bad key/with/two/slashes": "x"}})),
            vec![
                "spec.selector: Invalid value: \"nginx!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                "spec.selector: Invalid value: \"bad key/with/two/slashes\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            ]
        );
    }

    #[test]
    fn cluster_ips_related_fields() {
        let errs = |v: Value| lines(&validate_cluster_ips_related_fields(&spec(v), None));
        assert_eq!(errs(json!({"clusterIP": "10.43.100.101", "clusterIPs": ["10.43.100.102"]})), vec![
            "spec.clusterIPs: Invalid value: [\"10.43.100.102\"]: first value must match `clusterIP`"
        ]);
        assert_eq!(errs(json!({"clusterIPs": ["10.43.100.102"]})), vec![
            "spec.clusterIPs: Invalid value: [\"10.43.100.102\"]: must be empty when `clusterIP` is not specified"
        ]);
        assert_eq!(errs(json!({"clusterIP": "10.96.1"})), vec![
            "spec.clusterIPs[0]: Invalid value: \"10.96.1\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        ]);
        assert_eq!(errs(json!({"clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5", "10.43.0.6"]})), vec![
            "spec.clusterIPs: Invalid value: [\"10.43.0.5\",\"10.43.0.6\"]: may specify no more than one IP for each IP family"
        ]);
        assert_eq!(errs(json!({"clusterIP": "None", "clusterIPs": ["None", "10.43.0.6"]})), vec![
            "spec.clusterIPs: Invalid value: [\"None\",\"10.43.0.6\"]: 'None' must be the first and only value"
        ]);
        assert_eq!(errs(json!({"clusterIP": "fd00::5", "ipFamilies": ["IPv4"]})), vec![
            "spec.clusterIPs[0]: Invalid value: \"fd00::5\": expected an IPv4 value as indicated by `ipFamilies[0]`"
        ]);
        assert_eq!(
            errs(json!({"ipFamilies": ["IPv4", "IPv4"]})),
            vec!["spec.ipFamilies[1]: Duplicate value: \"IPv4\""]
        );
    }

    #[test]
    fn external_name_rules() {
        assert!(
            check(json!({"type": "ExternalName", "externalName": "www.example.com."})).is_empty()
        );
        assert!(
            check(json!({"type": "ExternalName", "externalName": "192.168.150.41"})).is_empty()
        );
        assert_eq!(
            check(json!({"type": "ExternalName", "externalName": "."})),
            vec!["spec.externalName: Required value"]
        );
    }

    #[test]
    fn status_rules() {
        let lb = spec(json!({"type": "LoadBalancer"}));
        let status = |v: Value| -> ServiceStatus {
            serde_json::from_value(json!({"loadBalancer": {"ingress": v}})).unwrap()
        };
        assert!(validate_status(
            &status(
                json!([{"ip": "192.168.150.100", "ipMode": "VIP"}, {"hostname": "lb.example.com"}])
            ),
            &lb,
            None
        )
        .is_empty());
        assert_eq!(lines(&validate_status(&status(json!([{"ip": "1.2.3.4", "ipMode": "Bogus"}])), &lb, None)), vec![
            "status.loadBalancer.ingress[0].ipMode: Unsupported value: \"Bogus\": supported values: \"Proxy\", \"VIP\""
        ]);
        assert_eq!(lines(&validate_status(&status(json!([{"ip": "1.2.3.4"}])), &lb, None)), vec![
            "status.loadBalancer.ingress[0].ipMode: Required value: must be specified when `ip` is set"
        ]);
        assert_eq!(lines(&validate_status(&status(json!([{"hostname": "1.2.3.4"}])), &lb, None)), vec![
            "status.loadBalancer.ingress[0].hostname: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address"
        ]);
    }

    #[test]
    fn update_rules() {
        let old = spec(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 30827,
            "clusterIP": "10.43.0.5", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "ports": [{"port": 80}]}),
        );
        let mut new = old.clone();
        new.health_check_node_port = 30828;
        assert_eq!(
            lines(&validate_service_update(&new, &old, &BTreeMap::new())),
            vec!["spec.healthCheckNodePort: Forbidden: field is immutable"]
        );
        let mut unset = old.clone();
        unset.cluster_ip.clear();
        unset.cluster_ips.clear();
        assert_eq!(
            lines(&validate_service_update(&unset, &old, &BTreeMap::new()))[0],
            "spec.clusterIPs[0]: Invalid value: []: primary clusterIP can not be unset"
        );
    }
}
