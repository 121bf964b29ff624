//! `metadata.managedFields`: one entry per manager identity — (manager, operation, apiVersion
//! for updates, subresource) — with the set of fields it owns and the time it last changed
//! something. Decoding validates entries as kube-apiserver does; encoding sorts them as it does.

use crate::fieldpath::{from_fields_v1, to_fields_v1, FieldSet};
use crate::gojson;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The `operation` of a managedFields entry. `Apply` sorts first, as in kube's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One manager's entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: Operation,
    pub(crate) api_version: String,
    pub(crate) subresource: String,
    pub(crate) time: Option<String>,
    pub(crate) set: FieldSet,
}

impl Entry {
    pub(crate) fn new(manager: &str, operation: Operation, api_version: &str, subresource: &str) -> Entry {
        Entry {
            manager: manager.to_string(),
            operation,
            api_version: api_version.to_string(),
            subresource: subresource.to_string(),
            time: None,
            set: FieldSet::new(),
        }
    }

    /// `BuildManagerIdentifier`: the JSON of the entry without fields and time, and without
    /// apiVersion for appliers (an applier is the same manager whatever version it applies).
    pub(crate) fn id(&self) -> String {
        let mut out = String::from("{");
        let mut field = |name: &str, value: &str| {
            if value.is_empty() {
                return;
            }
            if out.len() > 1 {
                out.push(',');
            }
            gojson::write_string(&mut out, name);
            out.push(':');
            gojson::write_string(&mut out, value);
        };
        field("manager", &self.manager);
        field("operation", self.operation.as_str());
        if self.operation == Operation::Update {
            field("apiVersion", &self.api_version);
        }
        field("subresource", &self.subresource);
        out.push('}');
        out
    }

    /// How conflict messages name a manager: `"kubectl"`, `"kubectl-patch" using v1`,
    /// `"x" with subresource "status" using v1`.
    pub(crate) fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn seconds(&self) -> i64 {
        self.time.as_deref().and_then(model::meta::parse_time).map_or(0, |t| t.timestamp())
    }
}

/// All entries of an object, by identity.
#[derive(Clone, Debug, Default)]
pub(crate) struct Managed {
    pub(crate) entries: BTreeMap<String, Entry>,
}

/// The manager entries beyond which the oldest updaters are merged into `ancient-changes`.
const MAX_UPDATE_MANAGERS: usize = 10;

impl Managed {
    /// Decodes `metadata.managedFields` of `obj`, rejecting entries kube-apiserver would not read.
    pub(crate) fn of(obj: &Value) -> Result<Managed, String> {
        let list = match obj.get("metadata").and_then(|m| m.get("managedFields")) {
            None | Some(Value::Null) => return Ok(Managed::default()),
            Some(Value::Array(list)) => list,
            Some(other) => return Err(format!("managedFields must be a list, got {other}")),
        };
        let mut managed = Managed::default();
        for (i, raw) in list.iter().enumerate() {
            let text = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or("");
            let operation = match text("operation") {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                _ => return Err("operation must be `Apply` or `Update`".into()),
            };
            if text("apiVersion").is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match text("fieldsType") {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                other => return Err(format!("invalid fieldsType {other:?} in managed fields entry {i}")),
            }
            let set = match raw.get("fieldsV1") {
                None | Some(Value::Null) => FieldSet::new(),
                Some(v) => from_fields_v1(v).map_err(|e| format!("error decoding versioned set: error decoding set: {e}"))?,
            };
            let mut entry = Entry::new(text("manager"), operation, text("apiVersion"), text("subresource"));
            entry.time = raw.get("time").and_then(Value::as_str).map(str::to_string);
            entry.set = set;
            managed.entries.insert(entry.id(), entry);
        }
        Ok(managed)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops entries left without fields.
    pub(crate) fn drop_empty(&mut self) {
        self.entries.retain(|_, e| !e.set.is_empty());
    }

    /// Merges the oldest `Update` entries into one `ancient-changes` entry per apiVersion until
    /// at most ten updaters remain (`capManagersManager`).
    pub(crate) fn cap_updaters(&mut self) {
        let mut updaters: Vec<(i64, String)> =
            self.entries.iter().filter(|(_, e)| e.operation == Operation::Update).map(|(id, e)| (e.seconds(), id.clone())).collect();
        if updaters.len() <= MAX_UPDATE_MANAGERS {
            return;
        }
        updaters.sort();
        let mut length = updaters.len();
        let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
        for (_, id) in updaters {
            if length <= MAX_UPDATE_MANAGERS {
                break;
            }
            let Some(entry) = self.entries.get(&id).cloned() else { continue };
            let bucket = Entry::new("ancient-changes", Operation::Update, &entry.api_version, "");
            let bucket_id = bucket.id();
            match first_of_version.get(&entry.api_version) {
                Some(first) => {
                    if !self.entries.contains_key(&bucket_id) {
                        let moved = self.entries.remove(first).map(|e| e.set).unwrap_or_default();
                        self.entries.insert(bucket_id.clone(), Entry { set: moved, ..bucket.clone() });
                    }
                    let merged = self.entries.get(&bucket_id).map(|b| entry.set.union(&b.set)).unwrap_or_default();
                    self.entries.insert(bucket_id, Entry { set: merged, time: entry.time.clone(), ..bucket });
                    self.entries.remove(&id);
                    length -= 1;
                }
                None => {
                    first_of_version.insert(entry.api_version.clone(), id);
                }
            }
        }
    }

    /// The entries as kube-apiserver writes them: sorted by operation, time, manager,
    /// apiVersion and subresource.
    pub(crate) fn encode(&self) -> Vec<Value> {
        let mut entries: Vec<&Entry> = self.entries.values().collect();
        entries.sort_by(|a, b| {
            (a.operation, a.seconds(), &a.manager, &a.api_version, &a.subresource)
                .cmp(&(b.operation, b.seconds(), &b.manager, &b.api_version, &b.subresource))
        });
        entries
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                if !e.manager.is_empty() {
                    m.insert("manager".into(), Value::from(e.manager.as_str()));
                }
                m.insert("operation".into(), Value::from(e.operation.as_str()));
                m.insert("apiVersion".into(), Value::from(e.api_version.as_str()));
                if let Some(t) = &e.time {
                    m.insert("time".into(), Value::from(t.as_str()));
                }
                m.insert("fieldsType".into(), Value::from("FieldsV1"));
                m.insert("fieldsV1".into(), to_fields_v1(&e.set));
                if !e.subresource.is_empty() {
                    m.insert("subresource".into(), Value::from(e.subresource.as_str()));
                }
                Value::Object(m)
            })
            .collect()
    }
}

/// Sets (or, for no entries, removes) `metadata.managedFields` of `obj`.
pub fn set_managed_fields(obj: &mut Value, entries: Vec<Value>) {
    if !obj.is_object() {
        return;
    }
    if entries.is_empty() {
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    } else {
        model::meta::set_meta(obj, "managedFields", Value::Array(entries));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_leave_out_the_version_of_appliers() {
        assert_eq!(Entry::new("kubectl", Operation::Apply, "v1", "").id(), r#"{"manager":"kubectl","operation":"Apply"}"#);
        assert_eq!(
            Entry::new("kubectl-patch", Operation::Update, "v1", "status").id(),
            r#"{"manager":"kubectl-patch","operation":"Update","apiVersion":"v1","subresource":"status"}"#
        );
        assert_eq!(Entry::new("x", Operation::Update, "v1", "status").describe(), r#""x" with subresource "status" using v1"#);
    }

    #[test]
    fn encoding_sorts_appliers_first_then_by_time() {
        let obj = json!({"metadata": {"managedFields": [
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2026-11-21T23:27:48Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:type": {}}}},
            {"manager": "a", "operation": "Update", "apiVersion": "v1", "time": "2026-11-21T23:27:49Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:x": {}}}},
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2026-11-21T23:27:50Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:y": {}}}},
            {"manager": "kubectl-last-applied", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {"f:z": {}}}}}
        ]}});
        let managers: Vec<String> = Managed::of(&obj).unwrap().encode().iter().map(|e| e["manager"].as_str().unwrap().to_string()).collect();
        assert_eq!(managers, ["kubectl-last-applied", "kubectl", "b", "a"]);
    }

    #[test]
    fn bad_entries_are_rejected() {
        let obj = json!({"metadata": {"managedFields": [{"manager": "a", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]}});
        assert_eq!(Managed::of(&obj).unwrap_err(), "operation must be `Apply` or `Update`");
        let obj = json!({"metadata": {"managedFields": [{"manager": "a", "operation": "Update", "apiVersion": "v1"}]}});
        assert_eq!(Managed::of(&obj).unwrap_err(), "missing fieldsType in managed fields entry 0");
    }

    #[test]
    fn old_updaters_collapse_into_ancient_changes() {
        let mut managed = Managed::default();
        for i in 0..12 {
            let mut e = Entry::new(&format!("m{i:02}"), Operation::Update, "v1", "");
            e.time = Some(format!("2026-01-01T00:00:{i:02}Z"));
            e.set.insert(&[crate::fieldpath::PathElement::Field(format!("f{i}"))]);
            managed.entries.insert(e.id(), e);
        }
        managed.cap_updaters();
        let names: Vec<&str> = managed.entries.values().map(|e| e.manager.as_str()).collect();
        assert_eq!(names.len(), 10);
        assert!(names.contains(&"ancient-changes") && !names.contains(&"m00") && !names.contains(&"m02"));
        let bucket = managed.entries.values().find(|e| e.manager == "ancient-changes").unwrap();
        assert_eq!(bucket.set.paths().len(), 3);
        assert_eq!(bucket.time.as_deref(), Some("2026-01-01T00:00:02Z"));
    }
}
