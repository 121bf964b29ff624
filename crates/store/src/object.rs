//! What the store hands out: stored objects, watch events, list pages, write operations.

use std::sync::Arc;

use serde_json::Value;

/// A revision of the whole store, as etcd's: every successful write gets the next one, starting
/// at 1. It is the objects' `metadata.resourceVersion` (as a decimal string).
pub type Revision = u64;

/// One stored object as of some revision.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// The object's key, e.g. `/registry/core/services/default/nginx`.
    pub key: Arc<str>,
    /// The object, with `metadata.resourceVersion` equal to `mod_revision`. Shared: clone the
    /// inner value (`Value::clone(&obj.value)`) to change it.
    pub value: Arc<Value>,
    /// The revision that created the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key (for an object in a `Deleted` event or returned
    /// by `delete`: the delete's revision).
    pub mod_revision: Revision,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The key was created.
    Added,
    /// The key was updated.
    Modified,
    /// The key was deleted.
    Deleted,
}

/// One write, as seen by a watcher. Every write produces exactly one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// The object after the write. For `Deleted`: the last state of the object, with
    /// `resourceVersion` and `mod_revision` set to the delete's revision (as kube-apiserver's
    /// etcd3 storage reports deletions).
    pub object: StoredObject,
    /// The object before the write (`None` for `Added`), so selector transitions can be
    /// evaluated.
    pub prev: Option<StoredObject>,
}

impl Event {
    /// The revision of the write.
    pub fn revision(&self) -> Revision {
        self.object.mod_revision
    }

    /// The key written.
    pub fn key(&self) -> &str {
        &self.object.key
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListResult {
    /// The objects, sorted by key.
    pub items: Vec<StoredObject>,
    /// The revision the page is consistent at (the list's resourceVersion). To continue with
    /// the same view, pass it to [`Store::list_at`](crate::Store::list_at).
    pub revision: Revision,
    /// How many more keys under the prefix come after this page (Kubernetes'
    /// `remainingItemCount`).
    pub remaining: usize,
}

impl ListResult {
    /// Whether keys remain after this page.
    pub fn has_more(&self) -> bool {
        self.remaining > 0
    }

    /// The key to pass as `start_after` for the next page, when keys remain.
    pub fn continue_after(&self) -> Option<&str> {
        if self.has_more() {
            self.items.last().map(|o| &*o.key)
        } else {
            None
        }
    }
}

/// One operation of a [`Store::txn`](crate::Store::txn).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// As [`Store::create`](crate::Store::create).
    Create {
        /// The key to create.
        key: String,
        /// The object.
        object: Value,
    },
    /// As [`Store::update`](crate::Store::update).
    Update {
        /// The key to update.
        key: String,
        /// The new object.
        object: Value,
        /// Required current mod revision, if any.
        precondition: Option<Revision>,
    },
    /// As [`Store::delete`](crate::Store::delete).
    Delete {
        /// The key to delete.
        key: String,
        /// Required current mod revision, if any.
        precondition: Option<Revision>,
    },
}
