//! A proxy in front of a storage server that damages uploads on their way:
//! it flips one byte in the body of chosen PUT requests and passes
//! everything else on untouched (headers, signatures and answers included),
//! as a faulty network device or proxy would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;

use super::Server;

/// A running proxy; `damaged` counts the requests it has damaged.
pub struct Tamper {
    pub endpoint: String,
    pub damaged: Arc<AtomicU32>,
    /// How many more uploads whose path holds the target are damaged.
    pub remaining: Arc<AtomicU32>,
    _server: Server,
}

struct Upstream {
    endpoint: String,
    target: String,
    strip: &'static [&'static str],
    client: reqwest::Client,
    damaged: Arc<AtomicU32>,
    remaining: Arc<AtomicU32>,
}

impl Tamper {
    /// A proxy for `upstream` that damages the next `times` PUTs with a
    /// body whose path and query hold `target`.
    pub fn start(upstream: &str, target: &str, times: u32) -> Tamper {
        Tamper::stripping(upstream, target, times, &[])
    }

    /// As [`Tamper::start`], and the damaged requests also lose the
    /// headers `strip` names (a hash the store would check itself), so
    /// that only the client can see the damage.
    pub fn stripping(
        upstream: &str,
        target: &str,
        times: u32,
        strip: &'static [&'static str],
    ) -> Tamper {
        let damaged = Arc::new(AtomicU32::new(0));
        let remaining = Arc::new(AtomicU32::new(times));
        let state = Arc::new(Upstream {
            endpoint: upstream.trim_end_matches('/').to_string(),
            target: target.to_string(),
            strip,
            // Bodies pass as the server sent them, never unpacked.
            client: reqwest::Client::builder().no_gzip().build().unwrap(),
            damaged: damaged.clone(),
            remaining: remaining.clone(),
        });
        let server = Server::start(Router::new().fallback(pass).with_state(state));
        Tamper {
            endpoint: format!("http://{}", server.addr),
            damaged,
            remaining,
            _server: server,
        }
    }

    /// `env` with the upstream's address replaced by the proxy's.
    pub fn env(
        &self,
        upstream: &str,
        env: Vec<(&'static str, String)>,
    ) -> Vec<(&'static str, String)> {
        env.into_iter()
            .map(|(name, value)| (name, value.replace(upstream, &self.endpoint)))
            .collect()
    }
}

async fn pass(State(upstream): State<Arc<Upstream>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let headers = request.headers().clone();
    let mut body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    // Matched on the decoded path: GCS clients escape a name's dots too.
    let decoded = percent_encoding::percent_decode_str(&path).decode_utf8_lossy();
    let chosen = method == Method::PUT && !body.is_empty() && decoded.contains(&upstream.target);
    let damaged = chosen
        && upstream
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if damaged {
        let middle = body.len() / 2;
        body[middle] ^= 0x20;
        upstream.damaged.fetch_add(1, Ordering::SeqCst);
    }
    let mut outgoing = upstream
        .client
        .request(method, format!("{}{path}", upstream.endpoint))
        .body(body);
    for (name, value) in &headers {
        // The Host header too: S3 signs it.
        let stripped = damaged && upstream.strip.contains(&name.as_str());
        if !stripped
            && !["content-length", "transfer-encoding", "connection"].contains(&name.as_str())
        {
            outgoing = outgoing.header(name, value);
        }
    }
    super::relay(outgoing.send().await.unwrap()).await
}
