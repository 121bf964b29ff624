//! Reference 10, first part: `nginx-patch`, created by client-side apply, then changed by
//! strategic merge, merge and JSON patches; the objects, errors and managedFields kube-apiserver
//! 1.36 produced.

use crate::harness::{client_side_apply_create, entry, nginx_manifest};
use serde_json::json;

const T0: &str = "2026-11-21T23:27:47Z";
const T1: &str = "2026-11-21T23:27:48Z";

/// kube-apiserver reports failed patch operations without causes.
fn assert_no_causes(e: &model::ApiError) {
    assert_eq!(e.details, Some(serde_json::Map::new()));
}

#[test]
fn nginx_patch_sequence() {
    let mut svc = client_side_apply_create(&nginx_manifest("nginx-patch", 80), T0);

    // Strategic merge patch: ports merge on key `port`, so a port is added — in front.
    svc.patch("strategic", r#"{"spec":{"ports":[{"name":"https","port":443,"targetPort":443}]}}"#, "kubectl-patch", T1).unwrap();
    assert_eq!(
        svc.ports(),
        json!([{"name":"https","port":443,"protocol":"TCP","targetPort":443},{"name":"nginx-port","port":80,"protocol":"TCP","targetPort":80}])
    );

    svc.patch("strategic", r#"{"spec":{"ports":[{"port":80,"targetPort":8080}],"selector":{"tier":"web"}}}"#, "kubectl-patch", T1).unwrap();
    assert_eq!(
        svc.ports(),
        json!([{"name":"https","port":443,"protocol":"TCP","targetPort":443},{"name":"nginx-port","port":80,"protocol":"TCP","targetPort":8080}])
    );
    assert_eq!(svc.obj["spec"]["selector"], json!({"app":"nginx","tier":"web"}));

    svc.patch("strategic", r#"{"spec":{"selector":{"tier":null}}}"#, "kubectl-patch", T1).unwrap();
    assert_eq!(svc.obj["spec"]["selector"], json!({"app":"nginx"}));

    svc.patch("strategic", r#"{"spec":{"ports":[{"port":443,"$patch":"delete"}]}}"#, "kubectl-patch", T1).unwrap();
    assert_eq!(svc.ports(), json!([{"name":"nginx-port","port":80,"protocol":"TCP","targetPort":8080}]));

    // The merge key is `port` alone: a UDP port 80 replaces the TCP one and keeps its targetPort.
    svc.patch("strategic", r#"{"spec":{"ports":[{"name":"udp","port":80,"protocol":"UDP"}]}}"#, "kubectl-patch", T1).unwrap();
    assert_eq!(svc.ports(), json!([{"name":"udp","port":80,"protocol":"UDP","targetPort":8080}]));

    // JSON merge patch: the list is replaced as a whole.
    svc.patch("merge", r#"{"spec":{"ports":[{"name":"metrics","port":9090}]}}"#, "kubectl-patch", T1).unwrap();
    assert_eq!(svc.ports(), json!([{"name":"metrics","port":9090,"protocol":"TCP","targetPort":9090}]));

    svc.patch("merge", r#"{"metadata":{"labels":{"tier":"backend","app":null}}}"#, "kubectl-patch", T1).unwrap();
    assert_eq!(svc.obj["metadata"]["labels"], json!({"tier":"backend"}));

    // JSON patch.
    svc.patch("json", r#"[{"op":"add","path":"/spec/ports/-","value":{"name":"http","port":80,"targetPort":"http"}}]"#, "kubectl-patch", T1).unwrap();
    svc.patch("json", r#"[{"op":"replace","path":"/spec/ports/0/port","value":9091},{"op":"add","path":"/metadata/labels/app","value":"nginx"}]"#, "kubectl-patch", T1).unwrap();
    assert_eq!(
        svc.ports(),
        json!([{"name":"metrics","port":9091,"protocol":"TCP","targetPort":9090},{"name":"http","port":80,"protocol":"TCP","targetPort":"http"}])
    );
    assert_eq!(svc.obj["metadata"]["labels"], json!({"app":"nginx","tier":"backend"}));

    let failed = svc.patch("json", r#"[{"op":"test","path":"/spec/type","value":"NodePort"},{"op":"remove","path":"/spec/ports/0"}]"#, "kubectl-patch", T1).unwrap_err();
    assert_eq!((failed.code, failed.reason.as_str()), (422, "Invalid"));
    assert_eq!(failed.message, "the server rejected our request due to an error in our request");
    assert_no_causes(&failed);

    svc.patch("json", r#"[{"op":"test","path":"/spec/type","value":"ClusterIP"},{"op":"remove","path":"/spec/ports/0"}]"#, "kubectl-patch", T1).unwrap();

    let out_of_range = svc.patch("json", r#"[{"op":"remove","path":"/spec/ports/5"}]"#, "kubectl-patch", T1).unwrap_err();
    assert_eq!(out_of_range.code, 422);
    assert_no_causes(&out_of_range);

    // An unknown field is accepted by the patch and dropped by decoding: no change.
    let before = svc.obj.clone();
    svc.patch("json", r#"[{"op":"replace","path":"/spec/nosuchfield","value":1}]"#, "kubectl-patch", T1).unwrap();
    assert_eq!(svc.obj["spec"], before["spec"]);
    assert_eq!(svc.obj["metadata"]["managedFields"], before["metadata"]["managedFields"]);

    let not_a_list = svc.patch("json", r#"{"not":"a list"}"#, "kubectl-patch", T1).unwrap_err();
    assert_eq!((not_a_list.code, not_a_list.reason.as_str()), (400, "BadRequest"));
    assert_eq!(not_a_list.message, "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp");
    // kubectl sends `-p 'not json'` as the YAML string it is, i.e. the JSON string "not json".
    let not_json = svc.patch("merge", r#""not json""#, "kubectl-patch", T1).unwrap_err();
    assert_eq!(not_json.message, "error decoding patch: json: cannot unmarshal string into Go value of type map[string]interface {}");

    // A patch that changes nothing changes no ownership.
    let before = svc.obj.clone();
    svc.patch("strategic", r#"{"spec":{"type":"ClusterIP"}}"#, "kubectl-patch", T1).unwrap();
    assert_eq!(svc.obj["metadata"]["managedFields"], before["metadata"]["managedFields"]);

    assert_eq!(svc.ports(), json!([{"name":"http","port":80,"protocol":"TCP","targetPort":"http"}]));
    assert_eq!(
        *svc.managed_fields(),
        json!([
            entry("kubectl-client-side-apply", "Update", Some(T0), json!({
                "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}, "f:labels": {}},
                "f:spec": {"f:internalTrafficPolicy": {}, "f:ports": {}, "f:sessionAffinity": {}, "f:type": {}}
            })),
            entry("kubectl-patch", "Update", Some(T1), json!({
                "f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}},
                "f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}}, "f:selector": {}}
            })),
        ])
    );
}

#[test]
fn client_side_apply_create_owns_defaulted_fields() {
    let svc = client_side_apply_create(&nginx_manifest("nginx-csa", 80), "2026-11-21T23:27:51Z");
    assert_eq!(
        svc.managed_fields().to_string(),
        json!([entry("kubectl-client-side-apply", "Update", Some("2026-11-21T23:27:51Z"), json!({
            "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}, "f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:internalTrafficPolicy": {}, "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
                "f:selector": {}, "f:sessionAffinity": {}, "f:type": {}}
        }))])
        .to_string()
    );
}
