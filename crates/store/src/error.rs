//! The one error type of the store.

use crate::Revision;

/// Why a store operation failed.
///
/// Precondition failures (`AlreadyExists`, `NotFound`, `Conflict`) are decided against the
/// committed state plus the writes queued before this one, so they are linearizable like the
/// writes themselves. `Backend` means the write was *not* applied: the batch it was part of
/// rolled back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `create` of a key that already exists.
    #[error("{key} already exists")]
    AlreadyExists {
        /// The key that was being created.
        key: String,
    },
    /// `update` or `delete` of a key that does not exist.
    #[error("{key} not found")]
    NotFound {
        /// The missing key.
        key: String,
    },
    /// The caller's precondition revision is not the object's current mod revision.
    #[error("conflict on {key}: precondition revision {expected}, current revision {current}")]
    Conflict {
        /// The key written.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The object's current mod revision (its resourceVersion).
        current: Revision,
    },
    /// The history no longer reaches back to `requested`: a watch from that revision, a
    /// `list_at` that revision, or a watcher that fell that far behind. The caller must list
    /// again (Kubernetes answers 410 Gone / "too old resource version").
    #[error(
        "revision {requested} has been compacted; the oldest revision still available is {oldest_available}"
    )]
    Compacted {
        /// The revision asked for (for a lagging watcher: the last revision it had seen).
        requested: Revision,
        /// The oldest revision that `watch(.., Some(rev))` and `list_at` still accept.
        oldest_available: Revision,
    },
    /// `list_at` a revision the store has not reached yet.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// The key or object cannot be stored (empty key, not a JSON object, `metadata` not an
    /// object).
    #[error("invalid object for {key:?}: {reason}")]
    InvalidObject {
        /// The key written.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The durable backend failed; the write was not applied.
    #[error("storage backend: {0}")]
    Backend(String),
    /// The store was shut down (its writer is gone).
    #[error("the store is closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}
