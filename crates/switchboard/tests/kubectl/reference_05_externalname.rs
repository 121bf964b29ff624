//! Replay of reference 05: ExternalName Services (the alias, with ports and a selector, invalid,
//! over-long, trailing-dot and IP names, with a clusterIP, externalName on a ClusterIP Service,
//! conversions to and from ClusterIP). Runs after 04, in [`crate::reference_04_nodeport`]'s test.

use crate::transcript::{compare, Step};

/// Every command of 05, in order.
pub fn plan() -> Vec<Step> {
    vec![
        compare(0, "name: nginx-alias\n"),
        compare(1, "get svc nginx-alias -o wide"),
        compare(2, "get svc nginx-alias -o yaml"),
        compare(3, "describe svc nginx-alias"),
        compare(4, "get ep nginx-alias"),
        compare(5, "service-name=nginx-alias"),
        compare(6, "name: nginx-alias-ports"),
        compare(7, "get svc nginx-alias-ports -o wide"),
        compare(8, "get svc nginx-alias-ports -o yaml"),
        compare(9, "describe svc nginx-alias-ports"),
        compare(10, "get ep nginx-alias-ports"),
        compare(11, "service-name=nginx-alias-ports"),
        compare(12, "name: bad-alias-1"),
        compare(13, "name: bad-alias-2"),
        compare(14, "name: bad-alias-3"),
        compare(15, "name: bad-alias-4"),
        compare(16, "create service externalname bad-alias-5"),
        compare(17, "bad-alias-5"),
        compare(18, "name: alias-fqdn-dot"),
        compare(19, "name: alias-ip"),
        compare(20, "get svc alias-fqdn-dot alias-ip -o wide"),
        compare(21, "name: bad-alias-cip"),
        compare(22, "name: cip-with-extname"),
        compare(23, "get svc cip-with-extname -o yaml"),
        compare(24, r#"{"spec":{"type":"ClusterIP"}}"#),
        compare(25, "get svc nginx-alias-ports -o yaml"),
        compare(26, r#""type":"ExternalName""#),
        compare(27, "get svc nginx-alias-ports -o yaml"),
        compare(28, "patch svc nginx-alias --type=merge"),
        compare(29, "delete svc cip-with-extname"),
        compare(30, "kubectl get svc -o wide"),
    ]
}
