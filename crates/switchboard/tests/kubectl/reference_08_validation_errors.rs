//! Replay of reference 08: Service validation errors (ports, names, protocols, affinity, types,
//! selectors), generateName, strict field validation, wrong types, and the raw Status bodies
//! for Invalid, AlreadyExists, NotFound, unknown fields, bad JSON, namespace and name
//! mismatches, wrong kind, Conflict, 415 and 401.

use crate::transcript::{compare, setup, skip, Step};

/// Every command of 08, in order. Runs after 07, in [`crate::reference_04_nodeport`]'s test
/// (its last command lists every Service 02 to 08 left).
pub fn plan() -> Vec<Step> {
    let mut plan: Vec<Step> = Vec::new();
    // Service validation: ports, target ports, port names (0-12), names (13-19), generateName
    // (20-22), protocols (23-27), session affinity (28-37), type, traffic policies and
    // distribution, appProtocol, selectors, several errors at once (38-48).
    let validation = [
        (0, "no-ports"),
        (1, "port-zero"),
        (2, "port-70000"),
        (3, "port-negative"),
        (4, "targetport-zero"),
        (5, "targetport-70000"),
        (6, "targetport-badnames"),
        (7, "get svc targetport-zero"),
        (8, "delete svc targetport-zero"),
        (9, "dup-names"),
        (10, "unnamed-multi"),
        (11, "dup-port-proto"),
        (12, "bad-port-name"),
        (13, "Upper_Case"),
        (14, "name: 1nginx"),
        (15, "nginx.dotted"),
        (16, "exactly-sixty-four-characters"),
        (18, "kubectl get svc 1nginx -o wide"),
        (19, "kubectl delete svc 1nginx"),
        (20, "generateName: gen-svc-"),
        (21, "grep gen-svc-"),
        (22, "kubectl delete $s"),
        (23, "mixed-proto"),
        (24, "get svc mixed-proto"),
        (25, "delete svc mixed-proto"),
        (26, "lower-proto"),
        (27, "icmp-proto"),
        (28, "affinity-default"),
        (29, "get svc affinity-default -o yaml"),
        (31, "affinity-zero"),
        (32, "affinity-max"),
        (33, "affinity-86401"),
        (34, "affinity-bogus"),
        (35, "affinity-none-with-config"),
        (36, "get svc affinity-none-with-config"),
        (37, "delete svc affinity-max affinity-none-with-config"),
        (38, "type-foo"),
        (39, "type-lowercase"),
        (40, "itp-bogus"),
        (41, "td-preferclose"),
        (42, "get svc td-preferclose -o yaml"),
        (44, "delete svc td-preferclose"),
        (45, "td-bogus"),
        (46, "app-protocol"),
        (47, "bad-selector"),
        (48, "many-errors"),
    ];
    for (i, needle) in validation {
        plan.push(compare(i, needle));
    }
    plan.extend([
        // An empty name fails in ClusterIP allocation, before any validation.
        compare(17, "name: \"\""),
        compare(30, "describe svc affinity-default").after_endpoints_of("affinity-default"),
        compare(43, "describe svc td-preferclose").after_endpoints_of("td-preferclose"),
        // Strict field validation and wrong types.
        compare(49, "name: unknown-field\n"),
        compare(50, "--validate=warn"),
        compare(51, "--validate=false"),
        compare(52, "delete svc unknown-field-warn unknown-field-ignore"),
        compare(53, "port-string"),
        compare(54, "selector-list"),
        // Update-time validation.
        compare(55, r#""path":"/spec/ports/0/port","value":0"#),
        compare(56, r#""type":"Foo""#),
        // Raw error bodies.
        setup(57, "cat > ./bad-svc.yaml"),
        skip(
            58,
            "grep -i \"response body\"",
            "prints the first bytes of /openapi/v3, whose paths differ (no .well-known/openid-configuration, openid/v1/jwks, other groups)",
        ),
        compare(59, "kubectl create -f ./bad-svc.yaml -v=6")
            .normalise(r"Config loaded from file:\s+\S+", "Config loaded from file: <KUBECONFIG>")
            .normalise(r"hash=[0-9A-F]+", "hash=<HASH>"),
        skip(
            60,
            "grep -A8 \"POST https\"",
            "kubectl logs request headers in Go map order (random); the response headers differ (Audit-Id)",
        ),
        compare(61, "bad-svc.json; cat ./bad-svc.json"),
        // The body; the header block (audit-id, date, HTTP/2 framing) is dropped on both sides.
        compare(62, "--data @./bad-svc.json \"$API/api/v1/namespaces/default/services\"")
            .through(r"sed '1,/^\r*$/d'"),
        compare(63, "services?fieldValidation=Strict\" | python3"),
        compare(64, r#"\"name\":\"nginx-service\"},\"spec\""#),
        compare(65, "services/does-not-exist\""),
        compare(66, "no-such-ns/services/does-not-exist"),
        compare(67, "fieldValidation=Strict&dryRun=All"),
        // Status line and the warning header; the rest of the headers differ (audit-id, date).
        compare(68, "fieldValidation=Warn&dryRun=All")
            .through("grep -i -E '^(HTTP/|warning:)'")
            .normalise(r"^HTTP/[0-9.]+ (\d+)\s*$", "HTTP ${1}"),
        compare(69, "services?dryRun=All\" | head -c 600"),
        compare(70, "{not json"),
        compare(71, "nsmismatch"),
        compare(72, "wrongkind"),
        compare(73, "other-name"),
        compare(74, r#"\"resourceVersion\":\"1\""#),
        compare(75, "-X PATCH"),
        compare(76, "-X DELETE"),
        compare(77, "curl -sk -w"),
        compare(78, "kubectl get svc -o name"),
    ]);
    plan.sort_by_key(|step| step.index);
    plan
}
