//! One asset copied over loopback HTTP: verified before it is committed, resumed
//! with Range + If-Range, restarted when the file changed, never committed when
//! the bytes are wrong.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use cairn::checksum::{Algorithm, Checksum};
use cairn::folder::Folder;
use cairn::limit::Limits;
use cairn::transfer::copy::{AssetCopy, Started, part_path};
use tokio_util::sync::CancellationToken;

use crate::support::Server;

/// What the blob server serves and how it misbehaves.
#[derive(Default)]
struct Blob {
    content: Vec<u8>,
    etag: String,
    /// Stop the body (and drop the connection) after this many bytes.
    cut_after: Option<usize>,
    /// Ranges asked for, in order (`None` for a whole-file request).
    ranges: Vec<Option<String>>,
    /// Body bytes sent.
    served: u64,
    /// Serve a range whatever its If-Range says, as some servers do.
    ignores_if_range: bool,
}

type Shared = Arc<Mutex<Blob>>;

fn blob_server(content: Vec<u8>) -> (Server, Shared) {
    let blob: Shared = Arc::new(Mutex::new(Blob {
        content,
        etag: "\"v1\"".into(),
        ..Default::default()
    }));
    let state = blob.clone();
    let router = Router::new().route(
        "/blob",
        get(move |headers: HeaderMap| {
            let state = state.clone();
            async move { serve(&state, &headers) }
        }),
    );
    (Server::start(router), blob)
}

fn serve(state: &Shared, headers: &HeaderMap) -> Response {
    let mut blob = state.lock().unwrap();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    blob.ranges.push(range.clone());
    let if_range_ok = blob.ignores_if_range
        || headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) == Some(blob.etag.as_str());
    let total = blob.content.len();
    let start = match (&range, if_range_ok) {
        (Some(r), true) => r
            .trim_start_matches("bytes=")
            .trim_end_matches('-')
            .parse::<usize>()
            .unwrap(),
        _ => 0,
    };
    if start > 0 && start >= total {
        let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
        let value = format!("bytes */{total}");
        response
            .headers_mut()
            .insert(header::CONTENT_RANGE, value.parse().unwrap());
        return response;
    }
    let body = blob.content[start..].to_vec();
    let length = body.len();
    let sent = blob.cut_after.take().map_or(length, |cut| cut.min(length));
    blob.served += sent as u64;
    let etag = blob.etag.clone();
    drop(blob);
    // A stream that ends with an error after `sent` bytes drops the connection
    // mid-body, as a reset would; the pause lets the bytes before it go out.
    let chunks: Vec<Result<Bytes, std::io::Error>> = body[..sent]
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let reset = futures::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Err(std::io::Error::other("connection reset"))
    });
    let tail = futures::StreamExt::take(reset, usize::from(sent < length));
    let stream = futures::StreamExt::chain(futures::stream::iter(chunks), tail);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag.parse().unwrap());
    headers.insert(header::CONTENT_LENGTH, length.into());
    if start > 0 {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!("bytes {start}-{}/{total}", total - 1);
        response
            .headers_mut()
            .insert(header::CONTENT_RANGE, value.parse().unwrap());
    }
    response
}

/// A copy of the blob server's file to `target`, fetched afresh.
fn blob_copy(
    server: &Server,
    target: &std::path::Path,
    expected_size: Option<u64>,
    expected_checksum: Option<Checksum>,
) -> AssetCopy {
    AssetCopy {
        url: server.url("blob"),
        place: Arc::new(
            Folder::open(target.parent().unwrap())
                .unwrap()
                .place(target.file_name().unwrap().to_str().unwrap(), true)
                .unwrap(),
        ),
        expected_size,
        expected_checksum,
        validator: None,
        flush: true,
        media_type: None,
        min_speed: cairn::fetch::MinSpeed::default(),
    }
}

fn content(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

async fn attempt(
    copy: &AssetCopy,
) -> (
    cairn::Result<cairn::transfer::copy::Copied>,
    Option<Started>,
) {
    let mut started = None;
    let fetcher = cairn::fetch::Fetcher::new().unwrap();
    let progress = Arc::new(AtomicU64::new(0));
    let result = copy
        .run(
            &fetcher,
            &Limits::unlimited(),
            &CancellationToken::new(),
            &progress,
            |s| started = Some(s.clone()),
        )
        .await;
    if let Ok(copied) = &result {
        assert_eq!(progress.load(Ordering::Relaxed), copied.fetched);
        assert!(
            !copy.place.has_file(copy.place.name()),
            "nothing is in place before the commit"
        );
        copy.commit().await.unwrap();
    }
    (result, started)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_is_verified_then_committed() {
    let data = content(3_000_000);
    let (server, _) = blob_server(data.clone());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("item/B04.tif");
    let copy = blob_copy(
        &server,
        &target,
        Some(data.len() as u64),
        Some(Checksum::of(Algorithm::Md5, &data)),
    );
    let (result, started) = attempt(&copy).await;
    let copied = result.unwrap();
    assert_eq!(copied.verified.size, 3_000_000);
    assert_eq!(
        copied.verified.sha256,
        Checksum::of(Algorithm::Sha2_256, &data)
    );
    assert_eq!(std::fs::read(&target).unwrap(), data);
    assert!(!std::path::Path::new(&part_path(&target.display().to_string())).exists());
    assert_eq!(started.unwrap().validator.as_deref(), Some("\"v1\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_transfer_resumes_with_range_and_fetches_only_the_rest() {
    let data = content(2_000_000);
    let (server, blob) = blob_server(data.clone());
    blob.lock().unwrap().cut_after = Some(700_000);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("B04.tif");
    let mut copy = blob_copy(
        &server,
        &target,
        Some(data.len() as u64),
        Some(Checksum::of(Algorithm::Sha2_256, &data)),
    );
    let (result, started) = attempt(&copy).await;
    let error = result.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(!target.exists());
    let kept = std::fs::metadata(part_path(&target.display().to_string()))
        .unwrap()
        .len();
    assert!(kept > 0 && kept <= 700_000, "{kept}");

    copy.validator = started.unwrap().validator;
    let (result, started) = attempt(&copy).await;
    let copied = result.unwrap();
    assert_eq!(copied.resumed_from, kept);
    assert_eq!(copied.fetched, 2_000_000 - kept);
    assert_eq!(started.unwrap().offset, kept);
    assert_eq!(std::fs::read(&target).unwrap(), data);
    let blob = blob.lock().unwrap();
    assert_eq!(blob.ranges, vec![None, Some(format!("bytes={kept}-"))]);
    // Nothing verified was fetched twice.
    assert_eq!(blob.served, 700_000 + 2_000_000 - kept);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_that_is_already_whole_is_verified_without_fetching_again() {
    let data = content(300_000);
    let (server, blob) = blob_server(data.clone());
    let dir = tempfile::tempdir().unwrap();
    // The process stopped after the last byte, before the rename: with the
    // size known there is no request at all; without it, the server's 416
    // `bytes */N` says the partial is whole.
    for expected_size in [Some(data.len() as u64), None] {
        let target = dir.path().join("B04.tif");
        let _ = std::fs::remove_file(&target);
        std::fs::write(part_path(&target.display().to_string()), &data).unwrap();
        let copy = AssetCopy {
            validator: Some("\"v1\"".into()),
            ..blob_copy(
                &server,
                &target,
                expected_size,
                Some(Checksum::of(Algorithm::Sha2_256, &data)),
            )
        };
        let (result, _) = attempt(&copy).await;
        let copied = result.unwrap();
        assert_eq!((copied.resumed_from, copied.fetched), (300_000, 0));
        assert_eq!(std::fs::read(&target).unwrap(), data);
    }
    let blob = blob.lock().unwrap();
    assert_eq!(blob.ranges, vec![Some("bytes=300000-".to_string())]);
    assert_eq!(blob.served, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_changed_on_the_server_is_fetched_again_from_the_start() {
    let old = content(1_000_000);
    let (server, blob) = blob_server(old.clone());
    blob.lock().unwrap().cut_after = Some(400_000);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("B04.tif");
    let mut copy = blob_copy(&server, &target, None, None);
    let (result, started) = attempt(&copy).await;
    assert!(result.is_err());
    copy.validator = started.unwrap().validator;

    let new: Vec<u8> = old.iter().map(|b| b.wrapping_add(1)).collect();
    {
        let mut blob = blob.lock().unwrap();
        blob.content = new.clone();
        blob.etag = "\"v2\"".into();
    }
    let (result, _) = attempt(&copy).await;
    let copied = result.unwrap();
    assert_eq!(copied.resumed_from, 0);
    assert_eq!(std::fs::read(&target).unwrap(), new);
}

/// A server that serves a range under any If-Range: the 206 carries the
/// new ETag, so the rest of another version is never appended to the old
/// bytes.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_file_is_never_spliced_when_the_server_ignores_if_range() {
    let old = content(1_000_000);
    let (server, blob) = blob_server(old.clone());
    blob.lock().unwrap().cut_after = Some(400_000);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("B04.tif");
    let mut copy = blob_copy(&server, &target, None, None);
    let (result, started) = attempt(&copy).await;
    assert!(result.is_err());
    copy.validator = started.unwrap().validator;

    let new: Vec<u8> = old.iter().map(|b| b.wrapping_add(1)).collect();
    {
        let mut blob = blob.lock().unwrap();
        blob.content = new.clone();
        blob.etag = "\"v2\"".into();
        blob.ignores_if_range = true;
    }
    let (result, _) = attempt(&copy).await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("changed at its source"), "{error}");
    // The next attempt (the pool retries) fetches it whole.
    let (result, _) = attempt(&copy).await;
    assert_eq!(result.unwrap().resumed_from, 0);
    assert_eq!(std::fs::read(&target).unwrap(), new);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_bytes_are_never_committed() {
    let data = content(500_000);
    let (server, _) = blob_server(data.clone());
    let dir = tempfile::tempdir().unwrap();
    for (size, checksum, words) in [
        (
            None,
            Some(Checksum::of(Algorithm::Blake2b256, b"something else")),
            "blake2b-256 checksum does not match",
        ),
        (
            Some(500_001),
            None,
            "expected 500001 bytes but received 500000",
        ),
    ] {
        let target = dir.path().join("B04.tif");
        let copy = blob_copy(&server, &target, size, checksum);
        let (result, _) = attempt(&copy).await;
        let error = result.unwrap_err();
        assert_eq!(error.code(), "verification");
        assert!(error.to_string().contains(words), "{error}");
        assert!(!target.exists());
        assert!(!std::path::Path::new(&part_path(&target.display().to_string())).exists());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_copy_keeps_its_partial_file() {
    let data = content(4_000_000);
    let (server, _) = blob_server(data.clone());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("B04.tif");
    let copy = blob_copy(&server, &target, None, None);
    let (_, progress) = cut(&copy).await;
    assert!(!target.exists());
    let kept = std::fs::metadata(part_path(&target.display().to_string()))
        .unwrap()
        .len();
    assert_eq!(kept, progress);
    assert!(kept > 0 && kept < 4_000_000, "{kept}");
}

/// A copy of the local file `source` to `target`.
fn file_copy(source: &std::path::Path, target: &std::path::Path) -> AssetCopy {
    AssetCopy {
        url: url::Url::from_file_path(source).unwrap(),
        place: Arc::new(
            Folder::open(target.parent().unwrap())
                .unwrap()
                .place(target.file_name().unwrap().to_str().unwrap(), true)
                .unwrap(),
        ),
        expected_size: None,
        expected_checksum: None,
        validator: None,
        flush: true,
        media_type: None,
        min_speed: cairn::fetch::MinSpeed::default(),
    }
}

/// Runs `copy` at 1 MiB/s and stops it after half a second: how it
/// started, and the bytes it took in.
async fn cut(copy: &AssetCopy) -> (Option<Started>, u64) {
    let limits = Limits::unlimited();
    limits.job.set(Some(1024 * 1024));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let mut started = None;
    let progress = Arc::new(AtomicU64::new(0));
    let error = copy
        .run(
            &cairn::fetch::Fetcher::new().unwrap(),
            &limits,
            &cancel,
            &progress,
            |s| started = Some(s.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "cancelled");
    (started, progress.load(Ordering::Relaxed))
}

/// A cut copy of a file on this computer goes on from where it stopped;
/// one whose file was replaced or written to since starts again, and a
/// partial that holds the whole file is only verified.
#[tokio::test(flavor = "multi_thread")]
async fn a_cut_copy_of_a_local_file_goes_on_from_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source/B04.tif");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    let data = content(4_000_000);
    std::fs::write(&source, &data).unwrap();
    let target = dir.path().join("mirror/B04.tif");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let part = part_path(&target.display().to_string());

    let mut copy = file_copy(&source, &target);
    let started = cut(&copy).await.0.unwrap();
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < 4_000_000, "{kept}");
    copy.validator = started.validator;
    let (result, started) = attempt(&copy).await;
    let copied = result.unwrap();
    assert_eq!(
        (copied.resumed_from, copied.fetched),
        (kept, 4_000_000 - kept)
    );
    assert_eq!(started.unwrap().offset, kept);
    assert_eq!(std::fs::read(&target).unwrap(), data);
    let provenance = copied.provenance.unwrap();
    assert_eq!(provenance.resumed_from, Some(kept));

    // Written to while the copy was stopped (same size): starts again.
    std::fs::remove_file(&target).unwrap();
    let mut copy = file_copy(&source, &target);
    let started = cut(&copy).await.0.unwrap();
    copy.validator = started.validator;
    let new: Vec<u8> = data.iter().map(|b| b.wrapping_add(1)).collect();
    std::fs::write(&source, &new).unwrap();
    let (result, _) = attempt(&copy).await;
    let copied = result.unwrap();
    assert_eq!((copied.resumed_from, copied.fetched), (0, 4_000_000));
    assert_eq!(std::fs::read(&target).unwrap(), new);

    // Replaced by another file of the same size and time: starts again.
    std::fs::remove_file(&target).unwrap();
    let mut copy = file_copy(&source, &target);
    let started = cut(&copy).await.0.unwrap();
    copy.validator = started.validator;
    let modified = std::fs::metadata(&source).unwrap().modified().unwrap();
    let other = dir.path().join("source/other.tif");
    let replaced: Vec<u8> = data.iter().map(|b| b.wrapping_add(7)).collect();
    std::fs::write(&other, &replaced).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&other)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    std::fs::rename(&other, &source).unwrap();
    let (result, _) = attempt(&copy).await;
    let copied = result.unwrap();
    assert_eq!(copied.resumed_from, 0);
    assert_eq!(std::fs::read(&target).unwrap(), replaced);

    // Stopped after the last byte, before the rename: only verified when a
    // checksum vouches for the partial, else copied again (a crash may
    // leave a tail of zeros).
    let validator = {
        let first = file_copy(&source, &dir.path().join("mirror/probe.tif"));
        let (result, started) = attempt(&first).await;
        result.unwrap();
        started.unwrap().validator
    };
    for checksum in [Some(Checksum::of(Algorithm::Sha2_256, &replaced)), None] {
        let _ = std::fs::remove_file(&target);
        std::fs::write(&part, &replaced).unwrap();
        let copy = AssetCopy {
            validator: validator.clone(),
            expected_checksum: checksum.clone(),
            ..file_copy(&source, &target)
        };
        let (result, _) = attempt(&copy).await;
        let copied = result.unwrap();
        let expected = match checksum {
            Some(_) => (4_000_000, 0),
            None => (0, 4_000_000),
        };
        assert_eq!((copied.resumed_from, copied.fetched), expected);
        assert_eq!(std::fs::read(&target).unwrap(), replaced);
    }
}

/// Local files of every size about a piece's (the most read at a time,
/// 256 KiB; a smaller file is read whole as it is opened) are copied whole
/// and verified, an empty one too.
#[tokio::test(flavor = "multi_thread")]
async fn local_files_small_and_large_are_copied_whole() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mirror")).unwrap();
    const PIECE: usize = 256 * 1024;
    for size in [0, 1, 20_000, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 7] {
        let source = dir.path().join(format!("source-{size}.bin"));
        let data = content(size);
        std::fs::write(&source, &data).unwrap();
        let target = dir.path().join(format!("mirror/copy-{size}.bin"));
        let copy = AssetCopy {
            expected_checksum: Some(Checksum::of(Algorithm::Sha2_256, &data)),
            ..file_copy(&source, &target)
        };
        let (result, started) = attempt(&copy).await;
        let copied = result.unwrap_or_else(|e| panic!("{size}: {e}"));
        assert_eq!(
            (copied.fetched, copied.verified.size),
            (size as u64, size as u64),
            "{size}"
        );
        assert_eq!(started.unwrap().total, Some(size as u64));
        assert_eq!(std::fs::read(&target).unwrap(), data, "{size}");
    }
}

/// A cancel (a pause, Ctrl-C, a stop) ends a copy that waits for its
/// bandwidth limit at once, however low the limit.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_does_not_wait_for_the_bandwidth_limit() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("B04.tif");
    std::fs::write(&source, content(1_000_000)).unwrap();
    let target = dir.path().join("mirror/B04.tif");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let copy = file_copy(&source, &target);
    let limits = Limits::unlimited();
    // Ten bytes a second: the first piece alone would take days.
    limits.job.set(Some(10));
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        stop.cancel();
    });
    let (fetcher, progress) = (
        cairn::fetch::Fetcher::new().unwrap(),
        Arc::new(AtomicU64::new(0)),
    );
    let run = copy.run(&fetcher, &limits, &cancel, &progress, |_| {});
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), run).await;
    let error = ended.expect("the copy went on waiting").unwrap_err();
    assert_eq!(error.code(), "cancelled", "{error}");
}

/// A local file written to while it is copied (same size) is not
/// committed: the copy says so and starts again on the next try.
#[tokio::test(flavor = "multi_thread")]
async fn a_local_file_changed_while_copied_is_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("B04.tif");
    let data = content(2_000_000);
    std::fs::write(&source, &data).unwrap();
    let target = dir.path().join("mirror/B04.tif");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let copy = file_copy(&source, &target);
    let limits = Limits::unlimited();
    limits.job.set(Some(2 * 1024 * 1024));
    let changed = source.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let other: Vec<u8> = content(2_000_000).iter().map(|b| b ^ 0xff).collect();
        std::fs::write(&changed, other).unwrap();
    });
    let error = copy
        .run(
            &cairn::fetch::Fetcher::new().unwrap(),
            &limits,
            &CancellationToken::new(),
            &Arc::new(AtomicU64::new(0)),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("changed while it was copied"),
        "{error}"
    );
    assert!(!target.exists());
    assert!(!std::path::Path::new(&part_path(&target.display().to_string())).exists());
}
