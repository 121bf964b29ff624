//! watch: replay, live events, prefixes, compaction, progress, slow watchers.

use std::time::Duration;

use futures::StreamExt;
use store::{EventType, MemoryBackend, Store, StoreError, StoreOptions};

use crate::common::{assert_quiet, key, next_event, rv, service};

const SERVICES: &str = "/registry/core/services/";

fn small_history(events: usize) -> Store {
    let options = StoreOptions {
        history_max_events: events,
        ..StoreOptions::default()
    };
    Store::with_backend(MemoryBackend, options).unwrap()
}

#[tokio::test]
async fn a_watch_from_now_sees_only_later_writes() {
    let store = Store::in_memory();
    store
        .create(&key("ns", "old"), service("old"))
        .await
        .unwrap();
    let mut watch = store.watch(SERVICES, None).unwrap();
    assert_eq!(watch.progress_revision(), 1);
    assert_quiet(&mut watch).await;
    store
        .create(&key("ns", "new"), service("new"))
        .await
        .unwrap();
    let event = next_event(&mut watch).await;
    assert_eq!(
        (event.kind, event.key(), event.revision()),
        (EventType::Added, key("ns", "new").as_str(), 2)
    );
    assert_eq!(event.prev, None);
}

#[tokio::test]
async fn added_modified_deleted_carry_the_object_and_the_previous_object() {
    let store = Store::in_memory();
    let mut watch = store.watch(SERVICES, None).unwrap();
    let k = key("ns", "a");
    let created = store.create(&k, service("a")).await.unwrap();
    let mut changed = service("a");
    changed["metadata"]["labels"] = serde_json::json!({"app": "web"});
    let updated = store.update(&k, changed, None).await.unwrap();
    let deleted = store.delete(&k, None).await.unwrap();

    let added = next_event(&mut watch).await;
    assert_eq!(added.kind, EventType::Added);
    assert_eq!(added.object, created);

    let modified = next_event(&mut watch).await;
    assert_eq!(modified.kind, EventType::Modified);
    assert_eq!(modified.object, updated);
    assert_eq!(modified.prev.as_ref(), Some(&created));

    let gone = next_event(&mut watch).await;
    assert_eq!(gone.kind, EventType::Deleted);
    assert_eq!(gone.object, deleted);
    assert_eq!(
        rv(&gone.object.value),
        "3",
        "the delete's revision, as kube-apiserver reports"
    );
    assert_eq!(
        gone.object.value["metadata"]["labels"]["app"], "web",
        "the last state"
    );
    assert_eq!(gone.prev.as_ref(), Some(&updated));
}

#[tokio::test]
async fn a_watch_from_a_past_revision_replays_then_continues_live() {
    let store = Store::in_memory();
    for name in ["a", "b", "c"] {
        store.create(&key("ns", name), service(name)).await.unwrap();
    }
    let mut watch = store.watch(SERVICES, Some(1)).unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), 2);
    assert_eq!(next_event(&mut watch).await.revision(), 3);
    assert_quiet(&mut watch).await;
    store.delete(&key("ns", "a"), None).await.unwrap();
    let event = next_event(&mut watch).await;
    assert_eq!((event.kind, event.revision()), (EventType::Deleted, 4));
    // From 0 on a store that never compacted: everything.
    let mut all = store.watch(SERVICES, Some(0)).unwrap();
    for revision in 1..=4 {
        assert_eq!(next_event(&mut all).await.revision(), revision);
    }
}

#[tokio::test]
async fn a_watch_sees_only_its_prefix() {
    let store = Store::in_memory();
    let mut default = store
        .watch("/registry/core/services/default/", None)
        .unwrap();
    let mut no_slash = store
        .watch("/registry/core/services/default", None)
        .unwrap();
    store
        .create(&key("default-2", "x"), service("x"))
        .await
        .unwrap();
    store
        .create("/registry/core/pods/default/p", service("p"))
        .await
        .unwrap();
    store
        .create(&key("default", "a"), service("a"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut default).await.key(), key("default", "a"));
    assert_eq!(next_event(&mut no_slash).await.key(), key("default", "a"));
    assert_quiet(&mut default).await;
    assert_eq!(default.progress_revision(), 3);
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_fails() {
    let store = small_history(2);
    for name in ["a", "b", "c", "d"] {
        store.create(&key("ns", name), service(name)).await.unwrap();
    }
    assert_eq!(
        store.watch(SERVICES, Some(1)).unwrap_err(),
        StoreError::Compacted {
            requested: 1,
            oldest_available: 2
        }
    );
    let mut watch = store.watch(SERVICES, Some(2)).unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), 3);
    assert_eq!(next_event(&mut watch).await.revision(), 4);
}

#[tokio::test]
async fn history_older_than_the_age_limit_is_compacted_at_the_next_write() {
    let options = StoreOptions {
        history_max_age: Duration::from_millis(20),
        ..StoreOptions::default()
    };
    let store = Store::with_backend(MemoryBackend, options).unwrap();
    store.create(&key("ns", "a"), service("a")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    store.create(&key("ns", "b"), service("b")).await.unwrap();
    assert_eq!(store.oldest_available_revision(), 1);
    assert!(store.watch(SERVICES, Some(0)).is_err());
    let mut watch = store.watch(SERVICES, Some(1)).unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), 2);
}

#[tokio::test]
async fn a_watcher_that_falls_behind_the_history_ends_with_compacted() {
    let store = small_history(4);
    let mut slow = store.watch(SERVICES, None).unwrap();
    for i in 0..10 {
        store
            .create(&key("ns", &format!("s{i}")), service("s"))
            .await
            .unwrap();
    }
    let err = tokio::time::timeout(Duration::from_secs(5), slow.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Compacted {
            requested: 0,
            oldest_available: 6
        }
    );
    assert!(
        slow.next().await.is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test]
async fn writers_do_not_wait_for_a_watcher_that_never_reads() {
    let store = small_history(100);
    let _never_read = store.watch(SERVICES, None).unwrap();
    for i in 0..1000 {
        store
            .create(&key("ns", &format!("s{i}")), service("s"))
            .await
            .unwrap();
    }
    assert_eq!(store.current_revision(), 1000);
}

#[tokio::test]
async fn the_progress_revision_follows_writes_elsewhere_but_not_past_unread_events() {
    let store = Store::in_memory();
    let mut watch = store.watch("/registry/core/services/mine/", None).unwrap();
    store
        .create(&key("other", "a"), service("a"))
        .await
        .unwrap(); // 1
    store
        .create(&key("other", "b"), service("b"))
        .await
        .unwrap(); // 2
    assert_eq!(watch.progress_revision(), 2, "nothing of ours up to 2");
    store.create(&key("mine", "c"), service("c")).await.unwrap(); // 3
    store
        .create(&key("other", "d"), service("d"))
        .await
        .unwrap(); // 4
    assert_eq!(
        watch.progress_revision(),
        2,
        "revision 3 is ours and not yet yielded"
    );
    assert_eq!(next_event(&mut watch).await.revision(), 3);
    assert_eq!(watch.progress_revision(), 4);
}

#[tokio::test]
async fn a_watch_from_a_future_revision_starts_after_it() {
    let store = Store::in_memory();
    let mut watch = store.watch(SERVICES, Some(2)).unwrap();
    for name in ["a", "b", "c"] {
        store.create(&key("ns", name), service(name)).await.unwrap();
    }
    assert_eq!(next_event(&mut watch).await.revision(), 3);
}

#[tokio::test]
async fn watches_end_when_the_store_is_dropped() {
    let store = Store::in_memory();
    let mut watch = store.watch(SERVICES, None).unwrap();
    store.create(&key("ns", "a"), service("a")).await.unwrap();
    drop(store);
    assert_eq!(next_event(&mut watch).await.revision(), 1);
    let end = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(end.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_watchers_each_see_every_event_once_in_order() {
    let store = Store::in_memory();
    let watchers: Vec<_> = (0..4)
        .map(|_| {
            let mut watch = store.watch(SERVICES, None).unwrap();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while seen.len() < 400 {
                    seen.push(next_event(&mut watch).await.revision());
                }
                seen
            })
        })
        .collect();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    store
                        .create(&key("ns", &format!("w{w}-{i}")), service("x"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    for watcher in watchers {
        assert_eq!(watcher.await.unwrap(), (1..=400).collect::<Vec<_>>());
    }
}
