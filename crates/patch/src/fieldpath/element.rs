//! One step of a field path: a field of an object, a list item by its key fields, a set item by
//! its value, or (rarely) a list item by index. Their order and their two renderings (in
//! messages, `.spec.ports[port=80,protocol="TCP"]`; in `fieldsV1`, `k:{"port":80,...}`) follow
//! structured-merge-diff exactly.

use super::value;
use crate::gojson;
use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;

/// A step into a value.
#[derive(Clone, Debug)]
pub enum PathElement {
    /// `f:<name>`: a field of a struct or an entry of a map.
    Field(String),
    /// `k:{...}`: an item of a list-map, by its key fields, sorted by name.
    Key(Vec<(String, Value)>),
    /// `v:<json>`: an item of a set (a list of scalars), by value.
    Value(Value),
    /// `i:<n>`: an item by position.
    Index(i64),
}

/// A path from the root of an object.
pub type Path = Vec<PathElement>;

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// A key element from key fields in any order.
    pub fn key(mut fields: Vec<(String, Value)>) -> PathElement {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    /// The `fieldsV1` form: `f:name`, `k:{"port":80,"protocol":"TCP"}`, `v:"x"`, `i:0`.
    pub fn to_fields_v1(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut out = String::from("k:{");
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    gojson::write_string(&mut out, name);
                    out.push(':');
                    out.push_str(&gojson::marshal(v));
                }
                out.push('}');
                out
            }
            PathElement::Value(v) => format!("v:{}", gojson::marshal(v)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses the `fieldsV1` form. `Ok(None)` for a prefix this version does not know, which
    /// readers skip.
    pub fn from_fields_v1(s: &str) -> Result<Option<PathElement>, String> {
        if s.len() < 2 || !s.is_char_boundary(2) {
            return Err("key must be 2 characters long".to_string());
        }
        let (prefix, rest) = s.split_at(2);
        match prefix {
            "f:" => Ok(Some(PathElement::Field(rest.to_string()))),
            "v:" => serde_json::from_str(rest).map(|v| Some(PathElement::Value(v))).map_err(|e| e.to_string()),
            "k:" => match serde_json::from_str::<Value>(rest).map_err(|e| e.to_string())? {
                Value::Object(map) => Ok(Some(PathElement::key(map.into_iter().collect()))),
                _ => Err(format!("invalid key {rest}")),
            },
            "i:" => rest.parse::<i64>().map(|i| Some(PathElement::Index(i))).map_err(|e| e.to_string()),
            _ => Ok(None),
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let c = an.cmp(bn).then_with(|| value::compare(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => value::compare(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

/// The human form used in conflict messages: `.spec`, `[port=80,protocol="TCP"]`, `[="x"]`, `[0]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields.iter().map(|(n, v)| format!("{n}={}", value::to_string(v))).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value::to_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Renders a path the way kube prints it in messages: `.spec.ports[port=80,protocol="TCP"].targetPort`.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_renders_both_ways() {
        let pe = PathElement::key(vec![("protocol".into(), json!("TCP")), ("port".into(), json!(80))]);
        assert_eq!(pe.to_fields_v1(), r#"k:{"port":80,"protocol":"TCP"}"#);
        assert_eq!(pe.to_string(), r#"[port=80,protocol="TCP"]"#);
        assert_eq!(PathElement::from_fields_v1(&pe.to_fields_v1()).unwrap(), Some(pe));
    }

    #[test]
    fn fields_sort_before_keys_before_values() {
        let mut v = [
            PathElement::Value(json!("a")),
            PathElement::key(vec![("uid".into(), json!("x"))]),
            PathElement::Field("z".into()),
            PathElement::Field("a".into()),
        ];
        v.sort();
        let s: Vec<String> = v.iter().map(PathElement::to_fields_v1).collect();
        assert_eq!(s, [r#"f:a"#, r#"f:z"#, r#"k:{"uid":"x"}"#, r#"v:"a""#]);
    }
}
