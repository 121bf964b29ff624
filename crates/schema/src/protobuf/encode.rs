//! JSON → protobuf, as Go marshals the typed object: fields in tag order, value (non-pointer)
//! fields always written (their zero value when absent), pointers and `[]byte` only when set,
//! map entries sorted by key.

use super::table::{Label, MsgId, Table, Type};
use super::wire::Writer;
use super::{Path, ProtobufError, MAX_DEPTH};
use crate::gotime;
use base64::Engine;
use serde_json::{Map, Value};

pub(crate) struct Encoder<'t> {
    pub table: &'t Table,
}

fn err(path: &Path<'_>, detail: impl Into<String>) -> ProtobufError {
    ProtobufError::Encode { path: path.to_string(), detail: detail.into() }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected(path: &Path<'_>, what: &str, v: &Value) -> ProtobufError {
    err(path, format!("expected {what}, found {}", type_name(v)))
}

impl Encoder<'_> {
    /// The encoding of message `id` from a JSON object. Keys that are no field of the message
    /// are an error, except `apiVersion`/`kind` with `top`.
    pub fn message(&self, id: MsgId, obj: &Map<String, Value>, depth: usize, path: &Path<'_>, top: bool) -> Result<Vec<u8>, ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep { path: path.to_string() });
        }
        for k in obj.keys() {
            if !(top && (k == "apiVersion" || k == "kind")) && !self.has_property(id, k, 0) {
                return Err(err(path, format!("unknown field {k:?} in {}", self.table.messages[id].name)));
            }
        }
        let mut w = Writer::new();
        self.fields(id, obj, depth, path, &mut w)?;
        Ok(w.buf)
    }

    fn has_property(&self, id: MsgId, name: &str, depth: usize) -> bool {
        depth <= MAX_DEPTH
            && self.table.messages[id].fields.iter().any(|f| match (f.inline, f.ty) {
                (true, Type::Message(child)) => self.has_property(child, name, depth + 1),
                _ => f.json == name,
            })
    }

    fn fields(&self, id: MsgId, obj: &Map<String, Value>, depth: usize, path: &Path<'_>, w: &mut Writer) -> Result<(), ProtobufError> {
        let msg = &self.table.messages[id];
        for &idx in &msg.wire_order {
            let f = &msg.fields[idx];
            if f.inline {
                if let Type::Message(child) = f.ty {
                    if depth + 1 > MAX_DEPTH {
                        return Err(ProtobufError::TooDeep { path: path.to_string() });
                    }
                    let mut inner = Writer::new();
                    self.fields(child, obj, depth + 1, path, &mut inner)?;
                    w.bytes_field(f.tag, &inner.buf);
                }
                continue;
            }
            let fpath = Path::Key(path, &f.json);
            let v = obj.get(&f.json).filter(|v| !v.is_null());
            match f.label {
                Label::Single => {
                    // A nil pointer or nil []byte is not written; a value field always is.
                    if v.is_none() && (f.pointer || f.ty == Type::Bytes) {
                        continue;
                    }
                    self.value(f.tag, f.ty, v, depth, &fpath, w)?;
                }
                Label::Repeated => {
                    let Some(v) = v else { continue };
                    let items = v.as_array().ok_or_else(|| expected(&fpath, "array", v))?;
                    for (i, item) in items.iter().enumerate() {
                        self.value(f.tag, f.ty, Some(item).filter(|v| !v.is_null()), depth, &Path::Index(&fpath, i), w)?;
                    }
                }
                Label::Map => {
                    let Some(v) = v else { continue };
                    let map = v.as_object().ok_or_else(|| expected(&fpath, "object", v))?;
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    for k in keys {
                        let kpath = Path::Key(&fpath, k);
                        let val = map.get(k).filter(|v| !v.is_null());
                        let mut entry = Writer::new();
                        entry.bytes_field(1, k.as_bytes());
                        if val.is_some() || f.ty != Type::Bytes {
                            self.value(2, f.ty, val, depth, &kpath, &mut entry)?;
                        }
                        w.bytes_field(f.tag, &entry.buf);
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes field `tag` of type `ty` holding `v` (absent: the zero value).
    fn value(&self, tag: u32, ty: Type, v: Option<&Value>, depth: usize, path: &Path<'_>, w: &mut Writer) -> Result<(), ProtobufError> {
        match ty {
            Type::String => {
                let s = match v {
                    None => "",
                    Some(v) => v.as_str().ok_or_else(|| expected(path, "string", v))?,
                };
                w.bytes_field(tag, s.as_bytes());
            }
            Type::Bytes => {
                let b = match v {
                    None => Vec::new(),
                    Some(v) => {
                        let s = v.as_str().ok_or_else(|| expected(path, "base64 string", v))?;
                        base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| err(path, format!("illegal base64 data: {e}")))?
                    }
                };
                w.bytes_field(tag, &b);
            }
            Type::Bool => {
                let b = match v {
                    None => false,
                    Some(v) => v.as_bool().ok_or_else(|| expected(path, "bool", v))?,
                };
                w.varint_field(tag, u64::from(b));
            }
            Type::Int32 => {
                let i = match v {
                    None => 0,
                    Some(v) => v.as_i64().and_then(|i| i32::try_from(i).ok()).ok_or_else(|| expected(path, "int32", v))?,
                };
                w.varint_field(tag, i64::from(i) as u64);
            }
            Type::Int64 => {
                let i = match v {
                    None => 0,
                    Some(v) => v.as_i64().ok_or_else(|| expected(path, "int64", v))?,
                };
                w.varint_field(tag, i as u64);
            }
            Type::Double => {
                let d = match v {
                    None => 0.0,
                    Some(v) => v.as_f64().ok_or_else(|| expected(path, "number", v))?,
                };
                w.fixed64_field(tag, d.to_bits());
            }
            Type::Message(id) => {
                let empty = Map::new();
                let obj = match v {
                    None => &empty,
                    Some(v) => v.as_object().ok_or_else(|| expected(path, "object", v))?,
                };
                let body = self.message(id, obj, depth + 1, path, false)?;
                w.bytes_field(tag, &body);
            }
            Type::IntOrString => {
                let (t, i, s) = match v {
                    None => (0, 0, ""),
                    Some(Value::String(s)) => (1, 0, s.as_str()),
                    Some(v) => (0, v.as_i64().and_then(|i| i32::try_from(i).ok()).ok_or_else(|| expected(path, "int32 or string", v))?, ""),
                };
                let mut m = Writer::new();
                m.varint_field(1, t);
                m.varint_field(2, i64::from(i) as u64);
                m.bytes_field(3, s.as_bytes());
                w.bytes_field(tag, &m.buf);
            }
            Type::Quantity => {
                let s = match v {
                    None => "0".to_string(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    Some(v) => return Err(expected(path, "quantity string", v)),
                };
                let mut m = Writer::new();
                m.bytes_field(1, s.as_bytes());
                w.bytes_field(tag, &m.buf);
            }
            Type::Time | Type::MicroTime => {
                let micro = ty == Type::MicroTime;
                let mut m = Writer::new();
                if let Some(v) = v {
                    let s = v.as_str().ok_or_else(|| expected(path, "RFC 3339 string", v))?;
                    let layout = if micro { gotime::RFC3339_MICRO } else { gotime::RFC3339 };
                    let t = gotime::parse(layout, s).map_err(|e| err(path, e))?;
                    // The zero time is an empty message; Time drops the nanoseconds.
                    if !gotime::is_zero(t) {
                        m.varint_field(1, t.secs as u64);
                        m.varint_field(2, if micro { u64::from(t.nanos) } else { 0 });
                    }
                }
                w.bytes_field(tag, &m.buf);
            }
            Type::FieldsV1 => {
                let mut m = Writer::new();
                if let Some(v) = v {
                    let raw = serde_json::to_vec(v).map_err(|e| err(path, e.to_string()))?;
                    m.bytes_field(1, &raw);
                }
                w.bytes_field(tag, &m.buf);
            }
        }
        Ok(())
    }
}
