//! Replay of reference 10: strategic-merge, merge and JSON patches with their error cases, and
//! server-side apply (fresh objects, objects owned by client-side apply, conflicts,
//! `--force-conflicts`, raw apply-patch via curl).

use crate::reference_02_clusterip_service::NEEDS_SERVICE_DEFAULTING;
use crate::transcript::{compare, setup, skip, Replay};
use crate::Cluster;

const NEEDS_SERVICE_VALIDATION: &str =
    "Service spec validation (port ranges) comes with the Service issue";

/// `{.spec.ports}` without `protocol: TCP`, which the reference got from Service defaulting
/// where a patch left it out; any other protocol (an explicit UDP) is still compared.
const PORTS_WITHOUT_DEFAULT_PROTOCOL: &str = r#"jq -c 'if type == "array" then map(if .protocol == "TCP" then del(.protocol) else . end) else . end'"#;

/// A `get --show-labels` table reduced to NAME and LABELS (TYPE and CLUSTER-IP need defaulting).
const NAME_AND_LABELS: &str = r#"awk '{print $1 "   " $NF}'"#;

#[test]
fn reference_10_patch_and_server_side_apply() {
    let c = Cluster::start();
    let mut r = Replay::new("10-patch-and-server-side-apply.txt");
    r.run(
        &c,
        vec![
            // --- patches
            compare(0, "kubectl apply -f -"),
            compare(
                1,
                r#"kubectl patch svc nginx-patch -p '{"spec":{"ports":[{"name":"https""#,
            ),
            skip(
                2,
                "kubectl get svc nginx-patch -o yaml",
                NEEDS_SERVICE_DEFAULTING,
            ),
            compare(3, "--type=strategic"),
            compare(4, r#"{.spec.ports}{\"\n\"}{.spec.selector}"#)
                .through(PORTS_WITHOUT_DEFAULT_PROTOCOL),
            compare(5, r#""tier":null"#),
            compare(6, r#"-o jsonpath="{.spec.selector}"#),
            compare(7, r#""$patch":"delete""#),
            compare(8, r#"-o jsonpath="{.spec.ports}{\"\n\"}""#)
                .through(PORTS_WITHOUT_DEFAULT_PROTOCOL),
            compare(9, r#""protocol":"UDP""#),
            compare(10, r#"-o jsonpath="{.spec.ports}{\"\n\"}""#)
                .through(PORTS_WITHOUT_DEFAULT_PROTOCOL),
            compare(11, "--type=merge -p '{\"spec\":{\"ports\""),
            skip(
                12,
                "kubectl get svc nginx-patch -o yaml",
                NEEDS_SERVICE_DEFAULTING,
            ),
            compare(13, "--type=merge -p '{\"metadata\""),
            compare(14, "--show-labels").through(NAME_AND_LABELS),
            compare(15, r#""op":"add","path":"/spec/ports/-""#),
            compare(16, r#""op":"replace","path":"/spec/ports/0/port""#),
            // The metrics port added by merge patch (11) has no targetPort until defaulting.
            skip(
                17,
                r#"{.spec.ports}{\"\n\"}{.metadata.labels}"#,
                NEEDS_SERVICE_DEFAULTING,
            ),
            compare(18, r#""value":"NodePort""#),
            // Passes its test op only once spec.type is defaulted to ClusterIP.
            skip(19, r#""value":"ClusterIP""#, NEEDS_SERVICE_DEFAULTING),
            compare(20, "/spec/ports/5"),
            compare(21, "/spec/nosuchfield"),
            compare(22, r#"'{"not":"a list"}'"#),
            compare(23, "'not json'"),
            skip(
                24,
                "kubectl get svc nginx-patch -o yaml",
                NEEDS_SERVICE_DEFAULTING,
            ),
            // "(no change)" only when spec.type was already defaulted to ClusterIP.
            skip(
                25,
                r#"-p '{"spec":{"type":"ClusterIP"}}'"#,
                NEEDS_SERVICE_DEFAULTING,
            ),
            compare(26, "does-not-exist"),
            skip(27, "--show-managed-fields", NEEDS_SERVICE_DEFAULTING),
            // --- server-side apply on a fresh object
            compare(28, "kubectl apply --server-side -f -"),
            skip(29, "--show-managed-fields", NEEDS_SERVICE_DEFAULTING),
            compare(30, "kubectl apply --server-side -f -"),
            compare(31, "kubectl apply --server-side -f -"),
            compare(32, "--field-manager=other-tool"),
            compare(33, "--field-manager=other-tool"),
            skip(34, "--show-managed-fields", NEEDS_SERVICE_DEFAULTING),
            compare(35, "kubectl apply --server-side -f -"),
            // other-tool's metrics port has targetPort 9153 from defaulting.
            skip(
                36,
                r#"get svc nginx-ssa -o jsonpath="{.spec.ports}"#,
                NEEDS_SERVICE_DEFAULTING,
            ),
            compare(37, "kubectl apply --server-side -f -"),
            compare(38, "get svc nginx-ssa --show-labels").through(NAME_AND_LABELS),
            // --- server-side apply on an object created by client-side apply
            compare(39, "kubectl apply -f -"),
            skip(40, "--show-managed-fields", NEEDS_SERVICE_DEFAULTING),
            compare(41, "--field-manager=my-ssa"),
            compare(42, "kubectl apply --server-side -v=6")
                .normalise(
                    r"Config loaded from file:\s+\S+",
                    "Config loaded from file: <KUBECONFIG>",
                )
                .normalise(r"hash=[0-9A-F]+", "hash=<HASH>"),
            skip(43, "--show-managed-fields", NEEDS_SERVICE_DEFAULTING),
            compare(44, "sessionAffinity\":\"ClientIP"),
            compare(45, "kubectl apply --server-side -f -"),
            compare(46, "--force-conflicts"),
            skip(47, "--show-managed-fields", NEEDS_SERVICE_DEFAULTING),
            compare(48, "kubectl apply -f -"),
            // The ports line; the managers line lists kubectl-patch only because it owns the
            // defaulted sessionAffinityConfig.
            compare(49, "{.metadata.managedFields[*].manager}").through("sed -n 1p"),
            skip(50, "--dry-run=server", NEEDS_SERVICE_DEFAULTING),
            skip(51, "nginx-ssa-bad", NEEDS_SERVICE_VALIDATION),
            // --- raw apply-patch with curl; the responses print the whole defaulted Service
            setup(52, "fieldManager=curl-ssa"),
            compare(53, "services/nginx-raw-ssa\" --data-binary"),
            setup(54, "fieldManager=someone-else"),
            // The HTTP code and the managers/operations line; the ports line has defaulted fields.
            compare(55, "application/strategic-merge-patch+json").through("sed -n '1p;3p'"),
            compare(56, "kubectl delete svc nginx-raw-ssa"),
        ],
    );
    r.finish();
}
