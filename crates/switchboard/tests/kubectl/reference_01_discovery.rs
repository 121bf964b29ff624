//! Replay of reference 01: /version, legacy and aggregated discovery, api-versions,
//! api-resources and /openapi. kube-apiserver serves ~60 resources, Switchboard the 15 below,
//! so the listings are compared after filtering the recording to what Switchboard serves (and
//! adding MetalLB's group, which the reference cluster did not have).

use crate::server_bugs;
use crate::transcript::{compare, compare_output, setup, skip, Replay};
use crate::{json, Cluster};
use serde_json::{json, Value};

/// Every resource Switchboard serves, as (groupVersion, plural).
pub const SERVED: &[(&str, &str)] = &[
    ("v1", "configmaps"),
    ("v1", "endpoints"),
    ("v1", "events"),
    ("v1", "namespaces"),
    ("v1", "nodes"),
    ("v1", "pods"),
    ("v1", "secrets"),
    ("v1", "serviceaccounts"),
    ("v1", "services"),
    ("coordination.k8s.io/v1", "leases"),
    ("discovery.k8s.io/v1", "endpointslices"),
    ("metallb.io/v1beta1", "ipaddresspools"),
    ("metallb.io/v1beta1", "l2advertisements"),
    ("networking.k8s.io/v1", "ingressclasses"),
    ("networking.k8s.io/v1", "ingresses"),
    ("networking.k8s.io/v1", "ipaddresses"),
    ("networking.k8s.io/v1", "servicecidrs"),
];

/// The API groups Switchboard serves that the reference cluster also served.
const SHARED_GROUPS: &[&str] = &[
    "coordination.k8s.io",
    "discovery.k8s.io",
    "networking.k8s.io",
];

const FILTERED_BELOW: &str =
    "kube-apiserver serves more resources: compared below, filtered to what Switchboard serves";
const BUILD_METADATA: &str = "gitVersion, gitCommit, buildDate, goVersion, compiler are Switchboard's own: compared below field by field";

/// The subresources Switchboard serves; kube-apiserver's others (pods/exec, pods/log,
/// services/proxy, ...) need a kubelet or a proxy and are out of scope.
const SERVED_SUBRESOURCES: &[&str] = &["status", "finalize"];

fn served(group_version: &str, resource: &str) -> bool {
    let mut parts = resource.split('/');
    let plural = parts.next().unwrap();
    let sub_ok = parts
        .next()
        .is_none_or(|s| SERVED_SUBRESOURCES.contains(&s));
    sub_ok
        && SERVED
            .iter()
            .any(|(gv, p)| *gv == group_version && *p == plural)
}

/// A jq filter for aggregated discovery that keeps only the subresources Switchboard serves.
const SERVED_AGGREGATED_SUBRESOURCES: &str = r#"jq '.items[].versions[].resources[] |= (if .subresources then .subresources |= map(select(.subresource == "status" or .subresource == "finalize")) else . end)'"#;

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

/// Compares two JSON documents as indented text, so a failure shows a line diff.
fn compare_json(expected: &Value, actual: &Value) -> Result<(), String> {
    compare_output(&pretty(expected), 0, &pretty(actual), 0, &Vec::new())
}

/// An APIResourceList with only the resources (and subresources) Switchboard serves.
fn filter_resource_list(mut doc: Value) -> Value {
    let gv = doc["groupVersion"].as_str().unwrap().to_string();
    let resources = doc["resources"].as_array_mut().unwrap();
    resources.retain(|r| served(&gv, r["name"].as_str().unwrap()));
    doc
}

/// A row laid out on `header`'s columns, as kubectl's tabwriter would print it.
fn table_row(header: &str, cells: &[&str]) -> String {
    let mut starts = vec![0];
    let chars: Vec<char> = header.chars().collect();
    for i in 2..chars.len() {
        if chars[i] != ' ' && chars[i - 1] == ' ' && chars[i - 2] == ' ' {
            starts.push(i);
        }
    }
    let mut row = String::new();
    for (i, cell) in cells.iter().enumerate() {
        while row.chars().count() < starts[i] {
            row.push(' ');
        }
        row.push_str(cell);
    }
    row.trim_end().to_string()
}

/// `kubectl api-resources [-o wide]` as the reference would print it for Switchboard's
/// resources: the recorded rows of served resources, plus MetalLB's, in kubectl's order
/// (core first, then by group).
fn expected_api_resources(recorded: &str, wide: bool) -> String {
    let mut lines = recorded.lines();
    let header = lines.next().unwrap();
    let mut rows: Vec<String> = lines
        .filter(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            // NAME, [SHORTNAMES], APIVERSION, NAMESPACED, KIND, ...: the API version is the
            // first cell that looks like one.
            let gv = cells
                .iter()
                .skip(1)
                .find(|c| **c == "v1" || c.contains('/'))
                .unwrap();
            served(gv, cells[0])
        })
        .map(str::to_string)
        .collect();
    let verbs = "create,delete,deletecollection,get,list,patch,update,watch";
    let metallb = |name: &str, kind: &str| {
        let mut cells = vec![name, "", "metallb.io/v1beta1", "true", kind];
        if wide {
            cells.push(verbs);
        }
        table_row(header, &cells)
    };
    let at = rows
        .iter()
        .position(|r| r.contains("networking.k8s.io/v1"))
        .unwrap();
    rows.insert(at, metallb("l2advertisements", "L2Advertisement"));
    rows.insert(at, metallb("ipaddresspools", "IPAddressPool"));
    format!("{header}\n{}\n", rows.join("\n"))
}

#[test]
fn reference_01_discovery() {
    let c = Cluster::start();
    let mut r = Replay::new("01-discovery.txt");
    r.run(
        &c,
        vec![
            // Checks the skew warning too: the server must say it is 1.36.
            compare(0, "kubectl version")
                .normalise(r"^Server Version: v\S+$", "Server Version: <VERSION>"),
            skip(1, "kubectl version -o json", BUILD_METADATA),
            skip(2, "kubectl get --raw /version", BUILD_METADATA),
            compare(3, "kubectl get --raw /api"),
            compare(4, "kubectl get --raw /api | python3"),
            skip(5, "/api/v1 | python3", FILTERED_BELOW),
            skip(6, "/apis | python3", FILTERED_BELOW),
            compare(7, "/apis/discovery.k8s.io/v1 | python3"),
            skip(8, "/apis/networking.k8s.io/v1 | python3", FILTERED_BELOW),
            compare(9, "/apis/coordination.k8s.io/v1 | python3"),
            compare(10, "/apis/discovery.k8s.io | python3"),
            // Writes ./aggr-api.json for 12; the headers (audit-id, etag, HTTP/2) are not compared.
            setup(11, "-o ./aggr-api.json"),
            compare(12, "./aggr-api.json").through(SERVED_AGGREGATED_SUBRESOURCES),
            skip(13, "select(.metadata.name==\"apps\"", FILTERED_BELOW),
            skip(14, "join(\",\")", FILTERED_BELOW),
            skip(15, "kubectl api-versions", FILTERED_BELOW),
            skip(16, "kubectl api-resources", FILTERED_BELOW),
            skip(17, "kubectl api-resources -o wide", FILTERED_BELOW),
            compare(18, "--api-group=discovery.k8s.io -o wide"),
            skip(19, "/openapi/v3 | python3", FILTERED_BELOW),
            compare(20, "/openapi/v2").known_server_bug(server_bugs::OPENAPI_V2_ENUMS),
        ],
    );

    // /version: the same fields, and the same values where they are not build metadata.
    let reference = json(&r.recorded(2, "get --raw /version").output);
    let ours = json(c.kubectl("get --raw /version").ok());
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let mut expected = ours.clone();
    for k in [
        "major",
        "minor",
        "emulationMajor",
        "emulationMinor",
        "minCompatibilityMajor",
        "minCompatibilityMinor",
        "gitTreeState",
        "platform",
    ] {
        expected[k] = reference[k].clone();
    }
    r.check(
        "/version fields",
        if keys(&reference) == keys(&ours) {
            Ok(())
        } else {
            Err(format!("{:?} vs {:?}", keys(&reference), keys(&ours)))
        },
    );
    r.check("/version values", compare_json(&expected, &ours));

    // /api/v1 and /apis/networking.k8s.io/v1, filtered.
    for (index, path) in [(5, "/api/v1"), (8, "/apis/networking.k8s.io/v1")] {
        let reference = filter_resource_list(json(&r.recorded(index, path).output));
        let ours = json(c.kubectl(&format!("get --raw {path}")).ok());
        r.check(
            &format!("{path} (served resources only)"),
            compare_json(&reference, &ours),
        );
    }

    // /apis: the groups both serve, in any order, plus MetalLB's.
    let reference = json(&r.recorded(6, "/apis | python3").output);
    let mut ours = json(c.kubectl("get --raw /apis").ok());
    let groups = |doc: &Value, keep: &dyn Fn(&str) -> bool| {
        let mut g: Vec<Value> = doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| keep(g["name"].as_str().unwrap()))
            .cloned()
            .collect();
        g.sort_by_key(|g| g["name"].as_str().unwrap().to_string());
        g
    };
    let mut expected = reference.clone();
    let mut expected_groups = groups(&reference, &|n| SHARED_GROUPS.contains(&n));
    expected_groups.push(json!({
        "name": "metallb.io",
        "versions": [{"groupVersion": "metallb.io/v1beta1", "version": "v1beta1"}],
        "preferredVersion": {"groupVersion": "metallb.io/v1beta1", "version": "v1beta1"}
    }));
    expected_groups.sort_by_key(|g| g["name"].as_str().unwrap().to_string());
    expected["groups"] = Value::Array(expected_groups);
    ours["groups"] = Value::Array(groups(&ours, &|_| true));
    r.check(
        "/apis (groups sorted by name)",
        compare_json(&expected, &ours),
    );

    // Aggregated discovery of /apis, filtered as the recording's jq filter did, then to what
    // Switchboard serves, groups in name order.
    let rec = r.recorded(13, "select(.metadata.name==\"apps\"");
    let reference = json(&rec.output);
    let ours = json(c.sh(&rec.command).ok());
    let shape = |doc: &Value| {
        let mut doc = doc.clone();
        let items = doc["items"].as_array_mut().unwrap();
        items.retain(|g| SHARED_GROUPS.contains(&g["metadata"]["name"].as_str().unwrap()));
        for g in items.iter_mut() {
            let name = g["metadata"]["name"].as_str().unwrap().to_string();
            for v in g["versions"].as_array_mut().unwrap() {
                let gv = format!("{name}/{}", v["version"].as_str().unwrap());
                let resources = v["resources"].as_array_mut().unwrap();
                resources.retain(|res| served(&gv, res["resource"].as_str().unwrap()));
                for res in resources.iter_mut() {
                    if let Some(subs) = res.get_mut("subresources").and_then(Value::as_array_mut) {
                        subs.retain(|s| {
                            SERVED_SUBRESOURCES.contains(&s["subresource"].as_str().unwrap())
                        });
                    }
                }
            }
        }
        items.sort_by_key(|g| g["metadata"]["name"].as_str().unwrap().to_string());
        doc
    };
    r.check(
        "aggregated discovery /apis (shared groups, served resources)",
        compare_json(&shape(&reference), &shape(&ours)),
    );

    // The aggregated group list (14): the shared groups plus MetalLB's, in any order.
    let rec = r.recorded(14, "join(\",\")");
    let mut expected: Vec<String> = rec
        .output
        .lines()
        .filter(|l| SHARED_GROUPS.contains(&l.split_whitespace().next().unwrap()))
        .map(str::to_string)
        .collect();
    expected.push("metallb.io  v1beta1".to_string());
    expected.sort();
    let run = c.sh(&rec.command);
    let mut ours: Vec<String> = run.ok().lines().map(str::to_string).collect();
    ours.sort();
    r.check(
        "aggregated discovery group list",
        compare_output(
            &(expected.join("\n") + "\n"),
            0,
            &(ours.join("\n") + "\n"),
            0,
            &Vec::new(),
        ),
    );

    // kubectl api-versions: sorted by kubectl, so the expected list is exact.
    let rec = r.recorded(15, "kubectl api-versions");
    let mut expected: Vec<&str> = rec
        .output
        .lines()
        .filter(|l| {
            *l == "v1"
                || SHARED_GROUPS
                    .iter()
                    .any(|g| l.starts_with(&format!("{g}/")))
        })
        .collect();
    expected.push("metallb.io/v1beta1");
    expected.sort();
    let run = c.kubectl("api-versions");
    r.check(
        "kubectl api-versions",
        compare_output(
            &(expected.join("\n") + "\n"),
            0,
            &run.out,
            run.code,
            &Vec::new(),
        ),
    );

    // kubectl api-resources, plain and wide.
    for (index, needle, wide) in [
        (16, "kubectl api-resources", false),
        (17, "kubectl api-resources -o wide", true),
    ] {
        let rec = r.recorded(index, needle);
        let expected = expected_api_resources(&rec.output, wide);
        let run = c.sh(&rec.command);
        r.check(
            needle,
            compare_output(&expected, 0, &run.out, run.code, &Vec::new()),
        );
    }

    // /openapi/v3: one document per served group version (and the roots), each URL with a hash.
    let reference = json(&r.recorded(19, "/openapi/v3 | python3").output);
    let ours = json(c.kubectl("get --raw /openapi/v3").ok());
    let wanted = |k: &str| {
        k == "api"
            || k == "api/v1"
            || k == "apis"
            || SHARED_GROUPS
                .iter()
                .any(|g| k == format!("apis/{g}") || k.starts_with(&format!("apis/{g}/")))
    };
    let mut expected: Vec<String> = reference["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| wanted(k))
        .cloned()
        .collect();
    expected.extend([
        "apis/metallb.io".to_string(),
        "apis/metallb.io/v1beta1".to_string(),
    ]);
    expected.sort();
    let paths = ours["paths"].as_object().cloned().unwrap_or_default();
    // `version`, `.well-known/openid-configuration` and `openid/v1/jwks` are optional here.
    let mut got: Vec<String> = paths
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "version" | ".well-known/openid-configuration" | "openid/v1/jwks"
            )
        })
        .cloned()
        .collect();
    got.sort();
    r.check(
        "/openapi/v3 paths",
        compare_output(
            &(expected.join("\n") + "\n"),
            0,
            &(got.join("\n") + "\n"),
            0,
            &Vec::new(),
        ),
    );
    let url_shape = regex::Regex::new(r"^/openapi/v3/(.+)\?hash=[0-9A-F]{128}$").unwrap();
    for (k, v) in &paths {
        let url = v["serverRelativeURL"].as_str().unwrap_or_default();
        let ok = url_shape.captures(url).is_some_and(|c| &c[1] == k.as_str());
        r.check(
            &format!("/openapi/v3 serverRelativeURL of {k}"),
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{url:?} is not /openapi/v3/{k}?hash=<128 upper-case hex digits>"
                ))
            },
        );
    }
    r.finish();
}
