//! Reading documents from wherever a catalog lives.
//!
//! A [`Fetcher`] reads JSON from `http(s)://` (reqwest), `file://` (the local file
//! system) and `s3://`, `az://`, `gs://` (object_store, with credentials from the
//! environment). Every read goes through the [`RetryPolicy`], so a busy server
//! (429, 502, 503, 504, dropped connections) is retried with backoff, and a
//! cancellation stops the wait at once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::outage::Outages;
use crate::retry::RetryPolicy;
use crate::{Error, Reach, Result};

pub mod access;
mod document;
mod recent;
pub use access::{Access, Answer, Outgoing, Secrets, Settings};
pub use document::{Document, Features, Structure};
pub use recent::Recent;

/// The memory all the documents being read at once may take together, as
/// estimated while their bytes arrive (their size, and [`VALUE_COST`] for
/// each JSON value in them). A document that alone would take more is refused
/// in words as soon as that is clear, however small it was on the wire (a
/// compressed answer can unpack a thousandfold); others wait for their share.
pub const DOCUMENT_BUDGET: usize = 256 * 1024 * 1024;

/// The largest JSON document Cairn reads, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = DOCUMENT_BUDGET;

/// What one JSON value costs once parsed, about (serde_json's `Value`, with
/// its share of the list or map that holds it).
pub const VALUE_COST: usize = 48;

/// Counts the JSON values of a document as its bytes arrive, without parsing.
#[derive(Debug, Default)]
struct Weigher {
    in_string: bool,
    escaped: bool,
    values: usize,
    bytes: usize,
}

impl Weigher {
    fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len();
        for &b in chunk {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b',' | b'[' | b'{' | b':' => self.values += 1,
                    _ => {}
                }
            }
        }
    }

    /// The estimated memory to hold the bytes and their parsed values.
    fn cost(&self) -> usize {
        self.bytes + VALUE_COST * (self.values + 1)
    }
}

/// A document's share of the [`DOCUMENT_BUDGET`], held until it is parsed.
struct Share {
    budget: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
}

/// The budget is counted in KiB (semaphore permits are `u32`).
const KIB: usize = 1024;

impl Share {
    fn new(budget: &Arc<Semaphore>) -> Share {
        Share {
            budget: budget.clone(),
            held: None,
        }
    }

    /// Takes enough of the budget for what `weigher` has seen, waiting for
    /// other documents to finish when it is in use; refuses a document that
    /// would not fit even alone.
    async fn grow(&mut self, href: &str, weigher: &Weigher) -> Result<()> {
        let need = weigher.cost().div_ceil(KIB);
        if need > DOCUMENT_BUDGET / KIB {
            return Err(too_heavy(href, weigher));
        }
        let have = self.held.as_ref().map_or(0, |p| p.num_permits());
        if need <= have {
            return Ok(());
        }
        // Taken a MiB at a time, so that small documents ask once.
        let want = need.next_multiple_of(KIB).min(DOCUMENT_BUDGET / KIB);
        match self
            .budget
            .clone()
            .try_acquire_many_owned((want - have) as u32)
        {
            Ok(more) => match &mut self.held {
                Some(held) => held.merge(more),
                None => self.held = Some(more),
            },
            Err(_) => {
                // Wait holding nothing, so that two documents never wait
                // for each other's share.
                self.held = None;
                let all = self
                    .budget
                    .clone()
                    .acquire_many_owned(want as u32)
                    .await
                    .map_err(|_| Error::Cancelled)?;
                self.held = Some(all);
            }
        }
        Ok(())
    }
}

fn too_heavy(href: &str, weigher: &Weigher) -> Error {
    let mib = |b: usize| b.div_ceil(1024 * 1024);
    Error::TooLarge {
        href: href.to_string(),
        reason: format!(
            "is too large to read: it would take at least {} MiB of memory to read ({} JSON values in {} MiB so far), more than the {} MiB Cairn gives the documents it reads at once; it is not read (a catalog this large is best split into several files)",
            mib(weigher.cost()),
            weigher.values,
            mib(weigher.bytes),
            mib(DOCUMENT_BUDGET)
        ),
    }
}

/// The slowest a transfer may be before it is stopped and tried again, as
/// curl's `--speed-limit` and `--speed-time`: fewer than `bytes_per_second`
/// on average over `window` of waiting for the server. Time Cairn spends
/// holding back for a bandwidth limit does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinSpeed {
    /// The slowest average rate accepted.
    pub bytes_per_second: u64,
    /// Over how long.
    pub window: Duration,
}

impl Default for MinSpeed {
    /// 512 bytes a second over a minute: far below any real link, far above
    /// a server that trickles to keep a connection open for ever.
    fn default() -> Self {
        MinSpeed {
            bytes_per_second: 512,
            window: Duration::from_secs(60),
        }
    }
}

/// Watches a body's pace against a [`MinSpeed`].
#[derive(Debug)]
pub(crate) struct Pace {
    min: MinSpeed,
    waited: Duration,
    bytes: u64,
}

impl Pace {
    pub(crate) fn new(min: MinSpeed) -> Pace {
        Pace {
            min,
            waited: Duration::ZERO,
            bytes: 0,
        }
    }

    /// The next piece of `response`'s body (`None` at its end), waited for
    /// no longer than the pace allows.
    pub(crate) async fn chunk(
        &mut self,
        href: &str,
        response: &mut reqwest::Response,
    ) -> Result<Option<Bytes>> {
        let size = |c: &reqwest::Result<Option<Bytes>>| {
            c.as_ref()
                .ok()
                .and_then(Option::as_ref)
                .map_or(0, Bytes::len)
        };
        self.wait(href, response.chunk(), size)
            .await?
            .map_err(|e| transport_error(href, &e))
    }

    /// Waits for `next` (the next piece of a body), but no longer than the
    /// pace allows; counts the bytes it brings (`len`).
    pub(crate) async fn wait<T, F>(
        &mut self,
        href: &str,
        next: F,
        len: impl Fn(&T) -> usize,
    ) -> Result<T>
    where
        F: std::future::Future<Output = T>,
    {
        if self.min.bytes_per_second == 0 || self.min.window.is_zero() {
            return Ok(next.await);
        }
        let mut next = std::pin::pin!(next);
        loop {
            let left = self.min.window.saturating_sub(self.waited);
            let started = tokio::time::Instant::now();
            let outcome = tokio::time::timeout(left, next.as_mut()).await;
            self.waited += started.elapsed();
            if let Ok(value) = &outcome {
                self.bytes += len(value) as u64;
            }
            if self.waited >= self.min.window {
                let needed = self.min.bytes_per_second * self.min.window.as_secs().max(1);
                if self.bytes < needed {
                    return Err(Error::Unavailable {
                        href: href.to_string(),
                        reason: format!(
                            "the server sent only {} bytes in {} seconds, slower than {} bytes a second; the transfer is stopped and will be tried again",
                            self.bytes,
                            self.min.window.as_secs(),
                            self.min.bytes_per_second
                        ),
                        retry_after: None,
                        reach: Reach::Unknown,
                    });
                }
                self.waited = Duration::ZERO;
                self.bytes = 0;
            }
            if let Ok(value) = outcome {
                return Ok(value);
            }
        }
    }
}

/// An HTTP method for a STAC API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET, with parameters in the query string.
    #[default]
    Get,
    /// POST, with parameters in a JSON body.
    Post,
}

/// One request for a JSON document: what a `next` link describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The HTTP method (ignored for non-HTTP locations).
    pub method: Method,
    /// Where to send it.
    pub url: Url,
    /// The JSON body, for POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Extra headers a `next` link asked for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl Request {
    /// A plain GET of `url`.
    pub fn get(url: Url) -> Request {
        Request {
            method: Method::Get,
            url,
            body: None,
            headers: BTreeMap::new(),
        }
    }

    /// A POST of `body` to `url`.
    pub fn post(url: Url, body: Value) -> Request {
        Request {
            method: Method::Post,
            url,
            body: Some(body),
            headers: BTreeMap::new(),
        }
    }
}

/// Turns what a user typed as a SOURCE into a URL.
///
/// Accepts `http(s)://`, `file://`, `s3://`, `az://`, `gs://` URLs and local paths
/// (relative or absolute). A directory stands for the `catalog.json` or
/// `collection.json` inside it.
pub fn parse_location(input: &str) -> Result<Url> {
    let input = input.trim();
    if input.is_empty() {
        return Err(Error::invalid_input("no source was given"));
    }
    if let Some((scheme, _)) = input.split_once("://") {
        let url = Url::parse(input)
            .map_err(|e| Error::invalid_input(format!("{input:?} is not a valid address: {e}")))?;
        return match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" | "s3" | "az" | "gs" => Ok(url),
            "file" => {
                let path = url.to_file_path().map_err(|()| {
                    Error::invalid_input(format!("{input:?} is not a valid file address"))
                })?;
                local_path_url(&path, input)
            }
            other => Err(Error::invalid_input(format!(
                "{input:?} uses {other}://, which Cairn cannot read; use http(s)://, file://, s3://, az://, gs:// or a path"
            ))),
        };
    }
    local_path_url(Path::new(input), input)
}

/// Whether `input` begins like a host name (`earth-search.aws.element84.com/v1`,
/// `www.example.org`): a dotted first segment of letters, digits and dashes,
/// ending in letters that are not a file's extension.
fn looks_like_a_host(input: &str) -> bool {
    let host = input.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("");
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels.last().is_some_and(|tld| {
            tld.len() >= 2
                && tld.chars().all(|c| c.is_ascii_alphabetic())
                // A file name, not a host.
                && !matches!(
                    tld.to_ascii_lowercase().as_str(),
                    "json" | "geojson" | "jsonl" | "ndjson" | "parquet" | "txt" | "xml" | "html" | "htm" | "csv" | "zip"
                )
        })
}

fn local_path_url(path: &Path, input: &str) -> Result<Url> {
    let path = std::fs::canonicalize(path).map_err(|e| match e.kind() {
        // A web address typed without its scheme is not taken for a file.
        std::io::ErrorKind::NotFound if looks_like_a_host(input) => Error::invalid_input(format!(
            "{input:?} is neither a file on this computer nor a full web address; if it is a web address, write it with https:// in front: https://{input}"
        )),
        std::io::ErrorKind::NotFound => Error::invalid_input(format!(
            "{input:?} does not exist; check the path or give a URL"
        )),
        _ => Error::Io {
            path: input.to_string(),
            source: e,
        },
    })?;
    let path = if path.is_dir() {
        ["catalog.json", "collection.json"]
            .iter()
            .map(|name| path.join(name))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "{input:?} is a folder without a catalog.json or collection.json; give the path of a STAC file"
                ))
            })?
    } else {
        path
    };
    Url::from_file_path(&path)
        .map_err(|()| Error::invalid_input(format!("{input:?} cannot be used as a file address")))
}

/// Reads documents over HTTP, from the file system, and from object stores.
///
/// Cheap to clone: clones share the connection pool and object-store clients.
#[derive(Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    assets: reqwest::Client,
    retry: RetryPolicy,
    min_speed: MinSpeed,
    budget: Arc<Semaphore>,
    cancel: CancellationToken,
    stores: Arc<Mutex<HashMap<String, Arc<dyn ObjectStore>>>>,
    access: Arc<Access>,
    /// Public documents read lately, for browsing and estimates only, and
    /// whether what is read is kept there too.
    recent: Option<(Arc<Recent>, bool)>,
    /// Documents this fetcher (and its clones) took from `recent`.
    recalled: Arc<std::sync::atomic::AtomicU64>,
    /// A job's servers that cannot be reached, waited for.
    outages: Option<Arc<Outages>>,
    /// Where local documents may be read from, when not anywhere.
    confined: Option<Arc<Confined>>,
}

/// Local documents read only beneath one folder, never through a link:
/// a mirror's, whose documents (and the links in them) are not trusted.
struct Confined {
    /// The folder's address.
    inside: Url,
    folder: Arc<crate::folder::Folder>,
}

impl Confined {
    /// The document at `url`, read from the folder as a regular file reached
    /// without a link (see [`crate::folder::Folder`]).
    async fn read(&self, url: &Url) -> Result<Bytes> {
        let Some(relative) = crate::layout::relative_path(&self.inside, url) else {
            return Err(Error::invalid_input(format!(
                "{url} is not inside {}, and only the files there are read",
                self.inside
            )));
        };
        let folder = self.folder.clone();
        let path = folder.display(&relative).display().to_string();
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut bytes = Vec::new();
            folder
                .read_file(&relative)?
                .take(MAX_DOCUMENT_BYTES as u64 + 1)
                .read_to_end(&mut bytes)?;
            Ok::<_, std::io::Error>(bytes)
        })
        .await;
        let bytes = crate::error::joined(read)?.map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                href: url.to_string(),
            },
            _ => Error::Io { path, source },
        })?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large(url.as_str()));
        }
        Ok(Bytes::from(bytes))
    }
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher with the default retry policy.
    pub fn new() -> Result<Fetcher> {
        Fetcher::with_retry(RetryPolicy::default())
    }

    /// A fetcher with a custom retry policy.
    pub fn with_retry(retry: RetryPolicy) -> Result<Fetcher> {
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(20))
                .read_timeout(Duration::from_secs(60))
                // Redirects are followed by `Access::send`, hop by hop.
                .redirect(reqwest::redirect::Policy::none())
        };
        let failed = |e| Error::invalid_input(format!("the HTTP client could not start: {e}"));
        let http = builder().build().map_err(failed)?;
        // Asset bytes are kept as the server holds them: never unpacked
        // (a checksum is of the stored bytes, and a resumed range counts them).
        let assets = builder().no_gzip().build().map_err(failed)?;
        Ok(Fetcher {
            http,
            assets,
            retry,
            min_speed: MinSpeed::default(),
            budget: Arc::new(Semaphore::new(DOCUMENT_BUDGET / KIB)),
            cancel: CancellationToken::new(),
            stores: Arc::default(),
            access: Access::none(),
            recent: None,
            recalled: Arc::default(),
            outages: None,
            confined: None,
        })
    }

    /// A fetcher that shares this one's clients but reads local documents
    /// only inside `inside`, the folder `folder` holds, and never through a
    /// link there: one for reading a mirror, whose links are not trusted.
    pub fn reading_within(&self, inside: Url, folder: Arc<crate::folder::Folder>) -> Fetcher {
        Fetcher {
            confined: Some(Arc::new(Confined { inside, folder })),
            ..self.clone()
        }
    }

    /// Sends a request for asset bytes, signed in as this fetcher's
    /// [`Access`] says. The client asks for them unencoded and never unpacks
    /// what a server compresses anyway, so the file is byte for byte what
    /// the server stores.
    pub async fn send_asset(&self, request: Outgoing<'_>) -> Result<Answer> {
        self.access.send(&self.assets, request, &self.cancel).await
    }

    /// Asks for the first byte of the asset at `url`, signed in as this
    /// fetcher is: the HTTP status of the answer (whether signing in works).
    pub async fn probe(&self, url: &Url) -> Result<u16> {
        let request = Outgoing::get(url).header(reqwest::header::RANGE, "bytes=0-0");
        Ok(self.send_asset(request).await?.response.status().as_u16())
    }

    /// A fetcher that shares this one's clients but signs in with `access`.
    pub fn with_access(&self, access: Arc<Access>) -> Fetcher {
        Fetcher {
            access,
            ..self.clone()
        }
    }

    /// A fetcher that shares this one's clients but signs in to `source`
    /// as `settings` say, with `secrets` (the values of its headers); this
    /// one itself when there is nothing to sign in with.
    pub fn signed_in(
        &self,
        settings: &Settings,
        secrets: &Secrets,
        source: &Url,
    ) -> Result<Fetcher> {
        if settings.is_empty() && secrets.headers.is_empty() {
            return Ok(self.clone());
        }
        Ok(self.with_access(Arc::new(Access::new(settings, secrets, source)?)))
    }

    /// A fetcher that shares this one's clients but stops a transfer slower
    /// than `min_speed`.
    pub fn with_min_speed(&self, min_speed: MinSpeed) -> Fetcher {
        Fetcher {
            min_speed,
            ..self.clone()
        }
    }

    /// The slowest pace a document or an asset may arrive at.
    pub fn min_speed(&self) -> MinSpeed {
        self.min_speed
    }

    /// The token that cancels every request of this fetcher.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// A fetcher that shares this one's clients but takes a public document
    /// read lately from `recent` (and keeps what it reads there): for
    /// browsing and the estimate after it, never for a copy or a sync.
    pub fn with_recent(&self, recent: Arc<Recent>) -> Fetcher {
        Fetcher {
            recent: Some((recent, true)),
            ..self.clone()
        }
    }

    /// A fetcher that takes a public document read lately from `recent`,
    /// and keeps nothing there (an estimate: reading a catalog larger than
    /// `recent` holds, it would push out the very documents it reads next).
    pub fn recalling(&self, recent: Arc<Recent>) -> Fetcher {
        Fetcher {
            recent: Some((recent, false)),
            recalled: Arc::default(),
            ..self.clone()
        }
    }

    /// How many documents this fetcher took from what was read lately
    /// instead of reading them (see [`Fetcher::recalling`]).
    pub fn recalled(&self) -> u64 {
        self.recalled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A fetcher that shares this one's clients but waits for servers that
    /// cannot be reached as `outages` says (a job's: it runs for long and
    /// unattended), rather than failing after its retries.
    pub fn with_outages(&self, outages: Arc<Outages>) -> Fetcher {
        Fetcher {
            outages: Some(outages),
            ..self.clone()
        }
    }

    /// The outages this fetcher waits through, if it does.
    pub fn outages(&self) -> Option<&Arc<Outages>> {
        self.outages.as_ref()
    }

    /// While `server` is waited for, asks the catalog's server now and
    /// then (in the background, one HEAD request) whether the computer is
    /// online: any answer ends the wait (see [`Outages::probe_due`]).
    pub fn ask_whether_online(&self, server: &str) {
        let Some(outages) = &self.outages else {
            return;
        };
        let Some(url) = outages.probe_due(server) else {
            return;
        };
        let (fetcher, outages) = (self.clone(), outages.clone());
        tokio::spawn(async move {
            let mut request = Outgoing::get(&url);
            request.method = reqwest::Method::HEAD;
            let asked = fetcher.send_asset(request);
            let answered = match tokio::time::timeout(crate::outage::PROBE_EVERY, asked).await {
                Ok(Ok(_)) => true,
                Ok(Err(error)) => error.is_answer(),
                Err(_) => false,
            };
            if answered {
                outages.answered(&crate::outage::server(&url));
            }
        });
    }

    /// A fetcher that shares this one's clients but stops when `cancel` fires.
    pub fn with_cancellation(&self, cancel: CancellationToken) -> Fetcher {
        Fetcher {
            cancel,
            ..self.clone()
        }
    }

    /// GETs `url` and parses it as JSON.
    pub async fn get_json(&self, url: &Url) -> Result<Value> {
        self.json(&Request::get(url.clone())).await
    }

    /// Sends `request` (with retries) and parses the answer as JSON.
    pub async fn json(&self, request: &Request) -> Result<Value> {
        self.json_at(request).await.map(|(value, _)| value)
    }

    /// GETs `url` and parses it as JSON; also says where the document was in
    /// the end (after redirects), which is what its relative links mean.
    pub async fn get_json_at(&self, url: &Url) -> Result<(Value, Url)> {
        self.json_at(&Request::get(url.clone())).await
    }

    /// GETs `url` and parses it as a [`Document`]: an item collection's
    /// features are left to be parsed one at a time. Also says where the
    /// document was in the end (after redirects).
    pub async fn get_document_at(&self, url: &Url) -> Result<(Document, Url)> {
        let (bytes, at, share) = self.fetched(&Request::get(url.clone())).await?;
        let page = looks_like_a_page(&bytes);
        let document = Document::parse(bytes, Some(share))
            .map_err(|source| not_json(url.as_str(), page, source))?;
        Ok((document, at))
    }

    async fn json_at(&self, request: &Request) -> Result<(Value, Url)> {
        let (bytes, at, share) = self.fetched(request).await?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|source| not_json(request.url.as_str(), looks_like_a_page(&bytes), source))?;
        // The parsed document is the caller's now; its bytes are gone.
        drop((bytes, share));
        Ok((value, at))
    }

    /// Sends `request` (with retries) and returns the body.
    pub async fn bytes(&self, request: &Request) -> Result<Bytes> {
        self.fetched(request).await.map(|(bytes, _, _)| bytes)
    }

    async fn fetched(&self, request: &Request) -> Result<(Bytes, Url, Share)> {
        let recent = self.recent.as_ref().filter(|_| {
            request.method == Method::Get
                && request.headers.is_empty()
                && matches!(request.url.scheme(), "http" | "https")
                && self.access.is_anonymous()
        });
        if let Some((bytes, at)) = recent.and_then(|(recent, _)| recent.get(&request.url)) {
            self.recalled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut share = Share::new(&self.budget);
            let mut weigher = Weigher::default();
            weigher.feed(&bytes);
            share.grow(request.url.as_str(), &weigher).await?;
            return Ok((bytes, at, share));
        }
        let mut waits = 0;
        let fetched = loop {
            let fetched = self
                .retry
                .run(&self.cancel, || self.bytes_once(request))
                .await;
            // A file read from this computer says nothing of the network.
            let Some(outages) = self
                .outages
                .as_ref()
                .filter(|_| request.url.scheme() != "file")
            else {
                break fetched?;
            };
            let server = crate::outage::server(&request.url);
            match fetched {
                Err(error) if error.is_unreachable() => {
                    let Some(delay) = outages.unreachable(&server, waits) else {
                        return Err(error);
                    };
                    self.ask_whether_online(&server);
                    waits += 1;
                    crate::retry::pause(&self.cancel, delay).await?;
                }
                fetched => {
                    if fetched.as_ref().map_or_else(Error::is_answer, |_| true) {
                        outages.answered(&server);
                    }
                    break fetched?;
                }
            }
        };
        if let Some((recent, true)) = recent {
            recent.put(&request.url, &fetched.0, &fetched.1);
        }
        Ok(fetched)
    }

    async fn bytes_once(&self, request: &Request) -> Result<(Bytes, Url, Share)> {
        let url = &request.url;
        let (bytes, at, share) = match url.scheme() {
            "http" | "https" => return self.http_once(request).await,
            "file" => {
                let bytes = match &self.confined {
                    Some(confined) => confined.read(url).await?,
                    None => read_file(url).await?,
                };
                (bytes, url.clone(), Share::new(&self.budget))
            }
            "s3" | "az" | "gs" => (
                self.object_once(url).await?,
                url.clone(),
                Share::new(&self.budget),
            ),
            other => {
                return Err(Error::invalid_input(format!(
                    "{url} uses {other}://, which Cairn cannot read"
                )));
            }
        };
        let mut share = share;
        let mut weigher = Weigher::default();
        weigher.feed(&bytes);
        share.grow(url.as_str(), &weigher).await?;
        Ok((bytes, at, share))
    }

    async fn http_once(&self, request: &Request) -> Result<(Bytes, Url, Share)> {
        let href = request.url.as_str();
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut outgoing = Outgoing {
            method,
            url: &request.url,
            headers: reqwest::header::HeaderMap::new(),
            body: match request.method {
                Method::Post => request.body.as_ref(),
                Method::Get => None,
            },
        }
        .header(
            reqwest::header::ACCEPT,
            "application/geo+json, application/json;q=0.9, */*;q=0.1",
        );
        for (name, value) in &request.headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                outgoing.headers.insert(name, value);
            }
        }
        let Answer { mut response, at } =
            self.access.send(&self.http, outgoing, &self.cancel).await?;
        let status = response.status();
        if let Some(error) = redirect_error(href, &response) {
            return Err(error);
        }
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let detail = response.text().await.ok().and_then(|t| summarize(&t));
            return Err(status_error(href, status, retry_after, detail));
        }
        if let Some(length) = response.content_length()
            && length as usize > MAX_DOCUMENT_BYTES
        {
            return Err(too_large(href));
        }
        // Sized once when the server says how much is coming: growing by
        // doubling would briefly hold the old and the new copy.
        let mut body = BytesMut::with_capacity(response.content_length().unwrap_or(0) as usize);
        let mut pace = Pace::new(self.min_speed);
        let (mut weigher, mut share) = (Weigher::default(), Share::new(&self.budget));
        while let Some(chunk) = pace.chunk(href, &mut response).await? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large(href));
            }
            weigher.feed(&chunk);
            share.grow(href, &weigher).await?;
            body.extend_from_slice(&chunk);
        }
        Ok((body.freeze(), at, share))
    }

    async fn object_once(&self, url: &Url) -> Result<Bytes> {
        let store = self.object_store(url)?;
        let path = object_store::path::Path::from_url_path(url.path()).map_err(|e| {
            Error::invalid_input(format!("{url} is not a valid object-store path: {e}"))
        })?;
        let href = url.to_string();
        let wrap = |source: object_store::Error| match source {
            object_store::Error::NotFound { .. } => Error::NotFound { href: href.clone() },
            source => Error::ObjectStore {
                href: href.clone(),
                source,
            },
        };
        let result = store.get(&path).await.map_err(wrap)?;
        if result.meta.size as usize > MAX_DOCUMENT_BYTES {
            return Err(too_large(url.as_str()));
        }
        result.bytes().await.map_err(wrap)
    }

    /// The client for the bucket or container of `url`, made once (for
    /// each way of reading it: requester-pays or not).
    pub(crate) fn object_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let requester_pays = self.access.requester_pays();
        // A client made before the person signed in to the bucket again is
        // not the one to use now.
        let key = format!(
            "{}://{} {requester_pays} {}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            crate::destination::logins_changed()
        );
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = stores.get(&key) {
            return Ok(store.clone());
        }
        let store = crate::destination::object_store_for_reading(url, requester_pays)?;
        stores.insert(key, store.clone());
        Ok(store)
    }
}

async fn read_file(url: &Url) -> Result<Bytes> {
    let path = url
        .to_file_path()
        .map_err(|()| Error::invalid_input(format!("{url} is not a valid file address")))?;
    let shown = path.display().to_string();
    // The whole read on one blocking thread, in one trip: tokio's own file
    // reads each piece (and the look and the open) on one of its own, a
    // hand-over between threads each time; a local catalog of small
    // documents was read slower than the same catalog over loopback HTTP.
    let read = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let Some((file, meta)) = open_regular(&path)? else {
            return Ok(LocalRead::NotAFile);
        };
        if meta.len() > MAX_DOCUMENT_BYTES as u64 {
            return Ok(LocalRead::TooLarge);
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
        file.take(MAX_DOCUMENT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)?;
        Ok::<_, std::io::Error>(match bytes.len() > MAX_DOCUMENT_BYTES {
            true => LocalRead::TooLarge,
            false => LocalRead::Read(bytes),
        })
    })
    .await;
    match crate::error::joined(read)? {
        Ok(LocalRead::Read(bytes)) => Ok(Bytes::from(bytes)),
        Ok(LocalRead::TooLarge) => Err(too_large(url.as_str())),
        // A device or a pipe never ends (`/dev/zero`), or never answers.
        Ok(LocalRead::NotAFile) => Err(Error::not_stac(
            url,
            "it is not a regular file (a folder, a device or a pipe); Cairn reads documents only from files",
        )),
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
            href: url.to_string(),
        }),
        Err(source) => Err(Error::Io {
            path: shown,
            source,
        }),
    }
}

/// Opens the file at `path` on this computer for reading, with what it is;
/// `None` when it is not a regular file (a folder, a device, a pipe). It is
/// looked at first (a device is not even opened), and opened without
/// waiting for a writer, should a pipe have taken its place in between
/// (then refused too).
pub(crate) fn open_regular(
    path: &Path,
) -> std::io::Result<Option<(std::fs::File, std::fs::Metadata)>> {
    if !std::fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    open_found(path)
}

/// [`open_regular`] once the path was looked at: the open never waits,
/// whatever has taken its place.
fn open_found(path: &Path) -> std::io::Result<Option<(std::fs::File, std::fs::Metadata)>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    // Known by the file opened, not by the path.
    let meta = file.metadata()?;
    Ok(meta.is_file().then_some((file, meta)))
}

/// What reading a local document found.
enum LocalRead {
    Read(Vec<u8>),
    TooLarge,
    NotAFile,
}

fn too_large(href: &str) -> Error {
    Error::TooLarge {
        href: href.to_string(),
        reason: format!(
            "is too large to read: it is larger than {} MiB",
            MAX_DOCUMENT_BYTES / 1024 / 1024
        ),
    }
}

/// The error for a response that is not a success, with the server's
/// `Retry-After` and the start of its explanation.
pub(crate) async fn status_error_of(href: &str, response: &mut reqwest::Response) -> Error {
    if let Some(error) = redirect_error(href, response) {
        return error;
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let mut body = Vec::new();
    // Read at most a little of the body: error pages can be large.
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            break;
        }
    }
    let detail = summarize(&String::from_utf8_lossy(&body));
    status_error(href, response.status(), retry_after, detail)
}

/// Whether `bytes` begin like a web page (HTML or XML) rather than JSON.
fn looks_like_a_page(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF)
        .unwrap_or(bytes.len());
    bytes.get(start) == Some(&b'<')
}

/// The error for a document at `href` that is not JSON: a web page is said
/// to be one, with where to look for the catalog.
fn not_json(href: &str, page: bool, source: serde_json::Error) -> Error {
    match page {
        true => Error::NotStac {
            href: href.to_string(),
            reason: "it is a web page, not a STAC catalog. Open it in a browser and look for the address of the catalog itself (it often ends in catalog.json or collection.json), or of its STAC API".into(),
        },
        false => Error::InvalidJson {
            href: href.to_string(),
            source,
        },
    }
}

/// Whether `error` is a connection that could not be made at all: refused,
/// no route to the host or its network, no answer in time, or no answer to
/// the lookup of its name (the computer is offline). Not a certificate
/// refused, a proxy's refusal or a name that does not exist: those do not
/// get better by waiting.
fn out_of_reach(error: &reqwest::Error) -> bool {
    use std::io::ErrorKind;
    if !error.is_connect() {
        return false;
    }
    if error.is_timeout() {
        return true;
    }
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(at) = cause {
        if let Some(io) = at.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkDown
                    | ErrorKind::TimedOut
                    | ErrorKind::AddrNotAvailable
            ) {
                return true;
            }
            // glibc's EAI_AGAIN: no name server answered.
            if io
                .to_string()
                .contains("Temporary failure in name resolution")
            {
                return true;
            }
        }
        cause = at.source();
    }
    false
}

/// The error for a request that got no usable answer.
pub(crate) fn transport_error(href: &str, error: &reqwest::Error) -> Error {
    let out_of_reach = out_of_reach(error);
    let reason = if out_of_reach {
        "could not connect (the server may be down, or you may be offline)".to_string()
    } else if error.is_timeout() {
        "the server took too long to answer".to_string()
    } else if error.is_connect() {
        // A name that does not exist, a certificate refused, a proxy: the
        // cause says which (it never holds the address).
        let mut cause: &dyn std::error::Error = error;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        let said = cause.to_string();
        if said.contains("Name or service not known")
            || said.contains("No address associated with hostname")
            || said.contains("nodename nor servname")
        {
            "could not connect: no server has that name; check the address".to_string()
        } else if href.starts_with("https:") {
            format!(
                "could not connect: the secure (https) connection failed ({said}); check the address, and that the server's certificate is valid"
            )
        } else {
            format!("could not connect ({said}); check the address")
        }
    } else if error.is_redirect() {
        let why = std::error::Error::source(error)
            .map_or_else(|| "a redirect was refused".to_string(), |s| s.to_string());
        return Error::Redirect {
            href: href.to_string(),
            reason: format!("Cairn does not follow it: {why}"),
        };
    } else if error.is_body() || error.is_decode() {
        "the connection dropped while reading the answer".to_string()
    } else {
        // The error's own text names the address as sent, which may carry
        // a signature: only its cause is said, the innermost (the outer
        // ones are the HTTP library's, "client error (SendRequest)").
        let mut cause = std::error::Error::source(error);
        while let Some(inner) = cause.and_then(std::error::Error::source) {
            cause = Some(inner);
        }
        let why = cause.map_or_else(|| "no cause was given".to_string(), |s| s.to_string());
        format!("the request failed ({})", crate::words::printable(&why))
    };
    Error::Unavailable {
        href: href.to_string(),
        reason,
        retry_after: None,
        reach: match out_of_reach {
            true => Reach::None,
            false => Reach::Unknown,
        },
    }
}

/// A redirect reqwest did not follow (to a scheme other than http(s)): the
/// error that says where it led.
fn redirect_error(href: &str, response: &reqwest::Response) -> Option<Error> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nowhere");
    Some(Error::Redirect {
        href: href.to_string(),
        reason: format!(
            "it leads to {location:?}, which Cairn does not follow: it follows redirects only to http and https addresses"
        ),
    })
}

fn status_error(
    href: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    detail: Option<String>,
) -> Error {
    let href = href.to_string();
    match status.as_u16() {
        404 | 410 => Error::NotFound { href },
        401 | 403 => Error::AccessDenied {
            href,
            status: status.as_u16(),
        },
        429 => Error::Unavailable {
            href,
            reason: "the server asked us to slow down (HTTP 429)".into(),
            retry_after,
            reach: Reach::Answered(429),
        },
        code @ (502..=504) => Error::Unavailable {
            href,
            reason: format!("the server is temporarily unavailable (HTTP {code})"),
            retry_after,
            reach: Reach::Answered(code),
        },
        // Object stores and busy web servers answer 500 for passing trouble too.
        code @ (408 | 500) => Error::Unavailable {
            href,
            reason: format!(
                "the server had a problem answering (HTTP {code}){}",
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            ),
            retry_after,
            reach: Reach::Answered(code),
        },
        code => Error::Http {
            href,
            status: code,
            detail,
        },
    }
}

/// Reads `Retry-After` as seconds or as an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The first line of a server's error body, shortened, if it says anything.
fn summarize(body: &str) -> Option<String> {
    let text = match serde_json::from_str::<Value>(body) {
        Ok(json) => json
            .get("description")
            .or_else(|| json.get("detail"))
            .or_else(|| json.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| body.to_string()),
        Err(_) => body.to_string(),
    };
    let line = text.lines().find(|l| !l.trim().is_empty())?.trim();
    // A server's words, never its escape sequences.
    let line = crate::words::printable(line);
    let mut short: String = line.chars().take(200).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    Some(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a client says when `url` cannot be fetched, in Cairn's words.
    async fn failure(url: &str) -> Error {
        let error = reqwest::Client::new().get(url).send().await.unwrap_err();
        transport_error(url, &error)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_local_document_is_read_from_a_regular_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let url = |name: &str| Url::from_file_path(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join("item.json"), br#"{"type": "Feature"}"#).unwrap();
        std::fs::write(dir.path().join("empty.json"), b"").unwrap();
        std::fs::create_dir(dir.path().join("folder.json")).unwrap();
        // Larger than any document is read: refused before it is read (the
        // file is sparse, it takes no room).
        std::fs::File::create(dir.path().join("huge.json"))
            .unwrap()
            .set_len(MAX_DOCUMENT_BYTES as u64 + 1)
            .unwrap();
        assert_eq!(
            &read_file(&url("item.json")).await.unwrap()[..],
            br#"{"type": "Feature"}"#
        );
        assert!(read_file(&url("empty.json")).await.unwrap().is_empty());
        let missing = read_file(&url("missing.json")).await.unwrap_err();
        assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
        let huge = read_file(&url("huge.json")).await.unwrap_err();
        assert!(matches!(huge, Error::TooLarge { .. }), "{huge}");
        let mut refused = vec![url("folder.json")];
        #[cfg(unix)]
        {
            // A device never ends, and a pipe never answers: neither is
            // opened, let alone read.
            refused.push(Url::parse("file:///dev/zero").unwrap());
            let pipe = dir.path().join("pipe.json");
            let made = std::process::Command::new("mkfifo").arg(&pipe).status();
            assert!(made.unwrap().success());
            refused.push(url("pipe.json"));
        }
        for url in refused {
            let error = read_file(&url).await.unwrap_err();
            assert_eq!(error.code(), "not_stac", "{url}: {error}");
            assert!(error.to_string().contains("not a regular file"), "{error}");
        }
        // A pipe put in a file's place after it was looked at is opened
        // without waiting for a writer, and refused.
        #[cfg(unix)]
        {
            let (done, opened) = std::sync::mpsc::channel();
            let pipe = dir.path().join("pipe.json");
            std::thread::spawn(move || done.send(open_found(&pipe).map(|f| f.is_none())));
            let refused = opened.recv_timeout(std::time::Duration::from_secs(10));
            assert!(matches!(refused, Ok(Ok(true))), "{refused:?}");
        }
    }

    #[test]
    fn a_busy_server_has_answered_and_is_reached() {
        for code in [408, 429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(code).unwrap();
            let error = status_error("http://x.test/a", status, None, None);
            assert!(error.is_retryable(), "{code}");
            assert!(error.is_answer(), "{code}");
            assert!(!error.is_unreachable(), "{code}");
        }
    }

    #[tokio::test]
    async fn only_a_server_out_of_reach_is_taken_for_one() {
        // Nothing listens: refused, which waiting may mend.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let refused = failure(&format!("http://127.0.0.1:{port}/a.tif")).await;
        assert!(refused.is_unreachable(), "{refused}");
        // A server that answers TLS with something else: no wait mends it,
        // and the cause is said.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let tls = failure(&format!("https://127.0.0.1:{port}/a.tif")).await;
        assert!(!tls.is_unreachable(), "{tls}");
        assert!(
            tls.to_string()
                .contains("could not connect: the secure (https) connection failed"),
            "{tls}"
        );
        assert!(!tls.to_string().contains("offline"), "{tls}");
    }

    #[test]
    fn a_web_address_without_its_scheme_is_not_taken_for_a_missing_file() {
        let error = parse_location("earth-search.aws.element84.com/v1").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("https://earth-search.aws.element84.com/v1"),
            "{error}"
        );
        let error = parse_location("no/such/catalog.json").unwrap_err();
        assert!(error.to_string().contains("does not exist"), "{error}");
        assert!(!looks_like_a_host("catalog.json"));
        assert!(!looks_like_a_host("./data/catalog.json"));
        assert!(looks_like_a_host("www.example.org"));
        assert!(looks_like_a_host("stac.example.com:8080/api"));
    }

    #[test]
    fn documents_are_weighed_by_their_values_not_their_strings() {
        let mut weigher = Weigher::default();
        weigher.feed(br#"{"a": [1, 2, 3], "s": "x, y: [z] {\"q\": 1}""#);
        weigher.feed(b"}");
        // {  :  [  ,  ,  ,  :  -- and nothing inside the string.
        assert_eq!(weigher.values, 7);
        let mut dense = Weigher::default();
        dense.feed(&b"[0,".repeat(1000));
        assert!(dense.cost() > VALUE_COST * 2000);
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(60);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(parsed <= Duration::from_secs(60) && parsed >= Duration::from_secs(58));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn locations_are_parsed_or_refused_clearly() {
        assert_eq!(
            parse_location("https://example.com/catalog.json")
                .unwrap()
                .as_str(),
            "https://example.com/catalog.json"
        );
        assert!(parse_location("s3://bucket/catalog.json").is_ok());
        let err = parse_location("ftp://example.com/x").unwrap_err();
        assert!(err.to_string().contains("ftp://"), "{err}");
        let err = parse_location("/no/such/place/catalog.json").unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("collection.json"), "{}").unwrap();
        let url = parse_location(dir.path().to_str().unwrap()).unwrap();
        assert!(url.path().ends_with("/collection.json"), "{url}");
    }

    #[test]
    fn error_bodies_are_summarized() {
        assert_eq!(
            summarize(r#"{"code":"NotFoundError","description":"No collection"}"#).as_deref(),
            Some("No collection")
        );
        assert_eq!(summarize("\n\n"), None);
    }
}
