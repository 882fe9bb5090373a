//! HTTP: paths, verbs, query parameters, discovery, responses.

use std::{collections::HashMap, convert::Infallible, sync::Arc, time::Duration};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use crate::{
    ops::{Ops, Sub},
    patch::PatchType,
    render::{Rendering, list_body, render_object},
    resources::ResourceDef,
    selectors::{FieldSelector, FieldSupport, Filter, LabelSelector},
    server::Shared,
    status::ApiError,
    watch::{self, WatchParams},
};

/// The response body type.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn json_response(code: u16, body: Vec<u8>, content_type: &str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}

fn json_value(code: u16, value: &Value) -> Response<Body> {
    json_response(
        code,
        serde_json::to_vec(value).unwrap_or_default(),
        "application/json",
    )
}

/// A `Status` error response.
pub(crate) fn error_response(err: &ApiError) -> Response<Body> {
    json_value(err.code, &err.to_status())
}

/// Entry point of every request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Ok(error_response(&ApiError::bad_request(format!(
                "failed to read the request body: {e}"
            ))));
        }
    };
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let response = route(&shared, &parts.method, &path, &query, &parts.headers, body)
        .unwrap_or_else(|e| error_response(&e));
    tracing::trace!(method = %parts.method, %path, status = response.status().as_u16(), "request");
    Ok(response)
}

fn accept(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let parts = || RequestParts {
        method,
        query,
        headers,
        body: body.clone(),
    };
    let aggregated = accept(headers).contains("as=APIGroupDiscoveryList");
    let is_get = method == Method::GET;
    let registry = |f: &dyn Fn(&crate::resources::Registry) -> Option<Value>| {
        shared.store.with_registry(|r| f(r))
    };
    match segments.as_slice() {
        ["version"] if is_get => {
            shared.count("get", "/version");
            Ok(json_value(
                200,
                &json!({
                    "major": "1", "minor": "33", "gitVersion": "v1.33.0-apiserver-double",
                    "gitCommit": "", "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                    "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"
                }),
            ))
        }
        ["healthz" | "readyz" | "livez"] if is_get => {
            Ok(json_response(200, b"ok".to_vec(), "text/plain"))
        }
        ["api"] if is_get => {
            shared.count("get", "/api");
            if aggregated {
                let v = shared.store.with_registry(|r| r.aggregated(true));
                Ok(json_response(
                    200,
                    serde_json::to_vec(&v).unwrap_or_default(),
                    AGGREGATED_CONTENT_TYPE,
                ))
            } else {
                Ok(json_value(
                    200,
                    &json!({
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}],
                    }),
                ))
            }
        }
        ["api", "v1"] if is_get => {
            shared.count("get", "/api/v1");
            Ok(json_value(
                200,
                &shared.store.with_registry(|r| r.resource_list("", "v1")),
            ))
        }
        ["apis"] if is_get => {
            shared.count("get", "/apis");
            let v = if aggregated {
                shared.store.with_registry(|r| r.aggregated(false))
            } else {
                shared.store.with_registry(|r| r.group_list())
            };
            let ct = if aggregated {
                AGGREGATED_CONTENT_TYPE
            } else {
                "application/json"
            };
            Ok(json_response(
                200,
                serde_json::to_vec(&v).unwrap_or_default(),
                ct,
            ))
        }
        ["apis", group] if is_get => {
            shared.count("get", "/apis/{group}");
            registry(&|r| r.group(group))
                .map(|v| json_value(200, &v))
                .ok_or_else(ApiError::no_route)
        }
        ["apis", group, version] if is_get => {
            shared.count("get", "/apis/{group}/{version}");
            registry(&|r| {
                r.serves(group, version)
                    .then(|| r.resource_list(group, version))
            })
            .map(|v| json_value(200, &v))
            .ok_or_else(ApiError::no_route)
        }
        ["api", "v1", rest @ ..] => resource_request(shared, ("", "v1"), rest, parts()),
        ["apis", group, version, rest @ ..] => {
            resource_request(shared, (group, version), rest, parts())
        }
        _ => Err(ApiError::no_route()),
    }
}

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    matches!(query.get(key).map(String::as_str), Some("true" | "1"))
}

fn build_filter(
    def: &ResourceDef,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
) -> Result<Filter, ApiError> {
    let labels =
        LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let support = if def.special == crate::resources::Special::Custom {
        FieldSupport::Only(&def.selectable_fields)
    } else {
        FieldSupport::Any
    };
    let fields = FieldSelector::parse(
        query.get("fieldSelector").map(String::as_str).unwrap_or(""),
        support,
    )?;
    Ok(Filter {
        namespace: namespace.map(str::to_string),
        labels,
        fields,
    })
}

fn encode_continue(rv: u64, key: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": key}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|e| bad(&e.to_string()))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| bad(&e.to_string()))?;
    let rv = value
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("no rv"))?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no start"))?;
    Ok((rv, start.to_string()))
}

/// The parts of a request a resource handler reads.
struct RequestParts<'a> {
    method: &'a Method,
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: Bytes,
}

fn resource_request(
    shared: &Arc<Shared>,
    (group, version): (&str, &str),
    rest: &[&str],
    request: RequestParts<'_>,
) -> Result<Response<Body>, ApiError> {
    let RequestParts {
        method,
        query,
        headers,
        body,
    } = request;
    let store = &shared.store;
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if store
                .resolve(group, version, plural)
                .is_some_and(|d| d.namespaced) =>
        {
            let mut r = vec![*plural];
            r.extend_from_slice(tail);
            (Some(ns.to_string()), r)
        }
        _ => (None, rest.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Err(ApiError::no_route()),
    };
    let def = store
        .resolve(group, version, plural)
        .ok_or_else(ApiError::no_route)?;
    if (!def.namespaced && namespace.is_some())
        || (def.namespaced && namespace.is_none() && (name.is_some() || *method == Method::POST))
    {
        return Err(ApiError::no_route());
    }
    let sub = match sub {
        None => Sub::Main,
        Some("status") if def.status_subresource => Sub::Status,
        Some(_) => return Err(ApiError::no_route()),
    };
    let resource_label = match sub {
        Sub::Main => def.plural.clone(),
        Sub::Status => format!("{}/status", def.plural),
    };
    let rendering = Rendering::from_accept(accept(headers));
    let ops = Ops {
        store,
        def: def.clone(),
        namespace: namespace.clone(),
        require_namespaces: shared.config.require_namespaces,
        dry_run: query.get("dryRun").is_some_and(|v| v == "All"),
    };
    let respond = |code: u16, obj: &Value| -> Response<Body> {
        let rendered = render_object(&def, obj, rendering);
        json_response(
            code,
            serde_json::to_vec(rendered.as_ref()).unwrap_or_default(),
            "application/json",
        )
    };
    let parse_body = |body: &Bytes| -> Result<Value, ApiError> {
        let value: Value = serde_json::from_slice(body)
            .or_else(|_| serde_yaml::from_slice(body))
            .map_err(|e| {
                ApiError::bad_request(format!("failed to decode the request body: {e}"))
            })?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ))
        }
    };

    match (method.clone(), name) {
        (Method::GET, Some(name)) => {
            shared.count("get", &resource_label);
            let obj = ops.get(name)?;
            Ok(respond(200, &obj))
        }
        (Method::GET, None) if flag(query, "watch") => {
            shared.count("watch", &resource_label);
            let filter = build_filter(&def, namespace.as_deref(), query)?;
            let rv = query
                .get("resourceVersion")
                .map(String::as_str)
                .unwrap_or("");
            let send_initial_events = flag(query, "sendInitialEvents");
            let from = match rv {
                "" | "0" => None,
                _ if send_initial_events => None,
                rv => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv}"))
                })?),
            };
            let timeout = query
                .get("timeoutSeconds")
                .and_then(|t| t.parse::<u64>().ok())
                .filter(|t| *t > 0)
                .map(Duration::from_secs);
            let params = WatchParams {
                def: def.clone(),
                filter,
                from,
                bookmarks: flag(query, "allowWatchBookmarks"),
                send_initial_events,
                timeout,
                rendering,
                bookmark_interval: shared.config.bookmark_interval,
            };
            let mut rx = watch::spawn(
                store.clone(),
                params,
                shared.drop_watches.subscribe(),
                shared.landed.clone(),
            );
            let stream = futures::stream::poll_fn(move |cx| {
                rx.poll_recv(cx)
                    .map(|o| o.map(|bytes| Ok::<_, Infallible>(Frame::data(bytes))))
            });
            let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        }
        (Method::GET, None) => {
            shared.count("list", &resource_label);
            let filter = build_filter(&def, namespace.as_deref(), query)?;
            let limit = query
                .get("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|l| *l > 0);
            let (token_rv, after) = match query.get("continue").filter(|c| !c.is_empty()) {
                Some(token) => {
                    let (rv, key) = decode_continue(token)?;
                    (Some(rv), Some(key))
                }
                None => (None, None),
            };
            let page = store.list(&def, &filter, limit, after.as_deref());
            let rv = token_rv.unwrap_or(page.rv);
            let token = page.last_key.map(|k| encode_continue(rv, &k));
            Ok(json_response(
                200,
                list_body(&def, &page.items, rv, token, rendering),
                "application/json",
            ))
        }
        (Method::POST, None) => {
            shared.count("create", &resource_label);
            let obj = ops.create(parse_body(&body)?)?;
            Ok(respond(201, &obj))
        }
        (Method::PUT, Some(name)) => {
            shared.count("update", &resource_label);
            let obj = ops.update(name, parse_body(&body)?, sub)?;
            Ok(respond(200, &obj))
        }
        (Method::PATCH, Some(name)) => {
            shared.count("patch", &resource_label);
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let patch_type = PatchType::from_content_type(content_type)?;
            let (code, obj) = ops.patch(
                name,
                patch_type,
                &body,
                sub,
                query.get("fieldManager").map(String::as_str),
            )?;
            Ok(respond(code, &obj))
        }
        (Method::DELETE, Some(name)) if sub == Sub::Main => {
            shared.count("delete", &resource_label);
            let options = if body.is_empty() {
                json!({})
            } else {
                parse_body(&body)?
            };
            let obj = ops.delete(name, &options)?;
            Ok(respond(200, &obj))
        }
        (Method::DELETE, None) => {
            shared.count("deletecollection", &resource_label);
            let filter = build_filter(&def, namespace.as_deref(), query)?;
            let options = if body.is_empty() {
                json!({})
            } else {
                parse_body(&body)?
            };
            let deleted = ops.delete_collection(&filter, &options)?;
            Ok(json_response(
                200,
                list_body(&def, &deleted, store.current_rv(), None, rendering),
                "application/json",
            ))
        }
        (m, _) => Err(ApiError::method_not_allowed(m.as_str())),
    }
}
