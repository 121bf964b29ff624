//! The request path: any bytes in, a decodable response (or nothing) out, never a panic. The
//! zone has every kind of record, so lookups hit real answers, not only NXDOMAIN.
#![no_main]

use std::sync::OnceLock;

use dns::answer::{respond, Action, Transport};
use dns::{Zone, ZoneConfig};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn zone() -> &'static Zone {
    static Z: OnceLock<Zone> = OnceLock::new();
    Z.get_or_init(|| {
        let svc = |name: &str, spec: serde_json::Value| -> Service {
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})).unwrap()
        };
        let services = vec![
            svc("web", json!({"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}]})),
            svc("db", json!({"clusterIP": "None"})),
            svc("ext", json!({"type": "ExternalName", "externalName": "example.com"})),
            svc("alias", json!({"type": "ExternalName", "externalName": "web.default.svc.cluster.local"})),
        ];
        let eps: Vec<_> = (0..60).map(|i| json!({"addresses": [format!("10.42.0.{i}")], "hostname": format!("h{i}")})).collect();
        let slices: Vec<EndpointSlice> = vec![serde_json::from_value(json!({
            "metadata": {"name": "db-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        }))
        .unwrap()];
        Zone::build(&ZoneConfig::default(), &services, &slices)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    for t in [Transport::Udp, Transport::Tcp] {
        let (action, _) = respond(zone(), data, t, data.len(), &mut out);
        if let Action::Reply = action {
            assert!(out.len() >= 12);
            assert_eq!(out[..2], data[..2], "the ID is echoed");
            assert_eq!(out[2] & 0x80, 0x80, "QR is set");
            if t == Transport::Udp {
                assert!(out.len() <= 1232, "UDP answers stay within our payload size");
            }
            // A response with a question must decode with an independent parser.
            if out[4..6] == [0, 1] {
                hickory_proto::op::Message::from_vec(&out).expect("our response decodes");
            }
        }
    }
});
