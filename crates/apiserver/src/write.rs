//! Create, update, patch, delete and deletecollection: the generic write path every kind goes
//! through (decode, namespace lifecycle, strategy, admission, managed fields, store), with
//! optimistic concurrency as kube-apiserver's `GuaranteedUpdate`.

use model::admission::{AdmissionRequest, Operation};
use crate::decode::{admit_body, parse_body, FieldValidation};
use crate::negotiate::{body_type, BodyType};
use crate::read::{key_of, Filter};
use crate::render::{add_warnings, list_item, object_response};
use crate::server::{Ctx, Shared};
use crate::strategy;
use axum::body::Body;
use axum::http::{Response, StatusCode};
use model::{meta, ApiError, Cause, ResourceInfo};
use serde_json::{json, Value};
use std::sync::Arc;

/// How often an update without a client-given resourceVersion is retried on a write race.
const MAX_RETRIES: usize = 16;

fn now() -> String {
    meta::format_time(chrono::Utc::now())
}

fn store_error(res: &ResourceInfo, name: &str, e: store::StoreError) -> ApiError {
    match e {
        store::StoreError::AlreadyExists { .. } => ApiError::already_exists(res.group, res.plural, name),
        store::StoreError::NotFound { .. } => ApiError::not_found(res.group, res.plural, name),
        store::StoreError::Conflict { .. } => ApiError::stale(res.group, res.plural, name),
        other => ApiError::internal(other.to_string()),
    }
}

fn mod_revision(obj: &Value) -> Option<u64> {
    meta::resource_version(obj).and_then(|rv| rv.parse().ok())
}

/// The namespace must exist and not be terminating (kube's NamespaceLifecycle admission).
fn check_namespace(state: &Shared, res: &ResourceInfo, namespace: &str, name: &str) -> Result<(), ApiError> {
    let ns_res = model::lookup("", "v1", "namespaces").unwrap();
    let ns = state.store.get(&ns_res.key(None, namespace)).map(|o| o.value).ok_or_else(|| ApiError::not_found("", "namespaces", namespace))?;
    let terminating = meta::deletion_timestamp(&ns).is_some() || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    if terminating {
        return Err(ApiError::forbidden(
            res.group,
            res.plural,
            name,
            &format!("unable to create new content in namespace {namespace} because it is being terminated"),
        ));
    }
    Ok(())
}

/// kube's ServiceAccount admission: a pod's service account must exist. The `default` one is
/// made by the serviceaccount controller right after its namespace, so it is looked up again
/// for a while (kube-apiserver: 10 tries 100-200 ms apart; here about 3 s, because the
/// controllers start after the API server in the same process).
async fn check_service_account(state: &Shared, namespace: &str, pod: &Value) -> Result<(), ApiError> {
    use rand::Rng;
    let sa = pod.pointer("/spec/serviceAccountName").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("default");
    let sa_res = model::lookup("", "v1", "serviceaccounts").expect("serviceaccounts are served");
    let key = sa_res.key(Some(namespace), sa);
    let tries = if sa == "default" { 20 } else { 1 };
    for attempt in 0..tries {
        if attempt > 0 {
            let wait = rand::rng().random_range(100..200);
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
        if state.store.get(&key).is_some() {
            return Ok(());
        }
    }
    Err(ApiError::forbidden(
        "",
        "pods",
        meta::name(pod),
        &format!("error looking up service account {namespace}/{sa}: serviceaccount \"{sa}\" not found"),
    ))
}

/// Names generated from `generateName`: five characters from kube's alphabet.
fn generate_name(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    let max_prefix = 63 - 5;
    let p: String = prefix.chars().take(max_prefix).collect();
    format!("{p}{suffix}")
}

fn run_admission(state: &Shared, req: &AdmissionRequest<'_>, obj: &mut Value) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    for (i, a) in state.admission.iter().enumerate() {
        match a.admit(req, obj) {
            Ok(w) => warnings.extend(w),
            Err(e) => {
                // Plugins before this one reserved things for a write that won't happen.
                for earlier in &state.admission[..i] {
                    earlier.finish(req, obj, None);
                }
                return Err(e);
            }
        }
    }
    Ok(warnings)
}

fn ordered(obj: &Value) -> Value {
    let mut o = obj.clone();
    strategy::canonical_order(&mut o);
    o
}

fn run_defaulting(state: &Shared, req: &AdmissionRequest<'_>, obj: &mut Value) {
    for a in &state.admission {
        a.default(req, obj);
    }
}

fn finish_admission(state: &Shared, req: &AdmissionRequest<'_>, obj: &Value, stored: Option<&Value>) {
    for a in &state.admission {
        a.finish(req, obj, stored);
    }
}

fn invalid(res: &ResourceInfo, name: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::invalid(res.group, res.kind, name, causes)
}

fn validate_body_namespace(ctx: &Ctx, obj: &mut Value) -> Result<(), ApiError> {
    let res = ctx.path.resource;
    if !res.namespaced {
        meta::remove_meta(obj, "namespace");
        return Ok(());
    }
    let url_ns = ctx.path.namespace.as_deref().ok_or_else(|| {
        ApiError::method_not_allowed("the server does not allow this method on the requested resource".to_string())
    })?;
    match meta::namespace(obj) {
        Some(ns) if ns != url_ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            meta::set_meta(obj, "namespace", json!(url_ns));
            Ok(())
        }
    }
}

fn content_type(ctx: &Ctx) -> Result<BodyType, ApiError> {
    body_type(ctx.content_type.as_deref()).ok_or_else(|| {
        let mut e = ApiError::new(415, "UnsupportedMediaType", "415: Unsupported Media Type");
        e.details = Some(serde_json::Map::new());
        e
    })
}

fn respond(res: &ResourceInfo, obj: &Value, status: StatusCode, ctx: &Ctx, warnings: &[String]) -> Response<Body> {
    let mut obj = obj.clone();
    strategy::canonical_order(&mut obj);
    if meta::resource_version(&obj).is_none() {
        // Dry runs never reach the store: no placeholder resourceVersion in the answer.
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.shift_remove("resourceVersion");
        }
    }
    let mut r = object_response(res, &obj, status, ctx.render);
    add_warnings(&mut r, warnings);
    r
}

pub async fn create(state: &Shared, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let res = ctx.path.resource;
    if ctx.path.subresource.is_some() {
        return Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource"));
    }
    let bt = content_type(ctx)?;
    if !matches!(bt, BodyType::Json | BodyType::Yaml | BodyType::Protobuf) {
        return Err(content_type_error());
    }
    let fv = FieldValidation::parse(ctx.query.get("fieldValidation"))?;
    let dry_run = ctx.dry_run()?;
    let mut obj = parse_body(body, bt, res)?;
    let warnings = admit_body(&mut obj, res, fv, true)?;
    validate_body_namespace(ctx, &mut obj)?;
    let generate = meta::name(&obj).is_empty() && meta::meta_str(&obj, "generateName").is_some_and(|g| !g.is_empty());
    if generate {
        let name = generate_name(meta::meta_str(&obj, "generateName").unwrap());
        meta::set_meta(&mut obj, "name", json!(name));
    }
    admit_and_create(state, ctx, obj, warnings, dry_run, Some(&ctx.field_manager()), generate).await
}

/// The shared tail of every create (POST, PUT of a missing object, apply of a missing object):
/// metadata validation, namespace lifecycle, strategy, defaulting, managedFields (unless apply
/// already recorded them: `manager` is `None`), admission, then the store (retrying a generated
/// name that is taken).
async fn admit_and_create(
    state: &Shared,
    ctx: &Ctx,
    mut obj: Value,
    mut warnings: Vec<String>,
    dry_run: bool,
    manager: Option<&str>,
    generated_name: bool,
) -> Result<Response<Body>, ApiError> {
    let res = ctx.path.resource;
    let causes = model::validation::validate_object_meta(res, &obj);
    if !causes.is_empty() && !state.admission.iter().any(|a| a.validates_metadata_on_create(res)) {
        return Err(invalid(res, meta::name(&obj), causes));
    }
    if res.namespaced {
        check_namespace(state, res, ctx.path.namespace.as_deref().unwrap_or(""), meta::name(&obj))?;
    }
    strategy::prepare_create(res, &mut obj);
    let req = AdmissionRequest { resource: res, operation: Operation::Create, subresource: None, old: None, dry_run };
    run_defaulting(state, &req, &mut obj);
    if res.plural == "pods" {
        check_service_account(state, ctx.path.namespace.as_deref().unwrap_or(""), &obj).await?;
    }
    if let Some(manager) = manager {
        patch::record_update(res, None, &mut obj, &patch::Writer { manager, subresource: None, time: &now() });
    }
    warnings.extend(run_admission(state, &req, &mut obj)?);
    if dry_run {
        finish_admission(state, &req, &obj, None);
        return Ok(respond(res, &obj, StatusCode::CREATED, ctx, &warnings));
    }
    let mut attempt = 0;
    loop {
        let key = key_of(res, &obj);
        match state.store.create(&key, ordered(&obj)).await {
            Ok(stored) => {
                finish_admission(state, &req, &obj, Some(&stored.value));
                return Ok(respond(res, &stored.value, StatusCode::CREATED, ctx, &warnings));
            }
            Err(store::StoreError::AlreadyExists { .. }) if generated_name && attempt < 8 => {
                attempt += 1;
                let name = generate_name(meta::meta_str(&obj, "generateName").unwrap_or(""));
                meta::set_meta(&mut obj, "name", json!(name));
            }
            Err(e) => {
                finish_admission(state, &req, &obj, None);
                return Err(store_error(res, meta::name(&obj), e));
            }
        }
    }
}

fn content_type_error() -> ApiError {
    let mut e = ApiError::new(415, "UnsupportedMediaType", "415: Unsupported Media Type");
    e.details = Some(serde_json::Map::new());
    e
}

/// The outcome of preparing a new version of an existing object.
enum Next {
    /// Nothing changed: answer with the current object.
    Unchanged(Arc<Value>),
    /// Store this.
    Write(Value),
    /// The last finalizer is gone from a deleting object: remove it.
    Delete(Value),
}

/// Shared tail of update and patch: strategy, validation, admission, managed fields.
#[allow(clippy::too_many_arguments)]
fn prepare_next(
    state: &Shared,
    ctx: &Ctx,
    current: &Arc<Value>,
    mut new: Value,
    manager: &str,
    managed_by_apply: bool,
    dry_run: bool,
    warnings: &mut Vec<String>,
) -> Result<Next, ApiError> {
    let res = ctx.path.resource;
    let sub = ctx.path.subresource.as_deref();
    // Status writes may not add finalizers etc.; strategy resets what the subresource may not touch.
    strategy::prepare_update(res, current, &mut new, sub);
    let name = meta::name(current).to_string();
    if meta::deletion_timestamp(current).is_some() {
        let old_f = meta::finalizers(current);
        if meta::finalizers(&new).iter().any(|f| !old_f.contains(f)) {
            return Err(invalid(res, &name, vec![Cause::forbidden("metadata.finalizers", "no new finalizers can be added if the object is being deleted")]));
        }
    }
    let causes = model::validation::validate_object_meta_update(res, current, &new);
    if !causes.is_empty() {
        return Err(invalid(res, &name, causes));
    }
    let req = AdmissionRequest { resource: res, operation: Operation::Update, subresource: sub, old: Some(current), dry_run };
    run_defaulting(state, &req, &mut new);
    if !managed_by_apply {
        patch::record_update(res, Some(current), &mut new, &patch::Writer { manager, subresource: sub, time: &now() });
    }
    warnings.extend(run_admission(state, &req, &mut new)?);
    if strategy::semantically_equal(current, &new) {
        return Ok(Next::Unchanged(current.clone()));
    }
    // As kube's `shouldDeleteDuringUpdate`: only once the grace period is over (0); a pod
    // terminating gracefully keeps taking status updates.
    let grace = meta::metadata(&new).and_then(|m| m.get("deletionGracePeriodSeconds")).and_then(Value::as_i64).unwrap_or(0);
    if meta::deletion_timestamp(&new).is_some() && grace == 0 && meta::finalizers(&new).is_empty() && !pending_spec_finalizers(res, &new) {
        return Ok(Next::Delete(new));
    }
    Ok(Next::Write(new))
}

/// Namespaces wait for their own `spec.finalizers` too.
fn pending_spec_finalizers(res: &ResourceInfo, obj: &Value) -> bool {
    res.plural == "namespaces" && obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

/// Stores `next` for `current`, or reports a write race (`Ok(None)`) for the caller to retry.
async fn commit(state: &Shared, ctx: &Ctx, current: &Arc<Value>, next: Next, dry_run: bool) -> Result<Option<(Value, StatusCode)>, ApiError> {
    let res = ctx.path.resource;
    let name = meta::name(current).to_string();
    let key = key_of(res, current);
    let precondition = mod_revision(current);
    let req = AdmissionRequest { resource: res, operation: Operation::Update, subresource: ctx.path.subresource.as_deref(), old: Some(current), dry_run };
    match next {
        Next::Unchanged(c) => Ok(Some((c.as_ref().clone(), StatusCode::OK))),
        Next::Write(obj) if dry_run => {
            finish_admission(state, &req, &obj, None);
            Ok(Some((obj, StatusCode::OK)))
        }
        Next::Delete(obj) if dry_run => Ok(Some((obj, StatusCode::OK))),
        Next::Write(obj) => match state.store.update(&key, ordered(&obj), precondition).await {
            Ok(stored) => {
                finish_admission(state, &req, &obj, Some(&stored.value));
                Ok(Some((stored.value.as_ref().clone(), StatusCode::OK)))
            }
            Err(store::StoreError::Conflict { .. }) => {
                finish_admission(state, &req, &obj, None);
                Ok(None)
            }
            Err(e) => {
                finish_admission(state, &req, &obj, None);
                Err(store_error(res, &name, e))
            }
        },
        Next::Delete(obj) => match state.store.delete(&key, precondition).await {
            Ok(deleted) => {
                let del = AdmissionRequest { resource: res, operation: Operation::Delete, subresource: None, old: Some(current), dry_run };
                finish_admission(state, &del, &obj, Some(&deleted.value));
                Ok(Some((deleted.value.as_ref().clone(), StatusCode::OK)))
            }
            Err(store::StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(store_error(res, &name, e)),
        },
    }
}

pub async fn update(state: &Shared, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let res = ctx.path.resource;
    let url_name = ctx.path.name.clone().unwrap_or_default();
    let bt = content_type(ctx)?;
    if !matches!(bt, BodyType::Json | BodyType::Yaml | BodyType::Protobuf) {
        return Err(content_type_error());
    }
    let fv = FieldValidation::parse(ctx.query.get("fieldValidation"))?;
    let dry_run = ctx.dry_run()?;
    let mut obj = parse_body(body, bt, res)?;
    let mut warnings = admit_body(&mut obj, res, fv, true)?;
    validate_body_namespace(ctx, &mut obj)?;
    match meta::name(&obj) {
        "" => meta::set_meta(&mut obj, "name", json!(url_name)),
        n if n != url_name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({url_name})"
            )))
        }
        _ => {}
    }
    let client_rv = meta::resource_version(&obj).map(str::to_string);
    let key = res.key(ctx.path.namespace.as_deref(), &url_name);
    let manager = ctx.field_manager();
    for _ in 0..MAX_RETRIES {
        let Some(current) = state.store.get(&key).map(|o| o.value) else {
            if strategy::allow_create_on_update(res) && ctx.path.subresource.is_none() {
                meta::remove_meta(&mut obj, "resourceVersion");
                return create_from_update(state, ctx, obj, warnings, dry_run).await;
            }
            return Err(ApiError::not_found(res.group, res.plural, &url_name));
        };
        if let Some(rv) = &client_rv {
            if Some(rv.as_str()) != meta::resource_version(&current) {
                return Err(ApiError::stale(res.group, res.plural, &url_name));
            }
        }
        let next = prepare_next(state, ctx, &current, obj.clone(), &manager, false, dry_run, &mut warnings)?;
        match commit(state, ctx, &current, next, dry_run).await? {
            Some((stored, status)) => return Ok(respond(res, &stored, status, ctx, &warnings)),
            None if client_rv.is_some() => return Err(ApiError::stale(res.group, res.plural, &url_name)),
            None => continue,
        }
    }
    Err(ApiError::stale(res.group, res.plural, &url_name))
}

async fn create_from_update(state: &Shared, ctx: &Ctx, obj: Value, warnings: Vec<String>, dry_run: bool) -> Result<Response<Body>, ApiError> {
    admit_and_create(state, ctx, obj, warnings, dry_run, Some(&ctx.field_manager()), false).await
}

pub async fn patch(state: &Shared, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let res = ctx.path.resource;
    let name = ctx.path.name.clone().unwrap_or_default();
    let bt = content_type(ctx)?;
    let apply = matches!(bt, BodyType::ApplyYaml | BodyType::ApplyCbor);
    if !matches!(bt, BodyType::JsonPatch | BodyType::MergePatch | BodyType::StrategicMergePatch) && !apply {
        return Err(content_type_error());
    }
    let fv = FieldValidation::parse(ctx.query.get("fieldValidation"))?;
    let dry_run = ctx.dry_run()?;
    let manager = if apply {
        match ctx.query.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => {
                let mut e = ApiError::invalid("meta.k8s.io", "PatchOptions", "", vec![Cause::required("fieldManager", "is required for apply patch")]);
                e.message = "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into();
                return Err(e);
            }
        }
    } else {
        ctx.field_manager()
    };
    let force = ctx.query.flag("force");
    if force && !apply {
        return Err(ApiError::bad_request("force: Forbidden: may not be specified for non-apply patch"));
    }
    // Apply configurations are whole (partial) objects; the other patch types are decoded by
    // the patch functions themselves, which report kube-apiserver's decoding errors.
    let patch_doc: Value = if apply {
        let mut v = parse_body(body, bt, res)?;
        admit_body(&mut v, res, fv, true)?;
        v
    } else {
        Value::Null
    };
    let key = res.key(ctx.path.namespace.as_deref(), &name);
    for _ in 0..MAX_RETRIES {
        let mut warnings = Vec::new();
        let current = match state.store.get(&key).map(|o| o.value) {
            Some(c) => c,
            None if apply && ctx.path.subresource.is_none() => {
                return apply_create(state, ctx, &patch_doc, &manager, force, dry_run).await;
            }
            None => return Err(ApiError::not_found(res.group, res.plural, &name)),
        };
        let mut new = match bt {
            BodyType::JsonPatch => patch::json_patch(&current, body)?,
            BodyType::MergePatch => patch::merge_patch(&current, body)?,
            // Custom resources have no patch strategies: kube-apiserver refuses SMP on them.
            BodyType::StrategicMergePatch if schema::Schema::is_custom(res.definition) => return Err(content_type_error()),
            BodyType::StrategicMergePatch => patch::strategic_merge_patch(res, &current, body)?,
            _ => patch::apply(res, Some(&current), &patch_doc, &patch::Writer { manager: &manager, subresource: ctx.path.subresource.as_deref(), time: &now() }, force)?,
        };
        if !apply {
            warnings.extend(admit_body(&mut new, res, fv, false)?);
        }
        if meta::name(&new) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta::name(&new)
            )));
        }
        // A patch carries the resourceVersion it was computed against only if the client put one in.
        let client_rv = meta::resource_version(&new).map(str::to_string);
        if let Some(rv) = &client_rv {
            if Some(rv.as_str()) != meta::resource_version(&current) {
                return Err(ApiError::stale(res.group, res.plural, &name));
            }
        }
        let next = prepare_next(state, ctx, &current, new, &manager, apply, dry_run, &mut warnings)?;
        if let Some((stored, status)) = commit(state, ctx, &current, next, dry_run).await? {
            return Ok(respond(res, &stored, status, ctx, &warnings));
        }
    }
    Err(ApiError::stale(res.group, res.plural, &name))
}

async fn apply_create(state: &Shared, ctx: &Ctx, applied: &Value, manager: &str, force: bool, dry_run: bool) -> Result<Response<Body>, ApiError> {
    let res = ctx.path.resource;
    let mut obj = patch::apply(res, None, applied, &patch::Writer { manager, subresource: None, time: &now() }, force)?;
    validate_body_namespace(ctx, &mut obj)?;
    if meta::name(&obj).is_empty() {
        meta::set_meta(&mut obj, "name", json!(ctx.path.name.clone().unwrap_or_default()));
    }
    admit_and_create(state, ctx, obj, Vec::new(), dry_run, None, false).await
}

/// `DeleteOptions` fields we honour.
#[derive(Default)]
struct DeleteOptions {
    precondition_uid: Option<String>,
    precondition_rv: Option<String>,
    /// `gracePeriodSeconds` (body, else query): pods only.
    grace_period: Option<i64>,
}

fn delete_options(ctx: &Ctx, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let query_grace = ctx.query.get("gracePeriodSeconds").and_then(|g| g.parse().ok());
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(DeleteOptions { grace_period: query_grace, ..Default::default() });
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
    Ok(DeleteOptions {
        precondition_uid: v.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_string),
        precondition_rv: v.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(str::to_string),
        grace_period: v.get("gracePeriodSeconds").and_then(Value::as_i64).or(query_grace),
    })
}

/// Namespaces kube-apiserver refuses to delete.
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

pub async fn delete(state: &Shared, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let res = ctx.path.resource;
    let name = ctx.path.name.clone().unwrap_or_default();
    let opts = delete_options(ctx, body)?;
    let dry_run = ctx.dry_run()?;
    let key = res.key(ctx.path.namespace.as_deref(), &name);
    for _ in 0..MAX_RETRIES {
        let current = state.store.get(&key).map(|o| o.value).ok_or_else(|| ApiError::not_found(res.group, res.plural, &name))?;
        if let Some(uid) = &opts.precondition_uid {
            let have = meta::uid(&current).unwrap_or("");
            if uid != have {
                return Err(ApiError::conflict(res.group, res.plural, &name, &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {have}")));
            }
        }
        if let Some(rv) = &opts.precondition_rv {
            let have = meta::resource_version(&current).unwrap_or("");
            if rv != have {
                return Err(ApiError::conflict(res.group, res.plural, &name, &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}")));
            }
        }
        match delete_one(state, res, &current, dry_run, opts.grace_period).await? {
            Some((obj, immediate)) => return Ok(delete_response(res, &obj, immediate, ctx)),
            None => continue,
        }
    }
    Err(ApiError::stale(res.group, res.plural, &name))
}

fn delete_response(res: &ResourceInfo, obj: &Value, immediate: bool, ctx: &Ctx) -> Response<Body> {
    // Services, pods and namespaces answer with the object; other kinds with a Status.
    if !immediate || matches!(res.plural, "services" | "pods" | "namespaces") {
        return object_response(res, obj, StatusCode::OK, ctx.render);
    }
    let mut details = serde_json::Map::new();
    details.insert("name".into(), json!(meta::name(obj)));
    if !res.group.is_empty() {
        details.insert("group".into(), json!(res.group));
    }
    details.insert("kind".into(), json!(res.plural));
    if let Some(uid) = meta::uid(obj) {
        details.insert("uid".into(), json!(uid));
    }
    crate::render::json_response(StatusCode::OK, &model::errors::status_success(Some(Value::Object(details))), ctx.render.pretty)
}

/// Deletes one object: at once, or by marking it (finalizers, namespaces, pods on a node with a
/// grace period: see `graceful`). `grace_period` is the client's `gracePeriodSeconds`. Returns
/// the object and whether it is gone, or `None` on a write race.
pub async fn delete_one(state: &Shared, res: &'static ResourceInfo, current: &Arc<Value>, dry_run: bool, grace_period: Option<i64>) -> Result<Option<(Value, bool)>, ApiError> {
    let name = meta::name(current).to_string();
    let key = key_of(res, current);
    let precondition = mod_revision(current);
    if res.plural == "namespaces" {
        if PROTECTED_NAMESPACES.contains(&name.as_str()) {
            return Err(ApiError::forbidden("", "namespaces", &name, "this namespace may not be deleted"));
        }
        if meta::deletion_timestamp(current).is_some() {
            return Ok(Some((current.as_ref().clone(), false)));
        }
        let mut marked = current.as_ref().clone();
        meta::set_meta(&mut marked, "deletionTimestamp", json!(now()));
        marked.as_object_mut().unwrap().insert("status".into(), json!({"phase": "Terminating"}));
        if dry_run {
            return Ok(Some((marked, false)));
        }
        return match state.store.update(&key, marked, precondition).await {
            Ok(stored) => {
                let _ = state.namespace_deleted.send(name);
                Ok(Some((stored.value.as_ref().clone(), false)))
            }
            Err(store::StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(store_error(res, &name, e)),
        };
    }
    let req = AdmissionRequest { resource: res, operation: Operation::Delete, subresource: None, old: Some(current), dry_run };
    let mut obj = current.as_ref().clone();
    run_admission(state, &req, &mut obj)?;
    if res.plural == "pods" {
        match crate::graceful::decide(current, grace_period, chrono::Utc::now()) {
            crate::graceful::PodDelete::Now => {}
            crate::graceful::PodDelete::Pending => return Ok(Some((current.as_ref().clone(), false))),
            crate::graceful::PodDelete::Mark { timestamp, grace } => {
                let marked = crate::graceful::mark(current, &timestamp, grace);
                if dry_run {
                    return Ok(Some((marked, false)));
                }
                return match state.store.update(&key, marked, precondition).await {
                    Ok(stored) => {
                        let _ = state.pod_deleting.send(key);
                        Ok(Some((stored.value.as_ref().clone(), false)))
                    }
                    Err(store::StoreError::Conflict { .. }) => Ok(None),
                    Err(e) => Err(store_error(res, &name, e)),
                };
            }
        }
    }
    if !meta::finalizers(current).is_empty() {
        let grace = meta::metadata(current).and_then(|m| m.get("deletionGracePeriodSeconds")).and_then(Value::as_i64).unwrap_or(0);
        if meta::deletion_timestamp(current).is_some() && grace == 0 {
            return Ok(Some((current.as_ref().clone(), false)));
        }
        let mut marked = current.as_ref().clone();
        if meta::deletion_timestamp(current).is_none() {
            meta::set_meta(&mut marked, "deletionTimestamp", json!(now()));
        }
        meta::set_meta(&mut marked, "deletionGracePeriodSeconds", json!(0));
        if dry_run {
            return Ok(Some((marked, false)));
        }
        return match state.store.update(&key, marked, precondition).await {
            Ok(stored) => Ok(Some((stored.value.as_ref().clone(), false))),
            Err(store::StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(store_error(res, &name, e)),
        };
    }
    if dry_run {
        return Ok(Some((obj, true)));
    }
    match state.store.delete(&key, precondition).await {
        Ok(deleted) => {
            finish_admission(state, &req, &obj, Some(&deleted.value));
            Ok(Some((deleted.value.as_ref().clone(), true)))
        }
        Err(store::StoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(store_error(res, &name, e)),
    }
}

pub async fn delete_collection(state: &Shared, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let res = ctx.path.resource;
    let opts = delete_options(ctx, body)?;
    let dry_run = ctx.dry_run()?;
    let filter = Filter::from_query(ctx)?;
    let prefix = res.namespace_prefix(ctx.path.namespace.as_deref());
    let page = state.store.list(&prefix, None, None);
    let mut deleted = Vec::new();
    for obj in page.items.iter().map(|o| &o.value).filter(|o| filter.matches(o)) {
        let mut current = obj.clone();
        for _ in 0..MAX_RETRIES {
            match delete_one(state, res, &current, dry_run, opts.grace_period).await {
                Ok(Some((o, _))) => {
                    deleted.push(list_item(&o));
                    break;
                }
                Ok(None) => match state.store.get(&key_of(res, &current)).map(|o| o.value) {
                    Some(c) => current = c,
                    None => break,
                },
                Err(e) if e.code == 404 => break,
                Err(e) => return Err(e),
            }
        }
    }
    let list = json!({
        "kind": res.list_kind(),
        "apiVersion": res.api_version(),
        "metadata": {"resourceVersion": state.store.current_revision().to_string()},
        "items": deleted,
    });
    Ok(crate::render::json_response(StatusCode::OK, &list, ctx.render.pretty))
}
