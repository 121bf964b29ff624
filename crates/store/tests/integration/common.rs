use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use store::{Event, Watch};

/// A Service-like object named `name`.
pub fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}]},
    })
}

pub fn key(namespace: &str, name: &str) -> String {
    format!("/registry/core/services/{namespace}/{name}")
}

pub fn rv(value: &Value) -> &str {
    value["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
}

/// The next event, failing the test if none comes within five seconds.
pub async fn next_event(watch: &mut Watch) -> Arc<Event> {
    tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("no event within 5s")
        .expect("watch ended")
        .expect("watch failed")
}

/// Fails if the watch yields anything within a short while.
pub async fn assert_quiet(watch: &mut Watch) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(50), watch.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}
