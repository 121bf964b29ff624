//! create / update / delete / txn semantics and revisions.

use serde_json::json;
use store::{Backend, Batch, Loaded, Op, Store, StoreError, StoreOptions};

use crate::common::{key, rv, service};

#[tokio::test]
async fn a_new_store_is_at_revision_zero_and_the_first_write_gets_one() {
    let store = Store::in_memory();
    assert_eq!(store.current_revision(), 0);
    let created = store
        .create(&key("default", "a"), service("a"))
        .await
        .unwrap();
    assert_eq!(created.create_revision, 1);
    assert_eq!(created.mod_revision, 1);
    assert_eq!(rv(&created.value), "1");
    assert_eq!(store.current_revision(), 1);
}

#[tokio::test]
async fn every_write_gets_the_next_revision_and_carries_it_as_resource_version() {
    let store = Store::in_memory();
    let a = store
        .create(&key("default", "a"), service("a"))
        .await
        .unwrap();
    let b = store
        .create(&key("default", "b"), service("b"))
        .await
        .unwrap();
    let a2 = store.update(&a.key, service("a"), None).await.unwrap();
    let deleted = store.delete(&b.key, None).await.unwrap();
    assert_eq!(
        [
            a.mod_revision,
            b.mod_revision,
            a2.mod_revision,
            deleted.mod_revision
        ],
        [1, 2, 3, 4]
    );
    assert_eq!(rv(&a2.value), "3");
    assert_eq!(a2.create_revision, 1, "an update keeps the create revision");
    assert_eq!(store.current_revision(), 4);
    let got = store.get(&a.key).unwrap();
    assert_eq!(got, a2);
}

#[tokio::test]
async fn get_returns_what_was_stored_with_its_resource_version() {
    let store = Store::in_memory();
    let k = key("default", "nginx");
    assert_eq!(store.get(&k), None);
    store.create(&k, service("nginx")).await.unwrap();
    let got = store.get(&k).unwrap();
    let mut expected = service("nginx");
    expected["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(*got.value, expected);
    assert_eq!(&*got.key, k.as_str());
}

#[tokio::test]
async fn a_stale_resource_version_in_the_object_is_overwritten() {
    let store = Store::in_memory();
    let mut object = service("a");
    object["metadata"]["resourceVersion"] = json!("999");
    let created = store.create(&key("default", "a"), object).await.unwrap();
    assert_eq!(rv(&created.value), "1");
    // Field order is kept: resourceVersion stays where the caller put it.
    let fields: Vec<_> = created.value["metadata"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(fields, ["name", "namespace", "resourceVersion"]);
}

#[tokio::test]
async fn an_object_without_metadata_gets_one() {
    let store = Store::in_memory();
    let created = store
        .create("/registry/x/y", json!({"data": 1}))
        .await
        .unwrap();
    assert_eq!(created.value["metadata"]["resourceVersion"], "1");
}

#[tokio::test]
async fn creating_an_existing_key_fails_with_already_exists() {
    let store = Store::in_memory();
    let k = key("default", "a");
    store.create(&k, service("a")).await.unwrap();
    let err = store.create(&k, service("a")).await.unwrap_err();
    assert_eq!(err, StoreError::AlreadyExists { key: k.clone() });
    assert_eq!(
        store.current_revision(),
        1,
        "a failed write takes no revision"
    );
}

#[tokio::test]
async fn updating_or_deleting_a_missing_key_fails_with_not_found() {
    let store = Store::in_memory();
    let k = key("default", "missing");
    let not_found = StoreError::NotFound { key: k.clone() };
    assert_eq!(
        store
            .update(&k, service("missing"), None)
            .await
            .unwrap_err(),
        not_found
    );
    assert_eq!(store.delete(&k, None).await.unwrap_err(), not_found);
    assert_eq!(store.current_revision(), 0);
}

#[tokio::test]
async fn a_precondition_that_is_not_the_current_revision_is_a_conflict() {
    let store = Store::in_memory();
    let k = key("default", "a");
    let v1 = store.create(&k, service("a")).await.unwrap();
    let v2 = store
        .update(&k, service("a"), Some(v1.mod_revision))
        .await
        .unwrap();
    let conflict = StoreError::Conflict {
        key: k.clone(),
        expected: v1.mod_revision,
        current: v2.mod_revision,
    };
    assert_eq!(
        store
            .update(&k, service("a"), Some(v1.mod_revision))
            .await
            .unwrap_err(),
        conflict
    );
    assert_eq!(
        store.delete(&k, Some(v1.mod_revision)).await.unwrap_err(),
        conflict
    );
    assert_eq!(store.get(&k).unwrap(), v2, "nothing changed");
    store.delete(&k, Some(v2.mod_revision)).await.unwrap();
    assert_eq!(store.get(&k), None);
}

#[tokio::test]
async fn delete_returns_the_last_state_at_the_delete_revision() {
    let store = Store::in_memory();
    let k = key("default", "a");
    let created = store.create(&k, service("a")).await.unwrap();
    store
        .create(&key("default", "b"), service("b"))
        .await
        .unwrap();
    let deleted = store.delete(&k, None).await.unwrap();
    assert_eq!(deleted.mod_revision, 3);
    assert_eq!(deleted.create_revision, created.create_revision);
    assert_eq!(rv(&deleted.value), "3");
    assert_eq!(deleted.value["spec"], created.value["spec"]);
    // A deleted key can be created again, with a new create revision.
    let again = store.create(&k, service("a")).await.unwrap();
    assert_eq!(again.create_revision, 4);
}

#[tokio::test]
async fn invalid_objects_and_keys_are_rejected_before_taking_a_revision() {
    let store = Store::in_memory();
    for (k, object) in [
        ("/registry/x", json!([1, 2])),
        ("/registry/x", json!({"metadata": "nope"})),
        ("", json!({})),
    ] {
        let err = store.create(k, object).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidObject { .. }), "{err}");
    }
    assert_eq!(store.current_revision(), 0);
}

#[tokio::test]
async fn a_txn_applies_all_ops_with_consecutive_revisions() {
    let store = Store::in_memory();
    let a = store
        .create(&key("default", "a"), service("a"))
        .await
        .unwrap();
    let results = store
        .txn(vec![
            Op::Create {
                key: key("default", "b"),
                object: service("b"),
            },
            Op::Update {
                key: key("default", "a"),
                object: service("a"),
                precondition: Some(a.mod_revision),
            },
            Op::Delete {
                key: key("default", "b"),
                precondition: None,
            },
        ])
        .await
        .unwrap();
    let revisions: Vec<_> = results.iter().map(|o| o.mod_revision).collect();
    assert_eq!(revisions, [2, 3, 4]);
    assert_eq!(store.current_revision(), 4);
    assert_eq!(store.get(&key("default", "b")), None);
    assert_eq!(store.txn(vec![]).await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_txn_with_a_failing_op_writes_nothing() {
    let store = Store::in_memory();
    store
        .create(&key("default", "a"), service("a"))
        .await
        .unwrap();
    let err = store
        .txn(vec![
            Op::Delete {
                key: key("default", "a"),
                precondition: None,
            },
            Op::Create {
                key: key("default", "c"),
                object: service("c"),
            },
            Op::Delete {
                key: key("default", "missing"),
                precondition: None,
            },
        ])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::NotFound {
            key: key("default", "missing")
        }
    );
    assert_eq!(store.current_revision(), 1);
    assert!(store.get(&key("default", "a")).is_some());
    assert!(store.get(&key("default", "c")).is_none());
}

#[tokio::test]
async fn a_store_handle_is_shared_by_its_clones() {
    let store = Store::in_memory();
    let other = store.clone();
    other
        .create(&key("default", "a"), service("a"))
        .await
        .unwrap();
    assert!(store.get(&key("default", "a")).is_some());
}

/// Fails every commit after the first `ok` ones.
struct FlakyBackend {
    ok: usize,
}

impl Backend for FlakyBackend {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        Ok(Loaded::default())
    }
    fn commit(&mut self, _batch: &Batch) -> Result<(), StoreError> {
        if self.ok == 0 {
            return Err(StoreError::Backend("disk on fire".into()));
        }
        self.ok -= 1;
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_commit_is_reported_and_leaves_the_state_untouched() {
    let store = Store::with_backend(FlakyBackend { ok: 1 }, StoreOptions::default()).unwrap();
    store
        .create(&key("default", "a"), service("a"))
        .await
        .unwrap();
    let mut watch = store.watch("/registry/", None).unwrap();
    let err = store
        .create(&key("default", "b"), service("b"))
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Backend("disk on fire".into()));
    assert_eq!(store.current_revision(), 1);
    assert_eq!(store.get(&key("default", "b")), None);
    crate::common::assert_quiet(&mut watch).await;
}
