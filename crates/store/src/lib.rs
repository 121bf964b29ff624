//! The storage layer under the API server: a revisioned key-value store of JSON objects with
//! watch, like etcd plus kube-apiserver's watch cache, kept durable in one SQLite file
//! (kine-style). Every write gets the next global [`Revision`], which the store writes into
//! the object's `metadata.resourceVersion`; reads are served from memory and watches replay
//! a bounded history. Start at [`Store`]; the model is summarised in the crate's README.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), store::StoreError> {
//! use futures::StreamExt;
//! use serde_json::json;
//! use store::{EventType, Store};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).await?; // or Store::in_memory() in tests
//!
//! let created = store
//!     .create("/registry/core/services/default/nginx", json!({"metadata": {"name": "nginx"}}))
//!     .await?;
//! assert_eq!(created.value["metadata"]["resourceVersion"], "1");
//!
//! // List, then watch from the list's revision: no event is missed or seen twice.
//! let list = store.list("/registry/core/services/", None, Some(500));
//! let mut watch = store.watch("/registry/core/services/", Some(list.revision))?;
//!
//! let mut changed = created.value.as_ref().clone();
//! changed["spec"] = json!({"type": "NodePort"});
//! store.update(&created.key, changed, Some(created.mod_revision)).await?;
//!
//! let event = watch.next().await.unwrap()?;
//! assert_eq!((event.kind, event.revision()), (EventType::Modified, 2));
//! assert_eq!(watch.progress_revision(), 2); // for a BOOKMARK
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod backend;
mod error;
mod object;
mod sqlite;
mod state;
mod store;
mod watch;
mod writer;

pub use backend::{Backend, Batch, Change, Loaded, LoadedObject, MemoryBackend};
pub use error::StoreError;
pub use object::{Event, EventType, ListResult, Op, Revision, StoredObject};
pub use sqlite::SqliteBackend;
pub use store::{Store, StoreOptions};
pub use watch::Watch;
