//! SIGKILL in the middle of a stream of creates from 8 concurrent clients, twice.
//!
//! Each writer creates `c{writer}-{seq}` one after another with a deterministic payload
//! (multi-byte UTF-8, escapes, sizes from 200 characters to 64 Ki) and keeps the body of every
//! 201 it gets. After each restart: every acknowledged object is there exactly as the 201 said
//! (the whole object: uid, resourceVersion, timestamps, data); every object that is there is one
//! the test attempted, with exactly the payload it was written with; and per writer at most the
//! one create that was in flight at the kill may have landed without an acknowledgement.

use crate::support::{
    blocking, client, create_namespace, diff, payload, rv_of, start_server, within, Rng,
};
use kube::api::{ListParams, PostParams};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NS: &str = "kill9-writes";
const WRITERS: usize = 8;
/// Kill after this many acknowledged creates in a round (or after `ROUND_MAX`).
const KILL_AFTER_ACKS: usize = 300;
const ROUND_MAX: Duration = Duration::from_secs(5);

fn expected_data(writer: usize, seq: usize) -> Value {
    let seed = (writer as u64) << 32 | seq as u64;
    let len = if seq % 50 == 49 {
        64 * 1024
    } else {
        200 + Rng::new(seed).below(3000) as usize
    };
    json!({"payload": payload(seed, len), "seq": seq.to_string()})
}

fn name(writer: usize, seq: usize) -> String {
    format!("c{writer}-{seq:05}")
}

#[derive(Default)]
struct WriterLog {
    /// name -> the object in the 201 response.
    acked: BTreeMap<String, Value>,
    /// Sequence numbers `0..attempted` were sent.
    attempted: usize,
    /// Answers other than 201 while the server was up: each one is a server bug here.
    refused: Vec<String>,
}

async fn write_until_killed(
    client: Client,
    writer: usize,
    start_seq: usize,
    acks: Arc<AtomicUsize>,
) -> WriterLog {
    let mut log = WriterLog {
        attempted: start_seq,
        ..Default::default()
    };
    for seq in start_seq.. {
        let name = name(writer, seq);
        let body = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"writer": format!("c{writer}")}},
            "data": expected_data(writer, seq),
        });
        let req = kube::core::Request::new(format!("/api/v1/namespaces/{NS}/configmaps"))
            .create(&PostParams::default(), serde_json::to_vec(&body).unwrap())
            .unwrap()
            .map(Body::from);
        log.attempted = seq + 1;
        // A transport error is the kill: the outcome of this one create is unknown.
        let Ok(resp) = client.send(req).await else {
            break;
        };
        let status = resp.status().as_u16();
        let Ok(bytes) = resp.into_body().collect_bytes().await else {
            break;
        };
        if status != 201 {
            log.refused.push(format!(
                "{name}: {status} {}",
                String::from_utf8_lossy(&bytes)
            ));
            break;
        }
        let obj: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                log.refused
                    .push(format!("{name}: 201 with a body that is not JSON ({e})"));
                break;
            }
        };
        if obj["data"] != body["data"] {
            log.refused.push(format!(
                "{name}: the 201 body's data differs from what was sent"
            ));
            break;
        }
        log.acked.insert(name, obj);
        acks.fetch_add(1, Ordering::Relaxed);
    }
    log
}

/// Runs the writers until `KILL_AFTER_ACKS` creates are acknowledged, then SIGKILLs the server
/// and collects what each writer knows.
async fn round(server: &mut test_support::TestServer, next_seq: &[usize]) -> Vec<WriterLog> {
    let acks = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (writer, &start) in next_seq.iter().enumerate() {
        let c = client(server).await;
        tasks.push(tokio::spawn(write_until_killed(
            c,
            writer,
            start,
            acks.clone(),
        )));
    }
    let started = Instant::now();
    while acks.load(Ordering::Relaxed) < KILL_AFTER_ACKS
        && started.elapsed() < ROUND_MAX
        && !tasks.iter().all(|t| t.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    blocking(|| server.kill9());
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(
            within(60, "a writer after the kill", t)
                .await
                .expect("writer task"),
        );
    }
    let acked: usize = logs.iter().map(|l| l.acked.len()).sum();
    eprintln!(
        "killed after {:?} with {acked} creates acknowledged",
        started.elapsed()
    );
    assert!(acked >= WRITERS, "only {acked} creates were acknowledged before the kill; the test needs the writers to be mid-stream");
    logs
}

async fn list_all(client: &Client) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut lp = ListParams::default().limit(97);
    loop {
        let req = kube::core::Request::new(format!("/api/v1/namespaces/{NS}/configmaps"))
            .list(&lp)
            .unwrap();
        let page: Value = client.request(req).await.expect("listing configmaps");
        for item in page["items"].as_array().expect("items") {
            let name = item["metadata"]["name"].as_str().expect("name").to_string();
            assert!(
                out.insert(name.clone(), item.clone()).is_none(),
                "{name} listed twice"
            );
        }
        match page["metadata"]["continue"]
            .as_str()
            .filter(|c| !c.is_empty())
        {
            Some(c) => lp.continue_token = Some(c.to_string()),
            None => return out,
        }
    }
}

fn parse_name(name: &str) -> Option<(usize, usize)> {
    let (w, s) = name.strip_prefix('c')?.split_once('-')?;
    Some((w.parse().ok()?, s.parse().ok()?))
}

/// Checks the server's content against everything the writers know so far.
fn verify(
    stored: &BTreeMap<String, Value>,
    acked: &BTreeMap<String, Value>,
    attempted: &[usize],
    in_flight: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, obj) in acked {
        match stored.get(name) {
            None => problems.push(format!(
                "{name}: acknowledged with 201 (resourceVersion {}) but gone after the restart",
                obj["metadata"]["resourceVersion"]
            )),
            Some(s) => {
                // List items carry no apiVersion and kind (as kube-apiserver's); all else must match.
                let mut d = Vec::new();
                diff("", &without_type(obj), &without_type(s), &mut d);
                if !d.is_empty() {
                    problems.push(format!(
                        "{name}: differs from its 201 body after the restart: {}",
                        d.join("; ")
                    ));
                }
            }
        }
    }
    for (name, obj) in stored {
        let Some((writer, seq)) =
            parse_name(name).filter(|(w, s)| *w < attempted.len() && *s < attempted[*w])
        else {
            problems.push(format!("{name}: exists but the test never created it"));
            continue;
        };
        if obj["data"] != expected_data(writer, seq) {
            problems.push(format!(
                "{name}: half-written or corrupted: data is not what was sent: {}",
                brief(obj)
            ));
        }
        if !acked.contains_key(name) && !in_flight.contains(name) {
            problems.push(format!(
                "{name}: exists, but its create was neither acknowledged nor in flight at a kill"
            ));
        }
    }
    problems
}

fn without_type(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

fn brief(v: &Value) -> String {
    let mut v = v.clone();
    if let Some(p) = v["data"]["payload"].as_str() {
        let n = p.chars().count();
        let head: String = p.chars().take(24).collect();
        v["data"]["payload"] = json!(format!("{head:?}... ({n} chars)"));
    }
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_create_survives_kill9_from_8_concurrent_writers() {
    within(150, "kill -9 test", run()).await;
}

async fn run() {
    let mut server = blocking(start_server);
    create_namespace(&client(&server).await, NS).await;

    let mut acked: BTreeMap<String, Value> = BTreeMap::new();
    let mut next_seq = vec![0usize; WRITERS];
    let mut in_flight: BTreeSet<String> = BTreeSet::new();
    for r in 1..=2 {
        let logs = round(&mut server, &next_seq).await;
        let refused: Vec<String> = logs.iter().flat_map(|l| l.refused.clone()).collect();
        assert!(
            refused.is_empty(),
            "round {r}: creates refused while the server was up: {refused:#?}"
        );
        for (writer, log) in logs.into_iter().enumerate() {
            next_seq[writer] = log.attempted;
            // The last create each writer sent got no answer: it may or may not have landed.
            if log.attempted > 0 && !log.acked.contains_key(&name(writer, log.attempted - 1)) {
                in_flight.insert(name(writer, log.attempted - 1));
            }
            acked.extend(log.acked);
        }

        blocking(|| server.restart());
        let c = client(&server).await;
        let stored = list_all(&c).await;
        let problems = verify(&stored, &acked, &next_seq, &in_flight);
        assert!(
            problems.is_empty(),
            "round {r}: after kill -9 and restart, {} problems; the first ones:\n{}",
            problems.len(),
            problems[..problems.len().min(15)].join("\n")
        );
        eprintln!(
            "round {r}: {} acknowledged creates all intact; {} of {} creates in flight at the kills landed whole",
            acked.len(),
            stored.len() - acked.len(),
            in_flight.len()
        );

        // Reads one by one agree with the list.
        for (name, obj) in acked.iter().step_by(37) {
            let req = kube::core::Request::new(format!("/api/v1/namespaces/{NS}/configmaps"))
                .get(name, &Default::default())
                .unwrap();
            let got: Value = c
                .request(req)
                .await
                .unwrap_or_else(|e| panic!("GET {name}: {e}"));
            assert_eq!(&got, obj, "GET {name} after the restart");
        }
    }

    // The revision counter survived too: a new write is newer than everything acknowledged.
    let c = client(&server).await;
    let max_rv = acked
        .values()
        .map(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .max()
        .unwrap();
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "after-the-kills"}})).unwrap();
    let out = kube::Api::namespaced(c, NS)
        .create(&PostParams::default(), &cm)
        .await
        .expect("create after restart");
    let rv = rv_of(out.metadata.resource_version.as_ref());
    assert!(rv > max_rv, "a create after the restarts got resourceVersion {rv}, not above the largest acknowledged one ({max_rv})");
}
