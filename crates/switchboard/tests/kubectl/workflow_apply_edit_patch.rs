//! Changing objects with kubectl's default flags: apply (client- and server-side), edit, patch,
//! delete and wait.

use crate::{assert_output, Cluster};

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
fn apply_reports_created_then_unchanged_then_configured() {
    let c = Cluster::start();
    assert_output(
        &c.kubectl_with("apply", SETTINGS),
        0,
        "configmap/settings created\n",
    );
    assert_output(
        &c.kubectl_with("apply", SETTINGS),
        0,
        "configmap/settings unchanged\n",
    );
    assert_output(
        &c.kubectl_with("apply", &SETTINGS.replace("fast", "slow")),
        0,
        "configmap/settings configured\n",
    );
    assert_output(
        &c.kubectl(r#"get cm settings -o jsonpath='{.data.mode} {.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}'"#),
        0,
        "slow {\"apiVersion\":\"v1\",\"data\":{\"mode\":\"slow\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"web\"},\"name\":\"settings\",\"namespace\":\"default\"}}\n",
    );
    // A field dropped from the manifest is removed (three-way merge), others are kept.
    let without_labels =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: slow\n";
    assert_output(
        &c.kubectl_with("apply", without_labels),
        0,
        "configmap/settings configured\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.metadata.labels}|{.data}'"),
        0,
        "|{\"mode\":\"slow\"}",
    );
    // A Service applies the same way (its output needs no defaulting).
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n    protocol: TCP\n";
    assert_output(&c.kubectl_with("apply", svc), 0, "service/web created\n");
    assert_output(&c.kubectl_with("apply", svc), 0, "service/web unchanged\n");
    assert_output(
        &c.kubectl_with("apply", &svc.replace("app: web", "app: api")),
        0,
        "service/web configured\n",
    );
    assert_output(
        &c.kubectl("get svc web -o jsonpath='{.spec.selector}'"),
        0,
        "{\"app\":\"api\"}",
    );
}

#[test]
fn edit_runs_the_editor_and_saves_its_change() {
    let c = Cluster::start();
    c.apply(SETTINGS);
    c.sh("printf '#!/bin/sh\\nsed -i \"s/mode: fast/mode: slow/\" \"$1\"\\n' > edit.sh && chmod +x edit.sh").ok();
    assert_output(
        &c.sh("KUBE_EDITOR=./edit.sh kubectl edit configmap settings"),
        0,
        "configmap/settings edited\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.data.mode}'"),
        0,
        "slow",
    );
    // The editor changing nothing: kubectl sends nothing.
    assert_output(
        &c.sh("KUBE_EDITOR=true kubectl edit configmap settings"),
        0,
        "Edit cancelled, no changes made.\n",
    );
    // EDITOR works as well as KUBE_EDITOR, and `edit` takes resource/name.
    c.sh("printf '#!/bin/sh\\nsed -i \"s/app: web/app: shop/\" \"$1\"\\n' > relabel.sh && chmod +x relabel.sh").ok();
    assert_output(
        &c.sh("EDITOR=./relabel.sh kubectl edit cm/settings"),
        0,
        "configmap/settings edited\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.metadata.labels.app}'"),
        0,
        "shop",
    );
}

#[test]
fn patch_with_strategic_merge_merge_and_json_types() {
    let c = Cluster::start();
    c.apply(SETTINGS);
    assert_output(
        &c.kubectl(r#"patch cm settings -p '{"data":{"extra":"1"}}'"#),
        0,
        "configmap/settings patched\n",
    );
    assert_output(
        &c.kubectl(r#"patch cm settings --type=strategic -p '{"data":{"extra":"1"}}'"#),
        0,
        "configmap/settings patched (no change)\n",
    );
    assert_output(
        &c.kubectl(r#"patch cm settings --type=merge -p '{"data":{"mode":null}}'"#),
        0,
        "configmap/settings patched\n",
    );
    assert_output(
        &c.kubectl(r#"patch cm settings --type=json -p '[{"op":"add","path":"/data/third","value":"3"},{"op":"replace","path":"/metadata/labels/app","value":"api"}]'"#),
        0,
        "configmap/settings patched\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.data} {.metadata.labels}'"),
        0,
        "{\"extra\":\"1\",\"third\":\"3\"} {\"app\":\"api\"}",
    );
    // A JSON patch whose test fails changes nothing.
    let failed = c.kubectl(r#"patch cm settings --type=json -p '[{"op":"test","path":"/data/extra","value":"2"},{"op":"remove","path":"/data/extra"}]'"#);
    assert_eq!(failed.code, 1, "{}", failed.out);
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.data.extra}'"),
        0,
        "1",
    );

    // Strategic merge on a list with a merge key: containers merge by name, so the image
    // changes and the container keeps its ports; `$patch: delete` removes one entry.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  containers:\n  - name: app\n    image: nginx:1\n    ports:\n    - containerPort: 80\n  - name: sidecar\n    image: busybox\n";
    assert_output(&c.kubectl_with("create", pod), 0, "pod/web created\n");
    assert_output(
        &c.kubectl(
            r#"patch pod web -p '{"spec":{"containers":[{"name":"app","image":"nginx:2"}]}}'"#,
        ),
        0,
        "pod/web patched\n",
    );
    assert_output(
        &c.kubectl("get pod web -o jsonpath='{range .spec.containers[*]}{.name}={.image}:{.ports[*].containerPort};{end}'"),
        0,
        "app=nginx:2:80;sidecar=busybox:;",
    );
    assert_output(
        &c.kubectl(r#"patch pod web -p '{"metadata":{"labels":{"tier":"front"}}}' --type=merge"#),
        0,
        "pod/web patched\n",
    );
    assert_output(
        &c.kubectl("get pod web -o jsonpath='{.metadata.labels}'"),
        0,
        "{\"app\":\"web\",\"tier\":\"front\"}",
    );
    // A patch of something that does not exist.
    assert_output(
        &c.kubectl(r#"patch cm missing -p '{"data":{"a":"b"}}'"#),
        1,
        "Error from server (NotFound): configmaps \"missing\" not found\n",
    );
}

#[test]
fn server_side_apply_reports_conflicts_and_takes_over_with_force_conflicts() {
    let c = Cluster::start();
    assert_output(
        &c.kubectl_with("apply --server-side", SETTINGS),
        0,
        "configmap/settings serverside-applied\n",
    );
    // Another manager changing a field kubectl owns: a conflict naming the owner and the field.
    let theirs =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: slow\n";
    assert_output(
        &c.kubectl_with("apply --server-side --field-manager=ops", theirs),
        1,
        "error: Apply failed with 1 conflict: conflict with \"kubectl\": .data.mode
Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts
",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.data.mode}'"),
        0,
        "fast",
    );
    // The same value co-owns without conflict.
    let same =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n";
    assert_output(
        &c.kubectl_with("apply --server-side --field-manager=ops", same),
        0,
        "configmap/settings serverside-applied\n",
    );
    // --force-conflicts takes the field over; kubectl keeps the label it still owns.
    assert_output(
        &c.kubectl_with(
            "apply --server-side --field-manager=ops --force-conflicts",
            theirs,
        ),
        0,
        "configmap/settings serverside-applied\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.data.mode} {.metadata.labels.app} {range .metadata.managedFields[*]}{.manager}/{.operation} {end}'"),
        0,
        "slow web kubectl/Apply ops/Apply ",
    );
    // kubectl no longer owns data.mode: its next apply without it leaves it alone, and the
    // label it stops applying (owned by kubectl alone) is removed.
    let kubectl_without_mode =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  other: x\n";
    assert_output(
        &c.kubectl_with("apply --server-side", kubectl_without_mode),
        0,
        "configmap/settings serverside-applied\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.data} {.metadata.labels}'"),
        0,
        "{\"mode\":\"slow\",\"other\":\"x\"} ",
    );
}

#[test]
fn delete_and_wait_for_delete() {
    let c = Cluster::start();
    c.apply(SETTINGS);
    c.apply(&SETTINGS.replace("name: settings", "name: other"));
    c.apply(
        &SETTINGS
            .replace("name: settings", "name: third")
            .replace("app: web", "app: db"),
    );
    assert_output(
        &c.kubectl("delete cm settings"),
        0,
        "configmap \"settings\" deleted\n",
    );
    assert_output(
        &c.kubectl("get cm settings"),
        1,
        "Error from server (NotFound): configmaps \"settings\" not found\n",
    );
    assert_output(
        &c.kubectl("delete cm settings"),
        1,
        "Error from server (NotFound): configmaps \"settings\" not found\n",
    );
    assert_output(&c.kubectl("delete cm settings --ignore-not-found"), 0, "");
    // wait --for=delete returns once a concurrent delete has happened.
    assert_output(
        &c.sh("(sleep 2; kubectl delete cm other >/dev/null) & kubectl wait --for=delete configmap/other --timeout=60s; rc=$?; wait; exit $rc"),
        0,
        "configmap/other condition met\n",
    );
    // ...and times out while the object stays. (The timeout also bounds kubectl's own list and
    // watch requests: with too short a one, a loaded machine has the watch request itself still
    // in flight at the deadline and client-go logs "Failed to watch ... deadline exceeded".)
    assert_output(
        &c.kubectl("wait --for=delete configmap/third --timeout=5s"),
        1,
        "error: timed out waiting for the condition on configmaps/third\n",
    );
    // Delete by label selector.
    assert_output(
        &c.kubectl("delete cm -l app=db"),
        0,
        "configmap \"third\" deleted\n",
    );
    assert_output(
        &c.kubectl("get cm"),
        0,
        "No resources found in default namespace.\n",
    );
}

#[test]
fn replace_updates_and_refuses_a_stale_resource_version() {
    let c = Cluster::start();
    assert_output(
        &c.kubectl_with("create", SETTINGS),
        0,
        "configmap/settings created\n",
    );
    c.sh("kubectl get cm settings -o yaml > settings.yaml").ok();
    c.sh("sed -i 's/mode: fast/mode: slow/' settings.yaml").ok();
    assert_output(
        &c.kubectl("replace -f settings.yaml"),
        0,
        "configmap/settings replaced\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.data.mode}'"),
        0,
        "slow",
    );
    // The saved copy's resourceVersion is stale now.
    assert_output(
        &c.kubectl("replace -f settings.yaml"),
        1,
        "Error from server (Conflict): error when replacing \"settings.yaml\": Operation cannot be fulfilled on configmaps \"settings\": the object has been modified; please apply your changes to the latest version and try again\n",
    );
    // --force deletes and recreates.
    assert_output(
        &c.kubectl("replace --force -f settings.yaml"),
        0,
        "configmap \"settings\" deleted\nconfigmap/settings replaced\n",
    );
    assert_output(&c.kubectl("replace -f settings.yaml -n other"), 1, "error: the namespace from the provided object \"default\" does not match the namespace \"other\". You must pass '--namespace=default' to perform this operation.\n");
}
