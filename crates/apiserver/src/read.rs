//! GET and LIST: served from the store's in-memory state, with label and field selectors,
//! `limit`/`continue` paging and resourceVersion semantics as kube-apiserver.

use crate::render::{list_response, object_response};
use crate::server::{Ctx, Shared};
use axum::body::Body;
use axum::http::{Response, StatusCode};
use base64::Engine;
use model::{ApiError, ResourceInfo};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub fn get(state: &Shared, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let res = ctx.path.resource;
    let name = ctx.path.name.as_deref().unwrap_or("");
    let key = res.key(ctx.path.namespace.as_deref(), name);
    let obj = state.store.get(&key).map(|o| o.value).ok_or_else(|| ApiError::not_found(res.group, res.plural, name))?;
    Ok(object_response(res, &obj, StatusCode::OK, ctx.render))
}

/// Label and field selectors of a request, parsed once.
pub struct Filter {
    labels: Option<model::selector::Selector>,
    fields: Option<model::fields::FieldSelector>,
    res: &'static ResourceInfo,
}

impl Filter {
    pub fn from_query(ctx: &Ctx) -> Result<Filter, ApiError> {
        let res = ctx.path.resource;
        let labels = match ctx.query.get("labelSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => Some(model::selector::Selector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?),
            None => None,
        };
        let mut field_str = ctx.query.get("fieldSelector").unwrap_or("").to_string();
        // A GET of one object as a watch is a watch with a name field selector.
        if let Some(name) = &ctx.path.name {
            if field_str.is_empty() {
                field_str = format!("metadata.name={name}");
            } else {
                field_str = format!("{field_str},metadata.name={name}");
            }
        }
        let fields = if field_str.trim().is_empty() {
            None
        } else {
            let fs = model::fields::FieldSelector::parse(&field_str).map_err(|e| ApiError::bad_request(e.to_string()))?;
            Some(fs.convert_for(res).map_err(|e| ApiError::bad_request(e.to_string()))?)
        };
        Ok(Filter { labels, fields, res })
    }

    pub fn is_everything(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(l) = &self.labels {
            if !l.matches(&model::meta::labels(obj)) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            if !f.matches_object(self.res, obj) {
                return false;
            }
        }
        true
    }
}

/// A decoded continue token: `{"v":"meta.k8s.io/v1","rv":N,"start":"/name\u0000"}`.
struct ContinueToken {
    rv: i64,
    /// Key relative to the list prefix, with the leading `/` and the trailing NUL.
    start: String,
}

fn encode_continue(rv: u64, prefix: &str, last_key: &str) -> String {
    let rel = last_key.strip_prefix(prefix).unwrap_or(last_key);
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("/{rel}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    let bad = |why: String| ApiError::bad_request(format!("invalid continue token: {why}"));
    // Go's base64.RawURLEncoding: no padding, lenient about trailing bits.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let raw = lenient.decode(token).map_err(|e| bad(format!("continue key is not valid: {e}")))?;
    let v: Value = patch::parse_json(&raw).map_err(|e| bad(format!("continue key is not valid: {e}")))?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into()));
    }
    let rv = match v.get("rv") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => return Err(bad("continue key is not valid: json: cannot unmarshal string into Go struct field continueToken.rv of type int64".into())),
    };
    let start = v.get("start").and_then(Value::as_str).unwrap_or("").to_string();
    if start.is_empty() || start.contains("..") {
        return Err(bad("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into()));
    }
    Ok(ContinueToken { rv, start })
}

fn list_options_invalid(field: &str, detail: &str) -> ApiError {
    let mut e = ApiError::invalid("meta.k8s.io", "ListOptions", "", vec![model::Cause::forbidden(field, detail)]);
    e.message = format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {detail}");
    e
}

/// Validates `resourceVersion`/`resourceVersionMatch`/`sendInitialEvents` combinations.
pub fn check_list_options(ctx: &Ctx, watch: bool) -> Result<(), ApiError> {
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let rvm = ctx.query.get("resourceVersionMatch").unwrap_or("");
    let streaming = watch && ctx.query.get("sendInitialEvents") == Some("true");
    if !rvm.is_empty() && rv.is_empty() && !streaming {
        return Err(list_options_invalid("resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided"));
    }
    if !matches!(rvm, "" | "Exact" | "NotOlderThan") {
        let mut e = ApiError::invalid("meta.k8s.io", "ListOptions", "", vec![model::Cause::not_supported("resourceVersionMatch", &json!(rvm), &["Exact", "NotOlderThan", ""])]);
        e.message = format!("ListOptions.meta.k8s.io \"\" is invalid: {}: {}", "resourceVersionMatch", e.details.as_ref().and_then(|d| d["causes"][0]["message"].as_str()).unwrap_or(""));
        return Err(e);
    }
    for int_param in ["limit", "timeoutSeconds"] {
        if let Some(v) = ctx.query.get(int_param).filter(|v| !v.is_empty()) {
            if v.parse::<i64>().is_err() {
                return Err(ApiError::bad_request(format!("strconv.ParseInt: parsing {v:?}: invalid syntax")));
            }
        }
    }
    if watch && ctx.query.get("sendInitialEvents").is_some() && rvm != "NotOlderThan" {
        return Err(list_options_invalid("resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"));
    }
    if !rv.is_empty() && rv.parse::<u64>().is_err() {
        return Err(ApiError::bad_request(format!("resourceVersion: Invalid value: \"{rv}\": must be a non-negative integer")));
    }
    Ok(())
}

pub async fn list(state: &Shared, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    check_list_options(ctx, false)?;
    let res = ctx.path.resource;
    let filter = Filter::from_query(ctx)?;
    let prefix = res.namespace_prefix(ctx.path.namespace.as_deref());
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let rvm = ctx.query.get("resourceVersionMatch").unwrap_or("");
    let mut limit = ctx.query.get("limit").and_then(|l| l.parse::<i64>().ok()).filter(|l| *l > 0).map(|l| l as usize);
    let mut start_after: Option<String> = None;
    let mut at_revision: Option<u64> = None;
    if let Some(token) = ctx.query.get("continue").filter(|t| !t.is_empty()) {
        if !rv.is_empty() && rv != "0" {
            return Err(ApiError::bad_request("specifying resource version is not allowed when using continue"));
        }
        let t = decode_continue(token)?;
        let rel = t.start.trim_end_matches('\u{0}').trim_start_matches('/');
        start_after = Some(format!("{prefix}{rel}"));
        if t.rv > 0 {
            at_revision = Some(t.rv as u64);
        }
    } else if rv == "0" && rvm != "Exact" {
        // "Any": served from the cache, and kube-apiserver ignores the limit then.
        limit = None;
    } else if !rv.is_empty() && rvm == "Exact" {
        at_revision = Some(rv.parse().unwrap_or(0));
    }

    let page_size = limit.unwrap_or(usize::MAX);
    let mut items: Vec<Arc<Value>> = Vec::new();
    let mut more;
    let mut cursor = start_after.clone();
    let revision;
    let mut remaining: Option<u64> = None;
    loop {
        let chunk = match at_revision {
            Some(r) => state.store.list_at(&prefix, cursor.as_deref(), limit.map(|l| l.max(1)), r).map_err(|e| {
                if ctx.query.get("continue").is_some() {
                    expired_continue(&prefix, cursor.as_deref().unwrap_or(""))
                } else {
                    let _ = e;
                    ApiError::gone("The resourceVersion for the provided list is too old.")
                }
            })?,
            None => state.store.list(&prefix, cursor.as_deref(), limit.map(|l| l.max(1))),
        };
        let fetched = chunk.items.len();
        let last_key = chunk.items.last().map(|o| o.key.to_string());
        let chunk_more = chunk.has_more();
        for o in chunk.items.into_iter().map(|o| o.value) {
            if filter.matches(&o) {
                items.push(o);
                if items.len() == page_size {
                    break;
                }
            }
        }
        more = chunk_more;
        at_revision.get_or_insert(chunk.revision);
        if items.len() >= page_size || !chunk_more || fetched == 0 {
            if items.len() >= page_size {
                let last = key_of(res, items.last().unwrap());
                more = chunk_more || last_key.as_deref() != Some(last.as_str());
                if filter.is_everything() && more {
                    remaining = Some(chunk.remaining as u64);
                }
            }
            revision = chunk.revision;
            break;
        }
        cursor = last_key;
    }
    let revision = at_revision.unwrap_or(revision);
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(revision.to_string()));
    if more && limit.is_some() {
        if let Some(last) = items.last() {
            meta.insert("continue".into(), json!(encode_continue(revision, &prefix, &key_of(res, last))));
            if let Some(r) = remaining {
                meta.insert("remainingItemCount".into(), json!(r));
            }
        }
    }
    let refs: Vec<&Value> = items.iter().map(|o| o.as_ref()).collect();
    Ok(list_response(res, &refs, meta, ctx.render))
}

fn expired_continue(prefix: &str, cursor_key: &str) -> ApiError {
    let rel = cursor_key.strip_prefix(prefix).unwrap_or(cursor_key);
    let token = json!({"v": "meta.k8s.io/v1", "rv": -1, "start": format!("{rel}\u{0}")});
    let mut e = ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
    e.metadata_continue = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string()));
    e
}

/// The storage key of a stored object.
pub fn key_of(res: &ResourceInfo, obj: &Value) -> String {
    res.key(model::meta::namespace(obj), model::meta::name(obj))
}
