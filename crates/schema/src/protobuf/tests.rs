use super::table::{Label, Table, Type};
use super::wire::Writer;
use super::*;
use crate::Schema;
use serde_json::json;

const SERVICE: &[u8] = include_bytes!("../../data/protobuf/kubectl/service-clusterip.pb");
const INGRESS: &[u8] = include_bytes!("../../data/protobuf/kubectl/ingress-full.pb");
const SECRET: &[u8] = include_bytes!("../../data/protobuf/kubectl/secret-docker.pb");
const NAMESPACE: &[u8] = include_bytes!("../../data/protobuf/kubectl/namespace.pb");

/// A body: magic, envelope, raw.
fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Writer::new();
    tm.bytes_field(1, api_version.as_bytes());
    tm.bytes_field(2, kind.as_bytes());
    let mut w = Writer::new();
    w.buf.extend_from_slice(MAGIC);
    w.bytes_field(1, &tm.buf);
    w.bytes_field(2, raw);
    w.buf
}

fn msg(build: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new();
    build(&mut w);
    w.buf
}

fn service(spec: &[u8]) -> Value {
    decode(&body("v1", "Service", &msg(|w| w.bytes_field(2, spec)))).unwrap()
}

#[test]
fn table_covers_every_served_builtin_kind() {
    let t = Table::get();
    for r in model::registry::RESOURCES {
        let api_version = r.api_version();
        let found = matches!(t.lookup(&api_version, r.kind, false), table::KindLookup::Found(_));
        let list = matches!(t.lookup(&api_version, &r.list_kind(), true), table::KindLookup::Found(_));
        if Schema::is_custom(r.definition) {
            assert!(matches!(t.lookup(&api_version, r.kind, true), table::KindLookup::Custom), "{}", r.kind);
        } else {
            assert!(found && list, "{} {}", api_version, r.kind);
        }
    }
    // Lists only when asked for; DeleteOptions in any group version.
    assert!(matches!(t.lookup("v1", "ServiceList", false), table::KindLookup::Unknown));
    assert!(matches!(t.lookup("discovery.k8s.io/v1", "DeleteOptions", false), table::KindLookup::Found(_)));
    assert!(matches!(t.lookup("v2", "Service", true), table::KindLookup::Unknown));
}

#[test]
fn table_json_names_are_schema_properties() {
    let t = Table::get();
    let s = Schema::get();
    for m in &t.messages {
        let def = m.name.strip_prefix("k8s.io.").map(|r| format!("io.k8s.{r}")).unwrap();
        let Some(def) = s.definition(&def) else { continue };
        for f in m.fields.iter().filter(|f| !f.inline) {
            assert!(s.property(def, &f.json).is_some(), "{}.{} is not a schema property", m.name, f.json);
        }
        // Inlined fields are properties of the embedding definition.
        for f in m.fields.iter().filter(|f| f.inline) {
            let Type::Message(child) = f.ty else { panic!("inline {}", m.name) };
            for cf in t.messages[child].fields.iter().filter(|f| !f.inline) {
                assert!(s.property(def, &cf.json).is_some(), "{}.{} (inline) is not a schema property", m.name, cf.json);
            }
        }
        assert!(m.fields.iter().all(|f| f.label != Label::Map || !f.inline));
    }
}

#[test]
fn envelope_errors() {
    assert_eq!(decode(b""), Err(ProtobufError::BadMagic));
    assert_eq!(decode(b"{\"kind\":\"Service\"}"), Err(ProtobufError::BadMagic));
    assert_eq!(decode(MAGIC), Err(ProtobufError::MissingKind { api_version: String::new() }));
    assert_eq!(decode(&body("v1", "", b"")), Err(ProtobufError::MissingKind { api_version: "v1".to_string() }));
    let e = decode(&body("v1", "Deployment", b"")).unwrap_err();
    assert_eq!(e.to_string(), r#"no kind "Deployment" is registered for version "v1" in the protobuf decoder"#);
    assert!(matches!(decode(&body("v2", "Service", b"")), Err(ProtobufError::UnknownKind { .. })));
    assert!(matches!(decode(&body("metallb.io/v1beta1", "IPAddressPool", b"")), Err(ProtobufError::CustomResource { .. })));
    // A wrong wire type in the envelope.
    let mut bad = MAGIC.to_vec();
    bad.extend_from_slice(&[0x08, 0x01]);
    assert_eq!(decode(&bad).unwrap_err().to_string(), "protobuf: decoding Unknown at (envelope): wrong wireType = 0 for field typeMeta");
    // Truncated inside the object.
    let e = decode(&SERVICE[..SERVICE.len() - 12]).unwrap_err();
    assert!(matches!(e, ProtobufError::Wire { .. }), "{e}");
}

#[test]
fn empty_raw_is_the_zero_object() {
    assert_eq!(
        decode(&body("v1", "Namespace", b"")).unwrap(),
        json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"creationTimestamp": null}, "spec": {}, "status": {}})
    );
}

#[test]
fn pointers_keep_zero_values_and_values_drop_them() {
    let spec = msg(|w| {
        w.bytes_field(3, b""); // clusterIP "" (a value: dropped)
        w.varint_field(12, 0); // healthCheckNodePort 0 (a value: dropped)
        w.varint_field(13, 0); // publishNotReadyAddresses false (a value: dropped)
        w.varint_field(20, 0); // allocateLoadBalancerNodePorts false (a pointer: kept)
        w.bytes_field(21, b""); // loadBalancerClass "" (a pointer: kept)
        // A port with nothing set: `port` has no omitempty, `targetPort` is a struct.
        w.bytes_field(1, b"");
    });
    let svc = service(&spec);
    assert_eq!(
        svc["spec"],
        json!({"ports": [{"port": 0, "targetPort": 0}], "allocateLoadBalancerNodePorts": false, "loadBalancerClass": ""})
    );
}

#[test]
fn unknown_fields_are_skipped_and_repeats_follow_protobuf() {
    let spec = msg(|w| {
        w.varint_field(99, 7);
        w.fixed64_field(98, 1);
        w.key(97, 5);
        w.buf.extend_from_slice(&[1, 2, 3, 4]);
        w.bytes_field(96, b"whatever");
        w.bytes_field(4, b"NodePort");
        w.bytes_field(4, b"ClusterIP"); // the last scalar wins
        w.bytes_field(2, &msg(|e| {
            e.bytes_field(1, b"b");
            e.bytes_field(2, b"1");
        }));
        w.bytes_field(2, &msg(|e| {
            e.bytes_field(1, b"a");
            e.bytes_field(2, b"2");
        }));
        w.bytes_field(2, &msg(|e| {
            e.bytes_field(1, b"b");
            e.bytes_field(2, b"3"); // a repeated key: the last wins
        }));
        w.bytes_field(14, &msg(|c| c.bytes_field(1, &msg(|ip| ip.varint_field(1, 5)))));
    });
    // A second `spec` merges into the first.
    let raw = msg(|w| {
        w.bytes_field(2, &spec);
        w.bytes_field(2, &msg(|s| s.bytes_field(18, b"10.0.0.1")));
    });
    let svc = decode(&body("v1", "Service", &raw)).unwrap();
    assert_eq!(
        svc["spec"],
        json!({"selector": {"a": "2", "b": "3"}, "clusterIPs": ["10.0.0.1"], "type": "ClusterIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}})
    );
    // Map keys come out sorted.
    assert_eq!(svc["spec"]["selector"].as_object().unwrap().keys().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn repeated_integers_packed_or_not() {
    let ctx = |packed: bool| {
        msg(|w| {
            if packed {
                w.bytes_field(4, &msg(|p| [1u64, 2, (-3i64) as u64].iter().for_each(|v| p.varint(*v))));
            } else {
                for v in [1u64, 2, (-3i64) as u64] {
                    w.varint_field(4, v);
                }
            }
        })
    };
    for packed in [false, true] {
        let spec = msg(|w| w.bytes_field(14, &ctx(packed)));
        let pod = decode(&body("v1", "Pod", &msg(|w| w.bytes_field(2, &spec)))).unwrap();
        assert_eq!(pod["spec"]["securityContext"]["supplementalGroups"], json!([1, 2, -3]), "packed: {packed}");
    }
}

#[test]
fn wrong_wire_types_are_errors() {
    let spec = msg(|w| w.varint_field(3, 1)); // clusterIP as a varint
    let e = decode(&body("v1", "Service", &msg(|w| w.bytes_field(2, &spec)))).unwrap_err();
    assert_eq!(e.to_string(), "protobuf: decoding ServiceSpec at Service.spec: wrong wireType = 0 for field clusterIP");
    let port = msg(|w| w.varint_field(4, 80)); // targetPort as a varint
    let spec = msg(|w| w.bytes_field(1, &port));
    let e = decode(&body("v1", "Service", &msg(|w| w.bytes_field(2, &spec)))).unwrap_err();
    assert_eq!(e.to_string(), "protobuf: decoding ServicePort at Service.spec.ports[0]: wrong wireType = 0 for field targetPort");
    // Groups don't exist in Kubernetes messages.
    let spec = msg(|w| w.key(50, 3));
    assert!(decode(&body("v1", "Service", &msg(|w| w.bytes_field(2, &spec)))).is_err());
}

#[test]
fn int_or_string_both_ways() {
    let port = |ios: &[u8]| {
        let spec = msg(|w| w.bytes_field(1, &msg(|p| p.bytes_field(4, ios))));
        service(&spec)["spec"]["ports"][0]["targetPort"].clone()
    };
    assert_eq!(port(&msg(|w| w.varint_field(2, 8080))), json!(8080));
    assert_eq!(port(&msg(|w| { w.varint_field(1, 1); w.bytes_field(3, b"http") })), json!("http"));
    assert_eq!(port(&msg(|w| w.varint_field(2, (-1i64) as u64))), json!(-1));
    let spec = msg(|w| w.bytes_field(1, &msg(|p| p.bytes_field(4, &msg(|w| w.varint_field(1, 2))))));
    let e = decode(&body("v1", "Service", &msg(|w| w.bytes_field(2, &spec)))).unwrap_err();
    assert_eq!(e.to_string(), "protobuf: Service.spec.ports[0].targetPort: impossible IntOrString.Type");
}

#[test]
fn times() {
    let ts = |secs: i64, nanos: i32| msg(|w| { w.varint_field(1, secs as u64); w.varint_field(2, nanos as i64 as u64) });
    let meta = |field: u32, t: &[u8]| {
        let ns = decode(&body("v1", "Namespace", &msg(|w| w.bytes_field(1, &msg(|m| m.bytes_field(field, t)))))).unwrap();
        ns["metadata"].clone()
    };
    // Time drops the nanoseconds (Go's Time.Unmarshal ignores them).
    assert_eq!(meta(8, &ts(1_795_303_667, 999))["creationTimestamp"], json!("2026-11-21T23:27:47Z"));
    assert_eq!(meta(8, &ts(0, 0))["creationTimestamp"], json!("1970-01-01T00:00:00Z"));
    // The zero time (an empty message, or 0001-01-01) is null.
    assert_eq!(meta(9, b"")["deletionTimestamp"], Value::Null);
    assert_eq!(meta(9, &ts(-62_135_596_800, 0))["deletionTimestamp"], Value::Null);
    let e = decode(&body("v1", "Namespace", &msg(|w| w.bytes_field(1, &msg(|m| m.bytes_field(8, &ts(i64::MAX, 0))))))).unwrap_err();
    assert!(matches!(e, ProtobufError::Value { .. }), "{e}");

    // MicroTime keeps microseconds (truncated) and normalises nanoseconds like time.Unix.
    let lease = |t: &[u8]| {
        let spec = msg(|w| w.bytes_field(3, t));
        decode(&body("coordination.k8s.io/v1", "Lease", &msg(|w| w.bytes_field(2, &spec)))).unwrap()["spec"]["acquireTime"].clone()
    };
    assert_eq!(lease(&ts(1_795_303_656, 636_073_999)), json!("2026-11-21T23:27:36.636073Z"));
    assert_eq!(lease(&ts(1_795_303_656, -1_000)), json!("2026-11-21T23:27:35.999999Z"));
}

#[test]
fn fields_v1_must_be_json() {
    let mf = |raw: &[u8]| msg(|w| w.bytes_field(1, &msg(|m| m.bytes_field(17, &msg(|e| e.bytes_field(7, &msg(|f| f.bytes_field(1, raw))))))));
    let ns = decode(&body("v1", "Namespace", &mf(br#"{"f:metadata":{}}"#))).unwrap();
    assert_eq!(ns["metadata"]["managedFields"], json!([{"fieldsV1": {"f:metadata": {}}}]));
    let e = decode(&body("v1", "Namespace", &mf(b"{not json"))).unwrap_err();
    assert!(e.to_string().starts_with("protobuf: Namespace.metadata.managedFields[0].fieldsV1: FieldsV1 is not JSON"), "{e}");
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let ns = decode(&body("v1", "Namespace", &msg(|w| w.bytes_field(1, &msg(|m| m.bytes_field(1, b"a\xffb")))))).unwrap();
    assert_eq!(ns["metadata"]["name"], json!("a\u{fffd}b"));
}

#[test]
fn nesting_is_bounded() {
    // No served message is recursive, so check the bound on a synthetic table.
    let t = Table::parse(br#"{"R": [[1, "r", "R", "", "p"]]}"#).unwrap();
    let mut data = Vec::new();
    for _ in 0..10_000 {
        let mut w = Writer::new();
        w.bytes_field(1, &data);
        data = w.buf;
    }
    let dec = decode::Decoder { table: &t };
    let e = dec.message(0, &[&data], 0, &Path::Root("R")).unwrap_err();
    assert!(matches!(e, ProtobufError::TooDeep { .. }), "{e}");
    let enc = encode::Encoder { table: &t };
    let mut v = json!({});
    for _ in 0..200 {
        v = json!({ "r": v });
    }
    let e = enc.message(0, v.as_object().unwrap(), 0, &Path::Root("R"), false).unwrap_err();
    assert!(matches!(e, ProtobufError::TooDeep { .. }), "{e}");
}

#[test]
fn encode_errors() {
    let e = encode(&json!({"kind": "Service", "apiVersion": "v1", "spec": {"clusterIp": "x"}})).unwrap_err();
    assert_eq!(e.to_string(), r#"protobuf encode: Service.spec: unknown field "clusterIp" in k8s.io.api.core.v1.ServiceSpec"#);
    let e = encode(&json!({"kind": "Service", "apiVersion": "v1", "spec": {"ports": [{"port": "80"}]}})).unwrap_err();
    assert_eq!(e.to_string(), "protobuf encode: Service.spec.ports[0].port: expected int32, found string");
    assert!(matches!(encode(&json!({"kind": "IPAddressPool", "apiVersion": "metallb.io/v1beta1"})), Err(ProtobufError::CustomResource { .. })));
    assert!(matches!(encode(&json!([])), Err(ProtobufError::Encode { .. })));
}

/// xorshift64*: deterministic noise without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        v => v.clone(),
    }
}

#[test]
fn hostile_bytes_never_panic() {
    let fixtures = [SERVICE, INGRESS, SECRET, NAMESPACE];
    // Every truncation of real bodies.
    for f in fixtures {
        for n in 0..f.len() {
            let _ = decode(&f[..n]);
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let kinds = [("v1", "Service"), ("v1", "Pod"), ("v1", "Node"), ("v1", "Event"), ("networking.k8s.io/v1", "Ingress"), ("discovery.k8s.io/v1", "EndpointSlice")];
    for round in 0..20_000 {
        let input = match round % 3 {
            // Random bytes after the magic.
            0 => {
                let mut b = MAGIC.to_vec();
                b.extend((0..rng.below(200)).map(|_| rng.next() as u8));
                b
            }
            // Random object bytes in a valid envelope.
            1 => {
                let (v, k) = kinds[rng.below(kinds.len())];
                let raw: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
                body(v, k, &raw)
            }
            // Real bodies with a few bytes changed, inserted or removed.
            _ => {
                let mut b = fixtures[rng.below(fixtures.len())].to_vec();
                for _ in 0..1 + rng.below(4) {
                    let i = 4 + rng.below(b.len() - 4);
                    match rng.below(3) {
                        0 => b[i] ^= 1 << rng.below(8),
                        1 => b.insert(i, rng.next() as u8),
                        _ => {
                            b.remove(i);
                        }
                    }
                }
                b
            }
        };
        if let Ok(v1) = decode(&input) {
            // Whatever decodes, encodes and decodes back to itself, except that a set pointer to
            // a zero time (`null`) becomes nil, as it does in Go's JSON round trip.
            let v2 = decode(&encode(&v1).unwrap_or_else(|e| panic!("{e}: {v1}"))).unwrap();
            assert_eq!(without_nulls(&v1), without_nulls(&v2));
            assert_eq!(decode(&encode(&v2).unwrap()).unwrap(), v2);
        }
    }
}
