//! A server for one test, kubectl with manifests on stdin, and polling until something shows.

use std::time::{Duration, Instant};
use test_support::{output_text, TestServer};

pub fn start_server() -> TestServer {
    // Plain log lines, so TestServer finds the listen address.
    std::env::set_var("NO_COLOR", "1");
    TestServer::start(env!("CARGO_BIN_EXE_switchboard"))
}

/// `kubectl apply -f -`, which must succeed.
pub fn apply(s: &TestServer, yaml: &str) {
    let o = s.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(
        o.status.success(),
        "kubectl apply failed: {}",
        output_text(&o)
    );
}

/// kubectl with `args`, which must succeed; stdout.
pub fn kubectl(s: &TestServer, args: &[&str]) -> String {
    let o = s.kubectl(args);
    assert!(
        o.status.success(),
        "kubectl {args:?} failed: {}",
        output_text(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Polls `f` until it returns Some, for up to 30 s (a generous bound for "eventually" on a
/// loaded 2-core machine, not a performance assertion).
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The EXTERNAL-IP column of `kubectl get svc NAME` once it matches `pred`.
pub fn external_ip(s: &TestServer, ns: &str, name: &str, pred: impl Fn(&str) -> bool) -> String {
    eventually(&format!("EXTERNAL-IP of {ns}/{name}"), || {
        let out = kubectl(s, &["get", "svc", name, "-n", ns, "--no-headers"]);
        let col = out.split_whitespace().nth(3)?.to_string();
        pred(&col).then_some(col)
    })
}

/// Waits for an Event on a Service with `reason` whose message contains `text`; returns the
/// `kubectl describe svc` output that shows it.
pub fn describe_shows_event(
    s: &TestServer,
    ns: &str,
    name: &str,
    reason: &str,
    text: &str,
) -> String {
    eventually(&format!("event {reason} {text:?} on {ns}/{name}"), || {
        let d = kubectl(s, &["describe", "svc", name, "-n", ns]);
        let events = d.split("Events:").nth(1)?;
        events
            .lines()
            .any(|l| l.contains(reason) && l.contains(text))
            .then_some(d)
    })
}

/// A LoadBalancer Service manifest.
pub fn lb_service(ns: &str, name: &str, port: u16, extra_meta: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
{extra_meta}
spec:
  type: LoadBalancer
  selector:
    app: {name}
  ports:
  - port: {port}
    targetPort: 8080
{extra_spec}
"
    )
}

pub fn namespace(s: &TestServer, ns: &str) {
    apply(
        s,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    );
}
