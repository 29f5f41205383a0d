//! Signing in where the data lives, against loopback servers that behave as
//! the real ones do: a NASA Earthdata-like login round trip (data host,
//! login host, cookie), Planetary Computer-like SAS tokens that run out in
//! seconds, and headers that belong to one host. Every secret used is then
//! looked for in the state file, the output and the mirror, and not found.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};

use crate::support::{Server, cairn, files_under, sound::sound_mirror};

/// What a server saw: each request's path and query, and its headers.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, HeaderMap)>>>);

impl Seen {
    fn note(&self, uri: &axum::http::Uri, headers: &HeaderMap) {
        self.0
            .lock()
            .unwrap()
            .push((uri.to_string(), headers.clone()));
    }

    fn all(&self) -> Vec<(String, HeaderMap)> {
        self.0.lock().unwrap().clone()
    }
}

/// Records every request a router answers.
fn recorded(router: Router, seen: &Seen) -> Router {
    let seen = seen.clone();
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let seen = seen.clone();
            async move {
                seen.note(request.uri(), request.headers());
                next.run(request).await
            }
        },
    ))
}

fn file_bytes(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|b| ((b * 7 + i * 13) % 251) as u8).collect()
}

/// A collection of `count` items, each with one asset at `href(i)`.
fn collection(count: usize) -> Value {
    let mut links = vec![json!({"rel": "root", "href": "./collection.json"})];
    for i in 0..count {
        links.push(json!({"rel": "item", "href": format!("./items/item-{i}.json")}));
    }
    json!({"type": "Collection", "stac_version": "1.1.0", "id": "granules",
        "description": "Granules", "license": "proprietary",
        "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
        "links": links})
}

fn item(i: usize, href: &str) -> Value {
    json!({"type": "Feature", "stac_version": "1.1.0", "id": format!("item-{i}"),
        "collection": "granules", "geometry": null,
        "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
        "assets": {"data": {"href": href, "type": "application/octet-stream"}}})
}

/// Every byte Cairn left behind: its state folder, what it printed, and
/// the mirror; `secret` must be in none of them.
fn assert_nowhere(secret: &str, state_dir: &Path, dest: &Path, printed: &[&str]) {
    for text in printed {
        assert!(!text.contains(secret), "{secret:?} was printed:\n{text}");
    }
    for file in files_under(state_dir).into_iter().chain(files_under(dest)) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "{secret:?} was written to {}",
            file.display()
        );
    }
}

// ---------------------------------------------------------------- Earthdata

const LOGIN: &str = "archivist";
const PASSWORD: &str = "Earthdata-pa55word-7f3c";
const CODE: &str = "grant-code-5521";
const SESSION: &str = "session-cookie-91ab77";
const GRANULES: usize = 24;
const GRANULE_SIZE: usize = 40_000;

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{LOGIN}:{PASSWORD}"))
    )
}

/// The login host: asks for the password (basic auth), then sends the
/// browser back to the data host with a one-time code.
fn login_host() -> Router {
    let authorize = |Query(query): Query<HashMap<String, String>>, headers: HeaderMap| async move {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(basic().as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"Login\"")],
                "log in first",
            )
                .into_response();
        }
        let back = format!(
            "{}?code={CODE}&state={}",
            query["redirect_uri"], query["state"]
        );
        (StatusCode::FOUND, [(header::LOCATION, back)]).into_response()
    };
    Router::new().route("/oauth/authorize", get(authorize))
}

/// The data host: its catalog is public; its files need a session, which
/// its `/login` gives for a code from the login host.
fn data_host(login: std::net::SocketAddr) -> Router {
    let file = move |UrlPath(name): UrlPath<String>, headers: HeaderMap| async move {
        let session = headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| {
                c.split(';')
                    .any(|c| c.trim() == format!("session={SESSION}"))
            });
        if !session {
            let host = headers[header::HOST].to_str().unwrap().to_string();
            let to = format!(
                "http://{login}/oauth/authorize?client_id=data&response_type=code&redirect_uri=http://{host}/login&state=/data/{name}"
            );
            return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
        }
        let i: usize = name.trim_end_matches(".bin").parse().unwrap();
        file_bytes(i, GRANULE_SIZE).into_response()
    };
    let back = |Query(query): Query<HashMap<String, String>>| async move {
        if query.get("code").map(String::as_str) != Some(CODE) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        (
            StatusCode::FOUND,
            [
                (
                    header::SET_COOKIE,
                    format!("session={SESSION}; Path=/; HttpOnly"),
                ),
                (header::LOCATION, query["state"].clone()),
            ],
        )
            .into_response()
    };
    Router::new()
        .route(
            "/stac/collection.json",
            get(|| async { axum::Json(collection(GRANULES)) }),
        )
        .route(
            "/stac/items/{name}",
            get(|UrlPath(name): UrlPath<String>| async move {
                let i: usize = name
                    .trim_start_matches("item-")
                    .trim_end_matches(".json")
                    .parse()
                    .unwrap();
                axum::Json(item(i, &format!("../../data/{i}.bin")))
            }),
        )
        .route("/data/{name}", get(file))
        .route("/login", get(back))
}

#[test]
fn an_earthdata_login_sends_the_password_to_the_login_host_only() {
    let (login_seen, data_seen) = (Seen::default(), Seen::default());
    // Two hosts: the login host on a second loopback address.
    let login = Server::start_on("127.0.0.2", recorded(login_host(), &login_seen));
    let data = Server::start(recorded(data_host(login.addr), &data_seen));
    let dir = tempfile::tempdir().unwrap();
    let (state_dir, dest) = (dir.path().join("state"), dir.path().join("mirror"));
    std::fs::create_dir_all(&state_dir).unwrap();
    let state = state_dir.join("cairn.db");
    let netrc = dir.path().join("netrc");
    std::fs::write(
        &netrc,
        format!("machine 127.0.0.2\n  login {LOGIN}\n  password {PASSWORD}\n"),
    )
    .unwrap();
    let source = data.url("stac/collection.json").to_string();

    // Without the login, the files are refused in words.
    let refused = cairn(
        &state,
        &[
            "mirror",
            &source,
            dir.path().join("refused").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    let failed: Vec<Value> = refused
        .lines()
        .into_iter()
        .filter(|l| l["type"] == "failed")
        .collect();
    assert_eq!(failed.len(), GRANULES, "{}", refused.stdout);
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("check that the address is public or that your credentials are set"),
        "{}",
        failed[0]
    );

    let run = cairn(
        &state,
        &[
            "mirror",
            &source,
            dest.to_str().unwrap(),
            "--netrc",
            netrc.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let summary = run.summary();
    assert_eq!(summary["done"], GRANULES as u64, "{summary}");
    let mirrored = sound_mirror(&dest);
    assert_eq!(mirrored.len(), GRANULES);
    for asset in &mirrored {
        let i: usize = asset
            .path
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".bin")
            .parse()
            .unwrap();
        assert_eq!(asset.bytes, file_bytes(i, GRANULE_SIZE), "{}", asset.path);
    }

    // The password went to the login host, and only there.
    let data_requests = data_seen.all();
    for (uri, headers) in &data_requests {
        assert!(
            headers.get(header::AUTHORIZATION).is_none(),
            "the data host was sent credentials: {uri}"
        );
    }
    let logins: Vec<_> = login_seen
        .all()
        .into_iter()
        .filter(|(_, h)| h.get(header::AUTHORIZATION).is_some())
        .collect();
    assert!(!logins.is_empty());
    // The data host's session stays with the data host.
    for (uri, headers) in login_seen.all() {
        assert!(
            headers.get(header::COOKIE).is_none(),
            "the login host was sent a cookie: {uri}"
        );
    }
    // The session cookie is kept for the job: the login host is asked
    // only by the first transfers, before the cookie came back.
    assert!(
        logins.len() <= 8,
        "{} logins for {GRANULES} files: the session was not kept",
        logins.len()
    );
    let after_login = data_requests
        .iter()
        .filter(|(uri, h)| uri.starts_with("/data/") && h.get(header::COOKIE).is_some())
        .count();
    assert!(after_login >= GRANULES, "{after_login}");

    let printed = [
        run.stdout.as_str(),
        run.stderr.as_str(),
        refused.stdout.as_str(),
        refused.stderr.as_str(),
    ];
    for secret in [
        PASSWORD,
        SESSION,
        CODE,
        basic().trim_start_matches("Basic "),
    ] {
        assert_nowhere(secret, &state_dir, &dest, &printed);
    }
    // The job records where the logins are, not what they are.
    let jobs = cairn(&state, &["jobs", "--json"]);
    assert!(jobs.stdout.contains("netrc"), "{}", jobs.stdout);
    assert!(!jobs.stdout.contains(PASSWORD));
}

// ----------------------------------------------------- Planetary Computer

const ACCOUNT: &str = "pcaccount";
const CONTAINER: &str = "granules";
const TOKEN_LIFE: Duration = Duration::from_secs(3);
const BLOBS: usize = 24;
const BLOB_SIZE: usize = 60_000;

/// The token service and the blob store share what tokens exist.
#[derive(Default)]
struct Tokens {
    /// Signature -> when it runs out, and how often it was used.
    issued: Mutex<HashMap<String, (Instant, u64)>>,
    count: AtomicU64,
    refused: AtomicU64,
}

/// The token service: a token for the one private container, lasting
/// [`TOKEN_LIFE`]; "no such container" for any other.
fn token_service(tokens: Arc<Tokens>) -> Router {
    Router::new()
        .route(
            "/token/{account}/{container}",
            get(
                |State(tokens): State<Arc<Tokens>>,
                 UrlPath((account, container)): UrlPath<(String, String)>| async move {
                    if account != ACCOUNT || container != CONTAINER {
                        return (StatusCode::NOT_FOUND, "no such container").into_response();
                    }
                    let n = tokens.count.fetch_add(1, Ordering::SeqCst);
                    let sig = format!("SiG{n}x{:08x}", rand_word(n));
                    let expiry = SystemTime::now() + TOKEN_LIFE;
                    tokens
                        .issued
                        .lock()
                        .unwrap()
                        .insert(sig.clone(), (Instant::now() + TOKEN_LIFE, 0));
                    let expiry = chrono::DateTime::<chrono::Utc>::from(expiry)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    axum::Json(json!({
                        "msft:expiry": expiry,
                        "token": format!("st=2024-01-01T00%3A00%3A00Z&se={}&sp=rl&sv=2024-05-04&sr=c&sig={sig}", expiry.replace(':', "%3A")),
                    }))
                    .into_response()
                },
            ),
        )
        .with_state(tokens)
}

fn rand_word(n: u64) -> u32 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ (n as u32).wrapping_mul(2_654_435_761)
}

/// A blob store in the emulators' path form (`/ACCOUNT/CONTAINER/BLOB`):
/// a blob of the private container needs a token that has not run out.
/// The first token is revoked after its third use (a 403 mid-job). Its
/// catalog (`/stac/...`) is not a blob.
fn blob_store(tokens: Arc<Tokens>) -> Router {
    let blob = |State(tokens): State<Arc<Tokens>>,
                UrlPath((account, container, name)): UrlPath<(String, String, String)>,
                Query(query): Query<HashMap<String, String>>| async move {
        assert_eq!((account.as_str(), container.as_str()), (ACCOUNT, CONTAINER));
        let valid = query.get("sig").is_some_and(|sig| {
            let mut issued = tokens.issued.lock().unwrap();
            match issued.get_mut(sig) {
                Some((until, uses)) => {
                    *uses += 1;
                    let revoked = sig.starts_with("SiG0x") && *uses > 3;
                    Instant::now() < *until && !revoked
                }
                None => false,
            }
        });
        if !valid {
            tokens.refused.fetch_add(1, Ordering::SeqCst);
            return (
                StatusCode::FORBIDDEN,
                "Server failed to authenticate the request.",
            )
                .into_response();
        }
        let i: usize = name.trim_end_matches(".bin").parse().unwrap();
        file_bytes(i, BLOB_SIZE).into_response()
    };
    Router::new()
        .route(
            "/stac/collection.json",
            get(|| async { axum::Json(collection(BLOBS)) }),
        )
        .route(
            "/stac/items/{name}",
            get(|UrlPath(name): UrlPath<String>| async move {
                let i: usize = name
                    .trim_start_matches("item-")
                    .trim_end_matches(".json")
                    .parse()
                    .unwrap();
                axum::Json(item(
                    i,
                    &format!("../../{ACCOUNT}/{CONTAINER}/blobs/{i}.bin"),
                ))
            }),
        )
        .route("/{account}/{container}/blobs/{name}", get(blob))
        .with_state(tokens)
}

#[test]
fn blobs_are_signed_with_tokens_renewed_through_a_job_longer_than_their_life() {
    let tokens = Arc::new(Tokens::default());
    let service = Server::start(token_service(tokens.clone()));
    let seen = Seen::default();
    let store = Server::start(recorded(blob_store(tokens.clone()), &seen));
    let dir = tempfile::tempdir().unwrap();
    let (state_dir, dest) = (dir.path().join("state"), dir.path().join("mirror"));
    std::fs::create_dir_all(&state_dir).unwrap();
    let state = state_dir.join("cairn.db");
    let sign = format!("planetary-computer={}", service.url("token"));
    let started = Instant::now();
    // 1.44 MB at 150 KB/s: about ten seconds, three token lives and more.
    let run = cairn(
        &state,
        &[
            "mirror",
            store.url("stac/collection.json").as_str(),
            dest.to_str().unwrap(),
            "--sign",
            &sign,
            "--limit-rate",
            "150K",
            "--json",
        ],
    );
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let summary = run.summary();
    assert_eq!(summary["done"], BLOBS as u64, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert!(took > TOKEN_LIFE * 2, "the job took only {took:?}");
    assert_eq!(sound_mirror(&dest).len(), BLOBS);

    let issued = tokens.count.load(Ordering::SeqCst);
    assert!(
        issued >= 3,
        "{issued} tokens for a job of {took:?}: they were not renewed"
    );
    // The revoked token was refused, a new one fetched, and nothing failed.
    assert!(tokens.refused.load(Ordering::SeqCst) >= 1);
    // Tokens are kept for their life, not fetched per file.
    assert!(
        issued < BLOBS as u64,
        "{issued} tokens for {BLOBS} files: they were not kept"
    );
    // Each blob was asked for signed; the catalog (not a blob) was not.
    for (uri, _) in seen.all() {
        assert_eq!(
            uri.contains("sig="),
            uri.contains("/blobs/"),
            "{uri} is signed, or is a blob that was not"
        );
    }

    let printed = [run.stdout.as_str(), run.stderr.as_str()];
    let sigs: Vec<String> = tokens.issued.lock().unwrap().keys().cloned().collect();
    for sig in &sigs {
        assert_nowhere(sig, &state_dir, &dest, &printed);
    }
}

// ------------------------------------------------------------------ headers

const KEY: &str = "api-key-0c9d5e";
const FILES: usize = 6;

/// The source: its catalog needs `X-Api-Key`. Its assets are elsewhere: on
/// another host, directly or through a redirect from the source's host, or
/// on the source's own address at another port (another server).
fn keyed_source(other: std::net::SocketAddr, port: std::net::SocketAddr) -> Router {
    let keyed =
        |headers: &HeaderMap| headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(KEY);
    Router::new()
        .route(
            "/stac/collection.json",
            get(move |headers: HeaderMap| async move {
                if !keyed(&headers) {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                axum::Json(collection(FILES)).into_response()
            }),
        )
        .route(
            "/stac/items/{name}",
            get(
                move |UrlPath(name): UrlPath<String>, headers: HeaderMap| async move {
                    if !keyed(&headers) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let i: usize = name
                        .trim_start_matches("item-")
                        .trim_end_matches(".json")
                        .parse()
                        .unwrap();
                    let href = match i % 3 {
                        0 => format!("http://{other}/files/{i}.bin"),
                        1 => format!("../../go/{i}.bin"),
                        _ => format!("http://{port}/files/{i}.bin"),
                    };
                    axum::Json(item(i, &href)).into_response()
                },
            ),
        )
        .route(
            "/go/{name}",
            get(move |UrlPath(name): UrlPath<String>| async move {
                let to = format!("http://{other}/files/{name}");
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, to)
                    .body(axum::body::Body::empty())
                    .unwrap()
            }),
        )
}

#[test]
fn a_header_goes_to_the_source_s_host_only_and_is_never_written() {
    let (source_seen, other_seen) = (Seen::default(), Seen::default());
    let files = || {
        Router::new().route(
            "/files/{name}",
            get(|UrlPath(name): UrlPath<String>| async move {
                let i: usize = name.trim_end_matches(".bin").parse().unwrap();
                file_bytes(i, 5_000)
            }),
        )
    };
    // Another host, and the same address at another port: both are others.
    let other = Server::start_on("127.0.0.2", recorded(files(), &other_seen));
    let port = Server::start(recorded(files(), &other_seen));
    let source = Server::start(recorded(keyed_source(other.addr, port.addr), &source_seen));
    let dir = tempfile::tempdir().unwrap();
    let (state_dir, dest) = (dir.path().join("state"), dir.path().join("mirror"));
    std::fs::create_dir_all(&state_dir).unwrap();
    let state = state_dir.join("cairn.db");
    let header = format!("X-Api-Key: {KEY}");
    let url = source.url("stac/collection.json").to_string();

    let run = cairn(
        &state,
        &[
            "mirror",
            &url,
            dest.to_str().unwrap(),
            "--header",
            &header,
            "--json",
        ],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(sound_mirror(&dest).len(), FILES);
    for (uri, headers) in source_seen.all() {
        assert_eq!(
            headers.get("x-api-key").and_then(|v| v.to_str().ok()),
            Some(KEY),
            "{uri}"
        );
    }
    let other_requests = other_seen.all();
    assert_eq!(other_requests.len(), FILES);
    for (uri, headers) in &other_requests {
        assert!(
            headers.get("x-api-key").is_none(),
            "the header went to another host: {uri}"
        );
    }
    assert_nowhere(KEY, &state_dir, &dest, &[&run.stdout, &run.stderr]);

    // The value is not kept: going on without it says so; with it, the
    // catalog is read again (signed in) and the job goes on.
    let job = run.summary()["job"].as_i64().unwrap().to_string();
    let without = cairn(&state, &["resume", &job]);
    assert_eq!(without.code, Some(2), "{}", without.stderr);
    assert!(
        without.stderr.contains("x-api-key") && without.stderr.contains("give it again"),
        "{}",
        without.stderr
    );
    let asked_before = source_seen.all().len();
    let with = cairn(&state, &["resume", &job, "--header", &header]);
    assert_eq!(with.code, Some(0), "{}", with.stderr);
    let asked = source_seen.all();
    assert!(
        asked.len() > asked_before,
        "the resume did not read the catalog"
    );
    for (uri, headers) in &asked[asked_before..] {
        assert!(headers.get("x-api-key").is_some(), "{uri}");
    }
    assert_nowhere(KEY, &state_dir, &dest, &[&without.stderr, &with.stdout]);
}
