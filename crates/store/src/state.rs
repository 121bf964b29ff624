//! The in-memory state every read is served from, and the history of recent events.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use imbl::OrdMap;

use crate::{Event, ListResult, Revision, StoreError, StoredObject};

/// All live objects by key. A persistent map: cloning it is O(1), so a reader takes a snapshot
/// under the lock and walks it after letting go.
pub(crate) type Objects = OrdMap<Arc<str>, StoredObject>;

pub(crate) struct HistoryEntry {
    pub(crate) at: Instant,
    pub(crate) event: Arc<Event>,
}

pub(crate) struct State {
    /// The last applied revision.
    pub(crate) revision: Revision,
    /// The history holds exactly the events `compacted + 1 ..= revision`, one per revision,
    /// oldest first: the event of revision `r` is at index `r - compacted - 1`.
    pub(crate) compacted: Revision,
    pub(crate) objects: Objects,
    pub(crate) history: VecDeque<HistoryEntry>,
}

impl State {
    pub(crate) fn new(revision: Revision, objects: Objects) -> Self {
        State {
            revision,
            compacted: revision,
            objects,
            history: VecDeque::new(),
        }
    }

    /// Fails unless the history covers every event after `revision`.
    pub(crate) fn check_available(&self, revision: Revision) -> Result<(), StoreError> {
        if revision < self.compacted {
            Err(StoreError::Compacted {
                requested: revision,
                oldest_available: self.compacted,
            })
        } else {
            Ok(())
        }
    }

    /// The events after `revision` (which must be available), oldest first.
    pub(crate) fn events_after(&self, revision: Revision) -> impl Iterator<Item = &Arc<Event>> {
        let skip = usize::try_from(revision.saturating_sub(self.compacted)).unwrap_or(usize::MAX);
        self.history.iter().skip(skip).map(|h| &h.event)
    }

    /// Applies a committed batch: the new objects map, its revision and its events.
    pub(crate) fn apply(&mut self, objects: Objects, revision: Revision, events: Vec<Arc<Event>>) {
        debug_assert_eq!(self.revision + events.len() as u64, revision);
        let at = Instant::now();
        self.objects = objects;
        self.revision = revision;
        self.history
            .extend(events.into_iter().map(|event| HistoryEntry { at, event }));
    }

    /// Drops the oldest events beyond `max_events` or older than `max_age`.
    pub(crate) fn compact(&mut self, max_events: usize, max_age: Duration) {
        let now = Instant::now();
        while let Some(front) = self.history.front() {
            if self.history.len() > max_events || now.duration_since(front.at) > max_age {
                self.compacted = front.event.revision();
                self.history.pop_front();
            } else {
                break;
            }
        }
    }
}

/// The store's shared state; the writer thread is the only one to take the write lock.
pub(crate) struct Shared {
    state: RwLock<State>,
}

impl Shared {
    pub(crate) fn new(state: State) -> Self {
        Shared {
            state: RwLock::new(state),
        }
    }

    // A panic while holding the lock cannot leave `State` half-updated (`apply` only moves
    // values in), so a poisoned lock is still good to use.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Callers give prefixes ending in `/`; add it when missing, so `/registry/services/default`
/// can never match `/registry/services/default-2/...`.
pub(crate) fn normalize_prefix(prefix: &str) -> std::borrow::Cow<'_, str> {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.into()
    } else {
        format!("{prefix}/").into()
    }
}

/// One page of keys under `prefix` after `start_after`, from a snapshot.
pub(crate) fn page(
    objects: &Objects,
    revision: Revision,
    prefix: &str,
    start_after: Option<&str>,
    limit: Option<usize>,
) -> ListResult {
    let start = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    let mut iter = objects
        .range::<_, str>((start, Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v);
    let limit = limit.filter(|&l| l > 0).unwrap_or(usize::MAX);
    let items: Vec<StoredObject> = iter.by_ref().take(limit).cloned().collect();
    let remaining = iter.count();
    ListResult {
        items,
        revision,
        remaining,
    }
}

/// `objects` (the state at `current`) rolled back to `revision` for keys under `prefix`
/// after `start_after`, by undoing the newer `events` (newest first).
pub(crate) fn roll_back(
    mut objects: Objects,
    events: &[Arc<Event>],
    prefix: &str,
    start_after: Option<&str>,
) -> Objects {
    for event in events.iter().rev() {
        let key = event.key();
        if !key.starts_with(prefix) || start_after.is_some_and(|after| key <= after) {
            continue;
        }
        match &event.prev {
            Some(prev) => {
                objects.insert(prev.key.clone(), prev.clone());
            }
            None => {
                objects.remove(key);
            }
        }
    }
    objects
}
