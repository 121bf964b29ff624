//! Replay of the generic error cases of reference 08: object names, generateName, strict field
//! validation, wrong types, and the raw Status bodies for AlreadyExists, NotFound, unknown
//! fields, bad JSON, namespace and name mismatches, wrong kind, Conflict, 415 and 401.
//! Service spec validation (ports, protocols, affinity, types, ...) comes with the Service issue.

use crate::reference_02_clusterip_service::NEEDS_SERVICE_DEFAULTING;
use crate::transcript::{compare, setup, skip, Replay};
use crate::Cluster;

const NEEDS_SERVICE_VALIDATION: &str = "Service spec validation: next issue";

/// The state 08 starts from: `nginx-service` as reference 02 left it.
const NGINX_SERVICE: &str = "
apiVersion: v1
kind: Service
metadata:
  name: nginx-service
  namespace: default
  labels:
    app: nginx
spec:
  selector:
    app: nginx
  ports:
    - name: nginx-port
      protocol: TCP
      port: 80
      targetPort: 80
";

#[test]
fn reference_08_generic_errors() {
    let c = Cluster::start();
    c.apply(NGINX_SERVICE);
    let mut r = Replay::new("08-validation-errors.txt");
    let mut plan = Vec::new();
    for (i, name) in [
        "no-ports",
        "port-zero",
        "port-70000",
        "port-negative",
        "targetport-zero",
        "targetport-70000",
        "targetport-badnames",
        "get svc targetport-zero",
        "delete svc targetport-zero",
        "dup-names",
        "unnamed-multi",
        "dup-port-proto",
        "bad-port-name",
    ]
    .into_iter()
    .enumerate()
    {
        plan.push(skip(i, name, NEEDS_SERVICE_VALIDATION));
    }
    plan.extend([
        compare(13, "Upper_Case"),
        compare(14, "name: 1nginx"),
        compare(15, "nginx.dotted"),
        compare(16, "exactly-sixty-four-characters"),
        // kube-apiserver reports the empty name from inside ClusterIP allocation.
        skip(17, "name: \"\"", NEEDS_SERVICE_DEFAULTING),
        skip(
            18,
            "kubectl get svc 1nginx -o wide",
            NEEDS_SERVICE_DEFAULTING,
        ),
        compare(19, "kubectl delete svc 1nginx"),
        compare(20, "generateName: gen-svc-"),
        compare(21, "grep gen-svc-"),
        compare(22, "kubectl delete $s"),
    ]);
    for (i, name) in [
        "mixed-proto",
        "get svc mixed-proto",
        "delete svc mixed-proto",
        "lower-proto",
        "icmp-proto",
        "affinity-default",
        "get svc affinity-default -o yaml",
        "describe svc affinity-default",
        "affinity-zero",
        "affinity-max",
        "affinity-86401",
        "affinity-bogus",
        "affinity-none-with-config",
        "get svc affinity-none-with-config",
        "delete svc affinity-max affinity-none-with-config",
        "type-foo",
        "type-lowercase",
        "itp-bogus",
        "td-preferclose",
        "get svc td-preferclose -o yaml",
        "describe svc td-preferclose",
        "delete svc td-preferclose",
        "td-bogus",
        "app-protocol",
        "bad-selector",
        "many-errors",
    ]
    .into_iter()
    .enumerate()
    {
        plan.push(skip(23 + i, name, NEEDS_SERVICE_VALIDATION));
    }
    plan.extend([
        compare(49, "name: unknown-field\n"),
        compare(50, "--validate=warn"),
        compare(51, "--validate=false"),
        compare(52, "delete svc unknown-field-warn unknown-field-ignore"),
        compare(53, "port-string"),
        compare(54, "selector-list"),
        skip(
            55,
            r#""path":"/spec/ports/0/port","value":0"#,
            NEEDS_SERVICE_VALIDATION,
        ),
        skip(56, r#""type":"Foo""#, NEEDS_SERVICE_VALIDATION),
        setup(57, "cat > ./bad-svc.yaml"),
        skip(58, "grep -i \"response body\"", NEEDS_SERVICE_VALIDATION),
        skip(
            59,
            "kubectl create -f ./bad-svc.yaml -v=6",
            NEEDS_SERVICE_VALIDATION,
        ),
        skip(60, "grep -A8 \"POST https\"", NEEDS_SERVICE_VALIDATION),
        skip(
            61,
            "bad-svc.json; cat ./bad-svc.json",
            NEEDS_SERVICE_VALIDATION,
        ),
        skip(
            62,
            "--data @./bad-svc.json \"$API/api/v1/namespaces/default/services\"",
            NEEDS_SERVICE_VALIDATION,
        ),
        skip(
            63,
            "services?fieldValidation=Strict\" | python3",
            NEEDS_SERVICE_VALIDATION,
        ),
        compare(64, r#"\"name\":\"nginx-service\"},\"spec\""#),
        compare(65, "services/does-not-exist\""),
        compare(66, "no-such-ns/services/does-not-exist"),
        compare(67, "fieldValidation=Strict&dryRun=All"),
        // Status line and the warning header; the body is the whole defaulted Service.
        compare(68, "fieldValidation=Warn&dryRun=All")
            .through("grep -i -E '^(HTTP/|warning:)'")
            .normalise(r"^HTTP/[0-9.]+ (\d+)\s*$", "HTTP ${1}"),
        skip(
            69,
            "services?dryRun=All\" | head -c 600",
            NEEDS_SERVICE_DEFAULTING,
        ),
        compare(70, "{not json"),
        compare(71, "nsmismatch"),
        compare(72, "wrongkind"),
        compare(73, "other-name"),
        compare(74, r#"\"resourceVersion\":\"1\""#),
        compare(75, "-X PATCH"),
        compare(76, "-X DELETE"),
        compare(77, "curl -sk -w"),
        skip(
            78,
            "kubectl get svc -o name",
            "lists the default namespace as scenarios 02-08 left it",
        ),
    ]);
    r.run(&c, plan);
    r.finish();
}
