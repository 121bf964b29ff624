//! The statements of the "dispatch" layout of the renderer, shared by the netlink encoder's
//! byte comparison (`netlink_bytes.rs`) and kernel listing check (`netlink_kernel.rs`).

/// The "dispatch" layout (endpoint churn changes only map and set elements): `typeof` maps
/// keyed by address . protocol . port . numgen slot, class sets, and the rules that look a
/// connection up in them and DNAT through the map with `numgen` or `jhash`, both families.
pub const DISPATCH: &str = "add table ip switchboard
add map ip switchboard service-endpoints { typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport; }
add map ip switchboard nodeport-endpoints { typeof meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport; }
add set ip switchboard nodeport-ips { type ipv4_addr; }
add set ip switchboard service-ips-dispatched { type ipv4_addr . inet_proto . inet_service; }
add set ip switchboard service-ips-masquerade { type ipv4_addr . inet_proto . inet_service; }
add set ip switchboard service-ips-random-3 { type ipv4_addr . inet_proto . inet_service; }
add set ip switchboard service-ips-sh-3 { type ipv4_addr . inet_proto . inet_service; }
add set ip switchboard service-nodeports-dispatched { type inet_proto . inet_service; }
add set ip switchboard service-nodeports-random-3 { type inet_proto . inet_service; }
add set ip switchboard service-nodeports-sh-3 { type inet_proto . inet_service; }
add chain ip switchboard services
add chain ip switchboard service-dispatch
add chain ip switchboard nodeport-dispatch
add rule ip switchboard services ip daddr . meta l4proto . th dport @service-ips-dispatched goto service-dispatch
add rule ip switchboard services ip daddr @nodeport-ips meta l4proto . th dport @service-nodeports-dispatched goto nodeport-dispatch
add rule ip switchboard services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport @service-nodeports-dispatched goto nodeport-dispatch
add rule ip switchboard service-dispatch ip daddr . meta l4proto . th dport @service-ips-masquerade meta mark set meta mark | 0x00004000
add rule ip switchboard service-dispatch ip daddr . meta l4proto . th dport @service-ips-random-3 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @service-endpoints
add rule ip switchboard service-dispatch ip daddr . meta l4proto . th dport @service-ips-sh-3 dnat ip to ip daddr . meta l4proto . th dport . jhash ip saddr mod 3 seed 0x5b0a7d map @service-endpoints
add rule ip switchboard nodeport-dispatch meta mark set meta mark | 0x00004000
add rule ip switchboard nodeport-dispatch meta l4proto . th dport @service-nodeports-random-3 dnat ip to meta l4proto . th dport . numgen random mod 3 map @nodeport-endpoints
add rule ip switchboard nodeport-dispatch meta l4proto . th dport @service-nodeports-sh-3 dnat ip to meta l4proto . th dport . jhash ip saddr mod 3 seed 0x5b0a7d map @nodeport-endpoints
add element ip switchboard service-endpoints { 10.43.0.20 . tcp . 80 . 0 : 10.42.0.11 . 8080, 10.43.0.20 . tcp . 80 . 1 : 10.42.0.12 . 8080 }
add element ip switchboard nodeport-endpoints { tcp . 30080 . 0 : 10.42.0.11 . 8080, udp . 30053 . 2 : 10.42.0.13 . 53 }
add element ip switchboard service-ips-random-3 { 10.43.0.20 . tcp . 80 }
add element ip switchboard service-nodeports-sh-3 { tcp . 30080 }
add table ip6 switchboard
add map ip6 switchboard service-endpoints { typeof ip6 daddr . meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport; }
add map ip6 switchboard nodeport-endpoints { typeof meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport; }
add set ip6 switchboard service-ips-dispatched { type ipv6_addr . inet_proto . inet_service; }
add set ip6 switchboard service-ips-random-3 { type ipv6_addr . inet_proto . inet_service; }
add set ip6 switchboard service-ips-sh-3 { type ipv6_addr . inet_proto . inet_service; }
add set ip6 switchboard service-nodeports-dispatched { type inet_proto . inet_service; }
add set ip6 switchboard service-nodeports-random-3 { type inet_proto . inet_service; }
add set ip6 switchboard service-nodeports-sh-3 { type inet_proto . inet_service; }
add chain ip6 switchboard services
add chain ip6 switchboard service-dispatch
add chain ip6 switchboard nodeport-dispatch
add rule ip6 switchboard services ip6 daddr . meta l4proto . th dport @service-ips-dispatched goto service-dispatch
add rule ip6 switchboard services fib daddr type local ip6 daddr != ::1 meta l4proto . th dport @service-nodeports-dispatched goto nodeport-dispatch
add rule ip6 switchboard service-dispatch ip6 daddr . meta l4proto . th dport @service-ips-random-3 dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 3 map @service-endpoints
add rule ip6 switchboard service-dispatch ip6 daddr . meta l4proto . th dport @service-ips-sh-3 dnat ip6 to ip6 daddr . meta l4proto . th dport . jhash ip6 saddr mod 3 seed 0x5b0a7d map @service-endpoints
add rule ip6 switchboard nodeport-dispatch meta l4proto . th dport @service-nodeports-random-3 dnat ip6 to meta l4proto . th dport . numgen random mod 3 map @nodeport-endpoints
add rule ip6 switchboard nodeport-dispatch meta l4proto . th dport @service-nodeports-sh-3 dnat ip6 to meta l4proto . th dport . jhash ip6 saddr mod 3 seed 0x5b0a7d map @nodeport-endpoints
add element ip6 switchboard service-endpoints { fd00:43::20 . tcp . 80 . 0 : fd00:42::11 . 8080 }
add element ip6 switchboard nodeport-endpoints { udp . 30053 . 1 : fd00:42::11 . 53 }
";

/// Endpoint churn on a dispatch table created before (by another process: the sets' types
/// come from the kernel, GETSET).
pub const DISPATCH_CHURN: &[&str] = &[
    "add element ip switchboard service-endpoints { 10.43.0.20 . tcp . 80 . 2 : 10.42.0.14 . 8080, 10.43.0.21 . udp . 53 . 0 : 10.42.0.15 . 53 }\n",
    "delete element ip switchboard service-endpoints { 10.43.0.20 . tcp . 80 . 1 : 10.42.0.12 . 8080 }\n\
     add element ip switchboard service-endpoints { 10.43.0.20 . tcp . 80 . 1 : 10.42.0.19 . 8080 }\n",
    "delete element ip switchboard nodeport-endpoints { udp . 30053 . 2 : 10.42.0.13 . 53 }\n\
     add element ip switchboard nodeport-endpoints { udp . 30053 . 15 : 10.42.0.13 . 53 }\n\
     delete element ip switchboard service-nodeports-sh-3 { tcp . 30080 }\n\
     add element ip switchboard service-nodeports-random-3 { tcp . 30080 }\n",
    "delete element ip switchboard service-ips-random-3 { 10.43.0.20 . tcp . 80 }\n\
     add element ip switchboard service-ips-sh-3 { 10.43.0.20 . tcp . 80 }\n\
     add element ip switchboard nodeport-ips { 192.168.1.10 }\n",
    "add element ip6 switchboard service-endpoints { fd00:43::20 . tcp . 80 . 1 : fd00:42::12 . 8080 }\n\
     delete element ip6 switchboard service-endpoints { fd00:43::20 . tcp . 80 . 0 : fd00:42::11 . 8080 }\n\
     delete element ip6 switchboard nodeport-endpoints { udp . 30053 . 1 : fd00:42::11 . 53 }\n\
     add element ip6 switchboard nodeport-endpoints { tcp . 30080 . 0 : fd00:42::11 . 8080 }\n",
];
