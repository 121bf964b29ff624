//! Reference 03 replayed with kubectl: every command about Endpoints and EndpointSlices must
//! print what kube-controller-manager's objects printed, ages, uids, resourceVersions,
//! timestamps, allocated ClusterIPs and generated name suffixes aside. Pod listings (pod
//! defaulting is the API server's) and the graceful deletion of a pod (the API server keeps a
//! pod with a node Terminating; Switchboard's deletes it at once) are checked elsewhere or
//! skipped, with the reason below.

use crate::support::*;
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../controllers/tests/fixtures/03-pods-and-endpoints.txt"
);

/// (command, its recorded output)
fn commands() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(FILE).expect("reference 03 fixture");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(first) = lines[i].strip_prefix("$ ") {
            let mut cmd = vec![first.to_string()];
            if first.contains("<<'EOF'") {
                loop {
                    i += 1;
                    cmd.push(lines[i].to_string());
                    if lines[i] == "EOF" {
                        break;
                    }
                }
            }
            let mut output = Vec::new();
            i += 1;
            while !lines[i].starts_with("[exit code:") {
                output.push(lines[i]);
                i += 1;
            }
            out.push((cmd.join("\n"), output.join("\n")));
        }
        i += 1;
    }
    out
}

#[derive(Clone, Copy)]
enum Check {
    /// Run it; it must succeed.
    Run,
    /// Tables and describe output, compared token by token after normalising.
    Text,
    /// YAML compared as data, without what the server sets.
    Yaml,
    /// YAML lists of slices whose endpoint order (and slice order) upstream takes from a Go map.
    YamlUnordered,
    Skip(&'static str),
}

static AGE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\d+[smhd](\d+[sm])?$").unwrap());
static GENERATED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-[bcdfghjklmnpqrstvwxz2456789]{5}\b").unwrap());
static CLUSTER_IP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b10\.(96|43)\.\d+\.\d+\b").unwrap());

fn normalise_text(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.starts_with("Warning: v1 Endpoints is deprecated"))
        .map(|l| {
            let l = GENERATED.replace_all(l, "-<RAND>");
            let l = CLUSTER_IP.replace_all(&l, "<CLUSTER-IP>");
            l.split_whitespace()
                .map(|t| if AGE.is_match(t) { "<AGE>" } else { t })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn strip(mut v: Value, unordered: bool) -> Value {
    if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
        for it in items.iter_mut() {
            *it = strip(it.take(), unordered);
        }
        if unordered {
            items.sort_by_key(|i| i["ports"].to_string());
        }
        return v;
    }
    // kube-apiserver prints the empty `endpoints` and `ports` of a slice as `null` (Go fields
    // without omitempty); Switchboard's server leaves them out. That difference is the API
    // server's rendering, not the controllers' (they write `null`), so absent counts as null.
    if v.get("kind") == Some(&Value::String("EndpointSlice".into())) {
        if let Some(m) = v.as_object_mut() {
            m.entry("endpoints").or_insert(Value::Null);
            m.entry("ports").or_insert(Value::Null);
        }
    }
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "creationTimestamp",
            "resourceVersion",
            "uid",
            "generation",
            "name",
            "managedFields",
        ] {
            m.remove(f);
        }
        if let Some(refs) = m.get_mut("ownerReferences").and_then(Value::as_array_mut) {
            for r in refs {
                r.as_object_mut().unwrap().remove("uid");
            }
        }
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
            // The trigger time is a timestamp of this run; that it is there is what counts.
            if let Some(t) = a.get_mut("endpoints.kubernetes.io/last-change-trigger-time") {
                *t = Value::String("<TIME>".into());
            }
        }
    }
    // Target uids are the pods' (different each run).
    fn uids(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.contains_key("kind") && m.get("kind") == Some(&Value::String("Pod".into())) {
                    m.remove("uid");
                }
                m.values_mut().for_each(uids);
            }
            Value::Array(a) => a.iter_mut().for_each(uids),
            _ => {}
        }
    }
    uids(&mut v);
    if unordered {
        if let Some(eps) = v.get_mut("endpoints").and_then(Value::as_array_mut) {
            eps.sort_by_key(|e| e["addresses"].to_string());
        }
    }
    v
}

fn parse_yaml(s: &str) -> Value {
    let body: String = s
        .lines()
        .filter(|l| !l.starts_with("Warning: "))
        .collect::<Vec<_>>()
        .join("\n");
    serde_saphyr::from_str(&body).unwrap_or_else(|e| panic!("not YAML ({e}):\n{body}"))
}

fn plan() -> Vec<Check> {
    use Check::*;
    const SA: &str =
        "Switchboard admits pods without a ServiceAccount (no ServiceAccount admission)";
    const POD_DEFAULTS: &str =
        "pod defaulting and printing are the API server's (not these controllers')";
    const GRACEFUL: &str = "needs graceful deletion of pods with a node in the API server (deletionTimestamp, Terminating)";
    vec![
        Skip(SA),           // 0 apply refused for the missing ServiceAccount
        Skip(SA),           // 1 get serviceaccounts
        Skip(SA),           // 2 create serviceaccount
        Run,                // 3 apply nginx-1..3
        Skip(POD_DEFAULTS), // 4 get pod -o wide
        Skip(POD_DEFAULTS), // 5 get pod -o yaml
        Text,               // 6 get ep -o wide
        Text,               // 7 get endpointslices -o wide
        Run,                // 8 patch status nginx-1
        Run,                // 9
        Run,                // 10
        Skip(POD_DEFAULTS), // 11
        Skip(POD_DEFAULTS), // 12
        Text,               // 13 get ep -o wide
        Yaml,               // 14 get ep -o yaml
        Text,               // 15 describe ep
        Text,               // 16 get endpointslices -o wide
        Yaml,               // 17 slices -o yaml
        Yaml,               // 18 all slices -o yaml
        Text,               // 19 describe svc
        Text,               // 20 describe endpointslice
        Skip(POD_DEFAULTS), // 21 get svc,ep,pod
        Run,                // 22 selector -> app=myapp
        Text,               // 23
        Yaml,               // 24
        Yaml,               // 25
        Text,               // 26 describe svc
        Run,                // 27 selector back
        Text,               // 28
        Run,                // 29 apply nginx-named
        Run,                // 30 apply nginx-noport
        Run,                // 31 patch its status
        Skip("Service defaulting is the API server's"), // 32 get svc nginx-named -o yaml
        Text,               // 33 get ep -o wide
        Yaml,               // 34 get ep nginx-named
        Yaml,               // 35 get ep nginx-service
        YamlUnordered,      // 36 slices of nginx-named
        Skip("the order of its Endpoints line follows the random slice names"), // 37
        Run,                // 38 apply nginx-term
        Run,                // 39 patch its status
        YamlUnordered,      // 40 slices with nginx-term (appended: same order, checked as a set)
        Skip(GRACEFUL),     // 41 delete --wait=false
        Skip(GRACEFUL),     // 42
        Skip(GRACEFUL),     // 43
        Skip(GRACEFUL),     // 44
        Skip(GRACEFUL),     // 45
        Run,                // 46 force delete
        Text,               // 47 get endpointslices -o wide
        Skip(POD_DEFAULTS), // 48
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_03_pods_and_endpoints() {
    let _serial = serial().await;
    let c = Cluster::start().await;
    // The Service scenario 02 left behind.
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: nginx-service\n  labels:\n    app: nginx\nspec:\n  selector:\n    app: nginx\n  ports:\n    - name: nginx-port\n      protocol: TCP\n      port: 80\n      targetPort: 80\n";
    let out = blocking(|| c.server.kubectl_stdin(&["apply", "-f", "-"], svc));
    assert!(out.status.success(), "{}", test_support::output_text(&out));
    let commands = commands();
    let plan = plan();
    assert_eq!(
        commands.len(),
        plan.len(),
        "the plan covers every recorded command"
    );
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    for (i, ((cmd, expected), check)) in commands.iter().zip(plan).enumerate() {
        if let Check::Skip(why) = check {
            skipped.push(format!("#{i} {}: {why}", cmd.lines().next().unwrap()));
            continue;
        }
        // The recording waited 2 s for the controllers; ours answer in milliseconds.
        let cmd = cmd.replace("sleep 2;", "sleep 0.3;");
        let out = blocking(|| c.server.bash(&format!("exec 2>&1\n{cmd}")));
        let got = String::from_utf8_lossy(&out.stdout).to_string();
        let ok = match check {
            Check::Run => out.status.success(),
            Check::Text => normalise_text(&got) == normalise_text(expected),
            Check::Yaml => strip(parse_yaml(&got), false) == strip(parse_yaml(expected), false),
            Check::YamlUnordered => {
                strip(parse_yaml(&got), true) == strip(parse_yaml(expected), true)
            }
            Check::Skip(_) => unreachable!(),
        };
        if !ok {
            failures.push(format!(
                "#{i} $ {cmd}\n--- got\n{got}\n--- recorded\n{expected}\n"
            ));
        }
    }
    eprintln!(
        "reference 03: {} commands skipped:\n  {}",
        skipped.len(),
        skipped.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "{} of the recorded outputs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
