//! A set of field paths, stored as a tree: at each level the elements that are themselves
//! members, and the children under which deeper members live. A node can be both (a list item
//! that is owned as a whole and also field by field); `fieldsV1` writes that as `".": {}`.

use super::element::{Path, PathElement};
use std::collections::{BTreeMap, BTreeSet};

/// A set of field paths. Invariant: no child set is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub(crate) members: BTreeSet<PathElement>,
    pub(crate) children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// Adds a path. The root (empty path) is never a member: nobody owns the whole object.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// The paths below `pe`, without the prefix.
    pub fn with_prefix(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: self
                .children
                .iter()
                .filter_map(|(pe, child)| {
                    let both = child.intersection(other.children.get(pe)?);
                    (!both.is_empty()).then(|| (pe.clone(), both))
                })
                .collect(),
        }
    }

    /// Members of `self` not in `other`, level by level: a member of `other` does not remove the
    /// children `self` has under the same element.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            members: self.members.difference(&other.members).cloned().collect(),
            children: self
                .children
                .iter()
                .filter_map(|(pe, child)| match other.children.get(pe) {
                    Some(theirs) => {
                        let rest = child.difference(theirs);
                        (!rest.is_empty()).then(|| (pe.clone(), rest))
                    }
                    None => Some((pe.clone(), child.clone())),
                })
                .collect(),
        }
    }

    /// Like `difference`, but a member of `other` also removes everything below it.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            members: self.members.difference(&other.members).cloned().collect(),
            children: self
                .children
                .iter()
                .filter(|(pe, _)| !other.members.contains(pe))
                .filter_map(|(pe, child)| match other.children.get(pe) {
                    Some(theirs) => {
                        let rest = child.recursive_difference(theirs);
                        (!rest.is_empty()).then(|| (pe.clone(), rest))
                    }
                    None => Some((pe.clone(), child.clone())),
                })
                .collect(),
        }
    }

    /// Every member path, in structured-merge-diff's order: the members of a level first, then
    /// the children, each in element order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Builds a set from paths.
    #[cfg(test)]
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a [PathElement]>) -> FieldSet {
        let mut set = FieldSet::new();
        for p in paths {
            set.insert(p);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldpath::PathElement::Field;

    fn p(s: &str) -> Path {
        s.split('.').map(|f| Field(f.to_string())).collect()
    }

    fn set(paths: &[&str]) -> FieldSet {
        let paths: Vec<Path> = paths.iter().map(|s| p(s)).collect();
        FieldSet::from_paths(paths.iter().map(Vec::as_slice))
    }

    #[test]
    fn difference_keeps_children_of_removed_members() {
        let a = set(&["a.b.c", "a.d"]);
        assert_eq!(a.difference(&set(&["a.b"])), a);
        assert_eq!(a.recursive_difference(&set(&["a.b"])), set(&["a.d"]));
        assert_eq!(a.difference(&set(&["a.b.c"])), set(&["a.d"]));
    }

    #[test]
    fn intersection_and_union() {
        let a = set(&["a.b", "a.c", "x"]);
        let b = set(&["a.c", "x", "y"]);
        assert_eq!(a.intersection(&b), set(&["a.c", "x"]));
        assert_eq!(a.union(&b), set(&["a.b", "a.c", "x", "y"]));
        assert!(a.has(&p("a.b")) && !a.has(&p("a")));
    }

    #[test]
    fn paths_list_members_before_children() {
        let s = set(&["spec.ports.x", "spec.type", "metadata.labels.app"]);
        let rendered: Vec<String> = s.paths().iter().map(|p| crate::fieldpath::path_string(p)).collect();
        assert_eq!(rendered, [".metadata.labels.app", ".spec.type", ".spec.ports.x"]);
    }
}
