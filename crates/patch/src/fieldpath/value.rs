//! Ordering, equality and printing of JSON values as structured-merge-diff defines them: numbers
//! compare by value whether integer or float, and values of different kinds have a fixed order
//! (numbers < strings < booleans < lists < maps < null). Keys of list items (`k:{...}`) and set
//! items (`v:...`) sort by this order, which decides the order of entries in `fieldsV1`.

use serde_json::Value;
use std::cmp::Ordering;

fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

fn int(n: &serde_json::Number) -> Option<i64> {
    if n.is_f64() {
        None
    } else {
        n.as_i64()
    }
}

/// `value.Compare`: a total order over JSON values.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (int(x), int(y)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (l, r) in x.iter().zip(y) {
                let c = compare(l, r);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let c = match (x.get(k), y.get(k)) {
                    (None, _) => Ordering::Greater,
                    (_, None) => Ordering::Less,
                    (Some(l), Some(r)) => compare(l, r),
                };
                if c != Ordering::Equal {
                    return c;
                }
            }
            Ordering::Equal
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `value.Equals`: deep equality where `1` equals `1.0`.
pub fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (int(x), int(y)) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(l, r)| equals(l, r)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, l)| y.get(k).is_some_and(|r| equals(l, r)))
        }
        _ => a == b,
    }
}

/// `value.ToString`: how a key value reads in a field path (`"TCP"`, `80`, `true`).
pub fn to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Number(n) => crate::gojson::format_v(&Value::Number(n.clone())),
        Value::String(s) => format!("{s:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(to_string).collect::<Vec<_>>().join(",")),
        Value::Object(map) => map.iter().map(|(k, v)| format!("{k}={}", to_string(v))).collect::<Vec<_>>().join(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_order_numbers_first_null_last() {
        let mut vs = vec![json!(null), json!({}), json!([]), json!(true), json!("a"), json!(1.5), json!(1)];
        vs.sort_by(compare);
        assert_eq!(vs, vec![json!(1), json!(1.5), json!("a"), json!(true), json!([]), json!({}), json!(null)]);
    }

    #[test]
    fn ints_equal_floats() {
        assert!(equals(&json!(80), &json!(80.0)));
        assert_eq!(compare(&json!(80), &json!(80.0)), Ordering::Equal);
        assert!(!equals(&json!("80"), &json!(80)));
    }
}
