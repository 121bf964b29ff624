//! The durable half of the store: a log of committed batches that can be loaded back.
//!
//! The store keeps the whole state in memory and serves every read from there; a backend only
//! has to persist batches atomically and give the state back at open. That is why an in-memory
//! backend is three lines and why another one (etcd) can be added behind the same trait.

use std::sync::Arc;

use crate::{Revision, StoreError};

/// Durable storage for the store's state. Called only from the store's single writer thread.
pub trait Backend: Send + 'static {
    /// Everything committed so far: the current revision and every live object.
    fn load(&mut self) -> Result<Loaded, StoreError>;

    /// Persist `batch` atomically and durably: when this returns `Ok`, all of it survives a
    /// crash; when it returns `Err`, none of it may be visible after a restart.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;
}

/// The state a backend loads at open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The last committed revision (0 for an empty store).
    pub revision: Revision,
    /// Every live object, in any order.
    pub objects: Vec<LoadedObject>,
}

/// One object as the backend stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedObject {
    /// The key.
    pub key: String,
    /// The object's JSON. Its `metadata.resourceVersion` may be anything: the store sets it to
    /// `mod_revision` when loading.
    pub json: String,
    /// The revision that created the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key.
    pub mod_revision: Revision,
}

/// A group of writes committed together.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The store's revision once the batch is applied (the revision of its last change).
    pub revision: Revision,
    /// The changes, in revision order.
    pub changes: Vec<Change>,
}

/// One write in a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create or replace a key.
    Put {
        /// The key.
        key: Arc<str>,
        /// The object's JSON, with `metadata.resourceVersion` empty: the revision is only
        /// known at commit time and is carried by `mod_revision`.
        json: String,
        /// The revision that created the key.
        create_revision: Revision,
        /// The revision of this write.
        mod_revision: Revision,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: Arc<str>,
        /// The revision of this delete.
        revision: Revision,
    },
}

/// A backend that keeps nothing: the store still works (its state is in memory anyway), but
/// nothing survives the process. For unit tests of other crates.
#[derive(Debug, Default)]
pub struct MemoryBackend;

impl Backend for MemoryBackend {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        Ok(Loaded::default())
    }

    fn commit(&mut self, _batch: &Batch) -> Result<(), StoreError> {
        Ok(())
    }
}
