//! `GET /api/openapi.json` (OpenAPI 3.1) and `GET /api/docs` (a page that renders it).
//!
//! The document is built from the route table ([`super::all`]) and the protocol crate's JSON
//! Schemas, never written by hand. Each body schema's `$defs` are hoisted into
//! `components/schemas` and their `$ref`s rewritten to point there.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use signalbox_protocol::PROTOCOL_VERSION;
use warp::http::Method;

use super::{AuthRule, BodyType, Reply, Req, Route, RouteMeta, body, handler};
use crate::http::ApiFailure;

/// The services of the docs routes.
#[derive(Debug)]
pub struct OpenApiApi {
    /// The OpenAPI document, built once.
    pub document: Arc<Value>,
}

/// This family's routes.
pub fn routes() -> Vec<Route<OpenApiApi>> {
    vec![
        Route::new(
            Method::GET,
            "/api/openapi.json",
            AuthRule::Public,
            "This API as an OpenAPI 3.1 document.",
            handler!(document_route),
        ),
        Route::new(
            Method::GET,
            "/api/docs",
            AuthRule::Public,
            "A human-readable page of this API (HTML).",
            handler!(docs_page),
        ),
    ]
}

/// `GET /api/openapi.json`.
pub async fn document_route(api: Arc<OpenApiApi>, _req: Req) -> Result<Reply, ApiFailure> {
    Ok(Reply::Json(
        warp::http::StatusCode::OK,
        (*api.document).clone(),
    ))
}

/// `GET /api/docs`.
pub async fn docs_page(_api: Arc<OpenApiApi>, _req: Req) -> Result<Reply, ApiFailure> {
    Ok(Reply::Html(DOCS_PAGE))
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>signalbox API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code,pre{background:#f4f4f4;padding:.1rem .3rem}h2{margin-top:2rem}.m{font-weight:bold;width:5rem;display:inline-block}</style>
</head><body><h1>signalbox HTTP API</h1>
<p>Generated from <a href="/api/openapi.json">/api/openapi.json</a>. Errors are
<code>{"error": {"code", "message"}}</code>. Send tokens as <code>Authorization: Bearer &lt;token&gt;</code>.</p>
<div id="routes">Loading...</div>
<script>
fetch('/api/openapi.json').then(r => r.json()).then(doc => {
  const out = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const esc = s => String(s).replace(/[&<>]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));
      const req = op.requestBody ? op.requestBody.content['application/json'].schema.$ref.split('/').pop() : '';
      const res = op['x-response-type'] || '';
      out.push(`<h2><span class="m">${method.toUpperCase()}</span><code>${esc(path)}</code></h2>
        <p>${esc(op.summary)}</p><p>Auth: ${esc(op['x-auth'])}${req ? ` · body: <code>${esc(req)}</code>` : ''}${res ? ` · answers: <code>${esc(res)}</code>` : ''}</p>`);
    }
  }
  document.getElementById('routes').innerHTML = out.join('');
});
</script></body></html>
"#;

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/components/schemas/{name}");
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

fn add_schema(components: &mut Map<String, Value>, body: BodyType) -> Value {
    let mut schema = (body.schema)();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        if let Some(Value::Object(defs)) = obj.remove("$defs") {
            for (name, mut def) in defs {
                rewrite_refs(&mut def);
                components.entry(name).or_insert(def);
            }
        }
    }
    rewrite_refs(&mut schema);
    components.insert(body.name.to_owned(), schema);
    json!({ "$ref": format!("#/components/schemas/{}", body.name) })
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
        })
        .collect()
}

/// The OpenAPI 3.1 document of `routes`.
pub fn document(routes: &[RouteMeta]) -> Value {
    let mut components = Map::new();
    let error = add_schema(&mut components, body!(ApiError));
    let mut paths: Map<String, Value> = Map::new();
    for route in routes {
        let mut op = Map::new();
        op.insert("summary".into(), json!(route.summary));
        op.insert(
            "operationId".into(),
            json!(format!(
                "{}{}",
                route.method.as_str().to_lowercase(),
                route
                    .path
                    .replace(['/', '{', '}', '.', '-'], "_")
                    .trim_end_matches('_')
            )),
        );
        op.insert("x-auth".into(), json!(route.auth.label()));
        let mut parameters = path_parameters(route.path);
        if route.paginated {
            for (name, schema) in [
                (
                    "limit",
                    json!({ "type": "integer", "minimum": 1, "maximum": 100 }),
                ),
                ("cursor", json!({ "type": "string" })),
                ("q", json!({ "type": "string" })),
            ] {
                parameters.push(
                    json!({ "name": name, "in": "query", "required": false, "schema": schema }),
                );
            }
        }
        for (name, required) in route.query {
            parameters.push(json!({ "name": name, "in": "query", "required": required, "schema": { "type": "string" } }));
        }
        if route.method != Method::GET {
            parameters.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Same key and body within 24 h returns the first result.",
                "schema": { "type": "string", "maxLength": 255 }
            }));
        }
        if !parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(request) = route.request {
            let schema = add_schema(&mut components, request);
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": schema } } }),
            );
        }
        let success = match (route.response, route.path) {
            (None, _) if route.media.is_some() => {
                let media = route.media.unwrap_or_default();
                json!({ "description": format!("The body ({media})"), "content": { media: { "schema": { "type": "string", "contentMediaType": media } } } })
            }
            (Some(response), _) => {
                op.insert("x-response-type".into(), json!(response.name));
                let schema = add_schema(&mut components, response);
                json!({ "description": "Success", "content": { "application/json": { "schema": schema } } })
            }
            (None, "/api/connect") => {
                json!({ "description": "A `text/event-stream` of `joined`, `roster` and `signal` events (and `roster_joined`, `roster_left` with `roster=delta`)", "content": { "text/event-stream": { "schema": { "type": "string" } } } })
            }
            (None, "/api/openapi.json") => {
                json!({ "description": "The OpenAPI document", "content": { "application/json": { "schema": { "type": "object" } } } })
            }
            (None, _) => {
                json!({ "description": "An HTML page", "content": { "text/html": { "schema": { "type": "string" } } } })
            }
        };
        let mut responses = Map::new();
        let ok = if route.summary.contains("(201)") {
            "201"
        } else {
            "200"
        };
        responses.insert(ok.into(), success);
        responses.insert(
            "default".into(),
            json!({ "description": "An error", "content": { "application/json": { "schema": error.clone() } } }),
        );
        op.insert("responses".into(), Value::Object(responses));
        if route.auth != AuthRule::Public {
            let security = if route.auth == AuthRule::Read {
                json!([{ "bearer": [] }, {}])
            } else {
                json!([{ "bearer": [] }])
            };
            op.insert("security".into(), security);
        }
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(route.method.as_str().to_lowercase(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "signalbox",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("The signalbox HTTP API (protocol {PROTOCOL_VERSION}). Generated from the protocol crate."),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_dangling_ref(value: &Value, components: &Map<String, Value>) -> Option<String> {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let name = r.strip_prefix("#/components/schemas/")?;
                    if !components.contains_key(name) {
                        return Some(r.clone());
                    }
                }
                map.values().find_map(|v| has_dangling_ref(v, components))
            }
            Value::Array(items) => items.iter().find_map(|v| has_dangling_ref(v, components)),
            _ => None,
        }
    }

    #[test]
    fn every_route_is_documented_and_every_ref_resolves() {
        let routes = super::super::all();
        let doc = document(&routes);
        let paths = doc["paths"].as_object().expect("paths");
        let count: usize = paths
            .values()
            .map(|item| item.as_object().map_or(0, Map::len))
            .sum();
        assert_eq!(count, routes.len());
        let components = doc["components"]["schemas"].as_object().expect("schemas");
        assert_eq!(has_dangling_ref(&doc, components), None);
        assert!(!doc.to_string().contains("#/$defs/"));
    }
}
