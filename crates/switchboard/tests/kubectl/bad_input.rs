//! Bad input must get a 4xx `Status` with a clear message — never a 5xx, a hang or a crash —
//! and the server must go on serving. Each test sends its cases to one server and reports every
//! case that misbehaves, then checks with `kubectl get ns` that the server still answers.

use crate::{json, Cluster};
use serde_json::Value;

/// One raw HTTP request with curl (`-k`, admin token), its body from a file in the work dir.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    content_type: Option<&'a str>,
    body_file: Option<&'a str>,
}

fn get(path: &str) -> Request<'_> {
    Request {
        method: "GET",
        path,
        content_type: None,
        body_file: None,
    }
}

fn send<'a>(
    method: &'a str,
    path: &'a str,
    content_type: &'a str,
    body_file: &'a str,
) -> Request<'a> {
    Request {
        method,
        path,
        content_type: Some(content_type),
        body_file: Some(body_file),
    }
}

/// Collects the cases that misbehave, so one run reports all of them.
struct Cases<'a> {
    c: &'a Cluster,
    failures: Vec<String>,
}

impl<'a> Cases<'a> {
    fn new(c: &'a Cluster) -> Self {
        Cases {
            c,
            failures: Vec::new(),
        }
    }

    /// Sends `req` and checks for HTTP `code` (0: any 4xx) with a `Status` body of that code whose
    /// reason is `reason` (if given) and whose message contains `message` (and is not empty),
    /// then that the server still answers.
    fn expect(&mut self, what: &str, req: Request, code: u16, reason: &str, message: &str) {
        let ct = req
            .content_type
            .map(|t| format!("-H 'Content-Type: {t}'"))
            .unwrap_or_default();
        // Over HTTP/2, curl 7.88 reports a stream error (exit 92) when the server answers before
        // reading a large upload (kubectl, also on HTTP/2, gets the answer); HTTP/1.1 for those.
        let http = if req.body_file.is_some_and(|f| f.starts_with("big")) {
            "--http1.1"
        } else {
            ""
        };
        let data = req
            .body_file
            .map(|f| format!("--data-binary @{f}"))
            .unwrap_or_default();
        let run = self.c.sh(&format!(
            "rm -f ./response.body; curl -sk {http} --path-as-is --max-time 15 -o ./response.body -w '%{{http_code}}' -X {} -H \"Authorization: Bearer $TOKEN\" {ct} {data} \"$API{}\"; echo; cat ./response.body",
            req.method, req.path
        ));
        let (status_line, body) = run.out.split_once('\n').unwrap_or((run.out.as_str(), ""));
        let got: u16 = status_line.trim().parse().unwrap_or(0);
        let mut problems = Vec::new();
        if (code == 0 && !(400..500).contains(&got)) || (code != 0 && got != code) {
            let want = if code == 0 {
                "a 4xx".to_string()
            } else {
                code.to_string()
            };
            problems.push(format!("HTTP {got}, expected {want}"));
        }
        match serde_json::from_str::<Value>(body) {
            Ok(s) => {
                if s["kind"] != "Status" || s["apiVersion"] != "v1" || s["status"] != "Failure" {
                    problems.push("body is not a v1 Status with status Failure".into());
                }
                if s["code"].as_u64() != Some(u64::from(got)) {
                    problems.push(format!(
                        "Status code {} differs from the HTTP status {got}",
                        s["code"]
                    ));
                }
                if !reason.is_empty() && s["reason"] != reason {
                    problems.push(format!("reason {}, expected {reason:?}", s["reason"]));
                }
                let msg = s["message"].as_str().unwrap_or_default();
                if msg.is_empty() || !msg.contains(message) {
                    problems.push(format!("message {msg:?} does not contain {message:?}"));
                }
            }
            Err(_) => problems.push("body is not JSON".into()),
        }
        if !problems.is_empty() {
            let shown: String = body.chars().take(600).collect();
            self.failures.push(format!(
                "{what}: {} {}\n    {}\n    body: {shown}",
                req.method,
                req.path,
                problems.join("; ")
            ));
        }
        self.still_serving(what);
    }

    /// Checks a kubectl command fails (exit 1) with a server error, not a crash.
    fn expect_kubectl_error(&mut self, what: &str, args: &str, starts_with: &str) {
        let run = self.c.kubectl(args);
        if run.code != 1 || !run.out.starts_with(starts_with) {
            self.failures.push(format!("{what}: kubectl {args}\n    exit {} (expected 1), output: {:?} (expected to start with {starts_with:?})", run.code, run.out));
        }
        self.still_serving(what);
    }

    fn still_serving(&mut self, after: &str) {
        let run = self.c.sh("curl -sk --max-time 20 -o /dev/null -w '%{http_code}' -H \"Authorization: Bearer $TOKEN\" \"$API/api/v1/namespaces/default\"");
        if run.out != "200" {
            self.failures.push(format!(
                "after {after}: the server no longer answers (GET namespace default: {:?})",
                run.out
            ));
        }
    }

    fn finish(self) {
        self.c.assert_still_serving();
        assert!(
            self.failures.is_empty(),
            "{} bad-input cases misbehaved:\n\n{}",
            self.failures.len(),
            self.failures.join("\n\n")
        );
    }
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// A continue token as kube-apiserver encodes them: unpadded base64url of `json`.
fn continue_token(json: &str) -> String {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "printf '%s' '{json}' | base64 -w0 | tr '+/' '-_' | tr -d '='"
        ))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn malformed_and_mistyped_bodies_get_400() {
    let c = Cluster::start();
    let files: &[(&str, &str)] = &[
        (
            "truncated.json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"#,
        ),
        (
            "truncated.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
        ),
        (
            "tabs.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: tabs\n",
        ),
        (
            "wrong-version.json",
            r#"{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"x"}}"#,
        ),
        (
            "wrong-group.json",
            r#"{"apiVersion":"networking.k8s.io/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
        ),
        (
            "wrong-kind.json",
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#,
        ),
        (
            "unknown-field.json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"dta":{"a":"b"}}"#,
        ),
        (
            "wrong-type.json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":1}}"#,
        ),
        ("array.json", "[1,2,3]"),
        ("empty.json", ""),
        (
            "not-utf8.json",
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"\u{00ff}\"}}",
        ),
    ];
    for (name, content) in files {
        std::fs::write(c.work_dir().join(name), content).unwrap();
    }
    // Latin-1 bytes, invalid as UTF-8.
    std::fs::write(
        c.work_dir().join("not-utf8.json"),
        b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"\xff\"}}",
    )
    .unwrap();
    let mut cases = Cases::new(&c);
    cases.expect(
        "truncated JSON",
        send("POST", CONFIGMAPS, "application/json", "truncated.json"),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "truncated YAML",
        send("POST", CONFIGMAPS, "application/yaml", "truncated.yaml"),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "YAML indented with a tab",
        send("POST", CONFIGMAPS, "application/yaml", "tabs.yaml"),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "apiVersion v2 for a v1 resource",
        send("POST", CONFIGMAPS, "application/json", "wrong-version.json"),
        400,
        "BadRequest",
        "v2",
    );
    cases.expect(
        "a group that does not serve ConfigMaps",
        send("POST", CONFIGMAPS, "application/json", "wrong-group.json"),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "a Secret posted to configmaps",
        send("POST", CONFIGMAPS, "application/json", "wrong-kind.json"),
        400,
        "BadRequest",
        "Secret",
    );
    cases.expect(
        "unknown field with fieldValidation=Strict",
        send(
            "POST",
            &format!("{CONFIGMAPS}?fieldValidation=Strict"),
            "application/json",
            "unknown-field.json",
        ),
        400,
        "BadRequest",
        "unknown field \"dta\"",
    );
    cases.expect(
        "invalid fieldValidation",
        send(
            "POST",
            &format!("{CONFIGMAPS}?fieldValidation=Maybe"),
            "application/json",
            "unknown-field.json",
        ),
        0,
        "",
        "fieldValidation",
    );
    cases.expect(
        "a number where a string belongs",
        send("POST", CONFIGMAPS, "application/json", "wrong-type.json"),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "a JSON array",
        send("POST", CONFIGMAPS, "application/json", "array.json"),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "an empty body",
        send("POST", CONFIGMAPS, "application/json", "empty.json"),
        400,
        "BadRequest",
        "",
    );
    // kube-apiserver's decoder replaces invalid UTF-8, then the name fails validation (422).
    cases.expect(
        "invalid UTF-8",
        send("POST", CONFIGMAPS, "application/json", "not-utf8.json"),
        0,
        "",
        "",
    );
    cases.expect(
        "an unsupported content type",
        send("POST", CONFIGMAPS, "text/plain", "wrong-type.json"),
        415,
        "UnsupportedMediaType",
        "",
    );
    cases.expect(
        "malformed merge patch",
        send(
            "PATCH",
            "/api/v1/namespaces/default/services/kubernetes",
            "application/merge-patch+json",
            "truncated.json",
        ),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "JSON patch that is not a list",
        send(
            "PATCH",
            "/api/v1/namespaces/default/services/kubernetes",
            "application/json-patch+json",
            "wrong-kind.json",
        ),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "apply patch without fieldManager",
        send(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/x",
            "application/apply-patch+yaml",
            "unknown-field.json",
        ),
        422,
        "Invalid",
        "fieldManager",
    );
    // Through kubectl: an unknown field.
    let unknown = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict\ndta:\n  a: b\n";
    let run = c.kubectl_with("create", unknown);
    if run.code != 1
        || !run
            .out
            .contains("strict decoding error: unknown field \"dta\"")
    {
        cases.failures.push(format!(
            "kubectl create with an unknown field: exit {}, {:?}",
            run.code, run.out
        ));
    }
    cases.finish();
}

#[test]
fn oversized_and_deeply_nested_bodies_do_not_hurt_the_server() {
    let c = Cluster::start();
    // 10 MiB, well over kube-apiserver's 3 MiB request limit.
    c.sh(r#"python3 -c 'import json; print(json.dumps({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":"a"*10*1024*1024}}))' > big.json"#).ok();
    // 100000 nested arrays / objects, in JSON and YAML flow style.
    c.sh(r#"python3 -c 'print("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"deep\"},\"data\":" + "["*100000 + "]"*100000 + "}")' > deep-arrays.json"#).ok();
    c.sh(r#"python3 -c 'print("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"deep\"},\"data\":" + "{\"a\":"*100000 + "1" + "}"*100000 + "}")' > deep-objects.json"#).ok();
    c.sh(r#"python3 -c 'print("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata: " + "["*100000 + "]"*100000)' > deep-flow.yaml"#).ok();
    c.sh(r#"python3 -c 'print("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n" + "".join(" "*i + "a:\n" for i in range(1, 1000)))' > deep-block.yaml"#).ok();
    c.sh(r#"python3 -c 'print("[" * 100000 + "]" * 100000)' > deep-patch.json"#)
        .ok();
    let mut cases = Cases::new(&c);
    cases.expect(
        "a 10 MiB create",
        send("POST", CONFIGMAPS, "application/json", "big.json"),
        413,
        "RequestEntityTooLarge",
        "",
    );
    cases.expect(
        "a 10 MiB update",
        send(
            "PUT",
            &format!("{CONFIGMAPS}/big"),
            "application/json",
            "big.json",
        ),
        413,
        "RequestEntityTooLarge",
        "",
    );
    cases.expect(
        "a 10 MiB patch",
        send(
            "PATCH",
            &format!("{CONFIGMAPS}/big"),
            "application/merge-patch+json",
            "big.json",
        ),
        413,
        "RequestEntityTooLarge",
        "",
    );
    cases.expect_kubectl_error(
        "kubectl create of 10 MiB",
        "create -f big.json",
        "Error from server (RequestEntityTooLarge)",
    );
    for (what, ct, file) in [
        (
            "100000 nested JSON arrays",
            "application/json",
            "deep-arrays.json",
        ),
        (
            "100000 nested JSON objects",
            "application/json",
            "deep-objects.json",
        ),
        (
            "100000 nested YAML flow sequences",
            "application/yaml",
            "deep-flow.yaml",
        ),
        (
            "1000 nested YAML block mappings",
            "application/yaml",
            "deep-block.yaml",
        ),
    ] {
        cases.expect(
            what,
            send("POST", CONFIGMAPS, ct, file),
            400,
            "BadRequest",
            "",
        );
    }
    // The same depth in every kind of patch, against an object that exists.
    for ct in [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
        "application/apply-patch+yaml",
    ] {
        let path = "/api/v1/namespaces/default/services/kubernetes?fieldManager=deep";
        cases.expect(
            &format!("a deeply nested {ct} body"),
            send("PATCH", path, ct, "deep-arrays.json"),
            0,
            "",
            "",
        );
        cases.expect(
            &format!("a deeply nested bare {ct} document"),
            send("PATCH", path, ct, "deep-patch.json"),
            0,
            "",
            "",
        );
    }
    cases.finish();
}

#[test]
fn invalid_selectors_continue_tokens_and_query_parameters_get_400() {
    let c = Cluster::start();
    let mut cases = Cases::new(&c);
    for selector in [
        "a%20in%20b",
        "a%20in%20(b",
        "%3Da",
        "a%3D%3D%3Db",
        "!",
        "a%20notin%20",
        "a%3Db%2C",
        "Bad%20Key%3Dx",
        "a%3D-bad-",
    ] {
        cases.expect(
            &format!("labelSelector={selector}"),
            get(&format!("{CONFIGMAPS}?labelSelector={selector}")),
            400,
            "BadRequest",
            "",
        );
    }
    for selector in [
        "metadata.name",
        "data.mode%3Dfast",
        "metadata.name%3E3",
        "spec.nope%3D1",
        "%3Dx",
    ] {
        cases.expect(
            &format!("fieldSelector={selector}"),
            get(&format!("{CONFIGMAPS}?fieldSelector={selector}")),
            400,
            "BadRequest",
            "",
        );
    }
    // A field selector that configmaps do not support, as kubectl users meet it.
    cases.expect_kubectl_error(
        "kubectl --field-selector on an unsupported field",
        "get cm --field-selector data.mode=fast",
        "Error from server (BadRequest)",
    );
    cases.expect_kubectl_error("kubectl -l 'a in b'", "get cm -l 'a in b'", "");
    // Continue tokens: not base64, base64 of garbage, a token with a negative or non-numeric rv.
    let tokens = [
        "garbage".to_string(),
        "eyJ2Ijo".to_string(),
        continue_token("not json"),
        continue_token(r#"{"v":"other/v9","rv":5,"start":"a"}"#),
        continue_token(r#"{"v":"meta.k8s.io/v1","rv":5,"start":"../../secrets/"}"#),
        "%00%ff".to_string(),
    ];
    for token in &tokens {
        cases.expect(
            &format!("continue={token}"),
            get(&format!("{CONFIGMAPS}?limit=1&continue={token}")),
            400,
            "BadRequest",
            "continue",
        );
    }
    cases.expect(
        "an unknown resource",
        get("/api/v1/namespaces/default/frobnicators"),
        404,
        "NotFound",
        "",
    );
    cases.expect(
        "an unknown group",
        get("/apis/example.com/v1/things"),
        404,
        "NotFound",
        "",
    );
    cases.expect(
        "a path with ..",
        get("/api/v1/namespaces/default/configmaps/../../../secrets"),
        0,
        "",
        "",
    );
    cases.expect(
        "an encoded slash in a name",
        get("/api/v1/namespaces/default/configmaps/a%2Fb"),
        0,
        "",
        "",
    );
    let put = Request {
        method: "PUT",
        path: CONFIGMAPS,
        content_type: Some("application/json"),
        body_file: None,
    };
    cases.expect("PUT on a collection", put, 405, "MethodNotAllowed", "");
    let post_named = Request {
        method: "POST",
        path: "/api/v1/namespaces/default/configmaps/x",
        content_type: Some("application/json"),
        body_file: None,
    };
    cases.expect(
        "POST to a named object",
        post_named,
        405,
        "MethodNotAllowed",
        "",
    );
    cases.finish();
    let listed = json(
        c.kubectl("get --raw /api/v1/namespaces/default/configmaps?limit=1")
            .ok(),
    );
    assert_eq!(listed["kind"], "ConfigMapList");
}

/// kubectl validates a manifest of a kind the server does not serve against /openapi/v2 (as
/// protobuf), then reports that the kind is not served.
#[test]
#[ignore = "server: /openapi/v2 answers 406 to kubectl's protobuf Accept, so kubectl reports a validation error instead of the unserved kind"]
fn applying_a_kind_the_server_does_not_serve_names_the_kind() {
    let c = Cluster::start();
    for (api_version, kind) in [("v1", "Frobnicator"), ("apps/v1", "Deployment")] {
        let run = c.kubectl_with(
            "apply",
            &format!("apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: x\n"),
        );
        let want = format!("no matches for kind \"{kind}\" in version \"{api_version}\"");
        assert!(
            run.code == 1 && run.out.contains(&want),
            "kubectl apply of {kind}: exit {}, {:?} (expected {want:?})",
            run.code,
            run.out
        );
    }
    c.assert_still_serving();
}

/// Query parameters whose values do not parse: kube-apiserver answers 400 (422 for an unknown
/// resourceVersionMatch) rather than ignoring them.
#[test]
fn query_parameter_values_that_do_not_parse_get_4xx() {
    let c = Cluster::start();
    let mut cases = Cases::new(&c);
    let token = continue_token(r#"{"v":"meta.k8s.io/v1","rv":"x","start":"a"}"#);
    cases.expect(
        "a continue token whose rv is a string",
        get(&format!("{CONFIGMAPS}?limit=1&continue={token}")),
        400,
        "BadRequest",
        "continue",
    );
    cases.expect(
        "limit=abc",
        get(&format!("{CONFIGMAPS}?limit=abc")),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "resourceVersion=abc on a list",
        get(&format!("{CONFIGMAPS}?resourceVersion=abc")),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "resourceVersion=abc on a watch",
        get(&format!("{CONFIGMAPS}?watch=true&resourceVersion=abc")),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "timeoutSeconds=abc on a watch",
        get(&format!("{CONFIGMAPS}?watch=true&timeoutSeconds=abc")),
        400,
        "BadRequest",
        "",
    );
    cases.expect(
        "resourceVersionMatch=Sometimes",
        get(&format!(
            "{CONFIGMAPS}?resourceVersion=1&resourceVersionMatch=Sometimes"
        )),
        422,
        "Invalid",
        "",
    );
    cases.finish();
}
