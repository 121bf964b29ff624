//! Test support for the golden tests: reading command outputs from the reference transcripts
//! in `tests/fixtures/`, and a simulated API (objects in maps, generated names) that applies
//! what the reconcilers decide, the way the controllers' runtime would.

use crate::slices::{self, NodeLookup, Options};
use crate::{endpoints, pods, trigger};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;
use std::collections::BTreeMap;

/// The output of the `occurrence`-th command (0-based) of `file` whose command line contains
/// `command`.
pub fn reference_output(file: &str, command: &str, occurrence: usize) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/").to_string() + file;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut found = 0;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if let Some(cmd) = lines[i].strip_prefix("$ ") {
            let mut out = Vec::new();
            let mut j = i + 1;
            while j < lines.len() && !lines[j].starts_with("[exit code:") {
                out.push(lines[j]);
                j += 1;
            }
            if cmd.contains(command) {
                if found == occurrence {
                    // The deprecation warning kubectl prints for v1 Endpoints is not YAML.
                    return out
                        .into_iter()
                        .filter(|l| !l.starts_with("Warning: "))
                        .collect::<Vec<_>>()
                        .join("\n");
                }
                found += 1;
            }
            i = j;
        }
        i += 1;
    }
    panic!("{file}: no command #{occurrence} containing {command:?}");
}

/// Drops what the API server sets (and what differs between any two runs).
pub fn strip_server_fields(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "creationTimestamp",
            "resourceVersion",
            "uid",
            "generation",
            "name",
            "managedFields",
        ] {
            m.remove(f);
        }
    }
    v
}

/// A simulated API holding the Endpoints and EndpointSlices of one namespace.
pub struct Sim {
    pub endpoints: BTreeMap<String, Endpoints>,
    pub slices: BTreeMap<String, EndpointSlice>,
    pub options: Options,
    pub created: usize,
    pub writes: usize,
    endpoints_trigger: trigger::TriggerTimeTracker,
    slices_trigger: trigger::TriggerTimeTracker,
    rv: u64,
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Sim {
    pub fn new() -> Sim {
        Sim {
            endpoints: BTreeMap::new(),
            slices: BTreeMap::new(),
            options: Options::default(),
            created: 0,
            writes: 0,
            endpoints_trigger: trigger::TriggerTimeTracker::new(),
            slices_trigger: trigger::TriggerTimeTracker::new(),
            rv: 0,
        }
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    pub fn sync_all(&mut self, services: &[&Service], pods: &[Pod]) {
        for s in services {
            self.sync(s, pods);
        }
    }

    /// One sync of `svc` by both controllers, as the runtime does it.
    pub fn sync(&mut self, svc: &Service, all_pods: &[Pod]) {
        let name = pods::name_of(&svc.metadata).to_string();
        let selector = pods::service_selector(svc)
            .expect("a selector Service")
            .clone();
        let selected: Vec<&Pod> = all_pods
            .iter()
            .filter(|p| pods::selector_matches(&selector, p.metadata.labels.as_ref()))
            .collect();
        let key = format!("default/{name}");
        let t = self.endpoints_trigger.compute(&key, svc, &selected);
        match endpoints::reconcile(svc, &selected, self.endpoints.get(&name), t) {
            Some(endpoints::Write::Create(mut ep)) | Some(endpoints::Write::Update(mut ep)) => {
                ep.metadata.resource_version = Some(self.next_rv());
                self.endpoints.insert(name.clone(), ep);
                self.writes += 1;
            }
            None => {}
        }
        let existing: Vec<EndpointSlice> = self.slices_of(&name);
        let refs: Vec<&EndpointSlice> = existing.iter().collect();
        let t = self.slices_trigger.compute(&key, svc, &selected);
        let plan = slices::reconcile(
            svc,
            &selected,
            &refs,
            &|_| NodeLookup::Unknown,
            &self.options,
            t,
        );
        for s in plan.delete {
            self.slices.remove(s.metadata.name.as_deref().unwrap());
            self.writes += 1;
        }
        for mut s in plan.update {
            s.metadata.resource_version = Some(self.next_rv());
            self.slices.insert(s.metadata.name.clone().unwrap(), s);
            self.writes += 1;
        }
        for mut s in plan.create {
            self.created += 1;
            let n = format!(
                "{}{:05}",
                s.metadata.generate_name.as_deref().unwrap(),
                self.created
            );
            s.metadata.name = Some(n.clone());
            s.metadata.uid = Some(format!("slice-uid-{}", self.created));
            s.metadata.resource_version = Some(self.next_rv());
            self.slices.insert(n, s);
            self.writes += 1;
        }
    }

    /// The slices of a Service, in creation order.
    pub fn slices_of(&self, service: &str) -> Vec<EndpointSlice> {
        let mut v: Vec<EndpointSlice> = self
            .slices
            .values()
            .filter(|s| {
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(slices::LABEL_SERVICE_NAME))
                    .map(String::as_str)
                    == Some(service)
            })
            .cloned()
            .collect();
        v.sort_by_key(|s| {
            s.metadata.uid.clone().unwrap_or_default()[10..]
                .parse::<usize>()
                .unwrap_or(0)
        });
        v
    }

    pub fn to_json(&self, s: &EndpointSlice) -> Value {
        slices::to_wire(s)
    }

    pub fn slice_json(&self, service: &str, index: usize) -> Value {
        self.to_json(&self.slices_of(service)[index])
    }

    pub fn endpoints_json(&self, service: &str) -> Value {
        endpoints::to_wire(&self.endpoints[service])
    }
}
