//! Replay of reference 02 (a ClusterIP Service: apply created/unchanged/configured, get, describe,
//! AlreadyExists, get -w, create --dry-run).

use crate::transcript::{compare, skip, Replay};
use crate::Cluster;

/// Service defaulting (clusterIP allocation, ipFamilies, internalTrafficPolicy, sessionAffinity,
/// type, port protocol/targetPort, status.loadBalancer) is the next issue; these outputs print it.
pub const NEEDS_SERVICE_DEFAULTING: &str =
    "prints defaulted Service fields (clusterIP, ipFamilies, ...): next issue";

#[test]
fn reference_02_clusterip_service() {
    let c = Cluster::start();
    let mut r = Replay::new("02-clusterip-service.txt");
    r.run(
        &c,
        vec![
            // The built-in `kubernetes` Service has its ClusterIP from bootstrap, not from defaulting.
            compare(0, "kubectl get svc -o wide"),
            compare(1, "kubectl apply -f -"),
            skip(2, "kubectl get svc -o wide", NEEDS_SERVICE_DEFAULTING),
            skip(3, "get svc -l app=nginx -o wide", NEEDS_SERVICE_DEFAULTING),
            skip(4, "kubectl get svc nginx-service", NEEDS_SERVICE_DEFAULTING),
            compare(5, "get svc/nginx-service -o name"),
            skip(6, "get svc nginx-service -o yaml", NEEDS_SERVICE_DEFAULTING),
            skip(7, "get svc nginx-service -o json", NEEDS_SERVICE_DEFAULTING),
            skip(8, "describe svc nginx-service", NEEDS_SERVICE_DEFAULTING),
            compare(9, "kubectl apply -f -"),
            compare(10, "kubectl apply -f -"),
            skip(
                11,
                "get svc nginx-service -o wide",
                NEEDS_SERVICE_DEFAULTING,
            ),
            skip(
                12,
                "get svc nginx-service -o yaml",
                NEEDS_SERVICE_DEFAULTING,
            ),
            skip(13, "describe svc nginx-service", NEEDS_SERVICE_DEFAULTING),
            // The diff hunk's line numbers and context lines come from the defaulted object.
            skip(14, "kubectl diff", NEEDS_SERVICE_DEFAULTING),
            compare(15, "kubectl apply -f -"),
            skip(16, "-o jsonpath", NEEDS_SERVICE_DEFAULTING),
            compare(17, "kubectl create -f -"),
            // The watches, with only the columns that need no Service defaulting (TYPE and
            // CLUSTER-IP do; counted from the end, as an empty TYPE cell would shift awk's
            // fields): the initial rows, then one more row for the concurrent label change.
            compare(18, "kubectl get svc -w")
                .through(r#"awk '{print $1 "   " $(NF-1) "   " $NF}'"#),
            compare(19, "--output-watch-events")
                .through(r#"awk '{print $1 "   " $2 "   " $(NF-2) "   " $(NF-1) "   " $NF}'"#),
            skip(20, "--dry-run=server", NEEDS_SERVICE_DEFAULTING),
            compare(21, "--dry-run=client"),
            skip(22, "custom-columns", NEEDS_SERVICE_DEFAULTING),
        ],
    );
    r.finish();
}
