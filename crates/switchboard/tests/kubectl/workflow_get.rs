//! Reading with kubectl's default flags: output formats, watch, selectors, paging, `get all`,
//! describe, and `get --raw`.

use crate::{assert_output, json, Cluster};

const SETTINGS: &str = "
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    app: web
data:
  mode: fast
";

#[test]
fn get_prints_yaml_json_wide_name_jsonpath_and_custom_columns() {
    let c = Cluster::start();
    assert_output(
        &c.kubectl_with("create", SETTINGS),
        0,
        "configmap/settings created\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o yaml"),
        0,
        r#"apiVersion: v1
data:
  mode: fast
kind: ConfigMap
metadata:
  creationTimestamp: "2026-01-01T00:00:00Z"
  labels:
    app: web
  name: settings
  namespace: default
  resourceVersion: "1"
  uid: 00000000-0000-0000-0000-000000000000
"#,
    );
    assert_output(
        &c.kubectl("get cm settings -o json"),
        0,
        r#"{
    "apiVersion": "v1",
    "data": {
        "mode": "fast"
    },
    "kind": "ConfigMap",
    "metadata": {
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": {
            "app": "web"
        },
        "name": "settings",
        "namespace": "default",
        "resourceVersion": "1",
        "uid": "00000000-0000-0000-0000-000000000000"
    }
}
"#,
    );
    assert_output(
        &c.kubectl("get cm"),
        0,
        "NAME       DATA   AGE\nsettings   1      0s\n",
    );
    assert_output(
        &c.kubectl("get cm -o wide"),
        0,
        "NAME       DATA   AGE\nsettings   1      0s\n",
    );
    assert_output(
        &c.kubectl("get cm --show-labels"),
        0,
        "NAME       DATA   AGE   LABELS\nsettings   1      0s    app=web\n",
    );
    assert_output(&c.kubectl("get cm -o name"), 0, "configmap/settings\n");
    assert_output(
        &c.kubectl("get configmap/settings -o name"),
        0,
        "configmap/settings\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.data.mode}'"),
        0,
        "fast",
    );
    assert_output(
        &c.kubectl("get cm -o jsonpath='{.items[*].metadata.name}'"),
        0,
        "settings",
    );
    assert_output(
        &c.kubectl("get cm -o custom-columns=NAME:.metadata.name,MODE:.data.mode,APP:.metadata.labels.app,MISSING:.spec.none"),
        0,
        "NAME       MODE   APP   MISSING\nsettings   fast   web   <none>\n",
    );
    // A list in YAML is a v1 List.
    let list = c.kubectl("get cm -o yaml");
    assert!(
        list.ok()
            .starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    mode: fast\n"),
        "{}",
        list.out
    );
    assert!(
        list.out
            .ends_with("kind: List\nmetadata:\n  resourceVersion: \"\"\n"),
        "{}",
        list.out
    );
    // The built-in Service prints all columns without any Service defaulting.
    assert_output(
        &c.kubectl("get svc kubernetes -o wide"),
        0,
        "NAME         TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE   SELECTOR\nkubernetes   ClusterIP   10.43.0.1    <none>        443/TCP   0s    <none>\n",
    );
    assert_output(
        &c.kubectl("get cm nope"),
        1,
        "Error from server (NotFound): configmaps \"nope\" not found\n",
    );
    assert_output(
        &c.kubectl("get cm -n empty"),
        0,
        "No resources found in empty namespace.\n",
    );
}

#[test]
fn get_watch_prints_rows_for_concurrent_changes() {
    let c = Cluster::start();
    c.apply(SETTINGS);
    // A label change, then a delete, while kubectl watches the list.
    assert_output(
        &c.watch_while(
            "kubectl get cm -w --output-watch-events",
            "kubectl label cm settings tier=web; kubectl delete cm settings",
            6,
        ),
        124,
        "EVENT      NAME       DATA   AGE\nADDED      settings   1      0s\nMODIFIED   settings   1      1s\nDELETED    settings   1      1s\n",
    );
    // Watching one object by name: the object, then its new version.
    c.apply(SETTINGS);
    assert_output(
        &c.watch_while(
            "kubectl get cm settings -w -o jsonpath='{.metadata.name}:{.metadata.labels.tier};'",
            "kubectl label cm settings tier=db",
            6,
        ),
        124,
        "settings:;settings:db;",
    );
    // A created object shows up in a running watch.
    let late = SETTINGS.replace("name: settings", "name: late");
    assert_output(
        &c.watch_while(
            "kubectl get cm -w -o name",
            &format!("kubectl create -f - <<'EOF'\n{}\nEOF", late.trim()),
            6,
        ),
        124,
        "configmap/settings\nconfigmap/late\n",
    );
}

/// ConfigMaps with labels for the selector tests: name -> labels.
const LABELLED: &[(&str, &str)] = &[
    ("a", "app: a"),
    ("b", "app: b"),
    ("c", "app: c\n    x: \"1\""),
    ("d", "other: z"),
    ("e", "app: a\n    x: \"2\""),
];

fn create_labelled(c: &Cluster, namespace: &str) {
    let mut yaml = String::new();
    for (name, labels) in LABELLED {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    {labels}\n"
        ));
    }
    c.apply(&yaml);
}

#[test]
fn label_selectors_with_set_and_inequality_operators() {
    let c = Cluster::start();
    create_labelled(&c, "default");
    let names = |selector: &str| c.kubectl(&format!("get cm -l '{selector}' -o name"));
    assert_output(
        &names("app in (a,b)"),
        0,
        "configmap/a\nconfigmap/b\nconfigmap/e\n",
    );
    assert_output(&names("app notin (a,b)"), 0, "configmap/c\nconfigmap/d\n");
    assert_output(&names("!x"), 0, "configmap/a\nconfigmap/b\nconfigmap/d\n");
    assert_output(&names("x"), 0, "configmap/c\nconfigmap/e\n");
    assert_output(
        &names("x!=1"),
        0,
        "configmap/a\nconfigmap/b\nconfigmap/d\nconfigmap/e\n",
    );
    assert_output(&names("app=a,x=2"), 0, "configmap/e\n");
    assert_output(&names("app==b"), 0, "configmap/b\n");
    assert_output(&names("app=z"), 0, "");
    assert_output(
        &c.kubectl("get cm -l app=z"),
        0,
        "No resources found in default namespace.\n",
    );
    // Selectors apply to watches too (the initial list here).
    assert_output(
        &c.sh("timeout 3 kubectl get cm -w -l 'app in (b,c)' -o name; true"),
        0,
        "configmap/b\nconfigmap/c\n",
    );
}

#[test]
fn field_selectors_on_name_and_namespace() {
    let c = Cluster::start();
    create_labelled(&c, "default");
    c.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n");
    create_labelled(&c, "team");
    assert_output(
        &c.kubectl("get cm --field-selector metadata.name=b -o name"),
        0,
        "configmap/b\n",
    );
    assert_output(
        &c.kubectl("get cm --field-selector metadata.name!=b,metadata.name!=c -o name"),
        0,
        "configmap/a\nconfigmap/d\nconfigmap/e\n",
    );
    assert_output(
        &c.kubectl("get cm -A --field-selector metadata.namespace!=default,metadata.name=a -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name"),
        0,
        "NS     NAME\nteam   a\n",
    );
    // Label and field selectors together.
    assert_output(
        &c.kubectl("get cm -n team -l app=a --field-selector metadata.name!=a -o name"),
        0,
        "configmap/e\n",
    );
    assert_output(
        &c.kubectl("get ns --field-selector metadata.name=team"),
        0,
        "NAME   STATUS   AGE\nteam   Active   0s\n",
    );
    assert_output(
        &c.kubectl("get svc -A --field-selector metadata.namespace=default,metadata.name=kubernetes -o name"),
        0,
        "service/kubernetes\n",
    );
}

#[test]
fn chunk_size_pages_through_a_long_list() {
    let c = Cluster::start();
    let mut yaml = String::new();
    let names: Vec<String> = (1..=25).map(|i| format!("cm-{i:02}")).collect();
    for n in &names {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\ndata:\n  k: v\n"
        ));
    }
    c.apply(&yaml);
    let all: String = names.iter().map(|n| format!("configmap/{n}\n")).collect();
    assert_output(&c.kubectl("get cm --chunk-size=10 -o name"), 0, &all);
    // Three requests: 10 + 10 + 5, the later ones with the continue token of the one before.
    let requests = c.sh("kubectl get cm --chunk-size=10 -v=6 2>&1 | grep -E 'GET https' | sed -E 's/^.*GET //; s/continue=[^&]+/continue=TOKEN/; s/ in [0-9]+ milliseconds//'");
    let api = c.server.url();
    assert_output(
        &requests,
        0,
        &format!(
            "{api}/api/v1/namespaces/default/configmaps?limit=10 200 OK\n\
             {api}/api/v1/namespaces/default/configmaps?continue=TOKEN&limit=10 200 OK\n\
             {api}/api/v1/namespaces/default/configmaps?continue=TOKEN&limit=10 200 OK\n"
        ),
    );
    // The table is printed once, whatever the chunking.
    let table = c.kubectl("get cm --chunk-size=7");
    assert_eq!(table.ok().lines().count(), 26, "{}", table.out);
    assert_eq!(
        table.out.lines().filter(|l| l.starts_with("NAME")).count(),
        1,
        "{}",
        table.out
    );
}

#[test]
fn get_all_lists_the_services_and_pods() {
    let c = Cluster::start();
    assert_output(
        &c.kubectl("get all"),
        0,
        "NAME                 TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\nservice/kubernetes   ClusterIP   10.43.0.1    <none>        443/TCP   0s\n",
    );
    assert_output(
        &c.kubectl("get all -n kube-system"),
        0,
        "No resources found in kube-system namespace.\n",
    );
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: app\n    image: nginx\n";
    assert_output(&c.kubectl_with("create", pod), 0, "pod/web created\n");
    let all = c.kubectl("get all -o name");
    assert_output(&all, 0, "pod/web\nservice/kubernetes\n");
}

#[test]
fn get_events_shows_an_event_created_with_kubectl_create() {
    let c = Cluster::start();
    c.apply(SETTINGS);
    let event = "apiVersion: v1
kind: Event
metadata:
  name: settings.1
  namespace: default
involvedObject:
  apiVersion: v1
  kind: ConfigMap
  name: settings
  namespace: default
reason: Reloaded
message: settings reloaded
type: Normal
source:
  component: test
count: 2
firstTimestamp: \"2026-01-01T00:00:00Z\"
lastTimestamp: \"2026-01-01T00:00:00Z\"
";
    assert_output(
        &c.kubectl_with("create", event),
        0,
        "event/settings.1 created\n",
    );
    assert_output(
        &c.kubectl("get events"),
        0,
        "LAST SEEN   TYPE     REASON     OBJECT               MESSAGE\n300d        Normal   Reloaded   configmap/settings   settings reloaded\n",
    );
    assert_output(
        &c.kubectl("get events --field-selector involvedObject.kind=ConfigMap,involvedObject.name=settings -o custom-columns=NAME:.metadata.name,COUNT:.count"),
        0,
        "NAME         COUNT\nsettings.1   2\n",
    );
    assert_output(
        &c.kubectl("get events --field-selector reason=Other"),
        0,
        "No resources found in default namespace.\n",
    );
    assert_output(
        &c.kubectl("get events --field-selector type=Normal -o name"),
        0,
        "event/settings.1\n",
    );
}

#[test]
fn describe_namespace_configmap_and_service() {
    let c = Cluster::start();
    // kubectl also lists ResourceQuotas and LimitRanges; Switchboard does not serve them, and
    // on their NotFound kubectl leaves out the "No resource quota." / "No LimitRange resource."
    // lines kube-apiserver's answers would give.
    assert_output(
        &c.kubectl("describe ns default"),
        0,
        "Name:         default\nLabels:       kubernetes.io/metadata.name=default\nAnnotations:  <none>\nStatus:       Active\n",
    );
    c.apply(SETTINGS);
    assert_output(
        &c.kubectl("describe cm settings"),
        0,
        "Name:         settings\nNamespace:    default\nLabels:       app=web\nAnnotations:  <none>\n\nData\n====\nmode:\n----\nfast\n\n\nBinaryData\n====\n\nEvents:  <none>\n",
    );
    // Describe shows the events about the object, found by field selectors on involvedObject
    // (kind, name, namespace and uid, as in reference 13).
    c.sh(
        "kubectl create -f - <<EOF\napiVersion: v1\nkind: Event\nmetadata:\n  name: settings.1\ninvolvedObject:\n  apiVersion: v1\n  kind: ConfigMap\n  name: settings\n  namespace: default\n  uid: $(kubectl get cm settings -o jsonpath='{.metadata.uid}')\nreason: Reloaded\nmessage: settings reloaded\ntype: Normal\nsource:\n  component: test\ncount: 1\nfirstTimestamp: \"2026-01-01T00:00:00Z\"\nlastTimestamp: \"2026-01-01T00:00:00Z\"\nEOF",
    )
    .ok();
    let described = c.kubectl("describe cm settings");
    assert!(
        described.ok().contains("Events:\n  Type    Reason    Age   From  Message\n  ----    ------    ----  ----  -------\n  Normal  Reloaded"),
        "{}",
        described.out
    );
    // As reference 00 recorded it for kube-apiserver (no endpoints either), with our ports.
    let port = c.server.addr.port();
    assert_output(
        &c.kubectl("describe svc kubernetes"),
        0,
        &format!(
            "Name:                     kubernetes
Namespace:                default
Labels:                   component=apiserver
                          provider=kubernetes
Annotations:              <none>
Selector:                 <none>
Type:                     ClusterIP
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.43.0.1
IPs:                      10.43.0.1
Port:                     https  443/TCP
TargetPort:               {port}/TCP
Endpoints:                <none>
Session Affinity:         None
Internal Traffic Policy:  Cluster
Events:                   <none>
"
        ),
    );
}

#[test]
fn get_raw_serves_discovery_version_and_openapi() {
    let c = Cluster::start();
    let api = json(c.kubectl("get --raw /api").ok());
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], serde_json::json!(["v1"]));
    let apis = json(c.kubectl("get --raw /apis").ok());
    assert_eq!(apis["kind"], "APIGroupList");
    let groups: Vec<&str> = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "coordination.k8s.io",
        "discovery.k8s.io",
        "metallb.io",
        "networking.k8s.io",
    ] {
        assert!(groups.contains(&g), "/apis lacks {g}: {groups:?}");
    }
    let version = json(c.kubectl("get --raw /version").ok());
    assert_eq!(
        (version["major"].as_str(), version["minor"].as_str()),
        (Some("1"), Some("36")),
        "{version}"
    );
    let openapi = json(c.kubectl("get --raw /openapi/v3").ok());
    let url = openapi["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .expect("/openapi/v3 has api/v1")
        .to_string();
    let doc = json(c.kubectl(&format!("get --raw '{url}'")).ok());
    assert!(
        doc["components"]["schemas"]["io.k8s.api.core.v1.Service"].is_object(),
        "api/v1 document has no Service schema"
    );
    let v2 = json(c.sh("kubectl get --raw /openapi/v2").ok());
    assert_eq!(v2["swagger"], "2.0");
    for probe in ["/healthz", "/livez", "/readyz"] {
        assert_output(&c.kubectl(&format!("get --raw {probe}")), 0, "ok");
    }
    assert_output(
        &c.kubectl("cluster-info"),
        0,
        &format!(
            "Kubernetes control plane is running at {}\n\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n",
            c.server.url()
        ),
    );
}
