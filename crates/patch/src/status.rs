//! The shapes of `Status` errors the patch and apply paths of kube-apiserver answer with, beyond
//! the ones `model::ApiError` already names.

use model::ApiError;
use serde_json::Map;

/// A plain Go `error` that reached the response writer: HTTP 500 with no reason
/// (`StatusReasonUnknown`, which kube omits from the body) and the error text as message.
pub(crate) fn unknown(message: impl Into<String>) -> ApiError {
    ApiError::new(500, "", message)
}

/// `errors.NewGenericServerResponse(422, ..., isUnexpectedResponse=false)`: what a failed JSON
/// patch operation or an unprocessable strategic merge patch produces. kube-apiserver drops the
/// underlying reason (no causes), so kubectl prints only "The request is invalid: the server
/// rejected our request due to an error in our request".
pub(crate) fn unprocessable(cause: impl Into<String>) -> ApiError {
    let _ = cause.into();
    let mut e = ApiError::new(422, "Invalid", "the server rejected our request due to an error in our request");
    e.details = Some(Map::new());
    e
}

/// `errors.NewRequestEntityTooLargeError`.
pub(crate) fn too_large(message: impl std::fmt::Display) -> ApiError {
    ApiError::request_entity_too_large(format!("Request entity too large: {message}"))
}
