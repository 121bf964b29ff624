//! Apply conflicts: fields an apply would change that another manager owns. kube-apiserver
//! answers 409 with one `FieldManagerConflict` cause per field and a message kubectl prints
//! verbatim (`Apply failed with 1 conflict: conflict with "kubectl" using v1: .spec.type`).

use super::entries::Entry;
use crate::fieldpath::{path_string, Path};
use model::ApiError;
use serde_json::{json, Map, Value};

/// One conflicting field and the manager owning it.
#[derive(Clone, Debug)]
pub(crate) struct Conflict {
    pub(crate) owner: Entry,
    pub(crate) path: Path,
}

/// The conflicts of one apply, ordered by owner identity, then field.
#[derive(Clone, Debug, Default)]
pub(crate) struct Conflicts(pub(crate) Vec<Conflict>);

impl Conflicts {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `getConflictMessage`.
    pub(crate) fn message(&self) -> String {
        if let [one] = self.0.as_slice() {
            return format!("Apply failed with 1 conflict: conflict with {}: {}", one.owner.describe(), path_string(&one.path));
        }
        let mut lines = Vec::new();
        let mut current: Option<String> = None;
        for c in &self.0 {
            let id = c.owner.id();
            if current.as_ref() != Some(&id) {
                lines.push(format!("conflicts with {}:", c.owner.describe()));
                current = Some(id);
            }
            lines.push(format!("- {}", path_string(&c.path)));
        }
        format!("Apply failed with {} conflicts: {}", self.0.len(), lines.join("\n"))
    }

    /// The 409 `Status`: reason `Conflict`, one cause per field.
    pub(crate) fn to_api_error(&self) -> ApiError {
        let causes: Vec<Value> = self
            .0
            .iter()
            .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.owner.describe()), "field": path_string(&c.path)}))
            .collect();
        let mut details = Map::new();
        details.insert("causes".into(), Value::Array(causes));
        let mut e = ApiError::new(409, "Conflict", self.message());
        e.details = Some(details);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldpath::PathElement;
    use crate::managed::entries::Operation;
    use serde_json::json;

    fn path(fields: &[&str]) -> Path {
        fields.iter().map(|f| PathElement::Field(f.to_string())).collect()
    }

    #[test]
    fn one_conflict_reads_like_kube() {
        let owner = Entry::new("kubectl-client-side-apply", Operation::Update, "v1", "");
        let mut p = path(&["spec", "ports"]);
        p.push(PathElement::key(vec![("port".into(), json!(80)), ("protocol".into(), json!("TCP"))]));
        p.push(PathElement::Field("targetPort".into()));
        let c = Conflicts(vec![Conflict { owner, path: p }]);
        assert_eq!(
            c.message(),
            r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .spec.ports[port=80,protocol="TCP"].targetPort"#
        );
        let status = c.to_api_error().to_status();
        assert_eq!(status["code"], 409);
        assert_eq!(status["details"]["causes"][0]["reason"], "FieldManagerConflict");
    }

    #[test]
    fn several_conflicts_group_by_manager() {
        let a = Entry::new("kubectl", Operation::Apply, "v1", "");
        let b = Entry::new("kubectl-patch", Operation::Update, "v1", "");
        let c = Conflicts(vec![
            Conflict { owner: a.clone(), path: path(&["spec", "type"]) },
            Conflict { owner: a, path: path(&["spec", "selector"]) },
            Conflict { owner: b, path: path(&["spec", "sessionAffinity"]) },
        ]);
        assert_eq!(
            c.message(),
            "Apply failed with 3 conflicts: conflicts with \"kubectl\":\n- .spec.type\n- .spec.selector\nconflicts with \"kubectl-patch\" using v1:\n- .spec.sessionAffinity"
        );
    }
}
