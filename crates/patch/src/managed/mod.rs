//! Field ownership: `metadata.managedFields` on every write, and server-side apply.
//!
//! Both entry points take the object as kube-apiserver's field manager sees it: for updates, the
//! new object after decoding and defaulting (so defaulted fields belong to the writer) but before
//! the storage layer allocates (ClusterIPs, NodePorts); for apply, the live object, and the result
//! is to be defaulted and validated afterwards (so defaulted fields belong to nobody).

mod conflict;
mod entries;
mod kind;
mod last_applied;
mod updater;

pub use entries::set_managed_fields;
use entries::Operation;

use crate::status;
use entries::{Entry, Managed};
use kind::{gvk_string, Kind};
use model::{ApiError, ResourceInfo};
use serde_json::Value;
use updater::{Failure, Updater};

/// Who writes, through what, and when.
#[derive(Clone, Copy, Debug)]
pub struct Writer<'a> {
    /// The field manager: `?fieldManager=`, or what kube-apiserver derives from the user agent
    /// (`kubectl-create`, `kubectl-patch`). Empty means `unknown`.
    pub manager: &'a str,
    /// `Some("status")` for writes through the status subresource.
    pub subresource: Option<&'a str>,
    /// The time of the write, RFC 3339 in seconds (`2026-11-21T23:27:47Z`), recorded on the
    /// writer's entry when the write changes something.
    pub time: &'a str,
}

impl Writer<'_> {
    fn entry(&self, operation: Operation, api_version: &str) -> Entry {
        let manager = if self.manager.is_empty() { "unknown" } else { self.manager };
        Entry::new(manager, operation, api_version, self.subresource.unwrap_or(""))
    }
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    set_managed_fields(&mut obj, Vec::new());
    obj
}

/// The `metadata.managedFields` of `new` after a create (`old` is `None`), update or patch by
/// `writer` (operation `Update`).
///
/// The fields that changed from `old` to `new` become the writer's and stop being anyone
/// else's; fields that were removed stop being anyone's. A client may rewrite managedFields
/// itself (kubectl does, to migrate client-side apply): when `new` carries valid, non-empty
/// managedFields they are the starting point, otherwise `old`'s are. An existing object that
/// has no managedFields stays untracked. Malformed managedFields clear them, as kube does.
pub fn update_managed_fields(info: &ResourceInfo, old: Option<&Value>, new: &Value, writer: &Writer) -> Vec<Value> {
    let kind = Kind::new(info, writer.subresource);
    let old_obj = old.cloned().unwrap_or_else(|| kind.zero_object());
    let supplied = if writer.subresource.is_none() { Managed::of(new).ok().filter(|m| !m.is_empty()) } else { None };
    let mut managed = match supplied.map(Ok).unwrap_or_else(|| Managed::of(&old_obj)) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    if managed.is_empty() && old.is_some_and(|o| model::meta::uid(o).is_some()) {
        return Vec::new();
    }
    let updater = Updater { kind: &kind };
    let writer_entry = writer.entry(Operation::Update, &kind.api_version());
    match updater.record_update(&without_managed_fields(&old_obj), &without_managed_fields(new), &mut managed, writer_entry, writer.time) {
        Ok(()) => {
            managed.cap_updaters();
            managed.encode()
        }
        Err(_) => Vec::new(),
    }
}

/// `new` with its `metadata.managedFields` replaced by what [`update_managed_fields`] computes.
pub fn record_update(info: &ResourceInfo, old: Option<&Value>, new: &mut Value, writer: &Writer) {
    let entries = update_managed_fields(info, old, new, writer);
    set_managed_fields(new, entries);
}

/// Server-side apply (`application/apply-patch+yaml`, decoded to JSON) of `applied` by
/// `writer` to `live` (`None` creates): the new object, managedFields included.
///
/// The configuration is merged into the live object by the schema's list types and map keys;
/// fields the writer applied before but no longer applies are removed unless someone else owns
/// them; the writer then owns exactly what it applied. Changing a value another manager owns is
/// a 409 conflict unless `force` takes the field over. Errors are kube-apiserver's: 400 for an
/// object of another kind or one carrying managedFields, 500 for one the schema cannot type
/// (missing list keys, duplicates, undeclared fields), 409 for conflicts.
pub fn apply(info: &ResourceInfo, live: Option<&Value>, applied: &Value, writer: &Writer, force: bool) -> Result<Value, ApiError> {
    let kind = Kind::new(info, writer.subresource);
    let api_version = kind.api_version();
    let (applied_version, applied_kind) = model::meta::type_meta(applied);
    if !applied.is_object() || applied_version != Some(api_version.as_str()) || applied_kind != Some(kind.kind) {
        return Err(ApiError::bad_request(format!(
            "invalid object type: {}",
            gvk_string(applied_version.unwrap_or(""), applied_kind.unwrap_or(""))
        )));
    }
    if applied.get("metadata").and_then(|m| m.get("managedFields")).is_some_and(Value::is_array) {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let live_obj = live.cloned().unwrap_or_else(|| kind.zero_object());
    let managed = Managed::of(&live_obj).map_err(|e| status::unknown(format!("failed to decode managed fields: {e}")))?;
    crate::typed::validate(applied, kind.ty)
        .map_err(|e| status::unknown(format!("failed to create typed patch object ({}): {e}", Kind::describe(applied))))?;
    let live_bare = without_managed_fields(&live_obj);
    let applier = writer.entry(Operation::Apply, &api_version);
    let attempt = |force: bool| apply_managed(&kind, &live_bare, applied, managed.clone(), applier.clone(), force, writer.time);
    let outcome = match attempt(force) {
        Err(Failure::Conflicts(conflicts)) if writer.manager == last_applied::KUBECTL => {
            match last_applied::allowed_conflicts(&kind, &live_obj) {
                Some(allowed) => {
                    let remaining: Vec<_> = conflicts.0.into_iter().filter(|c| !allowed.has(&c.path)).collect();
                    if remaining.is_empty() {
                        attempt(true)
                    } else {
                        Err(Failure::Conflicts(conflict::Conflicts(remaining)))
                    }
                }
                None => Err(Failure::Conflicts(conflicts)),
            }
        }
        other => other,
    };
    let (object, managed) = outcome.map_err(|f| match f {
        Failure::Conflicts(c) => c.to_api_error(),
        Failure::Internal(message) => status::unknown(message),
    })?;
    let mut object = object.unwrap_or(live_bare);
    if live.is_none() {
        object = created_shape(object);
    }
    set_managed_fields(&mut object, managed.encode());
    if writer.manager == last_applied::KUBECTL {
        last_applied::update_annotation(&mut object, applied);
    }
    Ok(object)
}

/// An object an apply creates starts from the kind's zero value: put type meta and metadata
/// first, as kube writes objects, and leave `creationTimestamp` to the server.
fn created_shape(object: Value) -> Value {
    let Value::Object(mut map) = object else { return object };
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        if meta.get("creationTimestamp").is_some_and(Value::is_null) {
            meta.remove("creationTimestamp");
        }
    }
    let mut out = serde_json::Map::new();
    for key in ["kind", "apiVersion", "metadata"] {
        if let Some(v) = map.remove(key) {
            out.insert(key.to_string(), v);
        }
    }
    out.extend(map);
    Value::Object(out)
}

/// One apply attempt through kube-apiserver's field manager chain.
fn apply_managed(
    kind: &Kind,
    live: &Value,
    applied: &Value,
    mut managed: Managed,
    applier: Entry,
    force: bool,
    time: &str,
) -> Result<(Option<Value>, Managed), Failure> {
    let updater = Updater { kind };
    if managed.is_empty() {
        // An object nobody owns yet: what it holds is attributed to "before-first-apply", so the
        // first applier neither owns nor prunes it by accident.
        let before = Entry::new("before-first-apply", Operation::Update, &kind.api_version(), &applier.subresource);
        updater
            .record_update(&kind.zero_object(), live, &mut managed, before, time)
            .map_err(|e| Failure::Internal(format!("failed to create manager for existing fields: {e}")))?;
        managed.cap_updaters();
    }
    let object = updater.record_apply(live, applied, &mut managed, applier, force, time)?;
    managed.cap_updaters();
    Ok((object, managed))
}
