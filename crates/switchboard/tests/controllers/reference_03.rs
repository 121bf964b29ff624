//! Reference 03 replayed with kubectl: every command must print what kube-apiserver and
//! kube-controller-manager printed, ages, uids, resourceVersions, timestamps, allocated
//! ClusterIPs and generated name suffixes aside. The recording ran kube-controller-manager
//! without its serviceaccount controller (so the first pod is refused until `default` is made
//! by hand); the server here runs the same way, `--controllers=*,-serviceaccount`.

use crate::support::*;
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../controllers/tests/fixtures/03-pods-and-endpoints.txt"
);

/// (command, its recorded output, its exit code)
fn commands() -> Vec<(String, String, i32)> {
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
            let code = lines[i]
                .trim_start_matches("[exit code:")
                .trim_end_matches(']')
                .trim()
                .parse()
                .expect("exit code");
            out.push((cmd.join("\n"), output.join("\n"), code));
        }
        i += 1;
    }
    out
}

#[derive(Clone, Copy)]
enum Check {
    /// Tables and describe output, compared token by token after normalising.
    Text,
    /// YAML compared as data, without what the server sets.
    Yaml,
    /// YAML lists of slices whose endpoint order (and slice order) upstream takes from a Go map.
    YamlUnordered,
    /// A pod's YAML, without the service account token volume kube-apiserver's ServiceAccount
    /// admission mounts: Switchboard issues no tokens (see `strip_token_volume`).
    PodYaml,
    /// `describe svc` whose `Endpoints:` line lists the slices' endpoints in slice order, which
    /// follows the random slice names: compared as a set.
    TextEndpointsUnordered,
}

/// The recorded pod's `kube-api-access-*` projected volume (a service account token, the
/// `kube-root-ca.crt` ConfigMap, and the recording cluster's `openshift-service-ca.crt`) and
/// its mount: kube-apiserver's ServiceAccount admission adds them; Switchboard has no token
/// issuer, so it adds neither. Everything else of the pod is compared.
fn strip_token_volume(mut v: Value) -> Value {
    let is_token = |n: &Value| {
        n.as_str()
            .is_some_and(|n| n.starts_with("kube-api-access-"))
    };
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(vols) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
            vols.retain(|vol| !is_token(&vol["name"]));
            if vols.is_empty() {
                spec.remove("volumes");
            }
        }
        for c in spec
            .get_mut("containers")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(m) = c.as_object_mut() {
                if let Some(mounts) = m.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    mounts.retain(|mnt| !is_token(&mnt["name"]));
                    if mounts.is_empty() {
                        m.remove("volumeMounts");
                    }
                }
            }
        }
    }
    v
}

/// The `Endpoints:` line's entries sorted, without kubectl's " + 0 more..." quirk: describe
/// appends it when a not-ready endpoint follows the third ready one, and the slice order (from
/// generated slice names here, from a Go map in kube-controller-manager) decides whether that
/// happens. A real "+ N more" is kept.
fn sort_endpoints_line(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| match l.strip_prefix("Endpoints: ") {
            Some(list) => {
                let list = list.strip_suffix(" + 0 more...").unwrap_or(list);
                let mut items: Vec<&str> = list.split(',').collect();
                items.sort();
                format!("Endpoints: {}", items.join(","))
            }
            None => l,
        })
        .collect()
}

static AGE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\d+[smhd](\d+[sm])?$").unwrap());
static GENERATED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-[bcdfghjklmnpqrstvwxz2456789]{5}\b").unwrap());
static CLUSTER_IP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b10\.(96|43)\.\d+\.\d+\b").unwrap());
static TIMESTAMP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b").unwrap());

fn normalise_text(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.starts_with("Warning: v1 Endpoints is deprecated"))
        .map(|l| {
            let l = GENERATED.replace_all(l, "-<RAND>");
            let l = CLUSTER_IP.replace_all(&l, "<CLUSTER-IP>");
            let l = TIMESTAMP.replace_all(&l, "<TIME>");
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
    // A Service's allocated addresses are this run's.
    if v.get("kind") == Some(&Value::String("Service".into())) {
        if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
            for f in ["clusterIP", "clusterIPs"] {
                if spec.contains_key(f) {
                    spec.insert(f.into(), Value::String("<CLUSTER-IP>".into()));
                }
            }
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
    vec![
        Text,                   // 0 apply refused: the `default` ServiceAccount does not exist
        Text,                   // 1 get serviceaccounts -A: none
        Text,                   // 2 create serviceaccount default
        Text,                   // 3 apply nginx-1..3
        Text,                   // 4 get pod -o wide
        PodYaml,                // 5 get pod -o yaml
        Text,                   // 6 get ep -o wide
        Text,                   // 7 get endpointslices -o wide
        Text,                   // 8 patch status nginx-1
        Text,                   // 9
        Text,                   // 10
        Text,                   // 11 get pod -o wide
        PodYaml,                // 12 get pod nginx-1 -o yaml (status)
        Text,                   // 13 get ep -o wide
        Yaml,                   // 14 get ep -o yaml
        Text,                   // 15 describe ep
        Text,                   // 16 get endpointslices -o wide
        Yaml,                   // 17 slices -o yaml
        Yaml,                   // 18 all slices -o yaml
        Text,                   // 19 describe svc
        Text,                   // 20 describe endpointslice
        Text,                   // 21 get svc,ep,pod
        Text,                   // 22 selector -> app=myapp
        Text,                   // 23
        Yaml,                   // 24
        Yaml,                   // 25 the placeholder slice: endpoints: null, ports: null
        Text,                   // 26 describe svc
        Text,                   // 27 selector back
        Text,                   // 28
        Text,                   // 29 apply nginx-named
        Text,                   // 30 apply nginx-noport
        Text,                   // 31 patch its status
        Yaml,                   // 32 get svc nginx-named -o yaml
        Text,                   // 33 get ep -o wide
        Yaml,                   // 34 get ep nginx-named
        Yaml,                   // 35 get ep nginx-service
        YamlUnordered,          // 36 slices of nginx-named
        TextEndpointsUnordered, // 37 describe svc nginx-named
        Text,                   // 38 apply nginx-term
        Text,                   // 39 patch its status
        YamlUnordered, // 40 slices with nginx-term (appended: same order, checked as a set)
        Text,          // 41 delete --wait=false: graceful
        Text,          // 42 Terminating
        Text,          // 43 deletionTimestamp and deletionGracePeriodSeconds (30)
        YamlUnordered, // 44 the terminating endpoint: ready false, serving, terminating
        Yaml,          // 45 v1 Endpoints leave it out
        Text,          // 46 force delete
        Text,          // 47 get endpointslices -o wide
        Text,          // 48 get pod --show-labels
    ]
}

#[test]
fn reference_03_pods_and_endpoints() {
    run_test(reference_03_pods_and_endpoints_body());
}

async fn reference_03_pods_and_endpoints_body() {
    let _serial = serial().await;
    // As recorded: kube-controller-manager without its serviceaccount controller.
    let c = Cluster::start_with_flags(&["--controllers=*,-serviceaccount"]).await;
    // The Service scenario 02 left behind.
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: nginx-service\n  labels:\n    app: nginx\nspec:\n  selector:\n    app: nginx\n  ports:\n    - name: nginx-port\n      protocol: TCP\n      port: 80\n      targetPort: 80\n";
    let out = c
        .bash(&format!("kubectl apply -f - <<'EOF'\n{svc}EOF"), 60)
        .await;
    assert!(out.status.success(), "{}", test_support::output_text(&out));
    let commands = commands();
    let plan = plan();
    assert_eq!(
        commands.len(),
        plan.len(),
        "the plan covers every recorded command"
    );
    let mut failures = Vec::new();
    for (i, ((cmd, expected, code), check)) in commands.iter().zip(plan).enumerate() {
        // The recording's `sleep 2;` (waiting for the controllers) is kept: ours usually answer
        // in milliseconds, but not on a loaded machine.
        let out = c.bash(&format!("exec 2>&1\n{cmd}"), 60).await;
        let got = String::from_utf8_lossy(&out.stdout).to_string();
        let ok = out.status.code() == Some(*code)
            && match check {
                Check::Text => normalise_text(&got) == normalise_text(expected),
                Check::Yaml => strip(parse_yaml(&got), false) == strip(parse_yaml(expected), false),
                Check::YamlUnordered => {
                    strip(parse_yaml(&got), true) == strip(parse_yaml(expected), true)
                }
                Check::PodYaml => {
                    strip(parse_yaml(&got), false)
                        == strip(strip_token_volume(parse_yaml(expected)), false)
                }
                Check::TextEndpointsUnordered => {
                    sort_endpoints_line(normalise_text(&got))
                        == sort_endpoints_line(normalise_text(expected))
                }
            };
        if !ok {
            failures.push(format!(
                "#{i} $ {cmd}\n--- got (exit {:?})\n{got}\n--- recorded (exit {code})\n{expected}\n",
                out.status.code()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the recorded outputs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
