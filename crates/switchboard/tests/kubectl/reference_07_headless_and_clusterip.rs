//! Replay of reference 07: headless Services (with and without a selector or ports,
//! publishNotReadyAddresses, with NodePort or LoadBalancer), fixed, out-of-range, taken and
//! invalid clusterIPs, clusterIP immutability and PUT without clusterIP, dual-stack policies on a
//! single-stack cluster, server dry-run placeholders, IPAddress and ServiceCIDR objects. Runs
//! after 06, in [`crate::reference_04_nodeport`]'s test, on a server with the recording's
//! Service CIDR.

use crate::transcript::{compare, Step};

/// The header, then the rows sorted by their second column.
const BY_PARENT_REF: &str = r#"{ IFS= read -r header; printf '%s\n' "$header"; sort -b -k2; }"#;

/// Every command of 07, in order.
pub fn plan() -> Vec<Step> {
    vec![
        compare(0, "name: nginx-headless\n"),
        compare(1, "get svc nginx-headless -o wide"),
        compare(2, "get svc nginx-headless -o yaml"),
        compare(3, "describe svc nginx-headless").after_endpoints_of("nginx-headless"),
        compare(4, "get ep nginx-headless -o yaml").after_endpoints_of("nginx-headless"),
        compare(5, "service-name=nginx-headless -o yaml")
            .after_endpoints_of("nginx-headless")
            .unordered("endpoints"),
        compare(6, "name: headless-noports"),
        compare(7, "get svc headless-noports -o yaml"),
        compare(8, "name: nginx-headless-pnr"),
        compare(9, "get ep nginx-headless-pnr -o wide").after_endpoints_of("nginx-headless-pnr"),
        compare(10, "service-name=nginx-headless-pnr -o yaml")
            .after_endpoints_of("nginx-headless-pnr")
            .unordered("endpoints"),
        compare(11, "name: headless-np"),
        compare(12, "name: headless-lb"),
        compare(13, "name: nginx-fixed-ip\n"),
        compare(14, "get svc nginx-fixed-ip -o wide"),
        compare(15, "get svc nginx-fixed-ip -o yaml"),
        compare(16, "name: nginx-out-of-range\n"),
        compare(17, "name: nginx-out-of-range-2"),
        compare(18, "name: nginx-netaddr"),
        compare(19, "name: nginx-bcast"),
        compare(20, "name: nginx-kubernetes-ip"),
        compare(21, "name: nginx-taken"),
        compare(22, "name: nginx-bad-ip\n"),
        compare(23, "name: nginx-bad-ip-2"),
        compare(24, "name: nginx-ipv6\n"),
        compare(25, "name: nginx-ip-mismatch"),
        compare(26, r#"{"spec":{"clusterIP":"10.96.100.200"}}"#),
        compare(27, r#""clusterIPs":["10.96.100.200"]"#),
        compare(28, r#""clusterIPs":["None"]"#),
        compare(29, "clusterIP: 10.96.100.150"),
        compare(30, "patch svc nginx-headless"),
        compare(31, r#"{"spec":{"clusterIP":""}}"#),
        compare(32, r#""clusterIPs":null"#),
        compare(33, "get svc nginx-fixed-ip -o jsonpath"),
        compare(34, "kubectl replace -f -"),
        compare(35, "get svc nginx-fixed-ip -o jsonpath"),
        compare(36, "delete svc nginx-fixed-ip"),
        compare(37, "name: nginx-fixed-ip2"),
        compare(38, "get svc nginx-fixed-ip2 -o wide"),
        compare(39, "name: nginx-prefer-ds"),
        compare(40, "get svc nginx-prefer-ds -o yaml"),
        compare(41, "name: nginx-require-ds"),
        compare(42, "name: nginx-ipv6-family"),
        compare(43, "name: nginx-bad-family"),
        compare(44, "delete svc nginx-prefer-ds"),
        compare(45, "custom-columns"),
        compare(46, "create service clusterip dry1"),
        compare(47, "create service clusterip dry1"),
        compare(48, "create service nodeport dry2"),
        // Rows are sorted by name, a random ClusterIP: compare them in PARENTREF order.
        compare(49, "kubectl get ipaddresses").through(BY_PARENT_REF),
        compare(50, "kubectl get ipaddress 10.96.100.100"),
        compare(51, "kubectl get servicecidrs"),
        compare(52, "kubectl get servicecidr kubernetes"),
        compare(53, "kubectl get svc -o wide"),
    ]
}
