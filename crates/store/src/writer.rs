//! The single writer: group commit.
//!
//! One thread owns the backend. It takes every write request queued since its last commit,
//! decides each against the state as the earlier ones leave it, commits all that passed in one
//! backend transaction (one fsync for the lot), then publishes the new state and the events
//! and only then answers the callers. Throughput grows with the number of concurrent writers
//! because the fsync is shared; a lone writer pays one fsync per write, as with etcd.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::backend::{Backend, Batch, Change};
use crate::state::{Objects, Shared};
use crate::{Event, EventType, Op, Revision, StoreError, StoredObject};

/// A write, checked and serialised by the caller's task so the writer thread only decides and
/// commits.
pub(crate) enum WriteOp {
    Create {
        key: Arc<str>,
        value: Value,
        json: String,
    },
    Update {
        key: Arc<str>,
        value: Value,
        json: String,
        precondition: Option<Revision>,
    },
    Delete {
        key: Arc<str>,
        precondition: Option<Revision>,
    },
}

pub(crate) type Reply = oneshot::Sender<Result<Vec<StoredObject>, StoreError>>;

/// Ops applied all-or-nothing; a single write is a request with one op.
pub(crate) struct WriteRequest {
    pub(crate) ops: Vec<WriteOp>,
    pub(crate) reply: Reply,
}

impl WriteOp {
    /// Validates and serialises an [`Op`]; runs in the caller's task.
    pub(crate) fn prepare(op: Op) -> Result<WriteOp, StoreError> {
        Ok(match op {
            Op::Create { key, object } => {
                let (value, json) = prepare_object(&key, object)?;
                WriteOp::Create {
                    key: prepare_key(key)?,
                    value,
                    json,
                }
            }
            Op::Update {
                key,
                object,
                precondition,
            } => {
                let (value, json) = prepare_object(&key, object)?;
                WriteOp::Update {
                    key: prepare_key(key)?,
                    value,
                    json,
                    precondition,
                }
            }
            Op::Delete { key, precondition } => WriteOp::Delete {
                key: prepare_key(key)?,
                precondition,
            },
        })
    }
}

fn prepare_key(key: String) -> Result<Arc<str>, StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidObject {
            key,
            reason: "empty key".into(),
        });
    }
    Ok(key.into())
}

/// Blanks `metadata.resourceVersion` (keeping its place among the fields) and serialises the
/// object; the writer fills in the revision once it is known.
fn prepare_object(key: &str, mut value: Value) -> Result<(Value, String), StoreError> {
    let invalid = |reason: &str| StoreError::InvalidObject {
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let object = value
        .as_object_mut()
        .ok_or_else(|| invalid("not a JSON object"))?;
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()
        .ok_or_else(|| invalid("metadata is not a JSON object"))?;
    metadata.insert("resourceVersion".into(), Value::String(String::new()));
    let json = serde_json::to_string(&value).map_err(|e| invalid(&e.to_string()))?;
    Ok((value, json))
}

/// Sets `metadata.resourceVersion`; the object was checked to have a `metadata` object.
pub(crate) fn set_resource_version(value: &mut Value, revision: Revision) {
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

pub(crate) struct WriterConfig {
    pub(crate) max_batch: usize,
    pub(crate) history_max_events: usize,
    pub(crate) history_max_age: Duration,
}

/// The writer thread's loop; returns when every `Store` handle is gone and the queue is empty.
pub(crate) fn run(
    mut backend: Box<dyn Backend>,
    shared: Arc<Shared>,
    mut requests: mpsc::Receiver<WriteRequest>,
    revisions: watch::Sender<Revision>,
    config: WriterConfig,
) {
    let mut batch = Vec::new();
    while let Some(first) = requests.blocking_recv() {
        batch.push(first);
        while batch.len() < config.max_batch {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        commit_batch(&mut *backend, &shared, &revisions, &config, &mut batch);
    }
}

fn commit_batch(
    backend: &mut dyn Backend,
    shared: &Shared,
    revisions: &watch::Sender<Revision>,
    config: &WriterConfig,
    requests: &mut Vec<WriteRequest>,
) {
    // Only this thread changes the state, so the snapshot stays current until we apply.
    let (mut objects, mut revision) = {
        let state = shared.read();
        (state.objects.clone(), state.revision)
    };
    let mut changes = Vec::new();
    let mut events = Vec::new();
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests.drain(..) {
        // A request's ops apply to a scratch copy (O(1) to clone), kept only if all succeed.
        let mut scratch = objects.clone();
        let mut scratch_revision = revision;
        let (changes_mark, events_mark) = (changes.len(), events.len());
        let mut results = Vec::with_capacity(request.ops.len());
        let mut outcome = Ok(());
        for op in request.ops {
            match apply(
                &mut scratch,
                &mut scratch_revision,
                op,
                &mut changes,
                &mut events,
            ) {
                Ok(stored) => results.push(stored),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        match outcome {
            Ok(()) => {
                objects = scratch;
                revision = scratch_revision;
                answers.push((request.reply, Ok(results)));
            }
            Err(e) => {
                changes.truncate(changes_mark);
                events.truncate(events_mark);
                answers.push((request.reply, Err(e)));
            }
        }
    }

    if !changes.is_empty() {
        if let Err(e) = backend.commit(&Batch { revision, changes }) {
            tracing::error!(error = %e, "store commit failed; the batch was not applied");
            // Even the requests that failed a precondition were decided against writes that
            // never happened; the only safe answer for all is the backend error.
            for (reply, _) in answers {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        {
            let mut state = shared.write();
            state.apply(objects, revision, events);
            state.compact(config.history_max_events, config.history_max_age);
        }
        revisions.send_replace(revision);
    }
    for (reply, answer) in answers {
        // The caller may have given up waiting; the write stands regardless.
        let _ = reply.send(answer);
    }
}

fn apply(
    objects: &mut Objects,
    revision: &mut Revision,
    op: WriteOp,
    changes: &mut Vec<Change>,
    events: &mut Vec<Arc<Event>>,
) -> Result<StoredObject, StoreError> {
    let check =
        |key: &Arc<str>, current: &StoredObject, precondition: Option<Revision>| match precondition
        {
            Some(expected) if expected != current.mod_revision => Err(StoreError::Conflict {
                key: key.to_string(),
                expected,
                current: current.mod_revision,
            }),
            _ => Ok(()),
        };
    let not_found = |key: &Arc<str>| StoreError::NotFound {
        key: key.to_string(),
    };
    let next = *revision + 1;
    let event = match op {
        WriteOp::Create {
            key,
            mut value,
            json,
        } => {
            if objects.contains_key(&key) {
                return Err(StoreError::AlreadyExists {
                    key: key.to_string(),
                });
            }
            set_resource_version(&mut value, next);
            let stored = StoredObject {
                key: key.clone(),
                value: Arc::new(value),
                create_revision: next,
                mod_revision: next,
            };
            objects.insert(key.clone(), stored.clone());
            changes.push(Change::Put {
                key,
                json,
                create_revision: next,
                mod_revision: next,
            });
            Event {
                kind: EventType::Added,
                object: stored,
                prev: None,
            }
        }
        WriteOp::Update {
            key,
            mut value,
            json,
            precondition,
        } => {
            let current = objects.get(&key).ok_or_else(|| not_found(&key))?;
            check(&key, current, precondition)?;
            set_resource_version(&mut value, next);
            let stored = StoredObject {
                key: key.clone(),
                value: Arc::new(value),
                create_revision: current.create_revision,
                mod_revision: next,
            };
            let prev = objects.insert(key.clone(), stored.clone());
            changes.push(Change::Put {
                key,
                json,
                create_revision: stored.create_revision,
                mod_revision: next,
            });
            Event {
                kind: EventType::Modified,
                object: stored,
                prev,
            }
        }
        WriteOp::Delete { key, precondition } => {
            let current = objects.get(&key).ok_or_else(|| not_found(&key))?;
            check(&key, current, precondition)?;
            let prev = objects.remove(&key).ok_or_else(|| not_found(&key))?;
            let mut last = Value::clone(&prev.value);
            set_resource_version(&mut last, next);
            let stored = StoredObject {
                key: key.clone(),
                value: Arc::new(last),
                create_revision: prev.create_revision,
                mod_revision: next,
            };
            changes.push(Change::Delete {
                key,
                revision: next,
            });
            Event {
                kind: EventType::Deleted,
                object: stored,
                prev: Some(prev),
            }
        }
    };
    *revision = next;
    let stored = event.object.clone();
    events.push(Arc::new(event));
    Ok(stored)
}
