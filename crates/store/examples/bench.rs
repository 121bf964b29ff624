//! Rough numbers for the store on this machine:
//! `cargo run -p store --release --example bench [DIR]` (a temporary directory by default).
//!
//! Creates/s with 1 and 8 concurrent clients on the SQLite backend (fsync per commit), then
//! list, paged list, list_at and get over 10,000 Service-sized objects.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use store::Store;

fn service(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "6f1c2f4e-8a63-4bd4-9a8e-1d2f3c4b5a69",
            "creationTimestamp": "2026-11-22T00:00:00Z",
            "labels": {"app": name, "tier": "web"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.43.12.34",
            "clusterIPs": ["10.43.12.34"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": name},
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    })
}

async fn creates(store: &Store, clients: usize, per_client: usize, tag: &str) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let store = store.clone();
            let tag = tag.to_owned();
            tokio::spawn(async move {
                for i in 0..per_client {
                    let name = format!("{tag}-{c}-{i}");
                    let key = format!("/registry/core/services/{tag}/{name}");
                    store.create(&key, service(&tag, &name)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (clients * per_client) as f64 / started.elapsed().as_secs_f64()
}

fn time<T>(what: &str, runs: u32, mut f: impl FnMut() -> T) {
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(f());
    }
    let each = started.elapsed() / runs;
    println!("{what:<52} {each:>10.2?}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::args()
        .nth(1)
        .map_or(temp.path().to_owned(), Into::into);
    let store = Store::open(&dir).await.unwrap();

    let one = creates(&store, 1, 2_000, "one").await;
    println!(
        "{:<52} {one:>10.0}",
        "creates/s, 1 client (SQLite, synchronous=FULL)"
    );
    let eight = creates(&store, 8, 1_250, "eight").await;
    println!("{:<52} {eight:>10.0}", "creates/s, 8 clients");
    let many = creates(&store, 64, 250, "many").await;
    println!("{:<52} {many:>10.0}", "creates/s, 64 clients");

    let prefix = "/registry/core/services/eight/";
    assert_eq!(store.list(prefix, None, None).items.len(), 10_000);
    time("list 10,000 objects", 20, || store.list(prefix, None, None));
    time("list 10,000 objects + serialise to JSON", 5, || {
        let list = store.list(prefix, None, None);
        let items: Vec<&Value> = list.items.iter().map(|o| &*o.value).collect();
        serde_json::to_vec(&items).unwrap().len()
    });
    time(
        "list first page of 500 (remaining count: 9,500)",
        100,
        || store.list(prefix, None, Some(500)),
    );
    let revision = store.current_revision();
    let page = store.list(prefix, None, Some(500));
    // Writes after the first page that list_at must undo.
    for i in 0..1_000 {
        let key = format!("{prefix}late-{i}");
        store.create(&key, service("eight", "late")).await.unwrap();
    }
    time(
        "list_at page 2 of 500, undoing 1,000 newer writes",
        100,
        || {
            store
                .list_at(prefix, page.continue_after(), Some(500), revision)
                .unwrap()
        },
    );
    let key = format!("{prefix}eight-3-77");
    time("get", 100_000, || store.get(&key));

    // Watch fan-out: 100 watchers, 2,000 writes; time until all have seen all.
    let watchers: Vec<_> = (0..100)
        .map(|_| {
            let mut watch = store.watch("/registry/core/services/fan/", None).unwrap();
            tokio::spawn(async move {
                for _ in 0..2_000 {
                    watch.next().await.unwrap().unwrap();
                }
            })
        })
        .collect();
    let rate = creates(&store, 8, 250, "fan").await;
    let written = Instant::now();
    for watcher in watchers {
        tokio::time::timeout(Duration::from_secs(60), watcher)
            .await
            .unwrap()
            .unwrap();
    }
    let lag = written.elapsed();
    println!(
        "{:<52} {rate:>10.0}",
        "creates/s, 8 clients, 100 watchers on the prefix"
    );
    println!(
        "{:<52} {lag:>10.2?}",
        "  all delivered this long after the last create"
    );

    let memory = Store::in_memory();
    let rate = creates(&memory, 8, 1_250, "mem").await;
    println!(
        "{:<52} {rate:>10.0}",
        "creates/s, 8 clients, memory backend (CPU bound)"
    );
}
