//! The message tables generated into `data/protobuf/messages.json` (see `generate.py` there),
//! indexed for decoding, and the (apiVersion, kind) → message lookup.

use crate::Schema;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

static MESSAGES: &[u8] = include_bytes!("../../data/protobuf/messages.json");

/// Index of a message in [`Table::messages`].
pub(crate) type MsgId = usize;

/// What a field holds on the wire and in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    String,
    Bool,
    Int32,
    Int64,
    Double,
    /// `[]byte`: base64 in JSON.
    Bytes,
    /// `intstr.IntOrString`: a JSON number or string.
    IntOrString,
    /// `resource.Quantity`: a JSON string.
    Quantity,
    /// `metav1.Time`: RFC 3339 in whole seconds, `null` when zero.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds, `null` when zero.
    MicroTime,
    /// `metav1.FieldsV1`: its raw bytes are JSON.
    FieldsV1,
    Message(MsgId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    Single,
    Repeated,
    /// `map<string, T>`: repeated entries `{1: key, 2: value}`.
    Map,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub tag: u32,
    /// The JSON property name (empty for an inlined field).
    pub json: String,
    pub ty: Type,
    pub label: Label,
    /// A Go pointer: present means set, even to a zero value.
    pub pointer: bool,
    /// `omitempty`: a zero value (nil pointer, empty slice or map) is left out of the JSON.
    pub omitempty: bool,
    /// A struct embedded with `json:",inline"`: its fields are the parent's JSON properties.
    pub inline: bool,
}

#[derive(Debug)]
pub(crate) struct Message {
    /// Full proto name, `k8s.io.api.core.v1.Service`.
    pub name: String,
    /// In Go declaration order (the JSON key order).
    pub fields: Vec<Field>,
    /// Field indices in tag order (the wire order Go writes).
    pub wire_order: Vec<usize>,
    /// Field index by tag.
    by_tag: HashMap<u32, usize>,
}

impl Message {
    pub fn field_by_tag(&self, tag: u32) -> Option<usize> {
        self.by_tag.get(&tag).copied()
    }

    /// The short name (`ServiceSpec`), for error messages.
    pub fn short(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }
}

pub(crate) struct Table {
    pub messages: Vec<Message>,
    by_name: HashMap<String, MsgId>,
}

/// Full proto name of the message for an OpenAPI definition name
/// (`io.k8s.api.core.v1.Service` → `k8s.io.api.core.v1.Service`).
pub(crate) fn message_name(definition: &str) -> Option<String> {
    definition.strip_prefix("io.k8s.").map(|rest| format!("k8s.io.{rest}"))
}

/// What a (apiVersion, kind) pair is to the protobuf codec.
pub(crate) enum KindLookup {
    Found(MsgId),
    /// A served custom resource (MetalLB): never protobuf.
    Custom,
    Unknown,
}

impl Table {
    pub fn get() -> &'static Table {
        static TABLE: OnceLock<Table> = OnceLock::new();
        TABLE.get_or_init(|| Table::parse(MESSAGES).expect("data/protobuf/messages.json is a valid message table"))
    }

    pub fn by_name(&self, name: &str) -> Option<MsgId> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<Table, String> {
        let raw: serde_json::Map<String, Value> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let by_name: HashMap<String, MsgId> = raw.keys().enumerate().map(|(i, k)| (k.clone(), i)).collect();
        let mut messages = Vec::with_capacity(raw.len());
        for (name, fields) in &raw {
            let fields = fields.as_array().ok_or_else(|| format!("{name}: not an array"))?;
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                let bad = || format!("{name}: bad field {f}");
                let parts = f.as_array().filter(|a| a.len() == 5).ok_or_else(bad)?;
                let tag = parts[0].as_u64().and_then(|t| u32::try_from(t).ok()).filter(|t| *t > 0).ok_or_else(bad)?;
                let json = parts[1].as_str().ok_or_else(bad)?.to_string();
                let ty = match parts[2].as_str().ok_or_else(bad)? {
                    "string" => Type::String,
                    "bool" => Type::Bool,
                    "int32" => Type::Int32,
                    "int64" => Type::Int64,
                    "double" => Type::Double,
                    "bytes" => Type::Bytes,
                    "intstr" => Type::IntOrString,
                    "quantity" => Type::Quantity,
                    "time" => Type::Time,
                    "microtime" => Type::MicroTime,
                    "fieldsv1" => Type::FieldsV1,
                    other => Type::Message(*by_name.get(other).ok_or_else(|| format!("{name}: unknown type {other}"))?),
                };
                let label = match parts[3].as_str().ok_or_else(bad)? {
                    "" => Label::Single,
                    "rep" => Label::Repeated,
                    "map" => Label::Map,
                    _ => return Err(bad()),
                };
                let flags = parts[4].as_str().ok_or_else(bad)?;
                let inline = flags.contains('i');
                if inline && !(matches!(ty, Type::Message(_)) && label == Label::Single) {
                    return Err(bad());
                }
                out.push(Field { tag, json, ty, label, pointer: flags.contains('p'), omitempty: flags.contains('o'), inline });
            }
            let mut wire_order: Vec<usize> = (0..out.len()).collect();
            wire_order.sort_by_key(|&i| out[i].tag);
            let by_tag: HashMap<u32, usize> = out.iter().enumerate().map(|(i, f)| (f.tag, i)).collect();
            if by_tag.len() != out.len() {
                return Err(format!("{name}: duplicate tags"));
            }
            messages.push(Message { name: name.clone(), fields: out, wire_order, by_tag });
        }
        Ok(Table { messages, by_name })
    }

    /// The message of a request body's (apiVersion, kind): a served built-in kind at its served
    /// version, or `DeleteOptions` (which every group version accepts). With `lists`, also the
    /// served kinds' `<Kind>List`.
    pub fn lookup(&self, api_version: &str, kind: &str, lists: bool) -> KindLookup {
        if kind == "DeleteOptions" {
            return self.found("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions");
        }
        let (group, version) = model::registry::split_api_version(api_version);
        let find = |k: &str| model::registry::lookup_kind(group, k).filter(|r| r.version == version);
        let (resource, list) = match find(kind) {
            Some(r) => (r, false),
            None => match kind.strip_suffix("List").filter(|_| lists).and_then(find) {
                Some(r) => (r, true),
                None => return KindLookup::Unknown,
            },
        };
        if Schema::is_custom(resource.definition) {
            return KindLookup::Custom;
        }
        match message_name(resource.definition) {
            Some(name) if list => self.found(&format!("{name}List")),
            Some(name) => self.found(&name),
            None => KindLookup::Unknown,
        }
    }

    fn found(&self, name: &str) -> KindLookup {
        self.by_name(name).map_or(KindLookup::Unknown, KindLookup::Found)
    }
}
