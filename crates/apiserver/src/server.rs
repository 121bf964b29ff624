//! The API server's shared state and the request dispatcher: authentication, then discovery,
//! OpenAPI, or a verb on a resource.

use model::admission::Admission;
use crate::negotiate::{choose_output, Output};
use crate::render::{self, error_response, json_response, IncludeObject, Render};
use crate::request::{parse_path, Query, ResourcePath, Target};
use crate::serve::ClientCertVerified;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, Response, StatusCode};
use model::ApiError;
use serde_json::{json, Value};
use std::sync::Arc;

/// Everything a request handler needs.
pub struct ApiServer {
    pub store: Arc<store::Store>,
    pub admin_token: String,
    /// `host:port` advertised in `/api`.
    pub server_address: String,
    /// Kind-specific admission (defaulting, validation, allocation), run on every write.
    pub admission: Vec<Arc<dyn Admission>>,
    /// Wakes the namespace finalizer when a namespace starts terminating.
    pub namespace_deleted: tokio::sync::mpsc::UnboundedSender<String>,
    /// Tells the graceful-deletion task (`graceful::run`) about a pod marked terminating (its key).
    pub pod_deleting: tokio::sync::mpsc::UnboundedSender<String>,
}

pub type Shared = Arc<ApiServer>;

/// A request after path and header parsing.
pub struct Ctx {
    pub path: ResourcePath,
    pub query: Query,
    pub render: Render,
    pub user_agent: String,
    pub content_type: Option<String>,
}

impl Ctx {
    /// The field manager of a write: `?fieldManager=`, else the user agent's first word (as kube-apiserver).
    pub fn field_manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            return m.to_string();
        }
        let ua = self.user_agent.split('/').next().unwrap_or("").trim();
        if ua.is_empty() {
            "unknown".to_string()
        } else {
            ua.chars().take(128).collect()
        }
    }

    pub fn dry_run(&self) -> Result<bool, ApiError> {
        let v = self.query.all("dryRun");
        for d in &v {
            if *d != "All" {
                return Err(ApiError::bad_request(format!(
                    "dryRun: Unsupported value: \"{d}\": supported values: \"All\""
                )));
            }
        }
        Ok(!v.is_empty())
    }
}

pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "36",
        "emulationMajor": "1",
        "emulationMinor": "36",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "35",
        "gitVersion": concat!("v1.36.0-switchboard+", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH })
    })
}

fn authenticated(state: &ApiServer, req: &Request) -> bool {
    if req.extensions().get::<ClientCertVerified>().is_some_and(|c| c.0) {
        return true;
    }
    let Some(auth) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(token) = auth.strip_prefix("Bearer ").map(str::trim) else {
        return false;
    };
    constant_time_eq(token.as_bytes(), state.admin_token.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The single entry point for every HTTP request.
pub async fn dispatch(State(state): State<Shared>, req: Request) -> Response<Body> {
    let ua = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string);
    let query = Query::parse(req.uri().query());
    let pretty = match query.get("pretty") {
        Some(p) => p == "true" || p == "1",
        None => render::pretty_for_user_agent(ua.as_deref()),
    };
    let path = req.uri().path().to_string();
    // Health endpoints answer without credentials, as kube-apiserver's do for anonymous probes.
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return text(StatusCode::OK, "ok");
    }
    if !authenticated(&state, &req) {
        return error_response(&ApiError::unauthorized(), pretty);
    }
    match route(&state, req, &path, query, ua, pretty).await {
        Ok(r) => r,
        Err(e) => error_response(&e, pretty),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, "text/plain; charset=utf-8".parse().unwrap());
    r
}

async fn route(state: &Shared, req: Request, path: &str, query: Query, ua: Option<String>, pretty: bool) -> Result<Response<Body>, ApiError> {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(str::to_string);
    if path == "/version" || path == "/version/" {
        return Ok(json_response(StatusCode::OK, &version_info(), true));
    }
    if let Some(rest) = path.strip_prefix("/openapi/") {
        return crate::openapi::serve(rest, &query, req.headers());
    }
    let target = parse_path(path)?;
    let discovery = matches!(target, Target::LegacyVersions | Target::Groups);
    let output = choose_output(accept.as_deref(), discovery)?;
    let r = Render { output, pretty, include_object: IncludeObject::parse(query.get("includeObject"))? };
    match target {
        Target::LegacyVersions => Ok(discovery_response(
            if output == Output::AggregatedDiscovery { crate::discovery::aggregated(true) } else { crate::discovery::api_versions(&state.server_address) },
            output,
            pretty,
        )),
        Target::Groups => Ok(discovery_response(
            if output == Output::AggregatedDiscovery { crate::discovery::aggregated(false) } else { crate::discovery::api_group_list() },
            output,
            pretty,
        )),
        Target::Group(g) => Ok(json_response(StatusCode::OK, &crate::discovery::api_group(&g).unwrap_or(Value::Null), pretty)),
        Target::ResourceList { group, version } => {
            Ok(json_response(StatusCode::OK, &crate::discovery::api_resource_list(&group, &version), pretty))
        }
        Target::Resource(rp) => {
            let ctx = Ctx {
                path: rp,
                query,
                render: r,
                user_agent: ua.unwrap_or_default(),
                content_type: req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string),
            };
            resource(state, ctx, req).await
        }
    }
}

fn discovery_response(doc: Value, output: Output, pretty: bool) -> Response<Body> {
    let mut r = json_response(StatusCode::OK, &doc, pretty);
    if output == Output::AggregatedDiscovery {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList".parse().unwrap(),
        );
    }
    r
}

async fn resource(state: &Shared, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    let deprecated_endpoints = ctx.path.resource.plural == "endpoints" && ctx.path.resource.group.is_empty();
    let pretty = ctx.render.pretty;
    let mut resp = match verb(state, ctx, req).await {
        Ok(r) => r,
        // The warning goes with errors too (a `404` of a missing Endpoints carries it).
        Err(e) if deprecated_endpoints => error_response(&e, pretty),
        Err(e) => return Err(e),
    };
    if deprecated_endpoints {
        // kube-apiserver 1.33+ warns on every v1 Endpoints access.
        render::add_warnings(&mut resp, &["v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice".to_string()]);
    }
    Ok(resp)
}

async fn verb(state: &Shared, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    let has_name = ctx.path.name.is_some();
    let watch = ctx.path.watch_prefix || ctx.query.flag("watch");
    let res = ctx.path.resource;
    let verb_allowed = |v: &str| res.verbs.contains(&v);
    let not_allowed = || {
        ApiError::method_not_allowed("the server does not allow this method on the requested resource")
            .with_details("", "")
    };
    match (method, has_name) {
        (Method::GET, false) if watch => crate::watch::watch(state, ctx).await,
        (Method::GET, false) => crate::read::list(state, &ctx).await,
        (Method::GET, true) if watch => crate::watch::watch(state, ctx).await,
        (Method::GET, true) => crate::read::get(state, &ctx),
        (Method::POST, false) => {
            let body = read_body(req).await?;
            crate::write::create(state, &ctx, &body).await
        }
        (Method::PUT, true) => {
            let body = read_body(req).await?;
            crate::write::update(state, &ctx, &body).await
        }
        (Method::PATCH, true) => {
            let body = read_body(req).await?;
            crate::write::patch(state, &ctx, &body).await
        }
        (Method::DELETE, true) => {
            let body = read_body(req).await?;
            crate::write::delete(state, &ctx, &body).await
        }
        (Method::DELETE, false) if verb_allowed("deletecollection") => {
            let body = read_body(req).await?;
            crate::write::delete_collection(state, &ctx, &body).await
        }
        _ => Err(not_allowed()),
    }
}

async fn read_body(req: Request) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt;
    // A declared length over the limit is refused before the body is polled: polling is what
    // makes hyper send `100 Continue`, after which the client is mid-upload when the 413 and
    // the connection's close arrive, and may never see the answer.
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > crate::decode::MAX_BODY_BYTES) {
        return Err(body_too_large());
    }
    let limited = http_body_util::Limited::new(req.into_body(), crate::decode::MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(body_too_large()),
        Err(e) => Err(ApiError::bad_request(format!("reading request body: {e}"))),
    }
}

fn body_too_large() -> ApiError {
    ApiError::request_entity_too_large(format!("Request entity too large: limit is {}", crate::decode::MAX_BODY_BYTES))
}
