//! Admission: kind-specific defaulting, validation and allocation plugged into the generic write
//! path. The API machinery calls every plugin on every write of every kind; a plugin acts on the
//! kinds it knows (Services: ClusterIP/NodePort allocation, in later work) and ignores the rest.

use crate::{ApiError, ResourceInfo};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// What is being written.
pub struct AdmissionRequest<'a> {
    pub resource: &'static ResourceInfo,
    pub operation: Operation,
    pub subresource: Option<&'a str>,
    /// The stored object before this write (update, delete).
    pub old: Option<&'a Value>,
    pub dry_run: bool,
}

pub trait Admission: Send + Sync {
    /// Defaulting, as kube-apiserver does while decoding: runs before managedFields are
    /// recorded, so the writer owns the fields it defaulted (`spec.type`, `sessionAffinity`, ...).
    /// Allocation belongs in [`Admission::admit`], which runs after, so allocated values stay
    /// unowned. Not called for deletes.
    fn default(&self, req: &AdmissionRequest<'_>, obj: &mut Value) {
        let _ = (req, obj);
    }

    /// Whether this plugin validates a new object's metadata itself, in [`Admission::admit`]:
    /// then the server does not refuse a create for its metadata before admission. For kinds
    /// whose storage allocates before it validates anything (kube-apiserver's Service
    /// `BeginCreate`): an allocation error comes first, metadata causes come in one list with
    /// the spec's.
    fn validates_metadata_on_create(&self, resource: &ResourceInfo) -> bool {
        let _ = resource;
        false
    }

    /// Mutates (defaults, allocates) and validates `obj` before it is stored. Returns warnings.
    /// For deletes `obj` is the object being deleted.
    fn admit(&self, req: &AdmissionRequest<'_>, obj: &mut Value) -> Result<Vec<String>, ApiError>;

    /// Called after the store answered: `stored` is the written object when the write
    /// succeeded, `None` when it failed (release what `admit` reserved).
    fn finish(&self, req: &AdmissionRequest<'_>, obj: &Value, stored: Option<&Value>) {
        let _ = (req, obj, stored);
    }
}
