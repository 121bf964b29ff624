//! Fixtures shared by the durability tests: clients built from the server's kubeconfig, a
//! deterministic payload generator, and a way to run the blocking `TestServer` calls.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;
use test_support::TestServer;

pub fn start_server() -> TestServer {
    TestServer::start(env!("CARGO_BIN_EXE_switchboard"))
}

/// A kube-rs client built the way a user's program builds it: from the kubeconfig file the
/// server wrote. Each call gives a client with its own connection pool.
pub async fn client(server: &TestServer) -> Client {
    let kc = Kubeconfig::read_from(&server.kubeconfig).expect("reading the server's kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig to kube::Config");
    Client::try_from(config).expect("kube client")
}

pub async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
}

/// `TestServer`'s start, stop and kill wait synchronously; inside the multi-threaded runtime
/// they must not stall the worker that drives the watchers.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// Fails the test instead of hanging it when the server stops answering.
pub async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no result within {secs} s"),
    }
}

pub fn rv_of(rv: Option<&String>) -> u64 {
    let rv = rv.expect("object without metadata.resourceVersion");
    rv.parse()
        .unwrap_or_else(|_| panic!("resourceVersion {rv:?} is not a revision number"))
}

/// A small deterministic PRNG (xorshift64*), so every run writes the same sequence.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The payload written for one (writer, sequence) pair: `len` characters that include
/// multi-byte UTF-8, quotes, backslashes and newlines, so a truncated or re-encoded value
/// cannot pass for the original.
pub fn payload(seed: u64, len: usize) -> String {
    const ALPHABET: &[&str] = &[
        "a", "b", "z", "0", "9", " ", "\"", "\\", "\n", "\t", "é", "✓", "𝄞", "{", "}", "<", "&",
        "'", "-", "_",
    ];
    let mut rng = Rng::new(seed);
    let mut s = String::with_capacity(len + 4);
    let mut chars = 0;
    while chars < len {
        s.push_str(ALPHABET[rng.below(ALPHABET.len() as u64) as usize]);
        chars += 1;
    }
    s
}

/// The JSON paths at which `a` and `b` differ, with both values.
pub fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff(
                    &format!("{path}.{k}"),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{path}: {} -> {}", short(a), short(b))),
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}
