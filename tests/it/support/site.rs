//! A loopback web site whose every answer the test writes: documents, asset
//! bytes, odd headers (a compressed body, a web page where a file should be),
//! redirects and trickles. Counts the requests and bytes of each path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::Server;

/// One answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sends the body one byte at a time with this pause between bytes.
    pub trickle: Option<Duration>,
    /// Waits this long before answering (a HEAD request too).
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn json(value: &Value) -> Reply {
        Reply::bytes(serde_json::to_vec(value).unwrap(), "application/json")
    }

    pub fn bytes(body: Vec<u8>, content_type: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body,
            trickle: None,
            delay: None,
        }
    }

    /// A redirect to `location`.
    pub fn redirect(location: &str) -> Reply {
        Reply {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
            trickle: None,
            delay: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn trickle(mut self, pause: Duration) -> Reply {
        self.trickle = Some(pause);
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }
}

#[derive(Default)]
struct Pages {
    replies: Mutex<HashMap<String, Reply>>,
    hits: Mutex<HashMap<String, u64>>,
    /// Body bytes sent in answer to GET requests.
    sent: Mutex<HashMap<String, u64>>,
}

/// The site; pages can be added while it serves.
pub struct Site {
    pub server: Server,
    pages: Arc<Pages>,
}

impl Site {
    pub fn start() -> Site {
        let pages = Arc::new(Pages::default());
        let router = Router::new().fallback(answer).with_state(pages.clone());
        Site {
            server: Server::start(router),
            pages,
        }
    }

    /// Serves `reply` at `path` (no leading slash).
    pub fn put(&self, path: &str, reply: Reply) {
        self.pages
            .replies
            .lock()
            .unwrap()
            .insert(format!("/{}", path.trim_start_matches('/')), reply);
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path).to_string()
    }

    /// How often `path` was asked for.
    pub fn hits(&self, path: &str) -> u64 {
        let key = format!("/{}", path.trim_start_matches('/'));
        self.pages
            .hits
            .lock()
            .unwrap()
            .get(&key)
            .copied()
            .unwrap_or(0)
    }
}

impl Site {
    /// Body bytes sent for `path` in answer to GET requests (a HEAD sends none).
    pub fn sent(&self, path: &str) -> u64 {
        let key = format!("/{}", path.trim_start_matches('/'));
        self.pages
            .sent
            .lock()
            .unwrap()
            .get(&key)
            .copied()
            .unwrap_or(0)
    }
}

async fn answer(State(pages): State<Arc<Pages>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    *pages.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let Some(reply) = pages.replies.lock().unwrap().get(&path).cloned() else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("not found"))
            .unwrap();
    };
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    if request.method() == axum::http::Method::GET {
        *pages.sent.lock().unwrap().entry(path.clone()).or_default() += reply.body.len() as u64;
    }
    let body = match reply.trickle {
        None => Body::from(reply.body),
        Some(pause) => {
            let bytes = reply.body;
            Body::from_stream(futures::stream::unfold(0usize, move |at| {
                let bytes = bytes.clone();
                async move {
                    if at >= bytes.len() {
                        return None;
                    }
                    if at > 0 {
                        tokio::time::sleep(pause).await;
                    }
                    let chunk = bytes::Bytes::copy_from_slice(&bytes[at..at + 1]);
                    Some((Ok::<_, std::io::Error>(chunk), at + 1))
                }
            }))
        }
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap())
        .body(body)
        .unwrap();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}
