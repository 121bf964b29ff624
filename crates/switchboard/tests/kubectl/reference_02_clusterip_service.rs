//! Replay of reference 02 (a ClusterIP Service: apply created/unchanged/configured, get, describe,
//! diff, AlreadyExists, get -w, create --dry-run).

use crate::transcript::{compare, Replay};
use crate::Cluster;

#[test]
fn reference_02_clusterip_service() {
    let c = Cluster::start();
    let mut r = Replay::new("02-clusterip-service.txt");
    r.run(
        &c,
        vec![
            compare(0, "kubectl get svc -o wide"),
            compare(1, "kubectl apply -f -"),
            compare(2, "kubectl get svc -o wide"),
            compare(3, "get svc -l app=nginx -o wide"),
            compare(4, "kubectl get svc nginx-service"),
            compare(5, "get svc/nginx-service -o name"),
            compare(6, "get svc nginx-service -o yaml"),
            compare(7, "get svc nginx-service -o json"),
            compare(8, "describe svc nginx-service").after_endpoints_of("nginx-service"),
            compare(9, "kubectl apply -f -"),
            compare(10, "kubectl apply -f -"),
            compare(11, "get svc nginx-service -o wide"),
            compare(12, "get svc nginx-service -o yaml"),
            compare(13, "describe svc nginx-service").after_endpoints_of("nginx-service"),
            // kubectl names its temporary directories LIVE-<random> and MERGED-<random>.
            compare(14, "kubectl diff").normalise(r"/tmp/(LIVE|MERGED)-\d+/", "${1}/"),
            compare(15, "kubectl apply -f -"),
            // The last line is the bare resourceVersion.
            compare(16, "-o jsonpath").normalise(r"^\d+$", "<RV>"),
            compare(17, "kubectl create -f -"),
            compare(18, "kubectl get svc -w"),
            compare(19, "--output-watch-events"),
            compare(20, "--dry-run=server"),
            compare(21, "--dry-run=client"),
            compare(22, "custom-columns"),
        ],
    );
    r.finish();
}
