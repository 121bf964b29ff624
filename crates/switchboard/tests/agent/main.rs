//! The node agent end to end (issue 5's acceptance): a real `switchboard server`, network
//! namespaces for nodes, pods and a client (test-support's netlab), `switchboard agent` running
//! inside each node namespace and programming real nftables there, and real traffic from the
//! client through ClusterIPs and NodePorts to echo servers that say which pod answered and
//! whom they saw. Needs root (network namespaces); the tests take turns.

mod clusterip;
mod configmap;
mod endpoints_http;
mod ipv6;
mod lab;
mod mh;
mod nodeport;
mod restart;
mod support;
mod topology;
mod udp;
mod userspace;
