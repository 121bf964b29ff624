//! Differences from kube-apiserver that these tests found and that the server still has. Replay
//! steps that show one are marked with [`crate::transcript::Step::known_server_bug`]: they are
//! still run and printed, do not fail the test, and fail it once they match (so the marker goes).
//! Run with `TRANSCRIPT_STRICT=1` to fail on them as well.

pub const PRETTY_JSON_TRAILING_NEWLINE: &str =
    "indented JSON (what curl gets) ends with a newline; kube-apiserver's ends at the closing brace";

pub const RESPONSE_FIELD_ORDER: &str = "response JSON keeps the key order of the request (apiVersion before kind on a dry-run create; \
     status before spec after a protobuf create or a server-side apply); kube-apiserver writes kind, apiVersion, metadata, spec, status";

pub const BOOKMARK_OBJECT_SHAPE: &str =
    "a Service watch BOOKMARK object lacks the \"spec\":{} and \"status\":{\"loadBalancer\":{}} kube-apiserver serialises";

pub const STREAMING_LIST_WITHOUT_RESOURCE_VERSION: &str = "a watch with sendInitialEvents=true&resourceVersionMatch=NotOlderThan and no resourceVersion \
     (a streaming list from a consistent read) is refused with 422 \"resourceVersionMatch is forbidden unless resourceVersion is provided\"";

pub const JSON_PATCH_FAILURE_MESSAGE: &str = "a JSON patch whose test op fails or whose path does not exist answers 422 with the message \
     \": <json-patch error>\"; kube-apiserver's message is \"the server rejected our request due to an error in our request\"";

pub const EMPTY_SERVICE_NAME_MESSAGE: &str = "a Service named \"\" gets \"metadata.name: Required value: name or generateName is required\"; \
     kube-apiserver 1.36 fails inside ClusterIP allocation first (spec.clusterIPs ... spec.parentRef.name: Required value)";

pub const TERMINATING_NAMESPACE_GRACE_PERIOD: &str =
    "a Terminating namespace carries metadata.deletionGracePeriodSeconds: 0; kube-apiserver sets none on namespaces";

pub const OPENAPI_V2_ENUMS: &str = "/openapi/v2 lacks enums: ServiceSpec.type has no enum list and no \"Possible enum values\" text";

pub const GO_DECODER_MESSAGES: &str = "decode errors are worded differently from Go's: \"{not json\" gives \"key must be a string at line 1 column 2\" \
     (Go: invalid character 'n' looking for beginning of object key string); continue=garbage gives \"Invalid padding\" \
     (Go: invalid character '\\u0081' looking for beginning of value)";
