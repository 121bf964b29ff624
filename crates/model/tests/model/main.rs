//! Integration tests of the model crate: printed tables against kube-apiserver 1.36's recorded
//! ones, selectors, field selectors and metadata validation.

mod fields;
mod selectors;
mod tables;
mod tables_golden;
mod validation;

use chrono::{DateTime, Utc};
use model::ResourceInfo;
use serde_json::Value;

pub fn res(group: &str, plural: &str) -> &'static ResourceInfo {
    model::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .expect("served resource")
}

pub fn at(s: &str) -> DateTime<Utc> {
    model::meta::parse_time(s).expect("RFC 3339 time")
}

pub fn fixture(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}
