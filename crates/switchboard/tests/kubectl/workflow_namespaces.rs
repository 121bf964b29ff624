//! Namespace lifecycle with kubectl: Active, Terminating on delete, content removed, gone.
//! Namespaces are created with `kubectl apply` here; `kubectl create ns` (which sends protobuf)
//! is covered with the other imperative create commands in `workflow_objects`.

use crate::{assert_output, Cluster};
use std::time::{Duration, Instant};

fn namespace(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

fn content(namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {namespace}\ndata:\n  mode: fast\n\
         ---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: {namespace}\nspec:\n  ports:\n  - port: 80\n    protocol: TCP\n\
         ---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  namespace: {namespace}\nstringData:\n  t: x\n"
    )
}

/// Polls `cmd` until its output is `want` (or the timeout), returning the last run.
fn eventually(c: &Cluster, cmd: &str, want: &str, timeout: Duration) -> crate::Run {
    let start = Instant::now();
    loop {
        let run = c.sh(cmd);
        if run.out == want || start.elapsed() > timeout {
            return run;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn deleting_a_namespace_removes_it_and_its_objects() {
    let c = Cluster::start();
    assert_output(
        &c.kubectl_with("apply", &namespace("web")),
        0,
        "namespace/web created\n",
    );
    assert_output(
        &c.kubectl("get ns web"),
        0,
        "NAME   STATUS   AGE\nweb    Active   0s\n",
    );
    assert_output(
        &c.kubectl(
            "get ns web -o jsonpath='{.metadata.labels} {.spec.finalizers} {.status.phase}'",
        ),
        0,
        "{\"kubernetes.io/metadata.name\":\"web\"} [\"kubernetes\"] Active",
    );
    assert_output(
        &c.kubectl_with("apply", &content("web")),
        0,
        "configmap/settings created\nservice/web created\nsecret/token created\n",
    );
    assert_output(&c.kubectl_with("create", &namespace("web")), 1, "Error from server (AlreadyExists): error when creating \"STDIN\": namespaces \"web\" already exists\n");
    assert_output(
        &c.kubectl("delete ns web"),
        0,
        "namespace \"web\" deleted\n",
    );
    assert_output(
        &c.kubectl("get ns web"),
        1,
        "Error from server (NotFound): namespaces \"web\" not found\n",
    );
    for kind in ["cm", "svc", "secrets"] {
        assert_output(
            &c.kubectl(&format!("get {kind} -n web")),
            0,
            "No resources found in web namespace.\n",
        );
    }
    // The name can be used again, and starts empty.
    assert_output(
        &c.kubectl_with("apply", &namespace("web")),
        0,
        "namespace/web created\n",
    );
    assert_output(
        &c.kubectl("get cm,svc,secrets -n web"),
        0,
        "No resources found in web namespace.\n",
    );
    // The system namespaces cannot be deleted.
    assert_output(
        &c.kubectl("delete ns default"),
        1,
        "Error from server (Forbidden): namespaces \"default\" is forbidden: this namespace may not be deleted\n",
    );
}

#[test]
fn namespace_stays_terminating_while_an_object_in_it_has_a_finalizer() {
    let c = Cluster::start();
    assert_output(
        &c.kubectl_with("apply", &namespace("held")),
        0,
        "namespace/held created\n",
    );
    c.apply(&content("held"));
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: held\n  finalizers:\n  - example.com/hold\n";
    assert_output(
        &c.kubectl_with("create", held),
        0,
        "configmap/held created\n",
    );
    assert_output(
        &c.kubectl("delete ns held --wait=false"),
        0,
        "namespace \"held\" deleted\n",
    );
    let phase =
        c.kubectl("get ns held -o jsonpath='{.status.phase} {.metadata.deletionTimestamp}'");
    assert!(
        phase.ok().starts_with("Terminating 20"),
        "namespace should be Terminating with a deletionTimestamp: {}",
        phase.out
    );
    assert_output(
        &c.kubectl_with("create -n held", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n"),
        1,
        "Error from server (Forbidden): error when creating \"STDIN\": configmaps \"late\" is forbidden: unable to create new content in namespace held because it is being terminated\n",
    );
    // The content without finalizers goes; the held ConfigMap waits with a deletionTimestamp.
    let left = eventually(
        &c,
        "kubectl get cm,svc,secrets -n held -o name",
        "configmap/held\n",
        Duration::from_secs(30),
    );
    assert_output(&left, 0, "configmap/held\n");
    let marked = c.kubectl("get cm held -n held -o jsonpath='{.metadata.deletionTimestamp}'");
    assert!(
        marked.ok().starts_with("20"),
        "held ConfigMap should be marked for deletion: {}",
        marked.out
    );
    assert_output(
        &c.kubectl("get ns held -o jsonpath='{.status.phase}'"),
        0,
        "Terminating",
    );
    // Releasing the finalizer lets the namespace finish; the wait starts first, as kubectl
    // prints nothing for an object that is already gone.
    assert_output(
        &c.sh(
            "(sleep 2; kubectl patch cm held -n held --type=merge -p '{\"metadata\":{\"finalizers\":null}}' >/dev/null) & \
             kubectl wait --for=delete namespace/held --timeout=60s; rc=$?; wait; exit $rc",
        ),
        0,
        "namespace/held condition met\n",
    );
    // The held ConfigMap went with it (listing, since kubectl 1.32 answers a NotFound get in a
    // missing namespace with the namespace's NotFound).
    assert_output(
        &c.kubectl("get cm -n held"),
        0,
        "No resources found in held namespace.\n",
    );
    assert_output(
        &c.kubectl("get ns held"),
        1,
        "Error from server (NotFound): namespaces \"held\" not found\n",
    );
}
