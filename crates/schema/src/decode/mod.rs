//! Decoding a request body the way kube-apiserver does, reported the way it reports.
//!
//! Built-in kinds are decoded by kube-apiserver into Go structs with `sigs.k8s.io/json` (a fork
//! of `encoding/json`, case-sensitive): a wrong JSON type is a Go `UnmarshalTypeError`
//! ([`check_types`]); fields the struct lacks are dropped ([`prune_unknown`]) and, for
//! `fieldValidation=Strict`/`Warn`, listed in the order the decoder met them, depth first
//! ([`unknown_fields`], [`strict_errors`]); a repeated key is a strict error too
//! ([`duplicate_fields`]). Custom resources (MetalLB's) go through apiextensions instead: no
//! Go types, structural pruning (unknown paths sorted, then those under `metadata`) and schema
//! defaults. [`normalize`] applies what the round trip through Go (or, for custom resources,
//! apiextensions' defaulting) does to values that decode fine but are not in canonical form.

mod gotypes;

use crate::gotime;
use crate::Schema;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use std::fmt;

pub(crate) const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub(crate) const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// A body kube-apiserver could not decode into the kind's Go type. The message is Go's
/// (`json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type
/// int32`); kube-apiserver answers 400 BadRequest with `<Kind> in version "<v>" cannot be
/// handled as a <Kind>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    message: String,
}

impl DecodeError {
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// One strict-decoding problem, displayed as upstream words it inside
/// `strict decoding error: unknown field "spec.portz", duplicate field "metadata.name"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StrictError {
    Unknown(String),
    Duplicate(String),
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictError::Unknown(p) => write!(f, "unknown field {p:?}"),
            StrictError::Duplicate(p) => write!(f, "duplicate field {p:?}"),
        }
    }
}

/// What a schema node decodes as.
enum Shape<'a> {
    IntOrString,
    Quantity,
    Time { micro: bool },
    /// Anything goes: `FieldsV1`, `RawExtension`, `Patch`, untyped nodes, and custom-resource
    /// nodes with `x-kubernetes-preserve-unknown-fields`.
    Opaque,
    /// A Go struct (or a custom resource object): `def` names it when it is a definition.
    Struct { def: Option<&'a str>, node: &'a Value },
    Map(&'a Value),
    Array(&'a Value),
    Str,
    Bytes,
    Int { bits: u32 },
    Number,
    Bool,
}

fn ref_target(node: &Value) -> Option<&str> {
    Schema::ref_of(node).or_else(|| match node.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        Some([single]) => Schema::ref_of(single),
        _ => None,
    })
}

fn shape<'a>(s: &'a Schema, node: &'a Value, custom: bool) -> Shape<'a> {
    let def = ref_target(node);
    match def {
        Some(INT_OR_STRING) => return Shape::IntOrString,
        Some(QUANTITY) => return Shape::Quantity,
        Some(TIME) => return Shape::Time { micro: false },
        Some(MICRO_TIME) => return Shape::Time { micro: true },
        _ => {}
    }
    let n = s.resolve(node);
    if custom && (n.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) || n.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))) {
        return Shape::Opaque;
    }
    let format = n.get("format").and_then(Value::as_str);
    match crate::node_type(n) {
        Some("object") => {
            if n.get("properties").is_some() {
                Shape::Struct { def, node: n }
            } else if let Some(ap) = s.additional_properties(n) {
                Shape::Map(ap)
            } else if custom {
                // A structural schema's object without properties keeps nothing.
                Shape::Struct { def, node: n }
            } else {
                Shape::Opaque
            }
        }
        Some("array") => s.items(n).map_or(Shape::Opaque, Shape::Array),
        Some("string") if format == Some("byte") => Shape::Bytes,
        Some("string") => Shape::Str,
        Some("integer") => Shape::Int { bits: if format == Some("int32") { 32 } else { 64 } },
        Some("number") => Shape::Number,
        Some("boolean") => Shape::Bool,
        _ => Shape::Opaque,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The definition a top-level name stands for, as a node to walk from.
fn root_node(def: &str) -> Value {
    serde_json::json!({ "$ref": format!("#/$defs/{def}") })
}

// ---------------------------------------------------------------------------------------------
// Types

/// Checks JSON types against the kind's Go types, returning the error kube-apiserver's decoder
/// returns: the first type mismatch in document order, unless a field with its own decoder
/// (IntOrString, Quantity, Time) fails, which aborts decoding at once. Unknown fields are not
/// an error here (see [`unknown_fields`]); `null` fits every Go type. Custom resources are not
/// decoded into Go types: wrong types there are schema validation errors (422), not decode
/// errors, so this accepts them; see [`custom_resource_errors`].
pub fn check_types(def: &str, obj: &Value) -> Result<(), DecodeError> {
    if Schema::is_custom(def) {
        return Ok(());
    }
    let s = Schema::get();
    let root = root_node(def);
    let mut w = TypeWalker { s, owner: None, stack: Vec::new(), saved: None };
    let top = gotypes::struct_type(def);
    match w.value(&root, obj, &top) {
        Err(message) => Err(DecodeError { message }),
        Ok(()) => w.saved.map_or(Ok(()), |message| Err(DecodeError { message })),
    }
}

struct TypeWalker<'a> {
    s: &'a Schema,
    /// The Go struct whose field is being decoded (`errorContext.Struct`).
    owner: Option<String>,
    /// JSON names of the fields being decoded, outermost first (`errorContext.FieldStack`).
    stack: Vec<String>,
    /// The first `UnmarshalTypeError`, which Go reports after decoding everything else.
    saved: Option<String>,
}

impl TypeWalker<'_> {
    /// An `UnmarshalTypeError` with the decoder's context (`addErrorContext`).
    fn unmarshal_error(&self, value: &str, go_type: &str) -> String {
        match &self.owner {
            Some(owner) => format!("json: cannot unmarshal {value} into Go struct field {owner}.{} of type {go_type}", self.stack.join(".")),
            None => format!("json: cannot unmarshal {value} into Go value of type {go_type}"),
        }
    }

    fn mismatch(&mut self, value: String, go_type: &str) {
        if self.saved.is_none() {
            self.saved = Some(self.unmarshal_error(&value, go_type));
        }
    }

    /// `Err` aborts decoding (an error from a type's own `UnmarshalJSON`).
    fn value(&mut self, node: &Value, v: &Value, go_type: &str) -> Result<(), String> {
        if v.is_null() {
            return Ok(());
        }
        match shape(self.s, node, false) {
            Shape::Opaque => Ok(()),
            Shape::IntOrString => match v {
                Value::String(_) => Ok(()),
                Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => Ok(()),
                // IntOrString.UnmarshalJSON hands anything but a string to json.Unmarshal into
                // an int32. Its UnmarshalTypeError aborts decoding; sigs.k8s.io/json aliases that
                // type, so the outer decoder still adds its struct and field context.
                Value::Number(n) => Err(self.unmarshal_error(&format!("number {n}"), "int32")),
                other => Err(self.unmarshal_error(json_kind(other), "int32")),
            },
            Shape::Quantity => {
                let text = match v {
                    Value::String(s) => s.trim().to_string(),
                    other => other.to_string(),
                };
                parse_quantity(&text).map_err(str::to_string)
            }
            Shape::Time { micro } => match v {
                Value::String(t) => gotime::parse(if micro { gotime::RFC3339_MICRO } else { gotime::RFC3339 }, t).map(|_| ()),
                other => Err(self.unmarshal_error(json_kind(other), "string")),
            },
            Shape::Struct { def, node } => {
                let Value::Object(fields) = v else {
                    self.mismatch(json_kind(v).into(), go_type);
                    return Ok(());
                };
                let props = node.get("properties").and_then(Value::as_object);
                let me = def.map(|d| d.rsplit('.').next().unwrap_or(d).to_string());
                for (k, fv) in fields {
                    let Some(pnode) = props.and_then(|p| p.get(k)) else { continue };
                    let ty = def.and_then(|d| gotypes::named(d, k)).map_or_else(|| gotypes::of(self.s, pnode), str::to_string);
                    let saved_owner = std::mem::replace(&mut self.owner, me.clone());
                    self.stack.push(k.clone());
                    let r = self.value(pnode, fv, &ty);
                    self.stack.pop();
                    self.owner = saved_owner;
                    r?;
                }
                Ok(())
            }
            Shape::Map(ap) => {
                let Value::Object(entries) = v else {
                    self.mismatch(json_kind(v).into(), go_type);
                    return Ok(());
                };
                let elem = go_type.strip_prefix("map[string]").map_or_else(|| gotypes::of(self.s, ap), str::to_string);
                for ev in entries.values() {
                    self.value(ap, ev, &elem)?;
                }
                Ok(())
            }
            Shape::Array(items) => {
                let Value::Array(elems) = v else {
                    self.mismatch(json_kind(v).into(), go_type);
                    return Ok(());
                };
                let elem = go_type.strip_prefix("[]").map_or_else(|| gotypes::of(self.s, items), str::to_string);
                for ev in elems {
                    self.value(items, ev, &elem)?;
                }
                Ok(())
            }
            Shape::Str => {
                if !v.is_string() {
                    self.mismatch(json_kind(v).into(), go_type);
                }
                Ok(())
            }
            Shape::Bytes => {
                match v {
                    Value::String(b64) => {
                        if let Err(at) = base64_check(b64) {
                            if self.saved.is_none() {
                                self.saved = Some(format!("illegal base64 data at input byte {at}"));
                            }
                        }
                    }
                    // encoding/json decodes a JSON array of numbers into a []byte too.
                    Value::Array(_) => {}
                    other => self.mismatch(json_kind(other).into(), go_type),
                }
                Ok(())
            }
            Shape::Int { bits } => {
                match v {
                    Value::Number(n) => {
                        let fits = match (n.as_i64(), bits) {
                            (Some(i), 32) => i32::try_from(i).is_ok(),
                            (Some(_), _) => true,
                            (None, _) => false,
                        };
                        if !fits {
                            self.mismatch(format!("number {n}"), go_type);
                        }
                    }
                    other => self.mismatch(json_kind(other).into(), go_type),
                }
                Ok(())
            }
            Shape::Number => {
                if !v.is_number() {
                    self.mismatch(json_kind(v).into(), go_type);
                }
                Ok(())
            }
            Shape::Bool => {
                if !v.is_boolean() {
                    self.mismatch(json_kind(v).into(), go_type);
                }
                Ok(())
            }
        }
    }
}

/// `resource.ParseQuantity`'s acceptance, with its error texts.
fn parse_quantity(s: &str) -> Result<(), &'static str> {
    const FORMAT: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    const NUMERIC: &str = "unable to parse numeric part of quantity";
    const SUFFIX: &str = "unable to parse quantity's suffix";
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let num_start = i;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    if i == num_start {
        return Err(FORMAT);
    }
    let num = &s[num_start..i];
    let suffix = &s[i..];
    let mut j = 0;
    let sb = suffix.as_bytes();
    while j < sb.len() && b"eEinumkKMGTP".contains(&sb[j]) {
        j += 1;
    }
    if j < sb.len() && (sb[j] == b'-' || sb[j] == b'+') {
        j += 1;
    }
    while j < sb.len() && sb[j].is_ascii_digit() {
        j += 1;
    }
    if j != sb.len() {
        return Err(FORMAT);
    }
    if num.matches('.').count() > 1 || num == "." {
        return Err(NUMERIC);
    }
    let known = matches!(suffix, "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E");
    let exponent = suffix
        .strip_prefix(['e', 'E'])
        .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()));
    if known || exponent {
        Ok(())
    } else {
        Err(SUFFIX)
    }
}

/// `base64.StdEncoding.Decode`'s verdict: `Err(offset)` of the first bad byte
/// (`CorruptInputError`). Go skips `\r` and `\n`.
fn base64_check(s: &str) -> Result<(), usize> {
    let alphabet = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let bytes: Vec<(usize, u8)> = s.bytes().enumerate().filter(|(_, c)| *c != b'\r' && *c != b'\n').collect();
    let mut i = 0;
    while i < bytes.len() {
        let quantum = &bytes[i..bytes.len().min(i + 4)];
        for (k, (at, c)) in quantum.iter().enumerate() {
            if *c == b'=' {
                // Padding only in the last two places of the final quantum.
                if k < 2 || quantum.len() != 4 || i + 4 != bytes.len() || (k == 2 && quantum[3].1 != b'=') {
                    return Err(*at);
                }
                break;
            }
            if !alphabet(*c) {
                return Err(*at);
            }
        }
        if quantum.len() < 4 {
            // A truncated final quantum is reported at the end of input.
            return Err(s.len());
        }
        i += 4;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Unknown and duplicate fields

/// A parsed JSON value that keeps repeated keys, for duplicate detection.
enum J {
    Scalar,
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<J, E> {
                Ok(J::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<J, E> {
                Ok(J::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<J, E> {
                Ok(J::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<J, E> {
                Ok(J::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<J, E> {
                Ok(J::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<J, E> {
                Ok(J::Scalar)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element()? {
                    out.push(x);
                }
                Ok(J::Arr(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, J>()? {
                    out.push((k, v));
                }
                Ok(J::Obj(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl J {
    fn from_value(v: &Value) -> J {
        match v {
            Value::Array(a) => J::Arr(a.iter().map(J::from_value).collect()),
            Value::Object(o) => J::Obj(o.iter().map(|(k, v)| (k.clone(), J::from_value(v))).collect()),
            _ => J::Scalar,
        }
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// kube-apiserver keeps at most this many strict errors.
const MAX_STRICT_ERRORS: usize = 100;

struct StrictWalker<'a> {
    s: &'a Schema,
    custom: bool,
    out: Vec<StrictError>,
}

impl StrictWalker<'_> {
    fn push(&mut self, e: StrictError) {
        if self.out.len() < MAX_STRICT_ERRORS && !self.out.contains(&e) {
            self.out.push(e);
        }
    }

    fn duplicates(entries: &[(String, J)]) -> Vec<bool> {
        let mut seen = std::collections::HashSet::new();
        entries.iter().map(|(k, _)| !seen.insert(k.as_str())).collect()
    }

    /// Built-in kinds: `sigs.k8s.io/json` strict decoding, in document order.
    fn go(&mut self, node: &Value, v: &J, path: &str) {
        match (shape(self.s, node, false), v) {
            (Shape::Struct { node, .. }, J::Obj(entries)) => {
                let props = node.get("properties").and_then(Value::as_object);
                let dup = Self::duplicates(entries);
                for ((k, fv), dup) in entries.iter().zip(dup) {
                    let p = child(path, k);
                    match props.and_then(|m| m.get(k)) {
                        Some(pnode) => {
                            // Only a struct's own fields are checked for repeats.
                            if dup {
                                self.push(StrictError::Duplicate(p.clone()));
                            }
                            self.go(pnode, fv, &p);
                        }
                        None => self.push(StrictError::Unknown(p)),
                    }
                }
            }
            (Shape::Map(ap), J::Obj(entries)) => {
                let dup = Self::duplicates(entries);
                for ((k, fv), dup) in entries.iter().zip(dup) {
                    let p = child(path, k);
                    if dup {
                        self.push(StrictError::Duplicate(p.clone()));
                    }
                    self.go(ap, fv, &p);
                }
            }
            (Shape::Array(items), J::Arr(elems)) => {
                for (i, ev) in elems.iter().enumerate() {
                    self.go(items, ev, &format!("{path}[{i}]"));
                }
            }
            _ => {}
        }
    }

    /// Duplicates anywhere in a custom resource body (decoded into unstructured maps).
    fn dup_only(&mut self, v: &J, path: &str) {
        match v {
            J::Obj(entries) => {
                let dup = Self::duplicates(entries);
                for ((k, fv), dup) in entries.iter().zip(dup) {
                    let p = child(path, k);
                    if dup {
                        self.push(StrictError::Duplicate(p.clone()));
                    }
                    self.dup_only(fv, &p);
                }
            }
            J::Arr(elems) => {
                for (i, ev) in elems.iter().enumerate() {
                    self.dup_only(ev, &format!("{path}[{i}]"));
                }
            }
            J::Scalar => {}
        }
    }
}

/// Unknown-field paths of a custom resource, as structural pruning reports them (`field.Path`
/// syntax, map keys in brackets), and separately those under `metadata` (ObjectMeta, decoded
/// the built-in way).
fn prune_paths(s: &Schema, node: &Value, v: &Value, path: &str, out: &mut Vec<String>, meta: &mut Vec<String>) {
    match (shape(s, node, true), v) {
        (Shape::Struct { node, def }, Value::Object(fields)) => {
            if def == Some(OBJECT_META) {
                let mut w = StrictWalker { s, custom: false, out: Vec::new() };
                w.go(node, &J::from_value(v), path);
                meta.extend(w.out.into_iter().filter_map(|e| match e {
                    StrictError::Unknown(p) => Some(p),
                    StrictError::Duplicate(_) => None,
                }));
                return;
            }
            let props = node.get("properties").and_then(Value::as_object);
            for (k, fv) in fields {
                let p = child(path, k);
                match props.and_then(|m| m.get(k)) {
                    Some(pnode) => prune_paths(s, pnode, fv, &p, out, meta),
                    None => out.push(p),
                }
            }
        }
        (Shape::Map(ap), Value::Object(entries)) => {
            for (k, ev) in entries {
                prune_paths(s, ap, ev, &format!("{path}[{k}]"), out, meta);
            }
        }
        (Shape::Array(items), Value::Array(elems)) => {
            for (i, ev) in elems.iter().enumerate() {
                prune_paths(s, items, ev, &format!("{path}[{i}]"), out, meta);
            }
        }
        _ => {}
    }
}

/// Paths of the fields in `obj` that the kind does not declare, as kube-apiserver reports them
/// for `fieldValidation=Strict` (`strict decoding error: unknown field "spec.ports[0].targtPort",
/// unknown field "spec.portz"`) and `Warn` (one `unknown field "…"` warning each).
///
/// Order: for built-in kinds, the order the decoder meets them: document order, depth first,
/// so a field's unknown children come before its later unknown siblings (kubectl sends keys
/// sorted, hence `spec.ports[0].targtPort` before `spec.portz`). For custom resources, pruning's
/// order: sorted, then those under `metadata`. At most 100, without repeats.
pub fn unknown_fields(def: &str, obj: &Value) -> Vec<String> {
    let s = Schema::get();
    let root = root_node(def);
    if Schema::is_custom(def) {
        let (mut out, mut meta) = (Vec::new(), Vec::new());
        prune_paths(s, &root, obj, "", &mut out, &mut meta);
        out.sort();
        out.extend(meta);
        out.dedup();
        out.truncate(MAX_STRICT_ERRORS);
        return out;
    }
    let mut w = StrictWalker { s, custom: false, out: Vec::new() };
    w.go(&root, &J::from_value(obj), "");
    w.out
        .into_iter()
        .filter_map(|e| match e {
            StrictError::Unknown(p) => Some(p),
            StrictError::Duplicate(_) => None,
        })
        .collect()
}

/// Keys repeated within one JSON object of `body` (`duplicate field "metadata.name"` upstream),
/// which a parsed [`Value`] can no longer show. Empty when `body` is not JSON.
pub fn duplicate_fields(def: &str, body: &[u8]) -> Vec<String> {
    strict_errors(def, body)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match e {
            StrictError::Duplicate(p) => Some(p),
            StrictError::Unknown(_) => None,
        })
        .collect()
}

/// Every strict-decoding problem of a JSON body in the order kube-apiserver lists them:
/// unknown and duplicate fields interleaved as met (built-in kinds), or duplicates then unknown
/// fields (custom resources).
pub fn strict_errors(def: &str, body: &[u8]) -> Result<Vec<StrictError>, serde_json::Error> {
    let j: J = serde_json::from_slice(body)?;
    let s = Schema::get();
    let custom = Schema::is_custom(def);
    let mut w = StrictWalker { s, custom, out: Vec::new() };
    if w.custom {
        w.dup_only(&j, "");
        let obj: Value = serde_json::from_slice(body)?;
        for p in unknown_fields(def, &obj) {
            w.push(StrictError::Unknown(p));
        }
    } else {
        w.go(&root_node(def), &j, "");
    }
    Ok(w.out)
}

/// Removes the fields the kind does not declare, as decoding into the Go struct (or
/// apiextensions' pruning) does: what is stored when `fieldValidation` is `Ignore` or `Warn`.
pub fn prune_unknown(def: &str, obj: &mut Value) {
    let s = Schema::get();
    prune(s, &root_node(def), obj, Schema::is_custom(def));
}

fn prune(s: &Schema, node: &Value, v: &mut Value, custom: bool) {
    match (shape(s, node, custom), v) {
        (Shape::Struct { node, def }, Value::Object(fields)) => {
            let custom = custom && def != Some(OBJECT_META);
            let props = node.get("properties").and_then(Value::as_object);
            fields.retain(|k, _| props.is_some_and(|p| p.contains_key(k)));
            for (k, fv) in fields.iter_mut() {
                if let Some(pnode) = props.and_then(|p| p.get(k)) {
                    prune(s, pnode, fv, custom);
                }
            }
        }
        (Shape::Map(ap), Value::Object(entries)) => entries.values_mut().for_each(|ev| prune(s, ap, ev, custom)),
        (Shape::Array(items), Value::Array(elems)) => elems.iter_mut().for_each(|ev| prune(s, items, ev, custom)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Normalisation

/// Rewrites values that decode fine into the form kube-apiserver would store and return:
///
/// - an integer field given as an integral float (`80.0`, as YAML-to-JSON conversion may
///   produce) becomes an integer; so does an IntOrString. (A JSON body with `80.0` fails
///   [`check_types`] first, as it does upstream: Go's decoder rejects it.)
/// - `metav1.Time` becomes UTC, whole seconds (`2024-01-01T08:00:00Z`); `MicroTime` UTC with
///   microseconds; the zero time is dropped (Go writes it as `null`).
/// - `null` fields are dropped (Go leaves the zero value, which optional fields omit), except
///   required scalars, which become their zero value (`""`, `0`, `false`); a `null` in a
///   string map becomes `""`.
/// - a Quantity given as a JSON integer becomes its string (`1` → `"1"`).
/// - custom resources: `null`s are dropped and schema `default`s filled in, as apiextensions'
///   structural defaulting does.
///
/// Quantities are not brought into canonical form (`1000m` stays `1000m`).
pub fn normalize(def: &str, obj: &mut Value) {
    let s = Schema::get();
    let custom = Schema::is_custom(def);
    normalize_node(s, &root_node(def), obj, custom);
}

fn zero_of(shape: &Shape<'_>) -> Option<Value> {
    match shape {
        Shape::Str | Shape::Bytes => Some(Value::String(String::new())),
        Shape::Int { .. } | Shape::Number => Some(Value::from(0)),
        Shape::Bool => Some(Value::Bool(false)),
        _ => None,
    }
}

fn integral(n: &Number) -> Option<Value> {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => Some(Value::from(f as i64)),
        _ => None,
    }
}

fn normalize_node(s: &Schema, node: &Value, v: &mut Value, custom: bool) {
    let shape = shape(s, node, custom);
    match (shape, v) {
        (Shape::Struct { node, def }, Value::Object(fields)) => {
            let custom = custom && def != Some(OBJECT_META);
            let props = node.get("properties").and_then(Value::as_object);
            let required: Vec<&str> = node.get("required").and_then(Value::as_array).map_or_else(Vec::new, |r| r.iter().filter_map(Value::as_str).collect());
            let mut drop = Vec::new();
            for (k, fv) in fields.iter_mut() {
                let Some(pnode) = props.and_then(|p| p.get(k)) else { continue };
                if fv.is_null() {
                    let zero = if custom { None } else { zero_of(&self::shape(s, pnode, custom)) };
                    match zero {
                        Some(z) if required.contains(&k.as_str()) => *fv = z,
                        _ => drop.push(k.clone()),
                    }
                    continue;
                }
                normalize_node(s, pnode, fv, custom);
                if fv.is_null() {
                    drop.push(k.clone());
                }
            }
            for k in drop {
                fields.remove(&k);
            }
            if custom {
                for (k, pnode) in props.into_iter().flatten() {
                    if let Some(default) = s.resolve(pnode).get("default") {
                        if !fields.contains_key(k) {
                            let mut d = default.clone();
                            normalize_node(s, pnode, &mut d, custom);
                            fields.insert(k.clone(), d);
                        }
                    }
                }
            }
        }
        (Shape::Map(ap), Value::Object(entries)) => {
            let elem = self::shape(s, ap, custom);
            let zero = zero_of(&elem);
            let mut drop = Vec::new();
            for (k, ev) in entries.iter_mut() {
                if ev.is_null() {
                    match (&zero, custom) {
                        (Some(z), false) => *ev = z.clone(),
                        _ => drop.push(k.clone()),
                    }
                } else {
                    normalize_node(s, ap, ev, custom);
                }
            }
            for k in drop {
                entries.remove(&k);
            }
        }
        (Shape::Array(items), Value::Array(elems)) => {
            for ev in elems.iter_mut() {
                normalize_node(s, items, ev, custom);
            }
        }
        (Shape::Int { .. } | Shape::IntOrString, v @ Value::Number(_)) => {
            if let Some(i) = v.as_number().and_then(integral) {
                *v = i;
            }
        }
        (Shape::Time { micro }, v @ Value::String(_)) => {
            let layout = if micro { gotime::RFC3339_MICRO } else { gotime::RFC3339 };
            if let Some(t) = v.as_str().and_then(|t| gotime::parse(layout, t).ok()) {
                *v = if gotime::is_zero(t) { Value::Null } else { Value::String(gotime::format(layout, t)) };
            }
        }
        (Shape::Quantity, v @ Value::Number(_)) => {
            if let Some(n) = v.as_number().filter(|n| !n.is_f64()) {
                *v = Value::String(n.to_string());
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Custom resources

/// One schema violation of a custom resource, as apiextensions reports it in a 422 Invalid
/// `Status`: `field` and `message` make the `causes` entry; `Display` gives the line
/// kubectl prints (`spec.autoAssign: Invalid value: "string": spec.autoAssign in body must be
/// of type boolean: "string"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    /// `FieldValueTypeInvalid` or `FieldValueRequired`.
    pub reason: &'static str,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Type and `required` violations of a custom resource against its schema (kube-openapi's
/// validator as apiextensions runs it), in field order. Empty for built-in kinds. Run it after
/// [`prune_unknown`] and [`normalize`], as apiextensions validates the pruned, defaulted object.
pub fn custom_resource_errors(def: &str, obj: &Value) -> Vec<FieldError> {
    if !Schema::is_custom(def) {
        return Vec::new();
    }
    let s = Schema::get();
    let mut out = Vec::new();
    crd_validate(s, &root_node(def), obj, "", &mut out);
    out
}

fn openapi_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn crd_validate(s: &Schema, node: &Value, v: &Value, path: &str, out: &mut Vec<FieldError>) {
    let n = s.resolve(node);
    // ObjectMeta is checked the built-in way; nulls are pruned before validation upstream.
    if ref_target(node) == Some(OBJECT_META) || v.is_null() {
        return;
    }
    if let Some(want) = crate::node_type(n) {
        let got = openapi_kind(v);
        let float_int = want == "integer" && v.as_f64().is_some_and(|f| f.fract() == 0.0);
        let ok = got == want || (want == "number" && got == "integer") || float_int;
        if !ok && !path.is_empty() {
            out.push(FieldError {
                field: path.to_string(),
                reason: "FieldValueTypeInvalid",
                message: format!("Invalid value: \"{got}\": {path} in body must be of type {want}: \"{got}\""),
            });
            return;
        }
    }
    match v {
        Value::Object(fields) => {
            let props = n.get("properties").and_then(Value::as_object);
            for r in n.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                if !fields.contains_key(r) {
                    out.push(FieldError { field: child(path, r), reason: "FieldValueRequired", message: "Required value".into() });
                }
            }
            for (k, fv) in fields {
                if let Some(pnode) = props.and_then(|p| p.get(k)) {
                    crd_validate(s, pnode, fv, &child(path, k), out);
                } else if let Some(ap) = s.additional_properties(n) {
                    crd_validate(s, ap, fv, &child(path, k), out);
                }
            }
        }
        Value::Array(elems) => {
            if let Some(items) = s.items(n) {
                for (i, ev) in elems.iter().enumerate() {
                    crd_validate(s, items, ev, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
