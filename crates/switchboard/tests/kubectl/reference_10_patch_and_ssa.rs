//! Replay of reference 10: strategic-merge, merge and JSON patches with their error cases, and
//! server-side apply (fresh objects, objects owned by client-side apply, conflicts,
//! `--force-conflicts`, raw apply-patch via curl).

use crate::transcript::{compare, Replay};
use crate::Cluster;

/// Sorts the words of the second line of stdin.
const SORT_WORDS_OF_LINE_2: &str = r#"python3 -c 'import sys; l = sys.stdin.read().split("\n"); l[1] = " ".join(sorted(l[1].split())); print("\n".join(l), end="")'"#;

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
            compare(2, "kubectl get svc nginx-patch -o yaml"),
            compare(3, "--type=strategic"),
            compare(4, r#"{.spec.ports}{\"\n\"}{.spec.selector}"#),
            compare(5, r#""tier":null"#),
            compare(6, r#"-o jsonpath="{.spec.selector}"#),
            compare(7, r#""$patch":"delete""#),
            compare(8, r#"-o jsonpath="{.spec.ports}{\"\n\"}""#),
            compare(9, r#""protocol":"UDP""#),
            compare(10, r#"-o jsonpath="{.spec.ports}{\"\n\"}""#),
            compare(11, "--type=merge -p '{\"spec\":{\"ports\""),
            compare(12, "kubectl get svc nginx-patch -o yaml"),
            compare(13, "--type=merge -p '{\"metadata\""),
            compare(14, "--show-labels"),
            compare(15, r#""op":"add","path":"/spec/ports/-""#),
            compare(16, r#""op":"replace","path":"/spec/ports/0/port""#),
            compare(17, r#"{.spec.ports}{\"\n\"}{.metadata.labels}"#),
            compare(18, r#""value":"NodePort""#),
            compare(19, r#""value":"ClusterIP""#),
            compare(20, "/spec/ports/5"),
            compare(21, "/spec/nosuchfield"),
            compare(22, r#"'{"not":"a list"}'"#),
            compare(23, "'not json'"),
            compare(24, "kubectl get svc nginx-patch -o yaml"),
            compare(25, r#"-p '{"spec":{"type":"ClusterIP"}}'"#),
            compare(26, "does-not-exist"),
            compare(27, "--show-managed-fields"),
            // --- server-side apply on a fresh object
            compare(28, "kubectl apply --server-side -f -"),
            compare(29, "--show-managed-fields"),
            compare(30, "kubectl apply --server-side -f -"),
            compare(31, "kubectl apply --server-side -f -"),
            compare(32, "--field-manager=other-tool"),
            compare(33, "--field-manager=other-tool"),
            compare(34, "--show-managed-fields"),
            compare(35, "kubectl apply --server-side -f -"),
            compare(36, r#"get svc nginx-ssa -o jsonpath="{.spec.ports}"#),
            compare(37, "kubectl apply --server-side -f -"),
            compare(38, "get svc nginx-ssa --show-labels"),
            // --- server-side apply on an object created by client-side apply
            compare(39, "kubectl apply -f -"),
            compare(40, "--show-managed-fields"),
            compare(41, "--field-manager=my-ssa"),
            compare(42, "kubectl apply --server-side -v=6")
                .normalise(
                    r"Config loaded from file:\s+\S+",
                    "Config loaded from file: <KUBECONFIG>",
                )
                .normalise(r"hash=[0-9A-F]+", "hash=<HASH>"),
            compare(43, "--show-managed-fields"),
            compare(44, "sessionAffinity\":\"ClientIP"),
            compare(45, "kubectl apply --server-side -f -"),
            compare(46, "--force-conflicts"),
            compare(47, "--show-managed-fields"),
            compare(48, "kubectl apply -f -"),
            // managedFields are sorted by operation, then time to the second, then manager: the
            // patch (44) and this client-side apply (48) often fall in the same second here,
            // so the managers are compared as a set.
            compare(49, "{.metadata.managedFields[*].manager}").through(SORT_WORDS_OF_LINE_2),
            compare(50, "--dry-run=server"),
            compare(51, "nginx-ssa-bad"),
            // --- raw apply-patch with curl
            compare(52, "fieldManager=curl-ssa"),
            compare(53, "services/nginx-raw-ssa\" --data-binary"),
            compare(54, "fieldManager=someone-else"),
            compare(55, "application/strategic-merge-patch+json"),
            compare(56, "kubectl delete svc nginx-raw-ssa"),
        ],
    );
    r.finish();
}
