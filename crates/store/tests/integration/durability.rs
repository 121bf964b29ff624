//! The SQLite backend: reopening, revisions across restarts, concurrent writers, kill -9.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use store::{Store, StoreError};

use crate::common::{key, next_event, rv, service};

#[tokio::test]
async fn a_reopened_store_has_every_object_and_its_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = Store::open(dir.path()).await.unwrap();
        for name in ["a", "b", "c"] {
            store.create(&key("ns", name), service(name)).await.unwrap();
        }
        store
            .update(&key("ns", "a"), service("a"), None)
            .await
            .unwrap();
        store.delete(&key("ns", "b"), None).await.unwrap();
        assert_eq!(store.current_revision(), 5);
        store.list("/registry/", None, None)
    };
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(
        store.current_revision(),
        5,
        "the delete's revision is kept too"
    );
    let after = store.list("/registry/", None, None);
    assert_eq!(after, before);
    let a = store.get(&key("ns", "a")).unwrap();
    assert_eq!(
        (a.create_revision, a.mod_revision, rv(&a.value)),
        (1, 4, "4")
    );
    // Revisions are never reused.
    let d = store.create(&key("ns", "d"), service("d")).await.unwrap();
    assert_eq!(d.mod_revision, 6);
}

#[tokio::test]
async fn after_a_restart_watches_start_at_the_current_revision() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).await.unwrap();
        store.create(&key("ns", "a"), service("a")).await.unwrap();
        store.create(&key("ns", "b"), service("b")).await.unwrap();
    }
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(
        store.watch("/registry/", Some(1)).unwrap_err(),
        StoreError::Compacted {
            requested: 1,
            oldest_available: 2
        }
    );
    assert!(store.list_at("/registry/", None, None, 1).is_err());
    let mut watch = store.watch("/registry/", Some(2)).unwrap();
    store.delete(&key("ns", "a"), None).await.unwrap();
    let event = next_event(&mut watch).await;
    assert_eq!(
        (event.revision(), event.key()),
        (3, key("ns", "a").as_str())
    );
}

#[tokio::test]
async fn a_directory_is_used_by_one_store_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let err = Store::open(dir.path()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Backend(ref m) if m.contains("in use")),
        "{err}"
    );
    drop(store);
    Store::open(dir.path()).await.unwrap();
}

#[tokio::test]
async fn the_database_is_one_inspectable_sqlite_file_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store.create(&key("ns", "a"), service("a")).await.unwrap();
    drop(store);
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let (name, mod_rev): (String, i64) = db
        .query_row(
            "SELECT json_extract(value, '$.metadata.name'), mod_rev FROM objects",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((name.as_str(), mod_rev), ("a", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_creators_all_land_with_distinct_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut revisions = Vec::new();
                for i in 0..150 {
                    let k = key("ns", &format!("t{t}-{i}"));
                    revisions.push(store.create(&k, service("x")).await.unwrap().mod_revision);
                }
                revisions
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let revisions = task.await.unwrap();
        assert!(
            revisions.windows(2).all(|w| w[0] < w[1]),
            "each task's writes are ordered"
        );
        all.extend(revisions);
    }
    let distinct: HashSet<_> = all.iter().copied().collect();
    assert_eq!(distinct.len(), 1200);
    assert_eq!(distinct, (1..=1200).collect());
    assert_eq!(store.list("/registry/", None, None).items.len(), 1200);
    drop(store);
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.list("/registry/", None, None).items.len(), 1200);
    assert_eq!(store.current_revision(), 1200);
}

const CHILD_DIR_ENV: &str = "STORE_TEST_CRASH_CHILD_DIR";

/// Not a test on its own: the child process of
/// `every_acknowledged_write_survives_kill_9`. It writes from 8 tasks until killed, printing
/// `ACK <key> <revision>` for each write the store acknowledged.
#[test]
fn crash_child_writes_until_killed() {
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
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        let k = key("crash", &format!("t{t}-{i:06}"));
                        let stored = store.create(&k, service("x")).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {k} {}", stored.mod_revision).unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// Reads one line of the child's output; false at its end.
fn read_ack(stdout: &mut impl BufRead, acked: &mut BTreeMap<String, u64>) -> bool {
    let mut line = String::new();
    if stdout.read_line(&mut line).unwrap() == 0 {
        return false;
    }
    // A line cut short by the kill was never fully acknowledged to us.
    if let Some(ack) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ACK ")) {
        let (k, revision) = ack.split_once(' ').unwrap();
        acked.insert(k.to_owned(), revision.parse().unwrap());
    }
    true
}

#[tokio::test]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "durability::crash_child_writes_until_killed",
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
    while acked.len() < 2000 && started.elapsed() < Duration::from_secs(20) {
        assert!(
            read_ack(&mut stdout, &mut acked),
            "the child stopped writing"
        );
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    while read_ack(&mut stdout, &mut acked) {}
    assert!(
        acked.len() >= 2000,
        "only {} writes acknowledged",
        acked.len()
    );

    let store = Store::open(dir.path()).await.unwrap();
    for (k, revision) in &acked {
        let stored = store
            .get(k)
            .unwrap_or_else(|| panic!("acknowledged {k} was lost"));
        assert_eq!(stored.mod_revision, *revision, "{k}");
    }
    let highest = acked.values().max().copied().unwrap();
    assert!(store.current_revision() >= highest);
    let next = store
        .create(&key("crash", "after"), service("x"))
        .await
        .unwrap();
    assert!(next.mod_revision > highest);
}
