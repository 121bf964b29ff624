#![recursion_limit = "512"]
//! Kubernetes protobuf against real kubectl 1.32 request bodies, and round trips of realistic
//! objects of every served built-in kind.

use schema::protobuf::{decode, decode_any, encode};
use serde_json::{json, Value};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/protobuf/kubectl").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every difference between two JSON values, as `path: left != right`.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(&format!("{path}.{k}"), v, w, out),
                    None => out.push(format!("{path}.{k}: {v} != (absent)")),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) {
                    out.push(format!("{path}.{k}: (absent) != {w}"));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), v, w, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

/// Equal, and in the same key order (the decoder writes Go's field order, as kubectl does).
fn assert_same(got: &Value, want: &Value, what: &str) {
    let mut d = Vec::new();
    diff("", got, want, &mut d);
    assert!(d.is_empty(), "{what}: decoded != expected:\n  {}", d.join("\n  "));
    assert_eq!(serde_json::to_string(got).unwrap(), serde_json::to_string(want).unwrap(), "{what}: key order");
}

/// The bodies `kubectl` 1.32 sent (`Content-Type: application/vnd.kubernetes.protobuf`) for
/// these commands, next to its `--dry-run=client -o json` output for the same command.
const KUBECTL: &[(&str, &str)] = &[
    ("namespace", "kubectl create namespace ns1"),
    ("configmap", "kubectl create configmap x --from-literal=a=b"),
    ("configmap-files", "kubectl create configmap files --from-file=bin=<3 binary bytes> --from-file=txt=<text>"),
    ("secret", "kubectl create secret generic s1 --from-literal=user=admin --from-literal=pass=s3cr3t"),
    ("secret-docker", "kubectl create secret docker-registry reg --docker-username=u --docker-password=p --docker-server=r.example"),
    ("service-clusterip", "kubectl create service clusterip my-cs --tcp=5678:8080"),
    ("service-nodeport", "kubectl create service nodeport x --tcp=80:8080 --node-port=30080"),
    ("service-externalname", "kubectl create service externalname x --external-name=a.b"),
    ("service-loadbalancer", "kubectl create service loadbalancer lb1 --tcp=80:http --tcp=443"),
    ("ingress", "kubectl create ingress simple --rule=foo.com/bar=svc1:8080,tls=my-cert"),
    (
        "ingress-full",
        "kubectl create ingress full --class=nginx --default-backend=defsvc:http --rule=foo.com/=svc1:8080 --rule=bar.com/admin*=svc2:http,tls --annotation=a=b",
    ),
];

#[test]
fn kubectl_bodies_decode_to_kubectls_json() {
    for (name, cmd) in KUBECTL {
        let pb = fixture(&format!("{name}.pb"));
        let want: Value = serde_json::from_slice(&fixture(&format!("{name}.json"))).unwrap();
        let got = decode(&pb).unwrap_or_else(|e| panic!("{cmd}: {e}"));
        assert_same(&got, &want, cmd);
    }
}

#[test]
fn kubectls_json_encodes_to_kubectls_bytes() {
    for (name, cmd) in KUBECTL {
        let pb = fixture(&format!("{name}.pb"));
        let json: Value = serde_json::from_slice(&fixture(&format!("{name}.json"))).unwrap();
        let got = encode(&json).unwrap_or_else(|e| panic!("{cmd}: {e}"));
        assert_eq!(got, pb, "{cmd}: encoded bytes differ from kubectl's");
    }
}

#[test]
fn dry_run_server_sends_the_same_body() {
    // `kubectl create service clusterip my-cs --tcp=5678:8080 --dry-run=server`: dryRun=All is a
    // query parameter; the body is the same.
    assert_eq!(fixture("service-clusterip-dryrun.pb"), fixture("service-clusterip.pb"));
}

#[test]
fn kubectl_run_body_round_trips() {
    // `kubectl run nginx --image=nginx` sends JSON (kubectl 1.32 and 1.33 alike); its body must
    // survive the protobuf round trip all the same.
    let body: Value = serde_json::from_slice(&fixture("pod-run-body.json")).unwrap();
    let got = decode(&encode(&body).unwrap()).unwrap();
    assert_same(&got, &body, "kubectl run nginx --image=nginx");
}

fn round_trip(obj: Value) {
    let what = format!("{} {}", obj["kind"], obj["metadata"]["name"]);
    let pb = encode(&obj).unwrap_or_else(|e| panic!("{what}: encode: {e}"));
    let back = decode_any(&pb).unwrap_or_else(|e| panic!("{what}: decode: {e}"));
    assert_same(&back, &obj, &what);
    // And the bytes are stable.
    assert_eq!(encode(&back).unwrap(), pb, "{what}: re-encoding");
}

/// ObjectMeta as the apiserver returns it: every field, managedFields with FieldsV1.
fn meta(name: &str, namespace: Option<&str>) -> Value {
    let mut m = json!({
        "name": name,
        "generateName": "gen-",
        "uid": "6f1e6f5e-5c1a-4b8e-9f51-0a4a4f1f9d10",
        "resourceVersion": "12345",
        "generation": 3,
        "creationTimestamp": "2026-11-21T23:27:47Z",
        "deletionTimestamp": "2026-11-22T00:00:00Z",
        "deletionGracePeriodSeconds": 0,
        "labels": {"app": "web", "tier": ""},
        "annotations": {"example.com/note": "x", "z": "{\"json\": true}"},
        "ownerReferences": [{
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-7d4b9",
            "uid": "0b0b0b0b-0000-4000-8000-000000000000",
            "controller": true,
            "blockOwnerDeletion": false
        }],
        "finalizers": ["example.com/cleanup"],
        "managedFields": [{
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-11-21T23:27:47Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
        }, {
            "manager": "switchboard",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": "2026-11-21T23:30:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {}},
            "subresource": "status"
        }]
    });
    if let Some(ns) = namespace {
        // `namespace` comes after `generateName` in Go's field order.
        let obj = m.as_object_mut().unwrap();
        let mut out = serde_json::Map::new();
        for (k, v) in std::mem::take(obj) {
            let after = k == "generateName";
            out.insert(k, v);
            if after {
                out.insert("namespace".to_string(), json!(ns));
            }
        }
        *obj = out;
    }
    m
}

#[test]
fn namespace_round_trips() {
    round_trip(json!({
        "kind": "Namespace", "apiVersion": "v1",
        "metadata": meta("team-a", None),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Terminating", "conditions": [{
            "type": "NamespaceDeletionContentFailure", "status": "False",
            "lastTransitionTime": "2026-11-21T23:27:47Z", "reason": "ContentDeleted", "message": "All content successfully deleted"
        }]}
    }));
}

#[test]
fn service_round_trips() {
    round_trip(json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": meta("web", Some("default")),
        "spec": {
            "ports": [
                {"name": "http", "protocol": "TCP", "appProtocol": "kubernetes.io/h2c", "port": 80, "targetPort": "http", "nodePort": 30080},
                {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 0},
                {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353}
            ],
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10", "fd00::10"],
            "type": "LoadBalancer",
            "externalIPs": ["192.0.2.1"],
            "sessionAffinity": "ClientIP",
            "loadBalancerSourceRanges": ["0.0.0.0/0"],
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 32000,
            "publishNotReadyAddresses": true,
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "ipFamilies": ["IPv4", "IPv6"],
            "ipFamilyPolicy": "PreferDualStack",
            "allocateLoadBalancerNodePorts": false,
            "loadBalancerClass": "",
            "internalTrafficPolicy": "Cluster",
            "trafficDistribution": "PreferClose"
        },
        "status": {
            "loadBalancer": {"ingress": [
                {"ip": "192.0.2.10", "ipMode": "VIP", "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP", "error": "x"}]},
                {"hostname": "lb.example.com"}
            ]},
            "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2, "lastTransitionTime": "2026-11-21T23:27:47Z", "reason": "Ok", "message": ""}]
        }
    }));
    // ExternalName with no ports, and a zero-valued optional integer.
    round_trip(json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": "ext", "namespace": "default", "creationTimestamp": null},
        "spec": {"type": "ExternalName", "externalName": "a.b", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}},
        "status": {"loadBalancer": {}}
    }));
}

#[test]
fn endpoints_round_trip() {
    round_trip(json!({
        "kind": "Endpoints", "apiVersion": "v1",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-11-21T23:27:47Z", "labels": {"app": "web"}},
        "subsets": [{
            "addresses": [{"ip": "10.0.0.1", "hostname": "web-0", "nodeName": "node-a", "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u1", "resourceVersion": "7"}}],
            "notReadyAddresses": [{"ip": "10.0.0.2"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}, {"port": 0}]
        }]
    }));
}

#[test]
fn endpointslice_round_trips() {
    round_trip(json!({
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": "web-abc12", "generateName": "web-", "namespace": "default", "creationTimestamp": "2026-11-21T23:27:47Z",
            "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io", "kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false},
             "hostname": "web-0", "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u1"},
             "nodeName": "node-a", "zone": "zone-a", "hints": {"forZones": [{"name": "zone-a"}], "forNodes": [{"name": "node-a"}]}},
            {"addresses": ["10.0.0.2", "10.0.0.3"], "conditions": {"ready": false}},
            {"addresses": ["10.0.0.4"], "conditions": {}, "deprecatedTopology": {"topology.kubernetes.io/zone": "zone-b"}}
        ],
        "ports": [{"name": "", "protocol": "TCP", "port": 8080, "appProtocol": "http"}, {"name": "dns", "protocol": "UDP", "port": 0}]
    }));
    // A slice with no endpoints and no ports: Go writes `null` for both (no omitempty).
    round_trip(json!({
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": "empty", "namespace": "default", "creationTimestamp": null},
        "addressType": "IPv6", "endpoints": null, "ports": null
    }));
}

#[test]
fn configmap_and_secret_round_trip() {
    round_trip(json!({
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": "cfg", "namespace": "default", "creationTimestamp": null},
        "immutable": false,
        "data": {"a": "b", "empty": "", "multi": "line 1\nline 2\n", "ünïcode": "✓"},
        "binaryData": {"bin": "AAH/", "empty": ""}
    }));
    round_trip(json!({
        "kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": "s", "namespace": "default", "creationTimestamp": null},
        "immutable": true,
        "data": {"pass": "czNjcjN0", "user": "YWRtaW4=", "zero": ""},
        "stringData": {"extra": "plain"},
        "type": "Opaque"
    }));
}

#[test]
fn event_round_trips() {
    round_trip(json!({
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": "web-0.17a", "namespace": "default", "creationTimestamp": "2026-11-21T23:27:47Z"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u1", "apiVersion": "v1", "resourceVersion": "9", "fieldPath": "spec.containers{web}"},
        "reason": "Pulled",
        "message": "Successfully pulled image",
        "source": {"component": "kubelet", "host": "node-a"},
        "firstTimestamp": "2026-11-21T23:27:47Z",
        "lastTimestamp": "2026-11-21T23:28:47Z",
        "count": 2,
        "type": "Normal",
        "eventTime": "2026-11-21T23:27:36.636073Z",
        "series": {"count": 2, "lastObservedTime": "2026-11-21T23:28:47.000001Z"},
        "action": "Pulling",
        "related": {"kind": "Node", "name": "node-a"},
        "reportingComponent": "kubelet",
        "reportingInstance": ""
    }));
    // An event without times: Go writes `null` for the zero Time and MicroTime values.
    round_trip(json!({
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": "e", "namespace": "default", "creationTimestamp": null},
        "involvedObject": {},
        "source": {},
        "firstTimestamp": null,
        "lastTimestamp": null,
        "eventTime": null,
        "reportingComponent": "",
        "reportingInstance": ""
    }));
}

#[test]
fn pod_round_trips() {
    round_trip(json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": meta("web-0", Some("default")),
        "spec": {
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "a.txt", "mode": 420}], "defaultMode": 420, "optional": false}},
                {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
                {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}], "defaultMode": 420}}
            ],
            "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"], "resources": {}, "restartPolicy": "Always"}],
            "containers": [{
                "name": "web",
                "image": "nginx:1.27",
                "args": ["-g", "daemon off;"],
                "workingDir": "/srv",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}, {"hostPort": 19090, "containerPort": 9090, "protocol": "TCP"}],
                "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg", "optional": true}}],
                "env": [
                    {"name": "PLAIN", "value": "1"},
                    {"name": "EMPTY"},
                    {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
                    {"name": "LIMIT", "valueFrom": {"resourceFieldRef": {"containerName": "web", "resource": "limits.memory", "divisor": "1Mi"}}}
                ],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
                "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                "volumeMounts": [{"name": "cfg", "readOnly": true, "mountPath": "/etc/cfg"}, {"name": "scratch", "mountPath": "/tmp", "subPath": "x"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP", "httpHeaders": [{"name": "X", "value": "y"}]},
                    "initialDelaySeconds": 5, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3, "terminationGracePeriodSeconds": 0},
                "readinessProbe": {"tcpSocket": {"port": 80}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                "startupProbe": {"grpc": {"port": 9090, "service": null}},
                "lifecycle": {"postStart": {"sleep": {"seconds": 1}}, "preStop": {"exec": {"command": ["sleep", "5"]}}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}, "privileged": false, "runAsUser": 0, "runAsNonRoot": false,
                    "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "seccompProfile": {"type": "RuntimeDefault"}},
                "stdin": true,
                "tty": true
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "activeDeadlineSeconds": 0,
            "dnsPolicy": "ClusterFirst",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "automountServiceAccountToken": false,
            "nodeName": "node-a",
            "hostNetwork": true,
            "shareProcessNamespace": false,
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "supplementalGroups": [1, 2, 3], "fsGroup": 2000, "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
            "imagePullSecrets": [{"name": "reg"}],
            "hostname": "web-0",
            "subdomain": "web",
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}}]}},
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}, {"operator": "Exists"}],
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["foo.local"]}],
            "priorityClassName": "high",
            "priority": 0,
            "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["svc.cluster.local"], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
            "readinessGates": [{"conditionType": "example.com/ready"}],
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "overhead": {"cpu": "250m"},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}, "minDomains": 1}],
            "os": {"name": "linux"},
            "hostUsers": false,
            "schedulingGates": [{"name": "example.com/gate"}],
            "hostnameOverride": ""
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-11-21T23:27:50Z"}],
            "hostIP": "192.168.1.10",
            "hostIPs": [{"ip": "192.168.1.10"}],
            "podIP": "10.0.0.1",
            "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
            "startTime": "2026-11-21T23:27:47Z",
            "containerStatuses": [{
                "name": "web",
                "state": {"running": {"startedAt": "2026-11-21T23:27:49Z"}},
                "lastState": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": null, "finishedAt": "2026-11-21T23:27:48Z"}},
                "ready": true,
                "restartCount": 0,
                "image": "docker.io/library/nginx:1.27",
                "imageID": "docker.io/library/nginx@sha256:abc",
                "containerID": "containerd://abc",
                "started": false
            }],
            "qosClass": "Burstable"
        }
    }));
}

#[test]
fn node_round_trips() {
    round_trip(json!({
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": "node-a", "creationTimestamp": "2026-11-21T23:27:47Z", "labels": {"kubernetes.io/hostname": "node-a"}},
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"], "providerID": "kind://node-a", "unschedulable": true,
            "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "2026-11-21T23:27:47Z"}, {"key": "k", "value": "v", "effect": "NoExecute"}]},
        "status": {
            "capacity": {"cpu": "8", "ephemeral-storage": "100Gi", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "7800m", "memory": "31Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-11-21T23:27:47Z", "lastTransitionTime": "2026-11-21T23:00:00Z", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node-a"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1", "osImage": "Debian", "containerRuntimeVersion": "containerd://2.0",
                "kubeletVersion": "v1.32.0", "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
            "images": [{"names": ["docker.io/library/nginx:1.27"], "sizeBytes": 72000000}]
        }
    }));
}

#[test]
fn ingress_and_ingressclass_round_trip() {
    round_trip(json!({
        "kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
        "spec": {
            "ingressClassName": "nginx",
            "defaultBackend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "static"}},
            "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
            "rules": [
                {"host": "a.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                    {"path": "/api", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "api", "port": {"name": "http"}}}}
                ]}},
                {"http": {"paths": [{"pathType": null, "backend": {"resource": {"apiGroup": null, "kind": "K", "name": "n"}}}]}},
                {"host": "empty.example.com"}
            ]
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ports": [{"port": 443, "protocol": "TCP"}]}]}}
    }));
    round_trip(json!({
        "kind": "IngressClass", "apiVersion": "networking.k8s.io/v1",
        "metadata": {"name": "nginx", "creationTimestamp": null, "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p", "scope": "Namespace", "namespace": "ingress"}}
    }));
}

#[test]
fn lease_round_trips() {
    round_trip(json!({
        "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"name": "node-a", "namespace": "kube-node-lease", "creationTimestamp": "2026-11-21T23:27:47Z",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-a", "uid": "u"}]},
        "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40, "acquireTime": "2026-11-21T23:27:36.636073Z",
            "renewTime": "2026-11-21T23:27:47.000000Z", "leaseTransitions": 0, "strategy": "OldestEmulationVersion", "preferredHolder": ""}
    }));
}

#[test]
fn delete_options_round_trip() {
    for api_version in ["v1", "networking.k8s.io/v1", "meta.k8s.io/v1"] {
        let obj = json!({
            "kind": "DeleteOptions", "apiVersion": api_version,
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u1", "resourceVersion": "5"},
            "propagationPolicy": "Foreground",
            "dryRun": ["All"]
        });
        let back = decode(&encode(&obj).unwrap()).unwrap();
        assert_same(&back, &obj, api_version);
    }
}

#[test]
fn lists_round_trip() {
    round_trip(json!({
        "kind": "ServiceList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "42", "continue": "abc", "remainingItemCount": 0},
        "items": [{"metadata": {"name": "a", "namespace": "default", "creationTimestamp": null},
            "spec": {"ports": [{"port": 80, "targetPort": 80}]}, "status": {"loadBalancer": {}}}]
    }));
    // Requests are never lists.
    let list = encode(&json!({"kind": "ServiceList", "apiVersion": "v1", "metadata": {}, "items": []})).unwrap();
    assert!(decode(&list).is_err());
}
