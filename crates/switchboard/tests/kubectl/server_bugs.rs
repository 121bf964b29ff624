//! Differences from kube-apiserver that these tests found and that the server still has. Replay
//! steps that show one are marked with [`crate::transcript::Step::known_server_bug`]: they are
//! still run and printed, do not fail the test, and fail it once they match (so the marker goes).
//! Run with `TRANSCRIPT_STRICT=1` to fail on them as well.

pub const OPENAPI_V2_ENUMS: &str = "/openapi/v2 lacks enums: ServiceSpec.type has no enum list and no \"Possible enum values\" text";
