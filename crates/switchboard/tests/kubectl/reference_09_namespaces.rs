//! Replay of reference 09: namespaces ns1/ns2, a namespace mismatch, a missing namespace, and
//! deleting a namespace (Terminating, create refused, finalized, its services gone).

use crate::transcript::{compare, skip, Replay};
use crate::Cluster;

/// The reference's `default` namespace held the ~20 Services of scenarios 02-08 by then.
const NEEDS_EARLIER_SCENARIOS: &str =
    "lists the default namespace as scenarios 02-08 left it (with allocated IPs and nodePorts)";
const NEEDS_ENDPOINTS_CONTROLLER: &str =
    "needs the endpoints and endpointslice controllers, not wired into the server yet";
/// An allocated nodePort in a PORT(S) cell (`8080:31332/TCP`): random in 30000-32767.
const NODE_PORT: &str = r"(\d+:)3\d{4}/";

#[test]
fn reference_09_namespaces() {
    let c = Cluster::start();
    let mut r = Replay::new("09-namespaces.txt");
    r.run(
        &c,
        vec![
            compare(0, "kubectl create ns ns1"),
            compare(1, "kubectl create namespace ns2"),
        ],
    );
    // Should those creates fail (a difference already recorded), create the namespaces another
    // way, so that the rest of the file still tests something.
    for ns in ["ns1", "ns2"] {
        c.sh(&format!("kubectl get ns {ns} >/dev/null 2>&1 || kubectl create -f - >/dev/null <<'EOF'\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\nEOF")).ok();
    }
    r.run(
        &c,
        vec![
            compare(2, "kubectl get ns"),
            compare(3, "kubectl get ns ns2 -o yaml"),
            compare(4, "kubectl apply -f -"),
            compare(5, "kubectl apply -n ns1 -f -"),
            compare(6, "kubectl apply -n ns1 -f -"),
            compare(7, "kubectl apply -n ns1 -f -"),
            skip(8, "sleep 2; kubectl get svc -A", NEEDS_EARLIER_SCENARIOS),
            skip(9, "kubectl get svc -A -o wide", NEEDS_EARLIER_SCENARIOS),
            compare(10, "kubectl get svc -n ns1 -o wide").normalise(NODE_PORT, "${1}<NODEPORT>/"),
            compare(11, "kubectl get svc -n ns2 -o yaml"),
            skip(
                12,
                "kubectl get endpointslices -A",
                NEEDS_ENDPOINTS_CONTROLLER,
            ),
            skip(13, "kubectl get ep -A", NEEDS_ENDPOINTS_CONTROLLER),
            compare(14, "kubectl get all -n ns1").normalise(NODE_PORT, "${1}<NODEPORT>/"),
            compare(15, "--field-selector metadata.namespace!=default")
                .normalise(NODE_PORT, "${1}<NODEPORT>/"),
            skip(
                16,
                "--field-selector spec.type=NodePort",
                NEEDS_EARLIER_SCENARIOS,
            ),
            skip(
                17,
                "--field-selector spec.clusterIP=None",
                NEEDS_EARLIER_SCENARIOS,
            ),
            skip(
                18,
                "kubectl get svc -A -l app=nginx",
                NEEDS_EARLIER_SCENARIOS,
            ),
            compare(19, "kubectl apply -n nope -f -"),
            compare(20, "kubectl get svc -n nope"),
            compare(21, "kubectl delete ns ns1 --wait=false"),
            compare(22, "kubectl get ns ns1 -o yaml"),
            compare(23, "kubectl create -n ns1 -f -"),
            compare(24, "kubectl wait --for=delete namespace/ns1"),
            compare(25, "kubectl get ns ns1"),
            compare(26, "kubectl get svc -n ns1"),
            compare(27, "kubectl get endpointslices -n ns1"),
            skip(28, "kubectl get svc -A", NEEDS_EARLIER_SCENARIOS),
            skip(29, "kubectl get ipaddresses", NEEDS_EARLIER_SCENARIOS),
            compare(30, "kubectl get ns"),
        ],
    );
    // 15 with the columns that need no Service defaulting: which services the field selector
    // `metadata.namespace!=default` returns, across namespaces (ns1 was deleted since, so only
    // the NAMESPACE and NAME columns of the recording's ns2 row are expected now).
    let run = c.kubectl("get svc --all-namespaces --field-selector metadata.namespace!=default -o custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name");
    r.check(
        "field selector metadata.namespace!=default after ns1 is gone",
        crate::transcript::compare_output(
            "NAMESPACE   NAME\nns2         nginx-service\n",
            0,
            &run.out,
            run.code,
            &Vec::new(),
        ),
    );
    r.finish();
}
