//! Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), for the built-in kinds
//! Switchboard serves: [`decode`] turns a request body into the JSON kubectl would have sent for
//! the same object, [`encode`] does the reverse.
//!
//! The format (k8s.io/apimachinery `runtime/serializer/protobuf`): the 4-byte magic `k8s\0`,
//! then a `runtime.Unknown` message — `1: typeMeta {1: apiVersion, 2: kind}`, `2: raw` (the
//! object's own message, e.g. `k8s.io.api.core.v1.Service`), `3: contentEncoding`,
//! `4: contentType`.
//!
//! Decoding reproduces what Go does: unmarshal into the typed struct, then `encoding/json`.
//! So, per field, the Go struct decides (see `data/protobuf/README.md` for where that comes from):
//! - a pointer field that is present is kept even when zero (`allocateLoadBalancerNodePorts:
//!   false`), a value field's zero is dropped by `omitempty` (Go writes `clusterIP: ""` on the
//!   wire for every Service);
//! - a struct value field is always there (`spec: {}`, `status: {}`, `resources: {}`,
//!   `targetPort: 0`, `creationTimestamp: null`);
//! - a field without `omitempty` is always there (`port: 0`; `null` for a nil slice or pointer);
//! - `json:",inline"` structs (a Volume's source, a probe's handler) are flattened;
//! - keys are in Go declaration order (kubectl's order), map keys sorted;
//! - `IntOrString` → number or string, `Quantity` → string, `Time` → RFC 3339 in seconds,
//!   `MicroTime` → with microseconds, `FieldsV1` → its JSON, `[]byte` → base64.
//!
//! Custom resources (MetalLB) have no protobuf form, as in kube-apiserver.

mod decode;
mod encode;
mod table;
mod wire;

use serde_json::{Map, Value};
use table::{KindLookup, Table};
use wire::{Reader, LEN};

/// The media type.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\x00";
/// How deep messages may nest. The served kinds need about 15 levels.
pub(crate) const MAX_DEPTH: usize = 64;

/// Why a body could not be decoded (or an object encoded). The apiserver answers 400 with the
/// message (415 for [`ProtobufError::CustomResource`], as kube-apiserver does for a CRD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0`.
    BadMagic,
    /// The envelope's `typeMeta.kind` is empty.
    MissingKind { api_version: String },
    /// Not a built-in kind served at this version.
    UnknownKind { api_version: String, kind: String },
    /// A served custom resource: never protobuf.
    CustomResource { api_version: String, kind: String },
    /// Malformed wire data in message `message` at JSON path `path`.
    Wire { message: String, path: String, detail: String },
    /// Well-formed wire data Go could not turn into JSON (a time out of range, bad FieldsV1 JSON).
    Value { path: String, detail: String },
    /// Messages nested deeper than any Kubernetes object.
    TooDeep { path: String },
    /// [`encode`]: the JSON does not fit the message.
    Encode { path: String, detail: String },
}

impl std::fmt::Display for ProtobufError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtobufError::BadMagic => write!(f, "provided protobuf data does not begin with the Kubernetes prefix \"k8s\\x00\""),
            ProtobufError::MissingKind { api_version } => {
                write!(f, "Object 'Kind' is missing in protobuf envelope (apiVersion {api_version:?})")
            }
            ProtobufError::UnknownKind { api_version, kind } => {
                write!(f, "no kind {kind:?} is registered for version {api_version:?} in the protobuf decoder")
            }
            ProtobufError::CustomResource { api_version, kind } => {
                write!(f, "{kind} ({api_version}) is a custom resource, which has no protobuf encoding; send JSON or YAML")
            }
            ProtobufError::Wire { message, path, detail } => write!(f, "protobuf: decoding {message} at {path}: {detail}"),
            ProtobufError::Value { path, detail } => write!(f, "protobuf: {path}: {detail}"),
            ProtobufError::TooDeep { path } => write!(f, "protobuf: messages nested more than {MAX_DEPTH} deep at {path}"),
            ProtobufError::Encode { path, detail } => write!(f, "protobuf encode: {path}: {detail}"),
        }
    }
}

impl std::error::Error for ProtobufError {}

/// A JSON path for error messages, built on the stack as decoding descends.
pub(crate) enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(kind) => f.write_str(kind),
            Path::Key(p, "") => write!(f, "{p}"),
            Path::Key(p, k) => write!(f, "{p}.{k}"),
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

/// The parts of the `runtime.Unknown` envelope.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: Vec<&'a [u8]>,
}

fn envelope(body: &[u8]) -> Result<Envelope<'_>, ProtobufError> {
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or(ProtobufError::BadMagic)?;
    let wire = |message: &str| {
        let message = message.to_string();
        move |e: wire::WireError| ProtobufError::Wire { message: message.clone(), path: "(envelope)".to_string(), detail: e.to_string() }
    };
    let wrong = |message: &str, field: &str, w: u8| ProtobufError::Wire {
        message: message.to_string(),
        path: "(envelope)".to_string(),
        detail: format!("wrong wireType = {w} for field {field}"),
    };
    let mut env = Envelope { api_version: String::new(), kind: String::new(), raw: Vec::new() };
    let mut r = Reader::new(rest);
    while !r.at_end() {
        let (tag, w) = r.key().map_err(wire("Unknown"))?;
        match (tag, w) {
            (1, LEN) => {
                // typeMeta, merged as protobuf merges repeated message fields.
                let mut t = Reader::new(r.bytes().map_err(wire("Unknown"))?);
                while !t.at_end() {
                    let (tag, w) = t.key().map_err(wire("TypeMeta"))?;
                    match (tag, w) {
                        (1, LEN) => env.api_version = String::from_utf8_lossy(t.bytes().map_err(wire("TypeMeta"))?).into_owned(),
                        (2, LEN) => env.kind = String::from_utf8_lossy(t.bytes().map_err(wire("TypeMeta"))?).into_owned(),
                        (1, w) => return Err(wrong("TypeMeta", "apiVersion", w)),
                        (2, w) => return Err(wrong("TypeMeta", "kind", w)),
                        (_, w) => t.skip(w).map_err(wire("TypeMeta"))?,
                    }
                }
            }
            // raw: Go's generated code keeps the last one.
            (2, LEN) => env.raw = vec![r.bytes().map_err(wire("Unknown"))?],
            (1, w) => return Err(wrong("Unknown", "typeMeta", w)),
            (2, w) => return Err(wrong("Unknown", "raw", w)),
            (3 | 4, w) if w != LEN => return Err(wrong("Unknown", if tag == 3 { "contentEncoding" } else { "contentType" }, w)),
            (_, w) => r.skip(w).map_err(wire("Unknown"))?,
        }
    }
    Ok(env)
}

fn lookup(api_version: &str, kind: &str, lists: bool) -> Result<table::MsgId, ProtobufError> {
    if kind.is_empty() {
        return Err(ProtobufError::MissingKind { api_version: api_version.to_string() });
    }
    match Table::get().lookup(api_version, kind, lists) {
        KindLookup::Found(id) => Ok(id),
        KindLookup::Custom => Err(ProtobufError::CustomResource { api_version: api_version.to_string(), kind: kind.to_string() }),
        KindLookup::Unknown => Err(ProtobufError::UnknownKind { api_version: api_version.to_string(), kind: kind.to_string() }),
    }
}

fn type_meta(kind: &str, api_version: &str) -> Map<String, Value> {
    // metav1.TypeMeta: `kind` then `apiVersion`, both omitempty.
    let mut out = Map::new();
    out.insert("kind".to_string(), Value::String(kind.to_string()));
    if !api_version.is_empty() {
        out.insert("apiVersion".to_string(), Value::String(api_version.to_string()));
    }
    out
}

/// Decodes a Kubernetes protobuf request body (magic, `runtime.Unknown` envelope, object) into
/// the JSON object kubectl would send for it, with `kind` and `apiVersion` set.
///
/// Accepts the built-in kinds of `model::registry::RESOURCES` at their served version, and
/// `DeleteOptions` under any apiVersion. Fields the tables don't know are skipped, as Go skips
/// unknown fields.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    decode_kinds(body, false)
}

/// [`decode`], also accepting the served kinds' lists (`ServiceList`). Not for request bodies:
/// a list of empty items expands far more than a single object does.
pub fn decode_any(body: &[u8]) -> Result<Value, ProtobufError> {
    decode_kinds(body, true)
}

fn decode_kinds(body: &[u8], lists: bool) -> Result<Value, ProtobufError> {
    let env = envelope(body)?;
    let id = lookup(&env.api_version, &env.kind, lists)?;
    let mut out = type_meta(&env.kind, &env.api_version);
    let dec = decode::Decoder { table: Table::get() };
    let root = Path::Root(&env.kind);
    out.extend(dec.message(id, &env.raw, 0, &root)?);
    Ok(Value::Object(out))
}

/// Encodes an object (with `apiVersion` and `kind`) the way Go's protobuf serializer does, byte
/// for byte for the objects kubectl builds. Accepts what [`decode_any`] accepts. A key the
/// message has no field for is an error (Go's typed struct would drop it).
pub fn encode(obj: &Value) -> Result<Vec<u8>, ProtobufError> {
    let root = Path::Root("object");
    let map = obj.as_object().ok_or_else(|| ProtobufError::Encode { path: root.to_string(), detail: "expected an object".to_string() })?;
    let text = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let id = lookup(api_version, kind, true)?;
    let enc = encode::Encoder { table: Table::get() };
    let root = Path::Root(kind);
    let raw = enc.message(id, map, 0, &root, true)?;

    let mut tm = wire::Writer::new();
    tm.bytes_field(1, api_version.as_bytes());
    tm.bytes_field(2, kind.as_bytes());
    let mut w = wire::Writer::new();
    w.buf.extend_from_slice(MAGIC);
    w.bytes_field(1, &tm.buf);
    w.bytes_field(2, &raw);
    w.bytes_field(3, b"");
    w.bytes_field(4, b"");
    Ok(w.buf)
}

#[cfg(test)]
mod tests;
