//! Row cells per kind: a transcription of the `print*` functions of
//! `pkg/printers/internalversion/printers.go` (wide mode) working on JSON objects, and of
//! apiextensions' JSONPath table convertor for custom resources.

use super::columns::{custom_columns, CrColumn};
use super::translate_timestamp_since;
use crate::registry::ResourceInfo;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const NONE: &str = "<none>";

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    (!cur.is_null()).then_some(cur)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn i64_at(v: &Value, path: &[&str]) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn bool_at(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

fn len_at(v: &Value, path: &[&str]) -> usize {
    at(v, path)
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
}

fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    json!(translate_timestamp_since(
        crate::meta::meta_str(obj, "creationTimestamp"),
        now
    ))
}

fn name(obj: &Value) -> Value {
    json!(crate::meta::name(obj))
}

fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    at(v, path)
        .and_then(Value::as_str)
        .and_then(crate::meta::parse_time)
}

pub(super) fn cells(res: &ResourceInfo, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    if let Some(cr) = custom_columns(res) {
        return custom_resource(cr, obj, now);
    }
    match (res.group, res.kind) {
        ("", "Pod") => pod(obj, now),
        ("", "Service") => service(obj, now),
        ("", "Endpoints") => vec![name(obj), json!(format_endpoints(obj)), age(obj, now)],
        ("", "Node") => node(obj, now),
        ("", "Event") => event(obj, now),
        ("", "Namespace") => vec![
            name(obj),
            json!(str_at(obj, &["status", "phase"])),
            age(obj, now),
        ],
        ("", "Secret") => {
            // A v1 object may still carry stringData, which the internal type folds into data.
            let mut keys: BTreeSet<&str> = BTreeSet::new();
            for field in ["data", "stringData"] {
                if let Some(m) = at(obj, &[field]).and_then(Value::as_object) {
                    keys.extend(m.keys().map(String::as_str));
                }
            }
            vec![
                name(obj),
                json!(str_at(obj, &["type"])),
                json!(keys.len() as i64),
                age(obj, now),
            ]
        }
        // printServiceAccount: the number of secrets, an integer in a "string" column.
        ("", "ServiceAccount") => vec![
            name(obj),
            json!(arr_at(obj, &["secrets"]).len() as i64),
            age(obj, now),
        ],
        ("", "ConfigMap") => {
            let n = len_at(obj, &["data"]) + len_at(obj, &["binaryData"]);
            vec![name(obj), json!(n as i64), age(obj, now)]
        }
        ("coordination.k8s.io", "Lease") => {
            vec![
                name(obj),
                json!(str_at(obj, &["spec", "holderIdentity"])),
                age(obj, now),
            ]
        }
        ("discovery.k8s.io", "EndpointSlice") => vec![
            name(obj),
            json!(str_at(obj, &["addressType"])),
            json!(format_discovery_ports(arr_at(obj, &["ports"]))),
            json!(format_discovery_endpoints(arr_at(obj, &["endpoints"]))),
            age(obj, now),
        ],
        ("networking.k8s.io", "Ingress") => ingress(obj, now),
        ("networking.k8s.io", "IngressClass") => ingress_class(obj, now),
        ("networking.k8s.io", "IPAddress") => vec![name(obj), json!(ip_address_parent(obj))],
        ("networking.k8s.io", "ServiceCIDR") => {
            let cidrs: Vec<&str> = arr_at(obj, &["spec", "cidrs"]).iter().filter_map(Value::as_str).collect();
            vec![name(obj), json!(cidrs.join(",")), age(obj, now)]
        }
        _ => {
            let created =
                crate::meta::meta_str(obj, "creationTimestamp").map_or(Value::Null, |t| json!(t));
            vec![name(obj), created]
        }
    }
}

pub(super) fn conditions(res: &ResourceInfo, obj: &Value) -> Option<Value> {
    if !res.group.is_empty() || res.kind != "Pod" {
        return None;
    }
    let (reason, message) = match str_at(obj, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

// ------------------------------------------------------------------------------------ Pod

fn is_restartable_init_container(c: Option<&Value>) -> bool {
    c.is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
}

fn pod(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total_containers = arr_at(obj, &["spec", "containers"]).len();
    let mut ready_containers = 0usize;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_init_restart: Option<DateTime<Utc>> = None;

    let phase = str_at(obj, &["status", "phase"]);
    let mut reason = phase.to_string();
    let status_reason = str_at(obj, &["status", "reason"]);
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    for c in arr_at(obj, &["status", "conditions"]) {
        if str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    let init_containers = arr_at(obj, &["spec", "initContainers"]);
    let init_by_name: BTreeMap<&str, &Value> = init_containers
        .iter()
        .map(|c| (str_at(c, &["name"]), c))
        .collect();
    total_containers += init_containers
        .iter()
        .filter(|c| is_restartable_init_container(Some(c)))
        .count();

    let later = |current: Option<DateTime<Utc>>, t: Option<DateTime<Utc>>| match (current, t) {
        (Some(c), Some(t)) if c < t => Some(t),
        (None, Some(t)) => Some(t),
        (c, _) => c,
    };

    let mut initializing = false;
    for (i, cs) in arr_at(obj, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = i64_at(cs, &["restartCount"]);
        restarts += count;
        let finished = time_at(cs, &["lastState", "terminated", "finishedAt"]);
        if at(cs, &["lastState", "terminated"]).is_some() {
            last_restart = later(last_restart, finished);
        }
        let restartable =
            is_restartable_init_container(init_by_name.get(str_at(cs, &["name"])).copied());
        if restartable {
            restartable_init_restarts += count;
            if at(cs, &["lastState", "terminated"]).is_some() {
                last_restartable_init_restart = later(last_restartable_init_restart, finished);
            }
        }
        let terminated = at(cs, &["state", "terminated"]);
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| i64_at(t, &["exitCode"]) == 0) {
            continue;
        } else if restartable && bool_at(cs, &["started"]) {
            if bool_at(cs, &["ready"]) {
                ready_containers += 1;
            }
            continue;
        } else if let Some(t) = terminated {
            // Initialization failed.
            let r = str_at(t, &["reason"]);
            reason = if !r.is_empty() {
                format!("Init:{r}")
            } else if i64_at(t, &["signal"]) != 0 {
                format!("Init:Signal:{}", i64_at(t, &["signal"]))
            } else {
                format!("Init:ExitCode:{}", i64_at(t, &["exitCode"]))
            };
            initializing = true;
        } else if at(cs, &["state", "waiting"]).is_some()
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            reason = format!("Init:{waiting_reason}");
            initializing = true;
        } else {
            reason = format!("Init:{}/{}", i, init_containers.len());
            initializing = true;
        }
        break;
    }

    let initialized = arr_at(obj, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == "Initialized" && str_at(c, &["status"]) == "True");
    if !initializing || initialized {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for cs in arr_at(obj, &["status", "containerStatuses"]).iter().rev() {
            restarts += i64_at(cs, &["restartCount"]);
            if at(cs, &["lastState", "terminated"]).is_some() {
                last_restart = later(
                    last_restart,
                    time_at(cs, &["lastState", "terminated", "finishedAt"]),
                );
            }
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            let terminated = at(cs, &["state", "terminated"]);
            if at(cs, &["state", "waiting"]).is_some() && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let r = str_at(t, &["reason"]);
                reason = if !r.is_empty() {
                    r.to_string()
                } else if i64_at(t, &["signal"]) != 0 {
                    format!("Signal:{}", i64_at(t, &["signal"]))
                } else {
                    format!("ExitCode:{}", i64_at(t, &["exitCode"]))
                };
            } else if bool_at(cs, &["ready"]) && at(cs, &["state", "running"]).is_some() {
                has_running = true;
                ready_containers += 1;
            }
        }
        // Back to "Running" if a container still runs.
        if reason == "Completed" && has_running {
            let ready = arr_at(obj, &["status", "conditions"])
                .iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            reason = if ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = crate::meta::deletion_timestamp(obj).is_some();
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", super::human_duration(now - t)),
        _ => restarts.to_string(),
    };

    let ip = crate::fields::pod_ip(obj);
    let or_none = |s: &str| {
        if s.is_empty() {
            NONE.to_string()
        } else {
            s.to_string()
        }
    };
    let gates = arr_at(obj, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        NONE.to_string()
    } else {
        let conds = arr_at(obj, &["status", "conditions"]);
        let true_conditions = gates
            .iter()
            .filter(|g| {
                let t = str_at(g, &["conditionType"]);
                conds
                    .iter()
                    .find(|c| str_at(c, &["type"]) == t)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_conditions}/{}", gates.len())
    };
    vec![
        name(obj),
        json!(format!("{ready_containers}/{total_containers}")),
        json!(reason),
        json!(restarts_str),
        age(obj, now),
        json!(or_none(ip)),
        json!(or_none(str_at(obj, &["spec", "nodeName"]))),
        json!(or_none(str_at(obj, &["status", "nominatedNodeName"]))),
        json!(readiness_gates),
    ]
}

// ------------------------------------------------------------------------------------ Service

/// Load balancer ingress points: IPs, else hostnames, de-duplicated and sorted (a Go string set).
/// The server prints wide, so the 16-character clipping never applies.
fn load_balancer_status(status: &Value) -> String {
    let mut set = BTreeSet::new();
    for ing in arr_at(status, &["ingress"]) {
        let ip = str_at(ing, &["ip"]);
        let host = str_at(ing, &["hostname"]);
        if !ip.is_empty() {
            set.insert(ip);
        } else if !host.is_empty() {
            set.insert(host);
        }
    }
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn strings(values: &[Value]) -> Vec<&str> {
    values.iter().filter_map(Value::as_str).collect()
}

fn service_external_ip(obj: &Value) -> String {
    let external_ips = strings(arr_at(obj, &["spec", "externalIPs"]));
    match str_at(obj, &["spec", "type"]) {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                NONE.to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = at(obj, &["status", "loadBalancer"])
                .map(load_balancer_status)
                .unwrap_or_default();
            if !external_ips.is_empty() {
                let mut results: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    results.extend(lb.split(','));
                }
                results.extend(external_ips);
                return results.join(",");
            }
            if !lb.is_empty() {
                return lb;
            }
            "<pending>".to_string()
        }
        "ExternalName" => str_at(obj, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cluster_ips = strings(arr_at(obj, &["spec", "clusterIPs"]));
    let legacy = str_at(obj, &["spec", "clusterIP"]);
    let internal_ip = match cluster_ips.first() {
        Some(ip) => ip.to_string(),
        None if !legacy.is_empty() => legacy.to_string(),
        None => NONE.to_string(),
    };
    let ports: Vec<String> = arr_at(obj, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = i64_at(p, &["port"]);
            let node_port = i64_at(p, &["nodePort"]);
            let proto = str_at(p, &["protocol"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        NONE.to_string()
    } else {
        ports.join(",")
    };
    let selector: BTreeMap<String, String> = at(obj, &["spec", "selector"])
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    vec![
        name(obj),
        json!(str_at(obj, &["spec", "type"])),
        json!(internal_ip),
        json!(service_external_ip(obj)),
        json!(ports),
        age(obj, now),
        json!(crate::selector::format_labels(&selector)),
    ]
}

// ------------------------------------------------------------------------------------ Endpoints

/// Upstream `formatEndpoints`: at most three `ip:port` (or bare IPs for port-less subsets),
/// then ` + N more...`; ready addresses only.
fn format_endpoints(obj: &Value) -> String {
    let subsets = arr_at(obj, &["subsets"]);
    if subsets.is_empty() {
        return NONE.to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, &["ip"]), i64_at(port, &["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - MAX);
    }
    ret
}

/// Go `net.JoinHostPort`: IPv6 addresses in brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

// ------------------------------------------------------------------------------------ EndpointSlice

fn list_with_more(list: Vec<String>, more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        return "<unset>".to_string();
    }
    ret
}

fn format_discovery_ports(ports: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    for p in ports {
        if list.len() < MAX {
            let number = at(p, &["port"]).and_then(Value::as_i64);
            let name = at(p, &["name"]).and_then(Value::as_str);
            list.push(match (number, name) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            });
        } else if list.len() == MAX {
            more = true;
        }
    }
    list_with_more(list, more, ports.len(), MAX)
}

fn format_discovery_endpoints(endpoints: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for e in endpoints {
        for a in strings(arr_at(e, &["addresses"])) {
            if list.len() < MAX {
                list.push(a.to_string());
            } else if list.len() == MAX {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(list, more, count, MAX)
}

// ------------------------------------------------------------------------------------ Node

fn node(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut status: Vec<&str> = Vec::new();
    // The last condition of a type wins, as in upstream's map.
    if let Some(ready) = arr_at(obj, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready")
    {
        status.push(if str_at(ready, &["status"]) == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if bool_at(obj, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let mut roles = BTreeSet::new();
    for (k, v) in crate::meta::labels(obj) {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.insert(v);
        }
    }
    let roles = if roles.is_empty() {
        NONE.to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };
    let address = |t: &str| {
        arr_at(obj, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == t)
            .map(|a| str_at(a, &["address"]).to_string())
            .unwrap_or_else(|| NONE.to_string())
    };
    let info = |f: &str| {
        let v = str_at(obj, &["status", "nodeInfo", f]);
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        name(obj),
        json!(status.join(",")),
        json!(roles),
        age(obj, now),
        json!(str_at(obj, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

// ------------------------------------------------------------------------------------ Event

fn event(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let since =
        |path: &[&str]| translate_timestamp_since(at(obj, path).and_then(Value::as_str), now);
    let first_timestamp = if at(obj, &["firstTimestamp"]).is_some() {
        since(&["firstTimestamp"])
    } else {
        since(&["eventTime"])
    };
    let mut last_timestamp = if at(obj, &["lastTimestamp"]).is_some() {
        since(&["lastTimestamp"])
    } else {
        first_timestamp.clone()
    };
    let mut count = i64_at(obj, &["count"]);
    if at(obj, &["series"]).is_some() {
        last_timestamp = since(&["series", "lastObservedTime"]);
        count = i64_at(obj, &["series", "count"]);
    } else if count == 0 {
        // Singleton events of the new API have no count.
        count = 1;
    }
    let kind = str_at(obj, &["involvedObject", "kind"]).to_lowercase();
    let involved = str_at(obj, &["involvedObject", "name"]);
    let target = if involved.is_empty() {
        kind
    } else {
        format!("{kind}/{involved}")
    };
    let first_non_empty = |a: &'static [&'static str], b: &'static [&'static str]| {
        let x = str_at(obj, a);
        if x.is_empty() {
            str_at(obj, b)
        } else {
            x
        }
    };
    let component = first_non_empty(&["source", "component"], &["reportingComponent"]);
    let instance = first_non_empty(&["source", "host"], &["reportingInstance"]);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last_timestamp),
        json!(str_at(obj, &["type"])),
        json!(str_at(obj, &["reason"])),
        json!(target),
        json!(str_at(obj, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(str_at(obj, &["message"]).trim()),
        json!(first_timestamp),
        json!(count),
        name(obj),
    ]
}

// ------------------------------------------------------------------------------------ Ingress

fn ingress(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let class = at(obj, &["spec", "ingressClassName"])
        .and_then(Value::as_str)
        .unwrap_or(NONE);
    let rules = arr_at(obj, &["spec", "rules"]);
    const MAX: usize = 3;
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let address = at(obj, &["status", "loadBalancer"])
        .map(load_balancer_status)
        .unwrap_or_default();
    let ports = if arr_at(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj),
        json!(class),
        json!(hosts),
        json!(address),
        json!(ports),
        age(obj, now),
    ]
}

/// printIPAddress: `<resource>[.<group>][/<namespace>]/<name>`, lower-cased group/resource.
fn ip_address_parent(obj: &Value) -> String {
    let Some(p) = at(obj, &["spec", "parentRef"]) else { return NONE.to_string() };
    let mut s = str_at(p, &["resource"]).to_string();
    let group = str_at(p, &["group"]);
    if !group.is_empty() {
        s = format!("{s}.{group}");
    }
    s = s.to_lowercase();
    let namespace = str_at(p, &["namespace"]);
    if !namespace.is_empty() {
        s = format!("{s}/{namespace}");
    }
    format!("{s}/{}", str_at(p, &["name"]))
}

fn ingress_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parameters = match at(obj, &["spec", "parameters"]) {
        Some(p) => {
            let mut s = str_at(p, &["kind"]).to_string();
            if let Some(group) = at(p, &["apiGroup"]).and_then(Value::as_str) {
                s = format!("{s}.{group}");
            }
            format!("{s}/{}", str_at(p, &["name"]))
        }
        None => NONE.to_string(),
    };
    vec![
        name(obj),
        json!(str_at(obj, &["spec", "controller"])),
        json!(parameters),
        age(obj, now),
    ]
}

// ------------------------------------------------------------------------------------ Custom resources

/// A simple JSONPath (`.spec.addresses`) lookup; a missing key yields nothing.
fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for part in path.trim_start_matches('.').split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// Go's `encoding/json` output: map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped.
fn go_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", go_json(&json!(k)), go_json(&m[k.as_str()])))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(go_json).collect::<Vec<_>>().join(",")),
        Value::String(_) => v
            .to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029"),
        other => other.to_string(),
    }
}

/// apiextensions' table convertor: the name, then each column's JSONPath value. `string`
/// columns print scalars as text and lists/maps as compact JSON; typed columns keep the JSON
/// value when it has the column's type; anything missing or mistyped is `null`.
fn custom_resource(columns: &[CrColumn], obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut cells = vec![name(obj)];
    for c in columns {
        let cell = match json_path(obj, c.json_path) {
            None | Some(Value::Null) => Value::Null,
            Some(v) => match (c.type_, v) {
                ("string", Value::String(s)) => json!(s),
                ("string", Value::Array(_) | Value::Object(_)) => json!(go_json(v)),
                ("string", other) => json!(other.to_string()),
                ("boolean", Value::Bool(b)) => json!(b),
                ("integer", Value::Number(n)) => n
                    .as_i64()
                    .map(|i| json!(i))
                    .or_else(|| n.as_f64().map(|f| json!(f as i64)))
                    .unwrap_or(Value::Null),
                ("number", Value::Number(n)) => n.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
                ("date", Value::String(s)) => match crate::meta::parse_time(s) {
                    Some(t) => json!(super::human_duration(now - t)),
                    None => json!("<invalid>"),
                },
                _ => Value::Null,
            },
        };
        cells.push(cell);
    }
    cells
}
