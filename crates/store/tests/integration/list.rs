//! list, paging, and list_at past revisions.

use store::{Store, StoreError, StoreOptions};

use crate::common::{key, service};

fn keys(list: &store::ListResult) -> Vec<String> {
    list.items.iter().map(|o| o.key.to_string()).collect()
}

async fn store_with(names: &[(&str, &str)]) -> Store {
    let store = Store::in_memory();
    for (namespace, name) in names {
        store
            .create(&key(namespace, name), service(name))
            .await
            .unwrap();
    }
    store
}

#[tokio::test]
async fn a_list_is_sorted_by_key_and_reports_its_revision() {
    let store = store_with(&[("default", "c"), ("default", "a"), ("default", "b")]).await;
    let list = store.list("/registry/core/services/default/", None, None);
    assert_eq!(
        keys(&list),
        [
            key("default", "a"),
            key("default", "b"),
            key("default", "c")
        ]
    );
    assert_eq!(list.revision, 3);
    assert_eq!(list.remaining, 0);
    assert!(!list.has_more());
    assert_eq!(list.continue_after(), None);
}

#[tokio::test]
async fn a_namespace_prefix_does_not_match_a_namespace_that_starts_the_same() {
    let store = store_with(&[("default", "a"), ("default-2", "b"), ("defaul", "c")]).await;
    let list = store.list("/registry/core/services/default/", None, None);
    assert_eq!(keys(&list), [key("default", "a")]);
    // A prefix given without its trailing slash is treated as if it had one.
    let list = store.list("/registry/core/services/default", None, None);
    assert_eq!(keys(&list), [key("default", "a")]);
    let all = store.list("/registry/core/services/", None, None);
    assert_eq!(all.items.len(), 3);
    assert_eq!(store.list("", None, None).items.len(), 3);
    assert!(store.list("/registry/apps/", None, None).items.is_empty());
}

#[tokio::test]
async fn limit_and_start_after_page_through_a_prefix_with_a_remaining_count() {
    let names = ["a", "b", "c", "d", "e"];
    let store = store_with(&names.map(|n| ("ns", n))).await;
    store
        .create(&key("other", "z"), service("z"))
        .await
        .unwrap();
    let prefix = "/registry/core/services/ns/";
    let first = store.list(prefix, None, Some(2));
    assert_eq!(keys(&first), [key("ns", "a"), key("ns", "b")]);
    assert_eq!(first.remaining, 3);
    assert_eq!(first.continue_after(), Some(key("ns", "b").as_str()));
    let second = store.list(prefix, first.continue_after(), Some(2));
    assert_eq!(keys(&second), [key("ns", "c"), key("ns", "d")]);
    assert_eq!(second.remaining, 1);
    let last = store.list(prefix, second.continue_after(), Some(2));
    assert_eq!(keys(&last), [key("ns", "e")]);
    assert_eq!((last.remaining, last.continue_after()), (0, None));
    // limit 0 means no limit, as in Kubernetes.
    assert_eq!(store.list(prefix, None, Some(0)).items.len(), 5);
    // A start key before the prefix starts at the prefix; one after it gives nothing.
    assert_eq!(store.list(prefix, Some("/a"), None).items.len(), 5);
    assert!(store.list(prefix, Some("/z"), None).items.is_empty());
}

#[tokio::test]
async fn pages_continued_at_the_first_page_revision_ignore_later_writes() {
    let names = ["a", "b", "c", "d"];
    let store = store_with(&names.map(|n| ("ns", n))).await;
    let prefix = "/registry/core/services/ns/";
    let first = store.list(prefix, None, Some(2));
    assert_eq!(first.revision, 4);

    // Meanwhile: c changes, d goes, e and bb appear.
    let c = store.get(&key("ns", "c")).unwrap();
    let mut changed = (*c.value).clone();
    changed["spec"]["type"] = "NodePort".into();
    store.update(&key("ns", "c"), changed, None).await.unwrap();
    store.delete(&key("ns", "d"), None).await.unwrap();
    store.create(&key("ns", "e"), service("e")).await.unwrap();
    store.create(&key("ns", "bb"), service("bb")).await.unwrap();

    let rest = store
        .list_at(prefix, first.continue_after(), None, first.revision)
        .unwrap();
    assert_eq!(rest.revision, 4);
    assert_eq!(keys(&rest), [key("ns", "c"), key("ns", "d")]);
    assert_eq!(rest.items[0], c, "c as it was at revision 4");
    assert_eq!(rest.items[1].value["metadata"]["resourceVersion"], "4");

    let now = store.list(prefix, first.continue_after(), None);
    assert_eq!(
        keys(&now),
        [key("ns", "bb"), key("ns", "c"), key("ns", "e")]
    );
}

#[tokio::test]
async fn list_at_every_past_revision_shows_the_state_at_that_revision() {
    let store = Store::in_memory();
    let k = key("ns", "a");
    store.create(&k, service("a")).await.unwrap(); // 1
    store.update(&k, service("a"), None).await.unwrap(); // 2
    store.delete(&k, None).await.unwrap(); // 3
    store.create(&k, service("a")).await.unwrap(); // 4
    let at = |revision| {
        store
            .list_at("/registry/", None, None, revision)
            .unwrap()
            .items
            .iter()
            .map(|o| (o.create_revision, o.mod_revision))
            .collect::<Vec<_>>()
    };
    assert_eq!(at(0), []);
    assert_eq!(at(1), [(1, 1)]);
    assert_eq!(at(2), [(1, 2)]);
    assert_eq!(at(3), []);
    assert_eq!(at(4), [(4, 4)]);
}

#[tokio::test]
async fn list_at_a_compacted_or_future_revision_fails() {
    let options = StoreOptions {
        history_max_events: 3,
        ..StoreOptions::default()
    };
    let store = Store::with_backend(store::MemoryBackend, options).unwrap();
    for name in ["a", "b", "c", "d", "e"] {
        store.create(&key("ns", name), service(name)).await.unwrap();
    }
    assert_eq!(store.oldest_available_revision(), 2);
    assert!(store.list_at("/registry/", None, None, 2).is_ok());
    assert_eq!(
        store.list_at("/registry/", None, None, 1).unwrap_err(),
        StoreError::Compacted {
            requested: 1,
            oldest_available: 2
        }
    );
    assert_eq!(
        store.list_at("/registry/", None, None, 6).unwrap_err(),
        StoreError::FutureRevision {
            requested: 6,
            current: 5
        }
    );
}

#[tokio::test]
async fn a_list_snapshot_is_not_disturbed_by_writes_after_it() {
    let store = store_with(&[("ns", "a")]).await;
    let list = store.list("/registry/", None, None);
    store.delete(&key("ns", "a"), None).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].value["metadata"]["name"], "a");
}
