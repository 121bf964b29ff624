//! Protobuf → JSON: what Go gets by unmarshalling the bytes into the typed struct and marshalling
//! that with `encoding/json` (kubectl's JSON body for the same object).

use super::table::{Field, Label, Message, MsgId, Table, Type};
use super::wire::{Reader, WireError, FIXED64, LEN, VARINT};
use super::{Path, ProtobufError, MAX_DEPTH};
use crate::gotime;
use base64::Engine;
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// One wire value of a field, as read.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
}

/// The wire values of one message's fields, by field index, in wire order. Several
/// length-delimited values of a singular message field merge, as protobuf specifies.
struct Fields<'a> {
    values: Vec<Vec<Raw<'a>>>,
}

fn wire_err(path: &Path<'_>, msg: &Message, e: WireError) -> ProtobufError {
    ProtobufError::Wire { message: msg.short().to_string(), path: path.to_string(), detail: e.to_string() }
}

fn scalar_wire(ty: Type) -> u8 {
    match ty {
        Type::Bool | Type::Int32 | Type::Int64 => VARINT,
        Type::Double => FIXED64,
        _ => LEN,
    }
}

impl<'a> Fields<'a> {
    /// Reads every field of `data` (one encoding of message `msg`) into `self`.
    fn collect(&mut self, msg: &Message, data: &'a [u8], path: &Path<'_>) -> Result<(), ProtobufError> {
        let mut r = Reader::new(data);
        while !r.at_end() {
            let (tag, wire) = r.key().map_err(|e| wire_err(path, msg, e))?;
            let Some(idx) = msg.field_by_tag(tag) else {
                r.skip(wire).map_err(|e| wire_err(path, msg, e))?;
                continue;
            };
            let f = &msg.fields[idx];
            let expect = if f.label == Label::Map { LEN } else { scalar_wire(f.ty) };
            let packed = f.label == Label::Repeated && expect != LEN && wire == LEN;
            if wire != expect && !packed {
                return Err(ProtobufError::Wire {
                    message: msg.short().to_string(),
                    path: path.to_string(),
                    detail: format!("wrong wireType = {wire} for field {}", field_name(f)),
                });
            }
            let slot = &mut self.values[idx];
            if packed {
                let mut p = Reader::new(r.bytes().map_err(|e| wire_err(path, msg, e))?);
                while !p.at_end() {
                    let v = if expect == VARINT { p.varint().map(Raw::Varint) } else { p.fixed64().map(Raw::Fixed64) };
                    slot.push(v.map_err(|e| wire_err(path, msg, e))?);
                }
                continue;
            }
            let v = match wire {
                VARINT => Raw::Varint(r.varint().map_err(|e| wire_err(path, msg, e))?),
                FIXED64 => Raw::Fixed64(r.fixed64().map_err(|e| wire_err(path, msg, e))?),
                _ => Raw::Bytes(r.bytes().map_err(|e| wire_err(path, msg, e))?),
            };
            // A singular scalar keeps only its last value; don't let repeats pile up.
            if f.label == Label::Single && is_scalar(f.ty) {
                slot.clear();
            }
            slot.push(v);
        }
        Ok(())
    }
}

/// Types whose singular field is one wire value (the last one wins); the others merge.
fn is_scalar(ty: Type) -> bool {
    matches!(ty, Type::String | Type::Bool | Type::Int32 | Type::Int64 | Type::Double | Type::Bytes)
}

fn field_name(f: &Field) -> String {
    if f.json.is_empty() {
        format!("tag {}", f.tag)
    } else {
        f.json.clone()
    }
}

pub(crate) struct Decoder<'t> {
    pub table: &'t Table,
}

impl Decoder<'_> {
    /// The JSON object of message `id` encoded as the concatenation of `segments`.
    pub fn message(&self, id: MsgId, segments: &[&[u8]], depth: usize, path: &Path<'_>) -> Result<Map<String, Value>, ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep { path: path.to_string() });
        }
        let msg = &self.table.messages[id];
        let mut fields = Fields { values: vec![Vec::new(); msg.fields.len()] };
        for seg in segments {
            fields.collect(msg, seg, path)?;
        }
        let mut out = Map::new();
        for (idx, f) in msg.fields.iter().enumerate() {
            let values = &fields.values[idx];
            let fpath = Path::Key(path, &f.json);
            match f.label {
                Label::Single => self.single(f, values, depth, &fpath, path, &mut out)?,
                Label::Repeated => {
                    if values.is_empty() {
                        if !f.omitempty {
                            out.insert(f.json.clone(), Value::Null);
                        }
                        continue;
                    }
                    let mut items = Vec::with_capacity(values.len().min(1024));
                    for (i, v) in values.iter().enumerate() {
                        let ipath = Path::Index(&fpath, i);
                        items.push(self.value(f.ty, &[*v], depth, &ipath)?);
                    }
                    out.insert(f.json.clone(), Value::Array(items));
                }
                Label::Map => {
                    if values.is_empty() {
                        if !f.omitempty {
                            out.insert(f.json.clone(), Value::Null);
                        }
                        continue;
                    }
                    let map = self.map(f, values, depth, &fpath)?;
                    out.insert(f.json.clone(), Value::Object(map));
                }
            }
        }
        Ok(out)
    }

    fn single(
        &self,
        f: &Field,
        values: &[Raw<'_>],
        depth: usize,
        fpath: &Path<'_>,
        parent: &Path<'_>,
        out: &mut Map<String, Value>,
    ) -> Result<(), ProtobufError> {
        if f.inline {
            let Type::Message(child) = f.ty else { return Ok(()) };
            let segs = segments(values);
            out.extend(self.message(child, &segs, depth + 1, parent)?);
            return Ok(());
        }
        if values.is_empty() && f.pointer {
            // A nil pointer.
            if !f.omitempty {
                out.insert(f.json.clone(), Value::Null);
            }
            return Ok(());
        }
        let v = self.value(f.ty, values, depth, fpath)?;
        // A value field's zero is dropped by omitempty; structs are never "empty" to encoding/json.
        if !f.pointer && f.omitempty && is_empty_value(f.ty, &v) {
            return Ok(());
        }
        out.insert(f.json.clone(), v);
        Ok(())
    }

    /// The JSON of one value of type `ty` from its wire values (none: Go's zero value).
    fn value(&self, ty: Type, values: &[Raw<'_>], depth: usize, path: &Path<'_>) -> Result<Value, ProtobufError> {
        let last = values.last().copied();
        Ok(match ty {
            Type::String => Value::String(match last {
                Some(Raw::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            }),
            Type::Bytes => match last {
                Some(Raw::Bytes(b)) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
                // A nil []byte.
                _ => Value::Null,
            },
            Type::Bool => Value::Bool(matches!(last, Some(Raw::Varint(v)) if v != 0)),
            Type::Int32 => Value::from(match last {
                Some(Raw::Varint(v)) => v as i32,
                _ => 0,
            }),
            Type::Int64 => Value::from(match last {
                Some(Raw::Varint(v)) => v as i64,
                _ => 0,
            }),
            Type::Double => {
                let d = match last {
                    Some(Raw::Fixed64(v)) => f64::from_bits(v),
                    _ => 0.0,
                };
                Value::Number(Number::from_f64(d).ok_or_else(|| ProtobufError::Value {
                    path: path.to_string(),
                    detail: format!("json: unsupported value: {d}"),
                })?)
            }
            Type::Message(id) => Value::Object(self.message(id, &segments(values), depth + 1, path)?),
            Type::IntOrString => int_or_string(&segments(values), path)?,
            Type::Quantity => quantity(&segments(values), path)?,
            Type::Time => time(&segments(values), false, path)?,
            Type::MicroTime => time(&segments(values), true, path)?,
            Type::FieldsV1 => fields_v1(&segments(values), path)?,
        })
    }

    fn map(&self, f: &Field, entries: &[Raw<'_>], depth: usize, path: &Path<'_>) -> Result<Map<String, Value>, ProtobufError> {
        // encoding/json writes map keys sorted; a repeated key keeps its last value (Go's map).
        let mut sorted: BTreeMap<String, Vec<Raw<'_>>> = BTreeMap::new();
        let wire = scalar_wire(f.ty);
        for e in entries {
            let Raw::Bytes(entry) = e else { continue };
            let mut r = Reader::new(entry);
            let mut key = String::new();
            let mut value: Vec<Raw<'_>> = Vec::new();
            let err = |e: WireError| ProtobufError::Wire { message: format!("{} entry", field_name(f)), path: path.to_string(), detail: e.to_string() };
            while !r.at_end() {
                let (tag, w) = r.key().map_err(err)?;
                match tag {
                    1 if w == LEN => key = String::from_utf8_lossy(r.bytes().map_err(err)?).into_owned(),
                    2 if w == wire => {
                        let v = match w {
                            VARINT => Raw::Varint(r.varint().map_err(err)?),
                            FIXED64 => Raw::Fixed64(r.fixed64().map_err(err)?),
                            _ => Raw::Bytes(r.bytes().map_err(err)?),
                        };
                        if is_scalar(f.ty) {
                            value.clear();
                        }
                        value.push(v);
                    }
                    1 | 2 => {
                        return Err(ProtobufError::Wire {
                            message: format!("{} entry", field_name(f)),
                            path: path.to_string(),
                            detail: format!("wrong wireType = {w} for field {}", if tag == 1 { "key" } else { "value" }),
                        })
                    }
                    _ => r.skip(w).map_err(err)?,
                }
            }
            // Map values have no presence: a missing value is the zero value, and a []byte
            // value is never nil (gogo allocates it).
            if f.ty == Type::Bytes && value.is_empty() {
                value.push(Raw::Bytes(&[]));
            }
            sorted.insert(key, value);
        }
        let mut out = Map::new();
        for (k, v) in sorted {
            let kpath = Path::Key(path, &k);
            let val = self.value(f.ty, &v, depth, &kpath)?;
            out.insert(k, val);
        }
        Ok(out)
    }
}

fn segments<'a>(values: &[Raw<'a>]) -> Vec<&'a [u8]> {
    values.iter().filter_map(|v| if let Raw::Bytes(b) = v { Some(*b) } else { None }).collect()
}

/// Whether encoding/json's `omitempty` drops this value of a non-pointer field.
fn is_empty_value(ty: Type, v: &Value) -> bool {
    match ty {
        Type::String | Type::Bytes => v.as_str().is_none_or(str::is_empty),
        Type::Bool => v == &Value::Bool(false),
        Type::Int32 | Type::Int64 => v.as_i64() == Some(0),
        Type::Double => v.as_f64() == Some(0.0),
        // Structs (and the types with their own MarshalJSON, all structs) are never empty.
        _ => false,
    }
}

/// Reads the scalar sub-fields of a small well-known message, merging segments (last wins).
fn small_fields<'a>(segments: &[&'a [u8]], name: &str, path: &Path<'_>, mut each: impl FnMut(u32, Raw<'a>) -> Result<(), ProtobufError>) -> Result<(), ProtobufError> {
    let err = |e: WireError| ProtobufError::Wire { message: name.to_string(), path: path.to_string(), detail: e.to_string() };
    for seg in segments {
        let mut r = Reader::new(seg);
        while !r.at_end() {
            let (tag, w) = r.key().map_err(err)?;
            let v = match w {
                VARINT => Raw::Varint(r.varint().map_err(err)?),
                LEN => Raw::Bytes(r.bytes().map_err(err)?),
                _ => {
                    r.skip(w).map_err(err)?;
                    continue;
                }
            };
            each(tag, v)?;
        }
    }
    Ok(())
}

fn wrong(name: &str, path: &Path<'_>, field: &str, w: u8) -> ProtobufError {
    ProtobufError::Wire { message: name.to_string(), path: path.to_string(), detail: format!("wrong wireType = {w} for field {field}") }
}

fn wt(v: &Raw<'_>) -> u8 {
    match v {
        Raw::Varint(_) => VARINT,
        Raw::Fixed64(_) => FIXED64,
        Raw::Bytes(_) => LEN,
    }
}

/// `intstr.IntOrString {1: type, 2: intVal, 3: strVal}` → a number or a string.
fn int_or_string(segments: &[&[u8]], path: &Path<'_>) -> Result<Value, ProtobufError> {
    let (mut ty, mut int_val, mut str_val) = (0i64, 0i32, String::new());
    small_fields(segments, "IntOrString", path, |tag, v| {
        match (tag, v) {
            (1, Raw::Varint(x)) => ty = x as i64,
            (2, Raw::Varint(x)) => int_val = x as i32,
            (3, Raw::Bytes(b)) => str_val = String::from_utf8_lossy(b).into_owned(),
            (1..=3, v) => return Err(wrong("IntOrString", path, ["type", "intVal", "strVal"][tag as usize - 1], wt(&v))),
            _ => {}
        }
        Ok(())
    })?;
    match ty {
        0 => Ok(Value::from(int_val)),
        1 => Ok(Value::String(str_val)),
        _ => Err(ProtobufError::Value { path: path.to_string(), detail: "impossible IntOrString.Type".to_string() }),
    }
}

/// `resource.Quantity {1: string}` → the string; the zero Quantity is `"0"`.
fn quantity(segments: &[&[u8]], path: &Path<'_>) -> Result<Value, ProtobufError> {
    let mut s: Option<String> = None;
    small_fields(segments, "Quantity", path, |tag, v| {
        match (tag, v) {
            (1, Raw::Bytes(b)) => s = Some(String::from_utf8_lossy(b).into_owned()),
            (1, v) => return Err(wrong("Quantity", path, "string", wt(&v))),
            _ => {}
        }
        Ok(())
    })?;
    Ok(Value::String(s.unwrap_or_else(|| "0".to_string())))
}

/// Go's year range for RFC 3339 (0000–9999), in seconds since the epoch.
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

/// `metav1.Time` / `metav1.MicroTime` (`{1: seconds, 2: nanos}`; empty is the zero time, `null`).
/// `Time` ignores the nanoseconds, as its Go `Unmarshal` does.
fn time(segments: &[&[u8]], micro: bool, path: &Path<'_>) -> Result<Value, ProtobufError> {
    let name = if micro { "MicroTime" } else { "Time" };
    if segments.iter().all(|s| s.is_empty()) {
        return Ok(Value::Null);
    }
    let (mut secs, mut nanos) = (0i64, 0i32);
    small_fields(segments, name, path, |tag, v| {
        match (tag, v) {
            (1, Raw::Varint(x)) => secs = x as i64,
            (2, Raw::Varint(x)) => nanos = x as i32,
            (1 | 2, v) => return Err(wrong(name, path, if tag == 1 { "seconds" } else { "nanos" }, wt(&v))),
            _ => {}
        }
        Ok(())
    })?;
    if !micro {
        nanos = 0;
    }
    // time.Unix normalises nanoseconds outside [0, 1e9).
    let secs = secs.checked_add(i64::from(nanos).div_euclid(1_000_000_000));
    let nanos = i64::from(nanos).rem_euclid(1_000_000_000) as u32;
    let Some(secs) = secs.filter(|s| (MIN_SECS..=MAX_SECS).contains(s)) else {
        return Err(ProtobufError::Value { path: path.to_string(), detail: format!("{name} outside of the years 0000 to 9999") });
    };
    let t = gotime::Instant { secs, nanos };
    if gotime::is_zero(t) {
        return Ok(Value::Null);
    }
    Ok(Value::String(gotime::format(if micro { gotime::RFC3339_MICRO } else { gotime::RFC3339 }, t)))
}

/// `metav1.FieldsV1 {1: raw}`: the raw bytes are the JSON.
fn fields_v1(segments: &[&[u8]], path: &Path<'_>) -> Result<Value, ProtobufError> {
    let mut raw: Option<&[u8]> = None;
    small_fields(segments, "FieldsV1", path, |tag, v| {
        match (tag, v) {
            (1, Raw::Bytes(b)) => raw = Some(b),
            (1, v) => return Err(wrong("FieldsV1", path, "Raw", wt(&v))),
            _ => {}
        }
        Ok(())
    })?;
    match raw {
        None | Some([]) => Ok(Value::Null),
        Some(b) => serde_json::from_slice(b)
            .map_err(|e| ProtobufError::Value { path: path.to_string(), detail: format!("FieldsV1 is not JSON: {e}") }),
    }
}
