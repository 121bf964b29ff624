//! Allocating a Service's ClusterIPs, NodePorts and health check NodePort, step for step as
//! kube-apiserver's `allocateCreate` and `allocateUpdate` (`pkg/registry/core/service/storage/
//! alloc.go`), with its errors. Everything taken goes through an [`Op`]: pending in the
//! registry under the Service's identity, undone by [`Op::rollback`] if the write is refused
//! before it reaches the store. Releases are not done here: what an update stops holding is
//! freed once the store has the new object (see `admission.rs`).
//!
//! A dry run takes nothing, as upstream's dry-run allocators: a random ClusterIP is reported as
//! the range's network address, a random NodePort as 32769, 32770, ... and a fixed NodePort is
//! only checked against what is taken, not against the range.

use crate::config::Family;
use crate::ipalloc::IpAllocError;
use crate::netval::parse_ip_sloppy;
use crate::portalloc::PortAllocError;
use crate::registry::{Registry, Resource};
use crate::types::*;
use model::{ApiError, Cause};
use serde_json::json;
use std::net::IpAddr;

/// One admission's reservations.
pub(crate) struct Op<'a> {
    pub reg: &'a mut Registry,
    pub owner: &'a str,
    pub name: &'a str,
    pub dry_run: bool,
    taken: Vec<Resource>,
    dry_ports: Vec<i64>,
}

fn invalid(name: &str, cause: Cause) -> ApiError {
    ApiError::invalid("", "Service", name, vec![cause])
}

/// What kube-apiserver answers for a plain Go error out of its storage hooks.
fn unknown(message: String) -> ApiError {
    ApiError::new(500, "Unknown", message)
}

impl<'a> Op<'a> {
    pub fn new(reg: &'a mut Registry, owner: &'a str, name: &'a str, dry_run: bool) -> Op<'a> {
        Op {
            reg,
            owner,
            name,
            dry_run,
            taken: Vec::new(),
            dry_ports: Vec::new(),
        }
    }

    /// Undoes every reservation of this admission.
    pub fn rollback(&mut self) {
        for r in std::mem::take(&mut self.taken) {
            self.reg.release(r, self.owner, true);
        }
    }

    fn allocate_ip(&mut self, ip: IpAddr) -> Result<(), IpAllocError> {
        let family = Family::of(ip);
        let a = self
            .reg
            .ip_allocator(family)
            .ok_or(IpAllocError::NotInRange)?;
        if !a.contains(ip) {
            return Err(IpAllocError::NotInRange);
        }
        if self.dry_run {
            return Ok(());
        }
        self.reg.reserve_ip(ip, self.owner)?;
        self.taken.push(Resource::ClusterIp(ip));
        Ok(())
    }

    fn allocate_next_ip(&mut self, family: Family) -> Result<IpAddr, IpAllocError> {
        if self.dry_run {
            return self
                .reg
                .ip_allocator(family)
                .map(|a| a.cidr().network())
                .ok_or(IpAllocError::Full);
        }
        let ip = self.reg.reserve_next_ip(family, self.owner)?;
        self.taken.push(Resource::ClusterIp(ip));
        Ok(ip)
    }

    fn allocate_port(&mut self, port: i64) -> Result<(), PortAllocError> {
        if self.dry_run {
            if self.reg.ports.has(port) || self.dry_ports.contains(&port) {
                return Err(PortAllocError::Allocated);
            }
            self.dry_ports.push(port);
            return Ok(());
        }
        self.reg.reserve_port(port, self.owner)?;
        self.taken.push(Resource::NodePort(port as u16));
        Ok(())
    }

    fn allocate_next_port(&mut self) -> Result<i64, PortAllocError> {
        if self.dry_run {
            let next = self.dry_ports.iter().copied().max().unwrap_or(32768) + 1;
            self.dry_ports.push(next);
            return Ok(next);
        }
        let port = self.reg.reserve_next_port(self.owner)?;
        self.taken.push(Resource::NodePort(port));
        Ok(port as i64)
    }
}

/// Upstream `allocIPs`: the addresses of `to_alloc` (family, requested address or "") in order.
fn alloc_ips(
    spec: &ServiceSpec,
    to_alloc: &[(Family, String)],
    op: &mut Op<'_>,
) -> Result<Vec<(Family, IpAddr)>, ApiError> {
    let mut allocated = Vec::new();
    for (family, ip) in to_alloc {
        if ip.is_empty() {
            let got = op
                .allocate_next_ip(*family)
                .map_err(|e| ApiError::internal(format!("failed to allocate a serviceIP: {e}")))?;
            if op.name.is_empty() {
                // The IPAddress object that records the allocation needs the Service's name.
                return Err(invalid(
                    op.name,
                    Cause::invalid(
                        "spec.clusterIPs",
                        &json!(spec.cluster_ips),
                        &format!("failed to allocate IP: IPAddress.networking.k8s.io \"{got}\" is invalid: spec.parentRef.name: Required value"),
                    ),
                ));
            }
            allocated.push((*family, got));
        } else {
            let parsed = parse_ip_sloppy(ip)
                .ok_or_else(|| ApiError::internal(format!("failed to parse service IP {ip:?}")))?;
            op.allocate_ip(parsed).map_err(|e| {
                invalid(
                    op.name,
                    Cause::invalid(
                        "spec.clusterIPs",
                        &json!(spec.cluster_ips),
                        &format!("failed to allocate IP {ip}: {e}"),
                    ),
                )
            })?;
            allocated.push((*family, parsed));
        }
    }
    Ok(allocated)
}

fn families(spec: &ServiceSpec) -> Vec<Family> {
    spec.ip_families
        .iter()
        .filter_map(|f| Family::parse(f))
        .collect()
}

/// Upstream `allocClusterIPs`: one address per family, given or random.
fn alloc_cluster_ips(spec: &mut ServiceSpec, op: &mut Op<'_>) -> Result<(), ApiError> {
    if spec.is_type(EXTERNAL_NAME) || spec.first_cluster_ip_is_none() {
        return Ok(());
    }
    let fams = families(spec);
    while spec.cluster_ips.len() < fams.len() {
        spec.cluster_ips.push(String::new());
    }
    let to_alloc: Vec<(Family, String)> = fams
        .iter()
        .enumerate()
        .map(|(i, f)| (*f, spec.cluster_ips[i].clone()))
        .collect();
    let allocated = alloc_ips(spec, &to_alloc, op)?;
    for (family, ip) in allocated {
        if let Some(i) = fams.iter().position(|f| *f == family) {
            // Keep the address as the user wrote it when it was given.
            if spec.cluster_ips[i].is_empty() {
                spec.cluster_ips[i] = ip.to_string();
            }
            if i == 0 {
                spec.cluster_ip = spec.cluster_ips[0].clone();
            }
        }
    }
    Ok(())
}

fn node_port_error(name: &str, i: usize, port: i64, e: PortAllocError) -> ApiError {
    invalid(
        name,
        Cause::invalid(
            format!("spec.ports[{i}].nodePort"),
            &json!(port),
            &e.to_string(),
        ),
    )
}

/// Upstream `initNodePorts`: ports of the same number share one NodePort (TCP and UDP 53 get
/// the same), a NodePort given on any of them counts for all.
fn init_node_ports(spec: &mut ServiceSpec, op: &mut Op<'_>) -> Result<(), ApiError> {
    let should_allocate = spec.should_allocate_node_ports();
    let mut by_port: Vec<(i64, i64)> = Vec::new();
    for i in 0..spec.ports.len() {
        let (port, node_port) = (spec.ports[i].port, spec.ports[i].node_port);
        if node_port == 0 && !should_allocate {
            continue;
        }
        let allocated = by_port
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        if allocated == 0 {
            // Any later port of the same number that names its NodePort decides it.
            let requested = spec
                .ports
                .iter()
                .find(|p| p.port == port && p.node_port != 0)
                .map(|p| p.node_port)
                .unwrap_or(0);
            let np = if requested != 0 {
                op.allocate_port(requested)
                    .map_err(|e| node_port_error(op.name, i, requested, e))?;
                requested
            } else {
                op.allocate_next_port().map_err(|e| {
                    ApiError::internal(format!("failed to allocate a nodePort: {e}"))
                })?
            };
            spec.ports[i].node_port = np;
            by_port.push((port, np));
        } else if node_port != allocated {
            if node_port == 0 {
                spec.ports[i].node_port = allocated;
            } else {
                op.allocate_port(node_port)
                    .map_err(|e| node_port_error(op.name, i, node_port, e))?;
            }
        }
    }
    Ok(())
}

/// Upstream `allocHealthCheckNodePort`.
fn alloc_health_check_node_port(spec: &mut ServiceSpec, op: &mut Op<'_>) -> Result<(), ApiError> {
    let hc = spec.health_check_node_port;
    if hc != 0 {
        op.allocate_port(hc).map_err(|e| {
            ApiError::internal(format!(
                "failed to allocate requested HealthCheck NodePort {hc}: {e}"
            ))
        })?;
    } else {
        let got = op.allocate_next_port().map_err(|e| {
            ApiError::internal(format!("failed to allocate a HealthCheck NodePort 0: {e}"))
        })?;
        spec.health_check_node_port = got;
    }
    Ok(())
}

/// Upstream `allocateCreate` after `initIPFamilyFields`.
pub(crate) fn allocate_create(spec: &mut ServiceSpec, op: &mut Op<'_>) -> Result<(), ApiError> {
    alloc_cluster_ips(spec, op)?;
    if spec.needs_node_port() {
        init_node_ports(spec, op)?;
    }
    if spec.needs_health_check() {
        alloc_health_check_node_port(spec, op)?;
    }
    Ok(())
}

/// Upstream `updateClusterIPs`: what an update must newly allocate (a type change away from
/// ExternalName, or a second family added). What it drops is freed on commit.
fn update_cluster_ips(
    spec: &mut ServiceSpec,
    old: &ServiceSpec,
    op: &mut Op<'_>,
) -> Result<(), ApiError> {
    if crate::families::is_matching_prefer_dual_stack(spec, Some(old)) {
        return Ok(());
    }
    if old.is_type(EXTERNAL_NAME) && !spec.is_type(EXTERNAL_NAME) {
        return alloc_cluster_ips(spec, op);
    }
    if old.first_cluster_ip_is_none() || spec.is_type(EXTERNAL_NAME) {
        return Ok(());
    }
    if old.ip_families.len() == 1 && spec.ip_families.len() == 2 {
        if spec.cluster_ips.len() < 2 {
            spec.cluster_ips.push(String::new());
        }
        let Some(family) = Family::parse(&spec.ip_families[1]) else {
            return Ok(());
        };
        let allocated = alloc_ips(spec, &[(family, spec.cluster_ips[1].clone())], op)?;
        if let Some((_, ip)) = allocated.first() {
            if spec.cluster_ips[1].is_empty() {
                spec.cluster_ips[1] = ip.to_string();
            }
        }
    }
    Ok(())
}

/// Upstream `updateNodePorts`: NodePorts the old object did not have are taken, missing ones
/// allocated one by one (no sharing by port number here, unlike on create).
fn update_node_ports(
    spec: &mut ServiceSpec,
    old: &ServiceSpec,
    op: &mut Op<'_>,
) -> Result<(), ApiError> {
    // Upstream takes the old object's NodePorts whatever its type; an ExternalName Service may
    // carry NodePort values nobody allocated, so only a type that holds them counts here.
    let old_numbers: Vec<i64> = if old.needs_node_port() {
        old.ports
            .iter()
            .map(|p| p.node_port)
            .filter(|&n| n != 0)
            .collect()
    } else {
        Vec::new()
    };
    let should_allocate = spec.should_allocate_node_ports();
    let mut new_node_ports: Vec<(String, i64)> = Vec::new();
    let mut taken_here: Vec<i64> = Vec::new();
    for i in 0..spec.ports.len() {
        let node_port = spec.ports[i].node_port;
        if node_port == 0 && !should_allocate {
            continue;
        }
        let np = if node_port != 0 {
            if !old_numbers.contains(&node_port) && !taken_here.contains(&node_port) {
                op.allocate_port(node_port)
                    .map_err(|e| node_port_error(op.name, i, node_port, e))?;
                taken_here.push(node_port);
            }
            node_port
        } else {
            let got = op
                .allocate_next_port()
                .map_err(|e| ApiError::internal(format!("failed to allocate a nodePort: {e}")))?;
            spec.ports[i].node_port = got;
            got
        };
        let key = (spec.ports[i].protocol.clone(), np);
        if new_node_ports.contains(&key) {
            return Err(unknown(format!(
                "duplicate nodePort: {{{} {}}}",
                key.0, key.1
            )));
        }
        new_node_ports.push(key);
    }
    Ok(())
}

/// Upstream `allocateUpdate` after `initIPFamilyFields`.
pub(crate) fn allocate_update(
    spec: &mut ServiceSpec,
    old: &ServiceSpec,
    op: &mut Op<'_>,
) -> Result<(), ApiError> {
    update_cluster_ips(spec, old, op)?;
    if spec.needs_node_port() {
        update_node_ports(spec, old, op)?;
    }
    if !old.needs_health_check() && spec.needs_health_check() {
        alloc_health_check_node_port(spec, op)?;
    }
    Ok(())
}

/// What a stored Service holds: its ClusterIPs, the NodePorts of a NodePort or LoadBalancer
/// Service (each once), and the health check NodePort of a LoadBalancer with
/// `externalTrafficPolicy: Local`.
pub fn holdings(spec: &ServiceSpec) -> Vec<Resource> {
    let mut out = Vec::new();
    if spec.needs_cluster_ip() {
        let ips: Vec<&String> = if spec.cluster_ips.is_empty() {
            vec![&spec.cluster_ip]
        } else {
            spec.cluster_ips.iter().collect()
        };
        for ip in ips {
            if let Some(parsed) = parse_ip_sloppy(ip) {
                out.push(Resource::ClusterIp(parsed));
            }
        }
    }
    // NodePort values on other types (an ExternalName Service may carry some) are not
    // allocated, so they are not held either.
    let mut ports = if spec.needs_node_port() {
        spec.node_ports()
    } else {
        Vec::new()
    };
    if spec.needs_health_check()
        && spec.health_check_node_port != 0
        && !ports.contains(&spec.health_check_node_port)
    {
        ports.push(spec.health_check_node_port);
    }
    for p in ports {
        if (1..=65535).contains(&p) {
            out.push(Resource::NodePort(p as u16));
        }
    }
    out
}
