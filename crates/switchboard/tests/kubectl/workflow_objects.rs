//! Imperative object commands: create namespace/configmap/secret/service, label, annotate.
//! kubectl's `create <generator>` commands send their object as protobuf
//! (`application/vnd.kubernetes.protobuf`), unlike apply/create -f, which send JSON.

use crate::{assert_output, Cluster};

#[test]
fn imperative_create_of_namespace_configmap_secret_and_service() {
    let c = Cluster::start();
    assert_output(&c.kubectl("create ns web"), 0, "namespace/web created\n");
    assert_output(
        &c.kubectl("create namespace web"),
        1,
        "Error from server (AlreadyExists): namespaces \"web\" already exists\n",
    );
    assert_output(
        &c.kubectl("get ns web -o jsonpath='{.status.phase}'"),
        0,
        "Active",
    );
    assert_output(
        &c.kubectl("create service clusterip my-cs --tcp=5678:8080"),
        0,
        "service/my-cs created\n",
    );
    assert_output(
        &c.kubectl("get svc my-cs -o jsonpath='{.metadata.labels} {.spec.selector} {.spec.ports[0].name} {.spec.ports[0].port} {.spec.ports[0].targetPort}'"),
        0,
        "{\"app\":\"my-cs\"} {\"app\":\"my-cs\"} 5678-8080 5678 8080",
    );
    assert_output(
        &c.kubectl("create configmap app-config --from-literal=mode=fast --from-literal=level=3"),
        0,
        "configmap/app-config created\n",
    );
    assert_output(
        &c.kubectl("get cm app-config -o jsonpath='{.data}'"),
        0,
        "{\"level\":\"3\",\"mode\":\"fast\"}",
    );
    c.sh("printf 'listen 80;\\n' > nginx.conf").ok();
    assert_output(
        &c.kubectl("create configmap files --from-file=nginx.conf"),
        0,
        "configmap/files created\n",
    );
    assert_output(
        &c.kubectl("get cm files -o jsonpath='{.data.nginx\\.conf}'"),
        0,
        "listen 80;\n",
    );
    assert_output(
        &c.kubectl("create configmap app-config --from-literal=a=b"),
        1,
        "error: failed to create configmap: configmaps \"app-config\" already exists\n",
    );

    assert_output(
        &c.kubectl("create secret generic app-secret --from-literal=password=s3cr3t"),
        0,
        "secret/app-secret created\n",
    );
    // The type defaults to Opaque on the server; data is base64.
    assert_output(
        &c.kubectl("get secret app-secret"),
        0,
        "NAME         TYPE     DATA   AGE\napp-secret   Opaque   1      0s\n",
    );
    assert_output(
        &c.sh("kubectl get secret app-secret -o jsonpath='{.data.password}' | base64 -d"),
        0,
        "s3cr3t",
    );
    assert_output(
        &c.kubectl("create secret docker-registry regcred --docker-server=registry.example.com --docker-username=u --docker-password=p"),
        0,
        "secret/regcred created\n",
    );
    assert_output(
        &c.kubectl("get secret regcred -o jsonpath='{.type}'"),
        0,
        "kubernetes.io/dockerconfigjson",
    );
}

#[test]
fn secret_string_data_is_folded_into_data_and_type_defaults_to_opaque() {
    let c = Cluster::start();
    let string_data = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plain\nstringData:\n  user: admin\ndata:\n  pass: czNjcjN0\n";
    assert_output(
        &c.kubectl_with("apply", string_data),
        0,
        "secret/plain created\n",
    );
    assert_output(
        &c.kubectl(
            "get secret plain -o jsonpath='{.type} {.data.user} {.data.pass} [{.stringData}]'",
        ),
        0,
        "Opaque YWRtaW4= czNjcjN0 []",
    );
    assert_output(
        &c.kubectl("get secrets"),
        0,
        "NAME    TYPE     DATA   AGE\nplain   Opaque   2      0s\n",
    );
}

#[test]
fn label_and_annotate_add_overwrite_and_remove() {
    let c = Cluster::start();
    c.kubectl_with(
        "create",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n",
    )
    .ok();
    c.kubectl_with(
        "create",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  mode: slow\n",
    )
    .ok();
    assert_output(
        &c.kubectl("label cm settings tier=web"),
        0,
        "configmap/settings labeled\n",
    );
    assert_output(
        &c.kubectl("label cm settings tier=db"),
        1,
        "error: 'tier' already has a value (web), and --overwrite is false\n",
    );
    assert_output(
        &c.kubectl("label cm settings tier=db --overwrite"),
        0,
        "configmap/settings labeled\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.metadata.labels}'"),
        0,
        "{\"tier\":\"db\"}",
    );
    assert_output(
        &c.kubectl("label cm settings tier-"),
        0,
        "configmap/settings unlabeled\n",
    );
    assert_output(
        &c.kubectl("get cm settings --show-labels"),
        0,
        "NAME       DATA   AGE   LABELS\nsettings   1      0s    <none>\n",
    );
    assert_output(
        &c.kubectl("label cm --all team=core"),
        0,
        "configmap/other labeled\nconfigmap/settings labeled\n",
    );
    assert_output(
        &c.kubectl("get cm -l team=core -o name"),
        0,
        "configmap/other\nconfigmap/settings\n",
    );
    // kubectl checks label values itself; the server checks what a patch sends.
    assert_output(
        &c.kubectl(r#"patch cm settings --type=merge -p '{"metadata":{"labels":{"tier":"-bad-"}}}'"#),
        1,
        "The ConfigMap \"settings\" is invalid: metadata.labels: Invalid value: \"-bad-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')\n",
    );

    assert_output(
        &c.kubectl("annotate cm settings note='hello world'"),
        0,
        "configmap/settings annotated\n",
    );
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='{.metadata.annotations.note}'"),
        0,
        "hello world",
    );
    assert_output(
        &c.kubectl("annotate cm settings note=again"),
        1,
        "error: --overwrite is false but found the following declared annotation(s): 'note' already has a value (hello world)\n",
    );
    assert_output(
        &c.kubectl("annotate cm settings note=again --overwrite"),
        0,
        "configmap/settings annotated\n",
    );
    assert_output(
        &c.kubectl("annotate cm settings note-"),
        0,
        "configmap/settings annotated\n",
    );
    // Labels on the built-in Service work the same way.
    assert_output(
        &c.kubectl("label svc kubernetes extra=1"),
        0,
        "service/kubernetes labeled\n",
    );
    assert_output(
        &c.kubectl("get svc -l extra=1 -o name"),
        0,
        "service/kubernetes\n",
    );
}

#[test]
fn removing_the_last_label_and_annotation_leaves_no_empty_maps() {
    let c = Cluster::start();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n    team: core\n  annotations:\n    note: hi\n";
    c.kubectl_with("create", cm).ok();
    assert_output(
        &c.kubectl("label cm settings team-"),
        0,
        "configmap/settings unlabeled\n",
    );
    assert_output(
        &c.kubectl("annotate cm settings note-"),
        0,
        "configmap/settings annotated\n",
    );
    // kube-apiserver's omitempty drops the emptied maps.
    assert_output(
        &c.kubectl("get cm settings -o jsonpath='labels={.metadata.labels} annotations={.metadata.annotations}'"),
        0,
        "labels= annotations=",
    );
    let yaml = c.kubectl("get cm settings -o yaml");
    assert!(!yaml.ok().contains("{}"), "empty maps in:\n{}", yaml.out);
}
