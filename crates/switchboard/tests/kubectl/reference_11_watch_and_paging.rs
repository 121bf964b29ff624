//! Replay of reference 11: raw watch streams, watch with rv=0 / no rv / bookmarks / streaming
//! list / timeoutSeconds / a too-old rv (410), `limit`/`continue` paging, decoded continue
//! tokens, and expired tokens after compaction.
//!
//! The recording ran after scenarios 01-10, with 26 Services in `default` and one in `ns2`;
//! [`reference_state`] recreates those names (plain ClusterIP Services: the paging and watch
//! commands only look at names, labels and selectors). etcd compaction has no direct analogue:
//! Switchboard keeps its watch history in memory and starts it afresh at the current revision on
//! start, so a restart compacts everything before it — the 410 cases run after one.

use crate::transcript::{compare, skip, Replay};
use crate::Cluster;
use std::fmt::Write as _;

/// The Services in `default` when scenario 11 started (from its own listings), without the
/// built-in `kubernetes`.
const DEFAULT_SERVICES: &[&str] = &[
    "affinity-default",
    "dns-lb",
    "dns-np",
    "headless-noports",
    "nginx-alias",
    "nginx-alias-ports",
    "nginx-csa",
    "nginx-fixed-ip2",
    "nginx-headless",
    "nginx-headless-pnr",
    "nginx-lb",
    "nginx-lb-ip",
    "nginx-lb-local",
    "nginx-lb-nonp",
    "nginx-lb-src",
    "nginx-named",
    "nginx-np",
    "nginx-np-auto",
    "nginx-np-local",
    "nginx-np-x",
    "nginx-patch",
    "nginx-service",
    "nginx-service-x",
    "nginx-ssa",
    "turbo-gateway-lb",
];

fn reference_state(c: &Cluster) {
    let mut yaml = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns2\n");
    let services = DEFAULT_SERVICES
        .iter()
        .map(|n| ("default", *n))
        .chain([("ns2", "nginx-service")]);
    for (ns, name) in services {
        let _ = write!(
            yaml,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app: nginx\nspec:\n  selector:\n    app: nginx\n  ports:\n  - port: 80\n    protocol: TCP\n    targetPort: 80\n"
        );
    }
    c.apply(&yaml);
}

/// Watch events reduced to what needs no Service defaulting; BOOKMARKs are kept whole, and
/// lines that are not JSON (curl's exit code) pass as strings.
const WATCH_EVENT_SUMMARY: &str = r#"jq -cR '(fromjson? | if .type == "BOOKMARK" then . else {type, kind: .object.kind, name: .object.metadata.name, labels: .object.metadata.labels} end) // .'"#;

#[test]
fn reference_11_watch_and_list_paging() {
    let mut c = Cluster::start();
    reference_state(&c);
    let mut r = Replay::new("11-watch-and-list-paging.txt");
    r.run(
        &c,
        vec![
            compare(0, "tee ./rv").normalise(r"^\d+$", "<RV>"),
            // --- raw watches during create, label, patch, delete
            compare(1, "RV=$(cat ./rv)"),
            skip(2, "cat ./watch-svc.headers", "response headers: audit-id and HTTP/2 are not ours; content-type is checked in bad_input"),
            compare(3, "cat ./watch-svc.jsonl"),
            compare(4, "./watch-svc.jsonl").normalise(r#""rv":"\d+""#, r#""rv":"<RV>""#),
            skip(5, "cat ./watch-eps.jsonl", "needs the endpointslice controller, not wired into the server yet"),
            skip(6, "./watch-eps.jsonl", "needs the endpointslice controller, not wired into the server yet"),
            // --- watch flavours, reduced to event types, names and BOOKMARK objects
            compare(7, "resourceVersion=0&fieldSelector").through(WATCH_EVENT_SUMMARY),
            compare(8, "allowWatchBookmarks=true&fieldSelector").through(WATCH_EVENT_SUMMARY),
            compare(9, "sendInitialEvents=true&resourceVersionMatch=NotOlderThan").through(WATCH_EVENT_SUMMARY),
            compare(10, "watch=true&sendInitialEvents=true\""),
            // The server ends the watch after 3 s (real 3.000-3.999 s, as processes start slower under load).
            compare(11, "timeoutSeconds=3")
                .normalise(r"^real\s+0m3\.\d{3}s$", "real 3.x s")
                .normalise(r"^(user|sys)\s+\d+m\d+\.\d+s$", "${1} <T>"),
            skip(12, "timeoutSeconds=75", "waits 75 s for periodic bookmarks: too slow for this suite"),
            // 13 (a too-old rv) runs after the restart below.
            compare(14, "kubectl get svc nginx-service -w -v=6").through("grep GET"),
            // --- paging
            compare(15, "tee ./page1.json").through(
                r#"jq -c '{kind, apiVersion, metadata: (.metadata | .continue |= "<TOKEN>"), items: [.items[].metadata.name]}'"#,
            ),
            compare(16, "jq -r .metadata.continue ./page1.json | tr").normalise(r#""rv":\d+"#, r#""rv":<RV>"#),
            compare(17, "limit=2&continue=$(jq -r .metadata.continue ./page1.json)\" | jq \"{kind")
                .normalise(r#""continue": "[A-Za-z0-9_-]+""#, r#""continue": "<TOKEN>""#),
            compare(18, "while :; do").normalise(r"rv=\d+", "rv=<RV>"),
            compare(19, "--chunk-size=10").normalise(r"continue=[A-Za-z0-9_-]+", "continue=<TOKEN>"),
            compare(20, "continue=garbage"),
            compare(21, "limit=2&resourceVersion=0"),
            compare(22, "resourceVersionMatch=Exact\""),
            skip(23, "etcdctl", "etcd-specific"),
            compare(24, "compact-bump"),
            skip(25, "etcdctl", "etcd compaction; Switchboard's analogue is the restart below"),
        ],
    );
    // What etcd compaction did to the reference, a restart does to Switchboard: history before it
    // is gone. (Unlike kube-apiserver, there is no watch cache that still serves it.)
    c.server.restart();
    const SERVED_FROM_WATCH_CACHE: &str =
        "kube-apiserver served this from its watch cache after etcd compaction; Switchboard has no second history (410 instead)";
    r.run(
        &c,
        vec![
            skip(26, "jq -c \"if .kind", SERVED_FROM_WATCH_CACHE),
            skip(27, "head -c 1500", SERVED_FROM_WATCH_CACHE),
            skip(
                28,
                "resourceVersionMatch=Exact\" | head -c 1200",
                SERVED_FROM_WATCH_CACHE,
            ),
            skip(29, "cut -c1-400", SERVED_FROM_WATCH_CACHE),
            compare(30, "services/nginx-service?resourceVersion=$RV")
                .normalise(r#""rv":"\d+""#, r#""rv":"<RV>""#),
            compare(31, "base64 -w0"),
            compare(32, "./expired.json | tr"),
            compare(33, "resourceVersion=2&resourceVersionMatch=Exact&limit=2"),
            compare(34, "resourceVersionMatch=NotOlderThan&limit=2")
                .normalise(r#""continue":"[A-Za-z0-9_-]+""#, r#""continue":"<TOKEN>""#),
            // The status line, content type and the single ERROR event (the other headers differ).
            compare(13, "resourceVersion=1\"")
                .through(r"grep -i -E '^(HTTP/|content-type:|\{|\[curl)'")
                .normalise(r"^HTTP/[0-9.]+ (\d+)\s*$", "HTTP ${1}")
                .normalise(
                    r"too old resource version: 1 \(\d+\)",
                    "too old resource version: 1 (<OLDEST>)",
                ),
        ],
    );
    r.finish();
}
