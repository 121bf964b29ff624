//! Readiness probing for pods without a kubelet: the agent of a node runs a [`Prober`] for the
//! pods whose `spec.nodeName` is that node. Each container's `readinessProbe` (httpGet or
//! tcpSocket) runs from the node as the kubelet runs it (initialDelaySeconds, periodSeconds,
//! timeoutSeconds, successThreshold, failureThreshold), and the pod's `Ready` condition
//! follows, written through the status subresource. The endpoint controllers take it from
//! there.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One probe's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// The probe's timing, with the kubelet's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(p: &Probe) -> Timing {
        let secs = |v: Option<i32>, d: i32| Duration::from_secs(v.unwrap_or(d).max(0) as u64);
        Timing {
            initial_delay: secs(p.initial_delay_seconds, 0),
            period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: p.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
        }
    }
}

/// A container's readiness from consecutive probe outcomes, as the kubelet's probe worker
/// keeps it: not ready at first; it flips only after `success_threshold` consecutive
/// successes or `failure_threshold` consecutive failures.
#[derive(Debug, Clone)]
pub struct Readiness {
    ready: bool,
    last: Option<Outcome>,
    run: u32,
    success_threshold: u32,
    failure_threshold: u32,
}

impl Readiness {
    pub fn new(t: &Timing) -> Readiness {
        Readiness {
            ready: false,
            last: None,
            run: 0,
            success_threshold: t.success_threshold,
            failure_threshold: t.failure_threshold,
        }
    }

    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Records an outcome; returns the readiness after it.
    pub fn record(&mut self, o: Outcome) -> bool {
        if self.last == Some(o) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(o);
            self.run = 1;
        }
        match o {
            Outcome::Success if self.run >= self.success_threshold => self.ready = true,
            Outcome::Failure if self.run >= self.failure_threshold => self.ready = false,
            _ => {}
        }
        self.ready
    }
}

/// Where and how to probe: resolved against the pod (its IP, its named container ports).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Http {
        addr: SocketAddr,
        host: String,
        path: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        addr: SocketAddr,
    },
    /// exec, grpc, https: not run from a node; reported as failing, with the reason.
    Unsupported(String),
}

fn resolve_port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .or_else(|| name.parse().ok()),
    }
}

/// Resolves a readiness probe of `container` in `pod`.
pub fn target(pod: &Pod, container: &Container, probe: &Probe) -> Target {
    let pod_ip = crate::pods::pod_ips(pod)
        .first()
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    if let Some(h) = &probe.http_get {
        if h.scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"))
        {
            return Target::Unsupported("httpGet with scheme HTTPS".into());
        }
        let ip = match h.host.as_deref().filter(|h| !h.is_empty()) {
            Some(host) => match host.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => {
                    return Target::Unsupported(format!(
                        "httpGet host {host:?} is not an IP address"
                    ))
                }
            },
            None => match pod_ip {
                Some(ip) => ip,
                None => return Target::Unsupported("the pod has no IP".into()),
            },
        };
        let Some(port) = resolve_port(&h.port, container) else {
            return Target::Unsupported(format!("no port {:?}", h.port));
        };
        let addr = SocketAddr::new(ip, port);
        let mut headers: Vec<(String, String)> = h
            .http_headers
            .iter()
            .flatten()
            .map(|hh| (hh.name.clone(), hh.value.clone()))
            .collect();
        let host = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| addr.to_string());
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
        let path = h
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        return Target::Http {
            addr,
            host,
            path,
            headers,
        };
    }
    if let Some(t) = &probe.tcp_socket {
        let ip = match t
            .host
            .as_deref()
            .filter(|h| !h.is_empty())
            .map(str::parse::<IpAddr>)
        {
            Some(Ok(ip)) => ip,
            Some(Err(_)) => {
                return Target::Unsupported("tcpSocket host is not an IP address".into())
            }
            None => match pod_ip {
                Some(ip) => ip,
                None => return Target::Unsupported("the pod has no IP".into()),
            },
        };
        let Some(port) = resolve_port(&t.port, container) else {
            return Target::Unsupported(format!("no port {:?}", t.port));
        };
        return Target::Tcp {
            addr: SocketAddr::new(ip, port),
        };
    }
    Target::Unsupported("only httpGet and tcpSocket probes run without a kubelet".into())
}

/// Runs one probe: a TCP connect, or an HTTP/1.1 GET whose status must be 200-399.
pub async fn probe_once(t: &Target, timeout: Duration) -> Outcome {
    let attempt = async {
        match t {
            Target::Tcp { addr } => TcpStream::connect(addr).await.is_ok(),
            Target::Http {
                addr,
                host,
                path,
                headers,
            } => {
                let Ok(mut s) = TcpStream::connect(addr).await else {
                    return false;
                };
                let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kube-probe/1.36\r\nAccept: */*\r\nConnection: close\r\n");
                for (n, v) in headers {
                    req.push_str(&format!("{n}: {v}\r\n"));
                }
                req.push_str("\r\n");
                if s.write_all(req.as_bytes()).await.is_err() {
                    return false;
                }
                // The status line is all that matters.
                let mut buf = Vec::with_capacity(64);
                let mut chunk = [0u8; 64];
                while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 1024 {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&buf);
                let code = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse::<u16>().ok());
                code.is_some_and(|c| (200..400).contains(&c))
            }
            Target::Unsupported(_) => false,
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(true) => Outcome::Success,
        _ => Outcome::Failure,
    }
}

/// The containers of a pod that have a readiness probe, with it.
fn probed(pod: &Pod) -> Vec<(Container, Probe)> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .filter_map(|c| c.readiness_probe.clone().map(|p| (c.clone(), p)))
        .collect()
}

/// Writes the pod's Ready condition through the status subresource (a strategic merge patch
/// keyed by condition type, so other conditions stay).
pub async fn set_ready_condition(client: &Client, pod: &Pod, ready: bool) -> kube::Result<()> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let now = k8s_openapi::jiff::Timestamp::now();
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": "Ready", "status": if ready { "True" } else { "False" },
        "lastProbeTime": null, "lastTransitionTime": crate::trigger::format(now),
    }]}});
    Api::<Pod>::namespaced(client.clone(), ns)
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    Ok(())
}

/// The probes a pod's task runs (to notice a changed spec) and the task.
type ProbeTask = (Vec<(Container, Probe)>, tokio::task::JoinHandle<()>);

/// Probes the pods of one node. `run` until the future given completes.
pub struct Prober {
    client: Client,
    node: String,
}

impl Prober {
    pub fn new(client: Client, node: impl Into<String>) -> Prober {
        Prober {
            client,
            node: node.into(),
        }
    }

    /// Watches pods, keeps one probe task per pod of this node with a readiness probe, and
    /// stops them all when `shutdown` completes.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let api: Api<Pod> = Api::all(self.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut tasks: HashMap<String, ProbeTask> = HashMap::new();
        tokio::pin!(shutdown);
        loop {
            let ev = tokio::select! {
                _ = &mut shutdown => break,
                ev = stream.next() => ev,
            };
            let Some(ev) = ev else { break };
            let (pods, deleted): (Vec<Pod>, Vec<Pod>) = match ev {
                Ok(Event::Apply(p) | Event::InitApply(p)) => (vec![p], vec![]),
                Ok(Event::Delete(p)) => (vec![], vec![p]),
                _ => continue,
            };
            for p in deleted {
                if let Some((_, h)) = tasks.remove(p.metadata.uid.as_deref().unwrap_or("")) {
                    h.abort();
                }
            }
            for p in pods {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                let mine = crate::pods::node_name(&p) == self.node && !crate::pods::is_terminal(&p);
                let probes = if mine { probed(&p) } else { Vec::new() };
                let has_ip = !crate::pods::pod_ips(&p).is_empty();
                match tasks.get(&uid) {
                    Some((current, _)) if *current == probes && has_ip => continue,
                    _ => {}
                }
                if let Some((_, h)) = tasks.remove(&uid) {
                    h.abort();
                }
                if !probes.is_empty() && has_ip {
                    let h = tokio::spawn(probe_pod(self.client.clone(), p.clone(), probes.clone()));
                    tasks.insert(uid, (probes, h));
                }
            }
        }
        for (_, (_, h)) in tasks {
            h.abort();
        }
    }
}

/// Probes one pod's containers until aborted, writing its Ready condition when it changes.
async fn probe_pod(client: Client, pod: Pod, probes: Vec<(Container, Probe)>) {
    let mut containers: Vec<(Target, Timing, Readiness)> = probes
        .iter()
        .map(|(c, p)| {
            let t = Timing::of(p);
            (target(&pod, c, p), t.clone(), Readiness::new(&t))
        })
        .collect();
    let delay = containers
        .iter()
        .map(|c| c.1.initial_delay)
        .min()
        .unwrap_or_default();
    let period = containers
        .iter()
        .map(|c| c.1.period)
        .min()
        .unwrap_or(Duration::from_secs(10));
    // What the pod says now; the condition is written only when the probes say otherwise.
    let mut reported = Some(crate::pods::is_ready(&pod));
    tokio::time::sleep(delay).await;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let outcomes = futures::future::join_all(
            containers
                .iter()
                .map(|(t, timing, _)| probe_once(t, timing.timeout)),
        )
        .await;
        let mut ready = true;
        for ((_, _, r), o) in containers.iter_mut().zip(outcomes) {
            ready &= r.record(o);
        }
        if reported != Some(ready) {
            match set_ready_condition(&client, &pod, ready).await {
                Ok(()) => reported = Some(ready),
                Err(e) => {
                    tracing::warn!(pod = ?pod.metadata.name, error = %e, "writing the Ready condition failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::net::TcpListener;

    fn timing(success: u32, failure: u32) -> Timing {
        Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn readiness_flips_only_after_the_thresholds() {
        let mut r = Readiness::new(&timing(2, 3));
        assert!(!r.record(Outcome::Success));
        assert!(r.record(Outcome::Success));
        assert!(r.record(Outcome::Failure));
        assert!(r.record(Outcome::Failure));
        assert!(r.record(Outcome::Success), "the failure run was broken");
        assert!(r.record(Outcome::Failure) && r.record(Outcome::Failure));
        assert!(!r.record(Outcome::Failure));
    }

    #[test]
    fn kubelet_defaults() {
        let p: Probe = serde_json::from_value(json!({"tcpSocket": {"port": 80}})).unwrap();
        assert_eq!(
            Timing::of(&p),
            Timing {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3
            }
        );
    }

    fn pod_with(probe: serde_json::Value) -> (Pod, Container, Probe) {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": "node1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}], "readinessProbe": probe}]},
            "status": {"podIP": "127.0.0.1"},
        }))
        .unwrap();
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        let p = c.readiness_probe.clone().unwrap();
        (pod, c, p)
    }

    #[test]
    fn targets_resolve_named_ports_and_the_pod_ip() {
        let (pod, c, p) = pod_with(json!({"httpGet": {"path": "/healthz", "port": "http"}}));
        assert_eq!(
            target(&pod, &c, &p),
            Target::Http {
                addr: "127.0.0.1:8080".parse().unwrap(),
                host: "127.0.0.1:8080".into(),
                path: "/healthz".into(),
                headers: vec![]
            }
        );
        let (pod, c, p) = pod_with(json!({"tcpSocket": {"port": 9000, "host": "127.0.0.2"}}));
        assert_eq!(
            target(&pod, &c, &p),
            Target::Tcp {
                addr: "127.0.0.2:9000".parse().unwrap()
            }
        );
        let (pod, c, p) = pod_with(json!({"exec": {"command": ["true"]}}));
        assert!(matches!(target(&pod, &c, &p), Target::Unsupported(_)));
    }

    /// An HTTP server answering every request with `status`.
    async fn http_server(status: u16) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(
                            format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                        )
                        .await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn http_probes_pass_on_2xx_3xx_and_fail_otherwise() {
        let t = |addr| Target::Http {
            addr,
            host: "x".into(),
            path: "/".into(),
            headers: vec![],
        };
        assert_eq!(
            probe_once(&t(http_server(200).await), Duration::from_secs(1)).await,
            Outcome::Success
        );
        assert_eq!(
            probe_once(&t(http_server(302).await), Duration::from_secs(1)).await,
            Outcome::Success
        );
        assert_eq!(
            probe_once(&t(http_server(503).await), Duration::from_secs(1)).await,
            Outcome::Failure
        );
    }

    #[tokio::test]
    async fn tcp_probes_need_a_listener_and_silent_servers_time_out() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        assert_eq!(
            probe_once(&Target::Tcp { addr }, Duration::from_secs(1)).await,
            Outcome::Success
        );
        // A listener that accepts but never answers an HTTP probe: the timeout fails it.
        let silent = Target::Http {
            addr,
            host: "x".into(),
            path: "/".into(),
            headers: vec![],
        };
        let started = std::time::Instant::now();
        assert_eq!(
            probe_once(&silent, Duration::from_millis(200)).await,
            Outcome::Failure
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(l);
        assert_eq!(
            probe_once(&Target::Tcp { addr }, Duration::from_secs(1)).await,
            Outcome::Failure
        );
    }
}
