//! The Service admission plugin: for every write of a core/v1 Service, kube-apiserver's order
//! of work, on the object the generic write path hands over:
//!
//! - create: `SetDefaults_Service`, `normalizeClusterIPs`, IP family fields, allocation
//!   (ClusterIPs, NodePorts, health check NodePort), then validation; warnings last.
//! - update: the same defaulting on the new object, then `patchAllocatedValues` and
//!   `normalizeClusterIPs` against the stored object, IP family fields, allocation of what is
//!   new, `dropTypeDependentFields`, validation of the update.
//! - `/status`: the `ipMode` default and `status.loadBalancer` validation.
//!
//! [`Admission::default`] runs the decoding defaults alone, before the server records
//! managedFields, so that the writer owns the defaulted fields but not the allocated ones, as
//! in kube-apiserver.
//!
//! Reservations are made under one lock, so concurrent writes never get the same value; they
//! stay pending until [`Admission::finish`] reports the store's answer. Then they are
//! committed, and what the previous version held but the stored one does not is released; or,
//! if the write failed, the pending ones are given back.

use crate::alloc::{allocate_create, allocate_update, holdings, Op};
use crate::config::{ConfigError, Family, ServiceConfig};
use crate::defaults::{default_ingress_ip_mode, default_on_read, set_defaults};
use crate::families::init_ip_family_fields;
use crate::registry::{Registry, Resource};
use crate::repair::{owner_id, rebuild};
use crate::strategy::{drop_type_dependent_fields, normalize_cluster_ips, patch_allocated_values};
use crate::types::*;
use crate::validation::{validate_service, validate_service_update, validate_status};
use crate::warnings::{service_warnings, status_warnings};
use model::admission::{Admission, AdmissionRequest, Operation};
use model::{meta, ApiError, Cause};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

/// Admission for core/v1 Services (see the module docs). Build it with
/// [`ServiceAdmission::new`] from the Services already stored.
pub struct ServiceAdmission {
    config: ServiceConfig,
    families: Vec<Family>,
    registry: Mutex<Registry>,
}

/// Who holds what, for tests and diagnostics: every allocated ClusterIP and NodePort with its
/// holder's identity (uid, or `namespace/name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocations {
    pub cluster_ips: BTreeMap<IpAddr, String>,
    pub node_ports: BTreeMap<u16, String>,
    /// Reservations whose write the store has not answered yet.
    pub pending: usize,
}

fn invalid(name: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::invalid("", "Service", name, causes)
}

fn read(obj: &Value) -> Result<Service, ApiError> {
    Service::from_object(obj).map_err(|e| {
        ApiError::bad_request(format!(
            "Service in version \"v1\" cannot be handled as a Service: {e}"
        ))
    })
}

fn is_service(req: &AdmissionRequest<'_>) -> bool {
    req.resource.group.is_empty() && req.resource.plural == "services"
}

impl ServiceAdmission {
    /// Rebuilds every allocation from `existing` (the stored Services, the `kubernetes` one
    /// included) and returns the plugin with the repair report: core/v1 Warning Events about
    /// duplicate, out-of-range or unparsable values, for the caller to create. Fails only on a
    /// bad configuration.
    pub fn new(
        config: ServiceConfig,
        existing: impl IntoIterator<Item = Value>,
    ) -> Result<(ServiceAdmission, Vec<Value>), ConfigError> {
        let cidrs = config.cidrs()?;
        let ports = config.port_range()?;
        let rng = match config.rng_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let mut registry = Registry::new(&cidrs, ports, &config.cluster_dns, rng);
        let events = rebuild(
            &mut registry,
            existing.into_iter().collect(),
            chrono::Utc::now(),
        );
        let families = registry.families();
        Ok((
            ServiceAdmission {
                config,
                families,
                registry: Mutex::new(registry),
            },
            events,
        ))
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves the registry as consistent as between two
        // statements of a reservation; keep serving rather than poison every later write.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current allocations.
    pub fn allocations(&self) -> Allocations {
        let reg = self.lock();
        let mut out = Allocations::default();
        for (r, h) in reg.holders() {
            if h.pending {
                out.pending += 1;
            }
            match r {
                Resource::ClusterIp(ip) => {
                    out.cluster_ips.insert(*ip, h.owner.clone());
                }
                Resource::NodePort(p) => {
                    out.node_ports.insert(*p, h.owner.clone());
                }
            }
        }
        out
    }

    /// Whether the allocators and the holder bookkeeping agree (for tests).
    pub fn is_consistent(&self) -> bool {
        self.lock().consistent()
    }

    fn primary(&self) -> Family {
        self.families[0]
    }

    fn admit_create(
        &self,
        req: &AdmissionRequest<'_>,
        obj: &mut Value,
    ) -> Result<Vec<String>, ApiError> {
        let name = meta::name(obj).to_string();
        let owner = owner_id(obj);
        let annotations = meta::annotations(obj);
        // The metadata is validated with the spec, after allocation (`validates_metadata_on_create`).
        let meta_causes = model::validation::validate_object_meta(req.resource, obj);
        let mut svc = read(obj)?;
        set_defaults(&mut svc);
        normalize_cluster_ips(&mut svc.spec, None);
        self.allocate_and_validate(
            req,
            &name,
            &owner,
            &annotations,
            &mut svc,
            None,
            meta_causes,
        )?;
        finish_object(&mut svc);
        svc.write_to(obj);
        Ok(service_warnings(&svc.spec, &annotations))
    }

    fn admit_update(
        &self,
        req: &AdmissionRequest<'_>,
        obj: &mut Value,
    ) -> Result<Vec<String>, ApiError> {
        let Some(old_obj) = req.old else {
            return self.admit_create(req, obj);
        };
        let name = meta::name(obj).to_string();
        let owner = owner_id(old_obj);
        let annotations = meta::annotations(obj);
        let old = read(old_obj)?;
        let mut old_spec = old.spec;
        default_on_read(&mut old_spec, self.primary());
        let mut svc = read(obj)?;
        set_defaults(&mut svc);
        patch_allocated_values(&mut svc.spec, &old_spec);
        normalize_cluster_ips(&mut svc.spec, Some(&old_spec));
        let old = Some((&old_spec, old.status));
        self.allocate_and_validate(req, &name, &owner, &annotations, &mut svc, old, Vec::new())?;
        finish_object(&mut svc);
        svc.write_to(obj);
        Ok(service_warnings(&svc.spec, &annotations))
    }

    /// What create and update do under the registry lock: the IP family fields, allocation, the
    /// status the strategy sets (empty on create; the stored one on update, less what the type
    /// no longer allows), then validation after `causes` (the metadata's). Every reservation is
    /// rolled back on an error.
    #[allow(clippy::too_many_arguments)]
    fn allocate_and_validate(
        &self,
        req: &AdmissionRequest<'_>,
        name: &str,
        owner: &str,
        annotations: &BTreeMap<String, String>,
        svc: &mut Service,
        old: Option<(&ServiceSpec, ServiceStatus)>,
        mut causes: Vec<Cause>,
    ) -> Result<(), ApiError> {
        let mut reg = self.lock();
        let old_spec = old.as_ref().map(|(spec, _)| *spec);
        init_ip_family_fields(&mut svc.spec, old_spec, &self.families)
            .map_err(|c| invalid(name, c))?;
        let mut op = Op::new(&mut reg, owner, name, req.dry_run);
        let allocated = match old_spec {
            None => allocate_create(&mut svc.spec, &mut op),
            Some(old_spec) => allocate_update(&mut svc.spec, old_spec, &mut op),
        };
        if let Err(e) = allocated {
            op.rollback();
            return Err(e);
        }
        match old {
            None => {
                svc.status = ServiceStatus::default();
                causes.extend(validate_service(&svc.spec, annotations, None));
            }
            Some((old_spec, old_status)) => {
                svc.status = old_status;
                drop_type_dependent_fields(&mut svc.spec, old_spec, &mut svc.status);
                causes.extend(validate_service_update(&svc.spec, old_spec, annotations));
            }
        }
        if !causes.is_empty() {
            op.rollback();
            return Err(invalid(name, causes));
        }
        Ok(())
    }

    fn admit_status(
        &self,
        req: &AdmissionRequest<'_>,
        obj: &mut Value,
    ) -> Result<Vec<String>, ApiError> {
        let name = meta::name(obj).to_string();
        let mut svc = read(obj)?;
        let old_status = match req.old {
            Some(old) => Some(read(old)?.status),
            None => None,
        };
        default_ingress_ip_mode(&mut svc);
        let causes = validate_status(&svc.status, &svc.spec, old_status.as_ref());
        if !causes.is_empty() {
            return Err(invalid(&name, causes));
        }
        if let Some(m) = obj.as_object_mut() {
            m.insert(
                "status".into(),
                serde_json::to_value(&svc.status).unwrap_or(Value::Null),
            );
        }
        Ok(status_warnings(&svc.status))
    }
}

/// What reads of the stored object would show: kube-apiserver hides `internalTrafficPolicy` on
/// ExternalName Services when reading them back; we do not store it in the first place.
fn finish_object(svc: &mut Service) {
    if svc.spec.is_type(EXTERNAL_NAME) {
        svc.spec.internal_traffic_policy = None;
    }
}

fn holdings_of(obj: &Value) -> BTreeSet<Resource> {
    match Service::from_object(obj) {
        Ok(s) => holdings(&s.spec).into_iter().collect(),
        Err(_) => BTreeSet::new(),
    }
}

impl Admission for ServiceAdmission {
    /// kube-apiserver's Service storage allocates in `BeginCreate`, before `BeforeCreate`
    /// validates anything: a Service named "" fails in ClusterIP allocation (its IPAddress
    /// needs the name), and a bad name is reported with the spec's errors.
    fn validates_metadata_on_create(&self, resource: &model::ResourceInfo) -> bool {
        resource.group.is_empty() && resource.plural == "services"
    }

    /// `SetDefaults_Service`, which kube-apiserver applies while decoding, so the writer owns
    /// what it defaulted; [`Admission::admit`] applies it again (it is idempotent) and does
    /// everything else.
    fn default(&self, req: &AdmissionRequest<'_>, obj: &mut Value) {
        if !is_service(req) {
            return;
        }
        let Ok(mut svc) = Service::from_object(obj) else {
            return;
        };
        match (req.operation, req.subresource) {
            (Operation::Create | Operation::Update, None) => {
                set_defaults(&mut svc);
                svc.write_to(obj);
            }
            (Operation::Update, Some("status")) => {
                default_ingress_ip_mode(&mut svc);
                if let Some(m) = obj.as_object_mut() {
                    m.insert(
                        "status".into(),
                        serde_json::to_value(&svc.status).unwrap_or(Value::Null),
                    );
                }
            }
            _ => {}
        }
    }

    fn admit(&self, req: &AdmissionRequest<'_>, obj: &mut Value) -> Result<Vec<String>, ApiError> {
        if !is_service(req) {
            return Ok(Vec::new());
        }
        match (req.operation, req.subresource) {
            (Operation::Create, None) => self.admit_create(req, obj),
            (Operation::Update, None) => self.admit_update(req, obj),
            (Operation::Update, Some("status")) => self.admit_status(req, obj),
            // Deletes reserve nothing; what the Service held is released when it is gone.
            _ => Ok(Vec::new()),
        }
    }

    fn finish(&self, req: &AdmissionRequest<'_>, obj: &Value, stored: Option<&Value>) {
        if !is_service(req) || req.dry_run {
            return;
        }
        let owner = owner_id(req.old.unwrap_or(obj));
        let mut reg = self.lock();
        match (req.operation, stored) {
            (Operation::Create | Operation::Update, None) => {
                // The write failed: give back what its admission reserved, which is exactly
                // what the new object holds and the stored one did not. (A value both hold may
                // be pending for an earlier write of the same Service that did reach the
                // store; it is not ours to give back.)
                let mut reserved = holdings_of(obj);
                if let Some(old) = req.old {
                    for r in holdings_of(old) {
                        reserved.remove(&r);
                    }
                }
                for r in reserved {
                    reg.release(r, &owner, true);
                }
            }
            (Operation::Create | Operation::Update, Some(stored)) => {
                let now = holdings_of(stored);
                for r in &now {
                    reg.commit(*r, &owner);
                }
                let mut before = holdings_of(obj);
                if let Some(old) = req.old {
                    before.extend(holdings_of(old));
                }
                for r in before.difference(&now) {
                    reg.release(*r, &owner, false);
                }
            }
            (Operation::Delete, Some(deleted)) => {
                let mut all = holdings_of(deleted);
                all.extend(holdings_of(obj));
                if let Some(old) = req.old {
                    all.extend(holdings_of(old));
                }
                for r in all {
                    reg.release(r, &owner, false);
                }
            }
            (Operation::Delete, None) => {}
        }
    }
}
