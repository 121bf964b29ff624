//! The ownership bookkeeping of one write (structured-merge-diff's `merge.Updater`, with
//! kube-apiserver's wrappers around it): an update takes ownership of what it changed; an apply
//! owns exactly what it applied, merges it in, prunes what it stopped applying, and conflicts
//! with other managers over values it would change.

use super::conflict::{Conflict, Conflicts};
use super::entries::{Entry, Managed};
use super::kind::Kind;
use crate::fieldpath::{value, FieldSet, PathElement};
use crate::typed::{self, Comparison};
use serde_json::Value;

/// Why an apply failed.
pub(crate) enum Failure {
    Conflicts(Conflicts),
    /// A plain error, which kube-apiserver answers with a 500.
    Internal(String),
}

/// Fields no manager ever owns: type meta and the metadata the server maintains.
fn strip_set() -> FieldSet {
    let mut set = FieldSet::new();
    let field = |f: &str| PathElement::Field(f.to_string());
    set.insert(&[field("apiVersion")]);
    set.insert(&[field("kind")]);
    set.insert(&[field("metadata")]);
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.insert(&[field("metadata"), field(f)]);
    }
    set
}

pub(crate) struct Updater<'k> {
    pub(crate) kind: &'k Kind,
}

impl Updater<'_> {
    fn compare(&self, old: &Value, new: &Value) -> Result<Comparison, String> {
        Ok(typed::compare(old, new, self.kind.ty)?.exclude(&self.kind.ignored))
    }

    /// Takes the fields `old` → `new` changed away from every manager but `skip`: changed or
    /// added fields they own are conflicts (an error unless `force`), removed fields are simply
    /// no longer owned. Managers left with nothing are dropped.
    fn take_changed(&self, cmp: &Comparison, managed: &mut Managed, skip: Option<&str>, force: bool) -> Result<(), Conflicts> {
        let changed = cmp.modified.union(&cmp.added);
        let mut conflicts = Conflicts::default();
        for (id, entry) in &managed.entries {
            if Some(id.as_str()) == skip {
                continue;
            }
            for path in entry.set.intersection(&changed).paths() {
                conflicts.0.push(Conflict { owner: entry.clone(), path });
            }
        }
        if !force && !conflicts.is_empty() {
            return Err(conflicts);
        }
        for (id, entry) in managed.entries.iter_mut() {
            if Some(id.as_str()) == skip {
                continue;
            }
            entry.set = entry.set.difference(&changed).difference(&cmp.removed);
        }
        managed.drop_empty();
        Ok(())
    }

    /// A create, update or patch by `writer`: it now owns what it changed (on top of what it
    /// owned), and nobody owns what it changed or removed any more.
    pub(crate) fn record_update(&self, old: &Value, new: &Value, managed: &mut Managed, writer: Entry, time: &str) -> Result<(), String> {
        let cmp = self.compare(old, new).map_err(|e| format!("failed to update ManagedFields ({}): {e}", Kind::describe(new)))?;
        // The write is accounted as an anonymous operation first, so the writer's own earlier
        // fields are handled like anyone else's, and then folded into the writer's entry.
        self.take_changed(&cmp, managed, None, true).map_err(|_| "unexpected conflict on update".to_string())?;
        let taken = cmp.modified.union(&cmp.added).recursive_difference(&self.kind.ignored).difference(&strip_set());
        if taken.is_empty() {
            return Ok(());
        }
        let id = writer.id();
        let set = match managed.entries.get(&id) {
            Some(previous) => taken.union(&previous.set),
            None => taken,
        };
        managed.entries.insert(id, Entry { set, api_version: self.kind.api_version(), time: Some(time.to_string()), ..writer });
        Ok(())
    }

    /// An apply by `applier`: the new object, or `None` when it equals `live` (then the entry's
    /// time is left alone, though ownership may still have changed).
    pub(crate) fn record_apply(
        &self,
        live: &Value,
        config: &Value,
        managed: &mut Managed,
        applier: Entry,
        force: bool,
        time: &str,
    ) -> Result<Option<Value>, Failure> {
        let ty = self.kind.ty;
        let merged = typed::merge(live, config, ty).map_err(|e| Failure::Internal(format!("failed to merge config: {e}")))?;
        let id = applier.id();
        let previous = managed.entries.get(&id).cloned();
        let applied = typed::to_field_set(config, ty)
            .map_err(|e| Failure::Internal(format!("failed to get field set: {e}")))?
            .recursive_difference(&self.kind.ignored);
        let time_before = previous.as_ref().and_then(|p| p.time.clone());
        managed.entries.insert(id.clone(), Entry { set: applied, api_version: self.kind.api_version(), time: time_before, ..applier });
        let pruned = self
            .prune(&merged, managed, previous.as_ref().map(|p| &p.set))
            .map_err(|e| Failure::Internal(format!("failed to prune fields: {e}")))?;
        let cmp = self.compare(live, &pruned).map_err(|e| Failure::Internal(format!("failed to compare objects: {e}")))?;
        self.take_changed(&cmp, managed, Some(&id), force).map_err(Failure::Conflicts)?;
        if let Some(entry) = managed.entries.get_mut(&id) {
            entry.set = entry.set.difference(&strip_set());
        }
        managed.drop_empty();
        if value::equals(live, &pruned) {
            return Ok(None);
        }
        if let Some(entry) = managed.entries.get_mut(&id) {
            entry.time = Some(time.to_string());
        }
        Ok(Some(pruned))
    }

    /// Removes from `merged` what the applier owned before (`last`) but no longer applies,
    /// unless another manager owns it or it was never the applier's alone.
    fn prune(&self, merged: &Value, managed: &Managed, last: Option<&FieldSet>) -> Result<Value, String> {
        let Some(last) = last.filter(|s| !s.is_empty()) else { return Ok(merged.clone()) };
        let ty = self.kind.ty;
        let named = |s: &FieldSet| typed::ensure_named_fields_are_members(s, ty);
        let fields = |v: &Value| typed::to_field_set(v, ty).map(|s| named(&s));
        let last = named(last);
        let pruned = typed::remove_items(merged, &last, ty);
        // Add back what any manager, the applier's new configuration included, owns.
        let owned = named(&managed.entries.values().fold(FieldSet::new(), |acc, e| acc.union(&e.set)));
        let merged_set = fields(merged)?;
        let pruned = typed::remove_items(merged, &merged_set.difference(&fields(&pruned)?.union(&owned)), ty);
        // Of what is gone, only what the applier owned before stays gone.
        let gone = merged_set.difference(&fields(&pruned)?);
        Ok(typed::remove_items(merged, &gone.intersection(&last), ty))
    }
}
