//! 1,000 Services created by 8 concurrent clients through the admission and the real SQLite
//! store, then `kill -9` of the process and a restart: every acknowledged Service is there,
//! no ClusterIP or NodePort is held twice, and the rebuilt allocators reserve exactly what the
//! Services hold (no repair event).

use crate::harness::{allocations_by_holder, held_by_services, services_resource};
use model::admission::{Admission, AdmissionRequest, Operation};
use serde_json::{json, Value};
use services::{Resource, ServiceAdmission, ServiceConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::Store;

const CHILD_DIR_ENV: &str = "SERVICES_TEST_CRASH_CHILD_DIR";
const CLIENTS: usize = 8;
const PER_CLIENT: usize = 125;

fn service(name: &str, i: usize) -> Value {
    let spec = match i % 10 {
        0..=5 => json!({"selector": {"app": name}, "ports": [{"port": 80}]}),
        6..=8 => {
            json!({"type": "NodePort", "ports": [{"name": "tcp", "port": 53}, {"name": "udp", "protocol": "UDP", "port": 53}]})
        }
        _ => {
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 443}]})
        }
    };
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "creationTimestamp": "2026-11-21T23:26:38Z"},
           "spec": spec, "status": {"loadBalancer": {}}})
}

/// What the API server does for a create: admit, store, finish.
async fn create(adm: &ServiceAdmission, store: &Store, mut obj: Value) -> Result<u64, String> {
    let res = services_resource();
    let req = AdmissionRequest {
        resource: res,
        operation: Operation::Create,
        subresource: None,
        old: None,
        dry_run: false,
    };
    adm.default(&req, &mut obj);
    adm.admit(&req, &mut obj).map_err(|e| e.message)?;
    let key = res.key(Some("default"), obj["metadata"]["name"].as_str().unwrap());
    match store.create(&key, obj.clone()).await {
        Ok(stored) => {
            adm.finish(&req, &obj, Some(&stored.value));
            Ok(stored.mod_revision)
        }
        Err(e) => {
            adm.finish(&req, &obj, None);
            Err(e.to_string())
        }
    }
}

fn config() -> ServiceConfig {
    ServiceConfig {
        rng_seed: None,
        ..ServiceConfig::default()
    }
}

async fn stored_services(store: &Store) -> Vec<Value> {
    let prefix = services_resource().namespace_prefix(None);
    store
        .list(&prefix, None, None)
        .items
        .iter()
        .map(|o| o.value.as_ref().clone())
        .collect()
}

/// Not a test on its own: the child process of the `services_survive_kill_9` tests.
#[test]
fn crash_child_creates_services_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&dir).await.unwrap();
        let (adm, events) = ServiceAdmission::new(config(), stored_services(&store).await).unwrap();
        assert!(events.is_empty());
        let adm = Arc::new(adm);
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|t| {
                let (store, adm) = (store.clone(), adm.clone());
                tokio::spawn(async move {
                    for i in 0..PER_CLIENT {
                        let name = format!("c{t}-{i:04}");
                        let revision = create(&adm, &store, service(&name, i)).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {name} {revision}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        println!("DONE");
        std::io::stdout().flush().unwrap();
        // Wait for the kill.
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

#[tokio::test]
async fn services_survive_kill_9() {
    kill_child_then_restart(None).await;
}

#[tokio::test]
async fn services_survive_kill_9_in_the_middle_of_creates() {
    kill_child_then_restart(Some(400)).await;
}

/// Runs the child until it is done (or has `kill_after` creates acknowledged), kills it with
/// SIGKILL, and checks the store and a rebuilt admission.
async fn kill_child_then_restart(kill_after: Option<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::crash_child_creates_services_until_killed",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = BTreeMap::new();
    let started = Instant::now();
    let mut done = false;
    let enough = kill_after.unwrap_or(usize::MAX);
    while !done && acked.len() < enough && started.elapsed() < Duration::from_secs(50) {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // libtest prints the test's name without a newline before the first line of output.
        let line = line.find("ACK ").map_or(line.as_str(), |at| &line[at..]);
        if line.ends_with("DONE\n") {
            done = true;
        } else if let Some(ack) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ACK ")) {
            let (name, revision) = ack.split_once(' ').unwrap();
            acked.insert(name.to_string(), revision.parse::<u64>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    if kill_after.is_none() {
        assert!(done, "the child acknowledged only {} creates", acked.len());
        assert_eq!(acked.len(), CLIENTS * PER_CLIENT);
    } else {
        assert!(
            acked.len() >= enough,
            "the child acknowledged only {} creates",
            acked.len()
        );
    }

    let store = Store::open(dir.path()).await.unwrap();
    let services = stored_services(&store).await;
    let names: BTreeSet<&str> = services
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    for name in acked.keys() {
        assert!(
            names.contains(name.as_str()),
            "acknowledged {name} was lost"
        );
    }
    if kill_after.is_none() {
        assert_eq!(services.len(), CLIENTS * PER_CLIENT);
    }
    let held = held_by_services(&services);
    let ips = held
        .keys()
        .filter(|r| matches!(r, Resource::ClusterIp(_)))
        .count();
    assert_eq!(ips, services.len(), "one ClusterIP each, none shared");

    let (adm, events) = ServiceAdmission::new(config(), services.clone()).unwrap();
    assert!(events.is_empty(), "repair found problems: {events:#?}");
    assert_eq!(
        allocations_by_holder(&adm),
        held,
        "the rebuilt allocators reserve exactly what is stored"
    );

    // And after the restart nothing is handed out twice.
    let mut more = services;
    for i in 0..100 {
        let name = format!("after-{i:03}");
        create(&adm, &store, service(&name, i)).await.unwrap();
        more.push(
            store
                .get(&services_resource().key(Some("default"), &name))
                .unwrap()
                .value
                .as_ref()
                .clone(),
        );
    }
    assert_eq!(allocations_by_holder(&adm), held_by_services(&more));
}
