//! A loopback file server with a static catalog over its files, for mirror
//! tests: bytes generated on the fly (so files of any size cost no memory),
//! `Range` + `If-Range` + `ETag` like a real server, faults on demand, and an
//! account of every request and of every byte sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cairn::checksum::{Algorithm, Checksum};
use serde_json::{Value, json};

use super::Server;

/// How a file misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Served correctly.
    None,
    /// Answers with this status the first `times` requests (then correctly).
    Status { code: u16, times: u32 },
    /// Answers 429 with `Retry-After: seconds` the first `times` requests.
    SlowDown { seconds: u64, times: u32 },
    /// Drops the connection after `bytes` bytes, the first `times` requests.
    Reset { bytes: u64, times: u32 },
    /// Always sends only the first half, with a matching Content-Length.
    Truncated,
    /// Always announces the whole size but sends only the first half.
    ShortBody,
    /// Always sends other bytes of the right length.
    WrongBytes,
    /// Sends the bytes slowly, `bytes_per_second`.
    Trickle { bytes_per_second: u64 },
}

/// One file the farm serves.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub name: String,
    pub size: u64,
    pub fault: Fault,
    /// Whether the catalog gives `file:size`.
    pub with_size: bool,
    /// `file:checksum` in the catalog: none, right, or deliberately wrong.
    pub checksum: CatalogChecksum,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CatalogChecksum {
    None,
    Right,
    Wrong,
}

impl FileSpec {
    pub fn new(name: &str, size: u64) -> FileSpec {
        FileSpec {
            name: name.into(),
            size,
            fault: Fault::None,
            with_size: true,
            checksum: CatalogChecksum::Right,
        }
    }

    pub fn fault(mut self, fault: Fault) -> FileSpec {
        self.fault = fault;
        self
    }

    pub fn checksum(mut self, checksum: CatalogChecksum) -> FileSpec {
        self.checksum = checksum;
        self
    }

    pub fn without_size(mut self) -> FileSpec {
        self.with_size = false;
        self
    }

    /// The file's bytes `[start, end)`: 1 MiB segments of one random block,
    /// each rotated by an amount that depends on the file and the segment, so
    /// that no two files or segments are alike and generating is a copy.
    pub fn bytes(&self, start: u64, end: u64) -> Vec<u8> {
        let block = &*BLOCK;
        let len = block.len() as u64;
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut offset = start;
        while offset < end {
            let segment = offset / len;
            let rotation = self.seed().wrapping_add(segment.wrapping_mul(7919)) % len;
            let within = offset % len;
            let take = (len - within).min(end - offset);
            let from = ((within + rotation) % len) as usize;
            let first = (take as usize).min(block.len() - from);
            out.extend_from_slice(&block[from..from + first]);
            out.extend_from_slice(&block[..take as usize - first]);
            offset += take;
        }
        out
    }

    /// The whole file's sha2-256.
    pub fn sha256(&self) -> Checksum {
        let mut fixity = cairn::checksum::Fixity::new(None);
        let mut offset = 0;
        while offset < self.size {
            let end = (offset + (4 << 20)).min(self.size);
            fixity.update(&self.bytes(offset, end));
            offset = end;
        }
        fixity.finish(None).unwrap().sha256
    }

    fn seed(&self) -> u64 {
        self.name.bytes().fold(1469598103934665603u64, |h, b| {
            (h ^ b as u64).wrapping_mul(1099511628211)
        })
    }
}

static BLOCK: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut x = 0x9E3779B97F4A7C15u64;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
});

/// One request the farm answered.
#[derive(Debug, Clone)]
pub struct Logged {
    pub name: String,
    /// The `Range` start, when it asked for one that was honoured.
    pub from: Option<u64>,
    pub at: Instant,
}

struct Farmland {
    files: HashMap<String, FileSpec>,
    documents: HashMap<String, Vec<u8>>,
    log: Mutex<Vec<Logged>>,
    faults_left: Mutex<HashMap<String, u32>>,
    served: HashMap<String, AtomicU64>,
    total: Arc<AtomicU64>,
    /// File bodies being sent now, and the most at once.
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
}

/// Counts a body in flight until it is dropped (sent, cut, or abandoned).
struct InFlight(Arc<Farmland>);

impl InFlight {
    fn new(land: Arc<Farmland>) -> InFlight {
        let now = land.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        land.most_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(land)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The running farm.
pub struct Farm {
    pub server: Server,
    land: Arc<Farmland>,
}

impl Farm {
    /// Serves `files` as the assets of one collection `farm` (`per_item` assets
    /// per item) under `/stac/catalog.json`, and the files under `/files/`.
    pub fn start(files: Vec<FileSpec>, per_item: usize) -> Farm {
        let mut documents = HashMap::new();
        let mut item_links = Vec::new();
        for (n, chunk) in files.chunks(per_item.max(1)).enumerate() {
            let id = format!("item-{n:04}");
            let assets: serde_json::Map<String, Value> = chunk
                .iter()
                .map(|file| {
                    let mut asset = json!({
                        "href": format!("../../files/{}", file.name),
                        "type": "application/octet-stream", "roles": ["data"]
                    });
                    if file.with_size {
                        asset["file:size"] = file.size.into();
                    }
                    match file.checksum {
                        CatalogChecksum::None => {}
                        CatalogChecksum::Right => {
                            asset["file:checksum"] = file.sha256().to_hex().into();
                        }
                        CatalogChecksum::Wrong => {
                            let wrong = Checksum::of(Algorithm::Sha2_256, b"something else");
                            asset["file:checksum"] = wrong.to_hex().into();
                        }
                    }
                    (file.name.replace('.', "_"), asset)
                })
                .collect();
            let day = 1 + n % 28;
            let item = json!({
                "type": "Feature", "stac_version": "1.1.0", "id": id, "collection": "farm",
                "stac_extensions": ["https://stac-extensions.github.io/file/v2.1.0/schema.json"],
                "bbox": [10.0, 40.0, 11.0, 41.0],
                "geometry": {"type": "Polygon", "coordinates": [[[10.0, 40.0], [11.0, 40.0], [11.0, 41.0], [10.0, 41.0], [10.0, 40.0]]]},
                "properties": {"datetime": format!("2024-03-{day:02}T10:00:00Z")},
                "links": [{"rel": "collection", "href": "./collection.json"},
                          {"rel": "parent", "href": "./collection.json"},
                          {"rel": "root", "href": "../catalog.json"}],
                "assets": assets
            });
            documents.insert(
                format!("farm/{id}.json"),
                serde_json::to_vec(&item).unwrap(),
            );
            item_links.push(json!({"rel": "item", "href": format!("./{id}.json"), "type": "application/geo+json"}));
        }
        let mut links = vec![
            json!({"rel": "root", "href": "../catalog.json"}),
            json!({"rel": "parent", "href": "../catalog.json"}),
        ];
        links.extend(item_links);
        let collection = json!({
            "type": "Collection", "stac_version": "1.1.0", "id": "farm",
            "description": "Files served by the test farm", "license": "CC0-1.0",
            "extent": {"spatial": {"bbox": [[10.0, 40.0, 11.0, 41.0]]},
                       "temporal": {"interval": [["2024-03-01T00:00:00Z", "2024-03-31T00:00:00Z"]]}},
            "links": links
        });
        documents.insert(
            "farm/collection.json".into(),
            serde_json::to_vec(&collection).unwrap(),
        );
        let catalog = json!({
            "type": "Catalog", "stac_version": "1.1.0", "id": "farm-root",
            "description": "The test farm", "links": [
                {"rel": "root", "href": "./catalog.json"},
                {"rel": "child", "href": "./farm/collection.json"}]
        });
        documents.insert("catalog.json".into(), serde_json::to_vec(&catalog).unwrap());

        let faults_left = files
            .iter()
            .filter_map(|f| match f.fault {
                Fault::Status { times, .. }
                | Fault::SlowDown { times, .. }
                | Fault::Reset { times, .. } => Some((f.name.clone(), times)),
                _ => None,
            })
            .collect();
        let land = Arc::new(Farmland {
            served: files
                .iter()
                .map(|f| (f.name.clone(), AtomicU64::new(0)))
                .collect(),
            files: files.into_iter().map(|f| (f.name.clone(), f)).collect(),
            documents,
            log: Mutex::new(Vec::new()),
            faults_left: Mutex::new(faults_left),
            total: Arc::new(AtomicU64::new(0)),
            in_flight: AtomicU64::new(0),
            most_in_flight: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/files/{name}", get(serve_file))
            .route("/stac/{*path}", get(serve_document))
            .with_state(land.clone());
        Farm {
            server: Server::start(router),
            land,
        }
    }

    pub fn catalog_url(&self) -> String {
        self.server.url("stac/catalog.json").to_string()
    }

    /// Body bytes sent for `name`, over every request.
    pub fn served(&self, name: &str) -> u64 {
        self.land.served[name].load(Ordering::Relaxed)
    }

    /// Body bytes sent in all.
    pub fn total_served(&self) -> u64 {
        self.land.total.load(Ordering::Relaxed)
    }

    /// A counter of body bytes sent in all, for sampling while a job runs.
    /// The most file bodies that were being sent at once.
    pub fn most_in_flight(&self) -> u64 {
        self.land.most_in_flight.load(Ordering::SeqCst)
    }

    pub fn total_counter(&self) -> Arc<AtomicU64> {
        self.land.total.clone()
    }

    /// Every file request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.land.log.lock().unwrap().clone()
    }
}

async fn serve_document(State(land): State<Arc<Farmland>>, Path(path): Path<String>) -> Response {
    match land.documents.get(&path) {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, "application/json")], bytes.clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve_file(
    State(land): State<Arc<Farmland>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(spec) = land.files.get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{:016x}\"", spec.seed());
    let range_start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<u64>().ok());
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().ok() == Some(etag.as_str()));
    let from = range_start.filter(|_| if_range_ok);
    land.log.lock().unwrap().push(Logged {
        name: name.clone(),
        from,
        at: Instant::now(),
    });

    // Faults that happen a number of times, then stop.
    let mut fault = spec.fault;
    if let Fault::Status { times, .. }
    | Fault::SlowDown { times, .. }
    | Fault::Reset { times, .. } = fault
    {
        let mut left = land.faults_left.lock().unwrap();
        let left = left.entry(name.clone()).or_insert(times);
        if *left == 0 {
            fault = Fault::None;
        } else {
            *left -= 1;
        }
    }
    match fault {
        Fault::Status { code, .. } => {
            return (
                StatusCode::from_u16(code).unwrap(),
                "the farm is having a bad day",
            )
                .into_response();
        }
        Fault::SlowDown { seconds, .. } => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, seconds.to_string())],
                "slow down",
            )
                .into_response();
        }
        _ => {}
    }

    let start = from.unwrap_or(0);
    if start > 0 && start >= spec.size {
        return (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{}", spec.size))],
        )
            .into_response();
    }
    let (announced_end, sent_end, cut) = match fault {
        Fault::Truncated => (spec.size / 2, spec.size / 2, false),
        Fault::ShortBody => (spec.size, spec.size / 2, true),
        Fault::Reset { bytes, .. } => (spec.size, (start + bytes).min(spec.size), true),
        _ => (spec.size, spec.size, false),
    };
    let announced_end = announced_end.max(start);
    let sent_end = sent_end.max(start);
    let wrong = fault == Fault::WrongBytes;
    let trickle = match fault {
        Fault::Trickle { bytes_per_second } => Some(bytes_per_second),
        _ => None,
    };
    let chunk = if trickle.is_some() { 4096 } else { 64 * 1024 };
    let size = spec.size;
    let land_for_body = land.clone();
    let in_flight = Arc::new(InFlight::new(land.clone()));
    let body = futures::stream::unfold(start, move |offset| {
        let spec = spec.clone();
        let land = land_for_body.clone();
        let _in_flight = in_flight.clone();
        async move {
            if offset >= sent_end {
                if cut {
                    // Let what was sent go out, then drop the connection.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Some((Err(std::io::Error::other("cut")), u64::MAX));
                }
                return None;
            }
            let end = (offset + chunk).min(sent_end);
            if let Some(rate) = trickle {
                tokio::time::sleep(Duration::from_secs_f64((end - offset) as f64 / rate as f64))
                    .await;
            }
            let mut bytes = spec.bytes(offset, end);
            if wrong {
                bytes.iter_mut().for_each(|b| *b = !*b);
            }
            land.served[&spec.name].fetch_add(bytes.len() as u64, Ordering::Relaxed);
            land.total.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), end))
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    if from.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", size - 1)
                .parse()
                .unwrap(),
        );
    }
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag.parse().unwrap());
    headers.insert(header::ACCEPT_RANGES, "bytes".parse().unwrap());
    headers.insert(header::CONTENT_LENGTH, (announced_end - start).into());
    response
}
