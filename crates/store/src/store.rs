//! The `Store` handle: reads from memory, writes through the group-commit writer.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use imbl::OrdMap;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::backend::{Backend, MemoryBackend};
use crate::sqlite::SqliteBackend;
use crate::state::{normalize_prefix, page, roll_back, Objects, Shared, State};
use crate::watch::Watch;
use crate::writer::{self, set_resource_version, WriteOp, WriteRequest, WriterConfig};
use crate::{ListResult, Op, Revision, StoreError, StoredObject};

/// Tuning knobs; `StoreOptions::default()` suits the API server.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Keep at most this many events of history (default 100,000). Together with
    /// `history_max_age` this bounds how far back `watch` and `list_at` reach, and how far a
    /// watcher may fall behind before it is ended with [`StoreError::Compacted`]. Live
    /// watchers read from this history too, so it must comfortably exceed the largest burst of
    /// writes (a `txn`'s ops count one each).
    pub history_max_events: usize,
    /// Drop events older than this (default 10 minutes), checked at each write.
    pub history_max_age: Duration,
    /// At most this many write requests per commit (default 1024).
    pub max_batch: usize,
    /// At most this many write requests waiting for the writer; more callers wait to enqueue
    /// (default 8192).
    pub queue_depth: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            history_max_events: 100_000,
            history_max_age: Duration::from_secs(600),
            max_batch: 1024,
            queue_depth: 8192,
        }
    }
}

/// A handle to the store; cheap to clone, all clones share one state and one writer.
///
/// Reads (`get`, `list`, `list_at`, `watch`, `current_revision`) are synchronous and served
/// from memory; writes are `async` and return once durable and visible to readers and
/// watchers. A write whose future is dropped after it was queued may still happen.
///
/// When the last handle is dropped the writer finishes the queued writes and the backend is
/// closed (for SQLite: the file and the directory lock are released) before `drop` returns;
/// open watches then end.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    requests: Option<mpsc::Sender<WriteRequest>>,
    revisions: watch::Receiver<Revision>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue is what stops the writer.
        self.requests.take();
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("revision", &self.current_revision())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite store in `dir` (`dir/state.db`) and loads it into
    /// memory. The history starts empty: watches can start at the current revision, older
    /// ones get [`StoreError::Compacted`].
    pub async fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with_options(dir, StoreOptions::default()).await
    }

    /// [`Store::open`] with options.
    pub async fn open_with_options(
        dir: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let dir = dir.as_ref().to_owned();
        tokio::task::spawn_blocking(move || {
            Store::with_backend(SqliteBackend::open(&dir)?, options)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("opening the store: {e}")))?
    }

    /// A store that keeps nothing on disk, for tests. Needs no runtime to create.
    pub fn in_memory() -> Store {
        Store::with_backend(MemoryBackend, StoreOptions::default())
            .expect("the memory backend cannot fail")
    }

    /// A store over any backend; loads it (blocking) and starts the writer thread.
    pub fn with_backend(
        mut backend: impl Backend,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let loaded = backend.load()?;
        let mut objects: Objects = OrdMap::new();
        for object in loaded.objects {
            if object.mod_revision > loaded.revision || object.create_revision > object.mod_revision
            {
                return Err(StoreError::Backend(format!(
                    "{}: revisions {}/{} do not fit the store's revision {}",
                    object.key, object.create_revision, object.mod_revision, loaded.revision
                )));
            }
            let mut value: Value = serde_json::from_str(&object.json)
                .map_err(|e| StoreError::Backend(format!("{}: bad JSON: {e}", object.key)))?;
            if !value.get("metadata").is_some_and(Value::is_object) {
                return Err(StoreError::Backend(format!("{}: no metadata", object.key)));
            }
            set_resource_version(&mut value, object.mod_revision);
            let key: Arc<str> = object.key.into();
            objects.insert(
                key.clone(),
                StoredObject {
                    key,
                    value: Arc::new(value),
                    create_revision: object.create_revision,
                    mod_revision: object.mod_revision,
                },
            );
        }
        let shared = Arc::new(Shared::new(State::new(loaded.revision, objects)));
        let (requests, queue) = mpsc::channel(options.queue_depth.max(1));
        let (revision_tx, revisions) = watch::channel(loaded.revision);
        let config = WriterConfig {
            max_batch: options.max_batch.max(1),
            history_max_events: options.history_max_events,
            history_max_age: options.history_max_age,
        };
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                writer::run(Box::new(backend), writer_shared, queue, revision_tx, config)
            })
            .map_err(|e| StoreError::Backend(format!("starting the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                shared,
                requests: Some(requests),
                revisions,
                writer: Some(writer),
            }),
        })
    }

    /// The revision of the last write (0 for a new, empty store).
    pub fn current_revision(&self) -> Revision {
        self.inner.shared.read().revision
    }

    /// The oldest revision that [`Store::watch`] and [`Store::list_at`] still accept.
    pub fn oldest_available_revision(&self) -> Revision {
        self.inner.shared.read().compacted
    }

    /// The object at `key`, if any.
    pub fn get(&self, key: &str) -> Option<StoredObject> {
        self.inner.shared.read().objects.get(key).cloned()
    }

    /// The objects under `prefix` (which should end in `/`; one is added if missing), sorted by
    /// key, starting after `start_after` (exclusive), at most `limit` of them (`None` or
    /// `Some(0)`: all, as Kubernetes' `limit=0`). The result says at which revision it is
    /// consistent and how many keys remain; continue with [`Store::list_at`] that revision
    /// and [`ListResult::continue_after`].
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> ListResult {
        let (objects, revision) = {
            let state = self.inner.shared.read();
            (state.objects.clone(), state.revision)
        };
        page(
            &objects,
            revision,
            &normalize_prefix(prefix),
            start_after,
            limit,
        )
    }

    /// Like [`Store::list`], but as the store was at `revision`: how paging stays consistent
    /// while writes go on. Fails with [`StoreError::Compacted`] when the history no longer
    /// reaches back that far, and [`StoreError::FutureRevision`] past the current revision.
    ///
    /// Cost: the current state is snapshotted (O(1)) and the writes after `revision` to keys
    /// under the prefix and after `start_after` are undone on the copy, each O(log n) — at
    /// most the history's size, usually a handful. The remaining count costs a walk over the
    /// rest of the prefix, as in [`Store::list`].
    pub fn list_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Revision,
    ) -> Result<ListResult, StoreError> {
        let prefix = normalize_prefix(prefix);
        let (objects, newer) = {
            let state = self.inner.shared.read();
            if revision > state.revision {
                return Err(StoreError::FutureRevision {
                    requested: revision,
                    current: state.revision,
                });
            }
            state.check_available(revision)?;
            let newer: Vec<_> = state
                .events_after(revision)
                .filter(|e| e.key().starts_with(&*prefix))
                .cloned()
                .collect();
            (state.objects.clone(), newer)
        };
        let objects = roll_back(objects, &newer, &prefix, start_after);
        Ok(page(&objects, revision, &prefix, start_after, limit))
    }

    /// Watches the keys under `prefix` (which should end in `/`; one is added if missing):
    /// every write after revision `from` (`None`: from now), in revision order, each exactly
    /// once, then live. Fails with [`StoreError::Compacted`] when `from` is older than the
    /// history; a `from` newer than the current revision waits for it.
    ///
    /// The usual pattern: `list` (or `list_at`), then `watch(prefix, Some(list.revision))`.
    pub fn watch(&self, prefix: &str, from: Option<Revision>) -> Result<Watch, StoreError> {
        let cursor = {
            let state = self.inner.shared.read();
            match from {
                None => state.revision,
                Some(from) => {
                    state.check_available(from)?;
                    from
                }
            }
        };
        Ok(Watch::new(
            self.inner.shared.clone(),
            normalize_prefix(prefix).into_owned(),
            cursor,
            self.inner.revisions.clone(),
        ))
    }

    /// Creates `key`; fails with [`StoreError::AlreadyExists`] if it exists. Returns the
    /// stored object, its `metadata.resourceVersion` set to the new revision.
    pub async fn create(&self, key: &str, object: Value) -> Result<StoredObject, StoreError> {
        self.write_one(Op::Create {
            key: key.to_owned(),
            object,
        })
        .await
    }

    /// Replaces `key`; fails with [`StoreError::NotFound`] if it is missing and
    /// [`StoreError::Conflict`] if `precondition` is given and is not the object's current mod
    /// revision (the resourceVersion the caller read). The object's own
    /// `metadata.resourceVersion` is ignored: pass it as the precondition.
    pub async fn update(
        &self,
        key: &str,
        object: Value,
        precondition: Option<Revision>,
    ) -> Result<StoredObject, StoreError> {
        self.write_one(Op::Update {
            key: key.to_owned(),
            object,
            precondition,
        })
        .await
    }

    /// Deletes `key` and returns its last state with the delete's revision as
    /// `resourceVersion`; [`StoreError::NotFound`] and [`StoreError::Conflict`] as for
    /// [`Store::update`].
    pub async fn delete(
        &self,
        key: &str,
        precondition: Option<Revision>,
    ) -> Result<StoredObject, StoreError> {
        self.write_one(Op::Delete {
            key: key.to_owned(),
            precondition,
        })
        .await
    }

    /// Applies `ops` all-or-nothing, in order, each with its own consecutive revision (so
    /// watchers see one event per op). Returns the result of each op; on failure, the error
    /// of the first op that failed and nothing is written.
    pub async fn txn(&self, ops: Vec<Op>) -> Result<Vec<StoredObject>, StoreError> {
        let ops = ops
            .into_iter()
            .map(WriteOp::prepare)
            .collect::<Result<Vec<_>, _>>()?;
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(ops).await
    }

    async fn write_one(&self, op: Op) -> Result<StoredObject, StoreError> {
        let mut results = self.submit(vec![WriteOp::prepare(op)?]).await?;
        results.pop().ok_or(StoreError::Closed)
    }

    async fn submit(&self, ops: Vec<WriteOp>) -> Result<Vec<StoredObject>, StoreError> {
        let requests = self.inner.requests.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        requests
            .send(WriteRequest { ops, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}
