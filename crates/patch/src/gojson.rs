//! The places where kube-apiserver's output is Go's own rendering of a JSON value: `json.Marshal`
//! of a decoded `interface{}` (sorted keys, HTML-safe escapes), `fmt`'s `%v`, and the messages of
//! `encoding/json` decode errors. Clients compare these strings byte for byte (the
//! last-applied annotation, `k:{...}` keys in managedFields), so they are reproduced here.

use serde_json::Value;

/// `json.Marshal` of a decoded value: object keys sorted, `<`, `>`, `&`, U+2028 and U+2029
/// escaped as `\u003c` and so on, floats formatted as Go formats `float64`.
pub(crate) fn marshal(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, &map[k.as_str()]);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal the way Go's encoder writes it.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A number as Go encodes it: integers as integers, floats in the shortest form that round-trips,
/// with an exponent (`1e+21`, `1e-7`) outside [1e-6, 1e21).
pub(crate) fn number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        go_exponent(&format!("{f:e}"), 1)
    } else {
        format!("{f}")
    }
}

/// Rust writes `1e21` and `1e-7`; Go writes `1e+21` and, padded to `min_digits`, `1e-07`.
fn go_exponent(rust: &str, min_digits: usize) -> String {
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>min_digits$}")
        }
        None => rust.to_string(),
    }
}

/// `fmt.Sprintf("%v", v)` of a decoded JSON value: `map[a:1 b:x]`, `[a b]`, `<nil>`.
pub(crate) fn format_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            let abs = f.abs();
            if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
                go_exponent(&format!("{f:e}"), 2)
            } else {
                format!("{f}")
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(format_v).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys.iter().map(|k| format!("{k}:{}", format_v(&map[k.as_str()]))).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// The Go type a decoded value has (`reflect.TypeOf(v).String()`), as error messages print it.
pub(crate) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// How `encoding/json` names a JSON value in an `UnmarshalTypeError`.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses a request body as JSON, reporting a syntax error the way `encoding/json` words it
/// (`invalid character 'n' looking for beginning of value`, `unexpected end of JSON input`).
pub(crate) fn parse(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| syntax_error(body, &e))
}

fn syntax_error(body: &[u8], err: &serde_json::Error) -> String {
    if err.is_eof() {
        return "unexpected end of JSON input".to_string();
    }
    // serde reports 1-based line and column of the offending character.
    let offset = body
        .split(|b| *b == b'\n')
        .take(err.line().saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum::<usize>()
        + err.column().saturating_sub(1);
    // encoding/json scans bytes and quotes the offending byte as the rune of the same value.
    match body.get(offset).map(|b| *b as char) {
        Some(c) if body.iter().take(offset).all(u8::is_ascii_whitespace) => {
            format!("invalid character {} looking for beginning of value", quote_char(c))
        }
        Some(c) if err.is_syntax() && err.to_string().starts_with("trailing characters") => {
            format!("invalid character {} after top-level value", quote_char(c))
        }
        Some(c) if expects_object_key(body, offset) => {
            format!("invalid character {} looking for beginning of object key string", quote_char(c))
        }
        Some(c) => match literal_in_progress(body, offset) {
            Some((literal, expected)) => {
                format!("invalid character {} in literal {literal} (expecting {})", quote_char(c), quote_char(expected))
            }
            None => format!("invalid character {} in JSON input", quote_char(c)),
        },
        None => "unexpected end of JSON input".to_string(),
    }
}

/// Whether the scanner stands where an object key must start: right after `{` or after a `,`
/// inside an object (strings skipped).
fn expects_object_key(body: &[u8], offset: usize) -> bool {
    let mut stack: Vec<u8> = Vec::new();
    let mut last = 0u8;
    let mut in_string = false;
    let mut escaped = false;
    for &b in &body[..offset.min(body.len())] {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    last = b'"';
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => stack.push(b),
            b'}' | b']' => {
                stack.pop();
            }
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            last = b;
        }
    }
    !in_string && stack.last() == Some(&b'{') && matches!(last, b'{' | b',')
}

/// When the error sits inside `null`, `true` or `false`, the literal and the character Go expected.
fn literal_in_progress(body: &[u8], offset: usize) -> Option<(&'static str, char)> {
    let start = body[..offset.min(body.len())].iter().rposition(|b| !b.is_ascii_alphabetic()).map_or(0, |p| p + 1);
    let literal = match body.get(start)? {
        b'n' => "null",
        b't' => "true",
        b'f' => "false",
        _ => return None,
    };
    literal[..].chars().nth(offset - start).map(|c| (literal, c))
}

/// `strconv.QuoteRune`-ish rendering used by `encoding/json`'s syntax errors.
fn quote_char(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '"' => "'\"'".to_string(),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => format!("'\\x{:02x}'", c as u32),
        c if c.is_control() => format!("'\\u{:04x}'", c as u32),
        c => format!("'{c}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn marshal_sorts_keys_and_escapes_html() {
        let v = json!({"b": 1, "a": "<x&y>", "c": [1.5, 80.0, 1e21]});
        assert_eq!(marshal(&v), r#"{"a":"\u003cx\u0026y\u003e","b":1,"c":[1.5,80,1e+21]}"#);
    }

    #[test]
    fn format_v_prints_like_go() {
        let v = json!({"port": 80, "name": "x", "list": ["a", null]});
        assert_eq!(format_v(&v), "map[list:[a <nil>] name:x port:80]");
    }

    #[test]
    fn syntax_errors_read_like_go() {
        assert_eq!(parse(b"not json").unwrap_err(), "invalid character 'o' in literal null (expecting 'u')");
        assert_eq!(parse(b"xyz").unwrap_err(), "invalid character 'x' looking for beginning of value");
        assert_eq!(parse(b"{\"a\":").unwrap_err(), "unexpected end of JSON input");
        assert_eq!(parse(b"\x81x").unwrap_err(), "invalid character '\\u0081' looking for beginning of value");
        assert_eq!(parse(b"{not json").unwrap_err(), "invalid character 'n' looking for beginning of object key string");
        assert_eq!(parse(b"{\"a\":1, x}").unwrap_err(), "invalid character 'x' looking for beginning of object key string");
    }
}
