//! Replays recorded HTTP exchanges (the VCR cassettes' JSON transcripts and the
//! recorded API pages in the fixtures) from a loopback server.
//!
//! Requests are matched on method, path, query and JSON body, so a client that
//! loses a pagination token gets nothing. Absolute addresses in the recorded
//! bodies are rewritten to the loopback server. A request that was never
//! recorded gets an empty page (the end of the results) and is logged.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::Server;

/// One recorded exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// Path and query, with the origin removed.
    pub target: String,
    pub body: Option<Value>,
    pub status: u16,
    pub response: Value,
}

/// A request the replay server received.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub body: Option<Value>,
    pub recorded: bool,
}

pub struct Replay {
    pub server: Server,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

/// Reads a cassette transcript; returns its origin and exchanges.
pub fn load_transcript(path: &std::path::Path) -> (String, Vec<Exchange>) {
    let transcript: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let interactions = transcript["interactions"].as_array().unwrap();
    let first = url::Url::parse(interactions[0]["request"]["uri"].as_str().unwrap()).unwrap();
    let origin = first.origin().ascii_serialization();
    let exchanges = interactions
        .iter()
        .map(|i| {
            let uri = i["request"]["uri"].as_str().unwrap();
            assert!(uri.starts_with(&origin), "one origin per cassette: {uri}");
            Exchange {
                method: i["request"]["method"].as_str().unwrap().to_string(),
                target: target_of(&uri[origin.len()..]),
                body: i["request"]["body"]
                    .as_object()
                    .map(|_| i["request"]["body"].clone()),
                status: i["response"]["status"].as_u64().unwrap() as u16,
                response: i["response"]["body"].clone(),
            }
        })
        .collect();
    (origin, exchanges)
}

fn target_of(rest: &str) -> String {
    if rest.is_empty() {
        "/".into()
    } else {
        rest.to_string()
    }
}

impl Replay {
    /// Serves `exchanges`, rewriting `origin` in their bodies to the server's own.
    pub fn start(origin: &str, exchanges: Vec<Exchange>) -> Replay {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let shared: Arc<Mutex<(String, Vec<Exchange>)>> =
            Arc::new(Mutex::new((origin.to_string(), exchanges)));
        let log = seen.clone();
        let state = shared.clone();
        let router = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let log = log.clone();
            let state = state.clone();
            async move {
                let target = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
                let body: Option<Value> = if body.is_empty() { None } else { serde_json::from_slice(&body).ok() };
                let (origin, exchanges) = &*state.lock().unwrap();
                let found = exchanges.iter().find(|e| {
                    e.method == method.as_str()
                        && same_target(&e.target, &target)
                        && (method == Method::GET || e.body == body)
                });
                log.lock().unwrap().push(Seen {
                    method: method.to_string(),
                    target: target.clone(),
                    body: body.clone(),
                    recorded: found.is_some(),
                });
                match found {
                    Some(exchange) => {
                        let text = exchange.response.to_string().replace(origin.as_str(), LOOPBACK_MARK);
                        (StatusCode::from_u16(exchange.status).unwrap(), [("content-type", "application/json")], text)
                            .into_response()
                    }
                    None => (
                        StatusCode::OK,
                        [("content-type", "application/json")],
                        json!({"type": "FeatureCollection", "features": [], "collections": [], "links": []}).to_string(),
                    )
                        .into_response(),
                }
            }
        });
        // The marker is replaced by the real address once the port is known.
        let server = Server::start(router.layer(axum::middleware::map_response(rewrite_marker)));
        Replay { server, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

const LOOPBACK_MARK: &str = "http://__loopback__";

/// Replaces the marker in response bodies with the server's own origin (taken
/// from the Host header the client sent).
async fn rewrite_marker(
    headers: axum::http::HeaderMap,
    response: axum::response::Response,
) -> axum::response::Response {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).replace(LOOPBACK_MARK, &format!("http://{host}"));
    let mut parts = parts;
    parts.headers.remove("content-length");
    axum::response::Response::from_parts(parts, axum::body::Body::from(text))
}

/// Paths match exactly; query strings match as sets of decoded pairs (clients
/// may encode `:` or order parameters differently).
fn same_target(recorded: &str, got: &str) -> bool {
    let split = |t: &str| {
        let (path, query) = t.split_once('?').unwrap_or((t, ""));
        let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        pairs.sort();
        (path.trim_end_matches('/').to_string(), pairs)
    };
    split(recorded) == split(got)
}
