//! Property tests: random writes against the store agree with a `BTreeMap` model, at every
//! revision (`list_at`) and through the watch.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use futures::future::{maybe_done, MaybeDone};
use proptest::prelude::*;
use serde_json::{json, Value};
use store::{EventType, Op, Revision, Store, StoreError, StoredObject};

const KEYS: [&str; 6] = [
    "/r/a/1", "/r/a/2", "/r/a/3", "/r/a-2/1", "/r/b/1", "/r/b/x/1",
];
const PREFIXES: [&str; 4] = ["", "/r/", "/r/a/", "/r/b/"];

#[derive(Debug, Clone, Copy)]
enum Pre {
    None,
    Current,
    Fixed(Revision),
}

#[derive(Debug, Clone)]
enum ModelOp {
    Create(usize, u8),
    Update(usize, u8, Pre),
    Delete(usize, Pre),
    /// Two ops applied all-or-nothing.
    Txn(Box<ModelOp>, Box<ModelOp>),
}

fn pre() -> impl Strategy<Value = Pre> {
    prop_oneof![
        Just(Pre::None),
        Just(Pre::Current),
        (0u64..40).prop_map(Pre::Fixed)
    ]
}

fn single_op() -> impl Strategy<Value = ModelOp> {
    let key = 0..KEYS.len();
    prop_oneof![
        4 => (key.clone(), any::<u8>()).prop_map(|(k, v)| ModelOp::Create(k, v)),
        3 => (key.clone(), any::<u8>(), pre()).prop_map(|(k, v, p)| ModelOp::Update(k, v, p)),
        2 => (key, pre()).prop_map(|(k, p)| ModelOp::Delete(k, p)),
    ]
}

fn model_op() -> impl Strategy<Value = ModelOp> {
    prop_oneof![
        9 => single_op(),
        1 => (single_op(), single_op()).prop_map(|(a, b)| ModelOp::Txn(Box::new(a), Box::new(b))),
    ]
}

/// key -> (data, create revision, mod revision)
type State = BTreeMap<String, (u8, Revision, Revision)>;

fn object(key: &str, data: u8) -> Value {
    json!({"metadata": {"name": key}, "data": data})
}

/// What the store should answer: per op (create, mod, data).
type Expected = Result<Vec<(Revision, Revision, u8)>, StoreError>;

struct Model {
    /// `history[r]` is the state at revision `r`.
    history: Vec<State>,
}

impl Model {
    fn state(&self) -> &State {
        self.history.last().unwrap()
    }

    fn precondition(state: &State, key: &str, pre: Pre) -> Option<Revision> {
        match pre {
            Pre::None => None,
            Pre::Current => Some(state.get(key).map_or(0, |e| e.2)),
            Pre::Fixed(r) => Some(r),
        }
    }

    /// Resolves `Pre::Current` against the state before the op (what a client would send).
    fn to_store_ops(&self, op: &ModelOp) -> Vec<Op> {
        let state = self.state();
        let one = |op: &ModelOp| match *op {
            ModelOp::Create(k, v) => Op::Create {
                key: KEYS[k].into(),
                object: object(KEYS[k], v),
            },
            ModelOp::Update(k, v, p) => Op::Update {
                key: KEYS[k].into(),
                object: object(KEYS[k], v),
                precondition: Self::precondition(state, KEYS[k], p),
            },
            ModelOp::Delete(k, p) => Op::Delete {
                key: KEYS[k].into(),
                precondition: Self::precondition(state, KEYS[k], p),
            },
            ModelOp::Txn(..) => unreachable!("no nested txns"),
        };
        match op {
            ModelOp::Txn(a, b) => vec![one(a), one(b)],
            op => vec![one(op)],
        }
    }

    fn apply(&mut self, ops: &[Op]) -> Expected {
        let mut state = self.state().clone();
        let mut revision = (self.history.len() - 1) as Revision;
        let mut snapshots = Vec::new();
        let mut results = Vec::new();
        for op in ops {
            let check = |state: &State, key: &String, pre: &Option<Revision>| {
                let Some(&(_, _, current)) = state.get(key) else {
                    return Err(StoreError::NotFound { key: key.clone() });
                };
                match *pre {
                    Some(expected) if expected != current => Err(StoreError::Conflict {
                        key: key.clone(),
                        expected,
                        current,
                    }),
                    _ => Ok(()),
                }
            };
            revision += 1;
            match op {
                Op::Create { key, object } => {
                    if state.contains_key(key) {
                        return Err(StoreError::AlreadyExists { key: key.clone() });
                    }
                    let data = object["data"].as_u64().unwrap() as u8;
                    state.insert(key.clone(), (data, revision, revision));
                    results.push((revision, revision, data));
                }
                Op::Update {
                    key,
                    object,
                    precondition,
                } => {
                    check(&state, key, precondition)?;
                    let data = object["data"].as_u64().unwrap() as u8;
                    let entry = state.get_mut(key).unwrap();
                    *entry = (data, entry.1, revision);
                    results.push((entry.1, revision, data));
                }
                Op::Delete { key, precondition } => {
                    check(&state, key, precondition)?;
                    let (data, create, _) = state.remove(key).unwrap();
                    results.push((create, revision, data));
                }
            }
            snapshots.push(state.clone());
        }
        self.history.extend(snapshots);
        Ok(results)
    }
}

fn summary(items: &[StoredObject]) -> State {
    items
        .iter()
        .map(|o| {
            assert_eq!(
                o.value["metadata"]["resourceVersion"],
                o.mod_revision.to_string()
            );
            let data = o.value["data"].as_u64().unwrap() as u8;
            (o.key.to_string(), (data, o.create_revision, o.mod_revision))
        })
        .collect()
}

fn under(state: &State, prefix: &str) -> State {
    state
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn answer(result: Result<Vec<StoredObject>, StoreError>) -> Expected {
    result.map(|objects| {
        objects
            .iter()
            .map(|o| {
                let data = o.value["data"].as_u64().unwrap() as u8;
                (o.create_revision, o.mod_revision, data)
            })
            .collect()
    })
}

type Pending<'a> = MaybeDone<Pin<Box<dyn Future<Output = Expected> + Send + 'a>>>;

/// Runs `ops` against `store` and checks every answer and every revision against the model.
/// All ops are queued before any answer is awaited, so the writer sees them in batches and
/// must decide each against the writes before it in the same batch.
async fn check_against_model(store: &Store, ops: &[ModelOp]) {
    let mut model = Model {
        history: vec![State::new()],
    };
    let mut expected = Vec::new();
    let mut pending: Vec<Pending<'_>> = Vec::new();
    for op in ops {
        let store_ops = model.to_store_ops(op);
        expected.push(model.apply(&store_ops));
        let future: Pin<Box<dyn Future<Output = Expected> + Send + '_>> =
            Box::pin(async move { answer(store.txn(store_ops).await) });
        pending.push(maybe_done(future));
    }
    // Poll each once, in order: that queues the requests in the model's order.
    for p in &mut pending {
        let _ = futures::poll!(Pin::new(p));
    }
    for (i, mut p) in pending.into_iter().enumerate() {
        (&mut p).await;
        let got = Pin::new(&mut p).take_output().unwrap();
        assert_eq!(got, expected[i], "op {i}: {:?}", ops[i]);
    }

    let current = (model.history.len() - 1) as Revision;
    assert_eq!(store.current_revision(), current);
    assert_eq!(summary(&store.list("", None, None).items), *model.state());

    for (revision, state) in model.history.iter().enumerate() {
        let revision = revision as Revision;
        for prefix in PREFIXES {
            let list = store.list_at(prefix, None, None, revision).unwrap();
            assert_eq!(list.revision, revision);
            assert_eq!(
                summary(&list.items),
                under(state, prefix),
                "{prefix} at {revision}"
            );
        }
        // Paging two at a time at that revision gives the same.
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store
                .list_at("/r/", after.as_deref(), Some(2), revision)
                .unwrap();
            paged.extend(page.items.iter().cloned());
            assert_eq!(page.remaining, under(state, "/r/").len() - paged.len());
            match page.continue_after() {
                Some(key) => after = Some(key.to_owned()),
                None => break,
            }
        }
        assert_eq!(summary(&paged), under(state, "/r/"));
    }

    // Replaying the watch from the beginning rebuilds the final state; from any revision and
    // prefix it yields exactly the changes since.
    for prefix in PREFIXES {
        for from in [0, current / 2, current] {
            let mut state = under(&model.history[from as usize], prefix);
            let want = under(model.state(), prefix);
            let expected_events = (from + 1..=current)
                .filter(|&r| {
                    let (before, after) =
                        (&model.history[r as usize - 1], &model.history[r as usize]);
                    under(before, prefix) != under(after, prefix)
                })
                .count();
            let mut watch = store.watch(prefix, Some(from)).unwrap();
            let mut last = from;
            for _ in 0..expected_events {
                let event = crate::common::next_event(&mut watch).await;
                assert!(event.revision() > last, "revision order");
                last = event.revision();
                let o = &event.object;
                let data = o.value["data"].as_u64().unwrap() as u8;
                match event.kind {
                    EventType::Added => {
                        assert!(event.prev.is_none());
                        assert!(state
                            .insert(o.key.to_string(), (data, o.create_revision, o.mod_revision))
                            .is_none());
                    }
                    EventType::Modified => {
                        let prev = summary(std::slice::from_ref(event.prev.as_ref().unwrap()));
                        assert_eq!(state.get(&*o.key), prev.get(&*o.key));
                        state.insert(o.key.to_string(), (data, o.create_revision, o.mod_revision));
                    }
                    EventType::Deleted => {
                        let prev = summary(std::slice::from_ref(event.prev.as_ref().unwrap()));
                        assert_eq!(state.remove(&*o.key).as_ref(), prev.get(&*o.key));
                    }
                }
            }
            assert_eq!(state, want, "watch {prefix:?} from {from}");
            assert_eq!(watch.progress_revision(), current);
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_writes_match_a_btreemap_model(ops in prop::collection::vec(model_op(), 1..40)) {
        runtime().block_on(async {
            let store = Store::in_memory();
            check_against_model(&store, &ops).await;
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn random_writes_on_sqlite_match_the_model_and_survive_reopening(
        ops in prop::collection::vec(model_op(), 1..40)
    ) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let before = {
                let store = Store::open(dir.path()).await.unwrap();
                check_against_model(&store, &ops).await;
                store.list("", None, None)
            };
            let store = Store::open(dir.path()).await.unwrap();
            assert_eq!(store.list("", None, None), before);
        });
    }
}
