//! Busy servers are retried with backoff, honouring Retry-After; permanent
//! errors are not retried; a cancelled read stops at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use cairn::fetch::Fetcher;
use cairn::retry::RetryPolicy;
use tokio_util::sync::CancellationToken;

use crate::support::Server;

const CATALOG: &str =
    r#"{"type": "Catalog", "id": "c", "stac_version": "1.1.0", "description": "d", "links": []}"#;

/// A server whose `/flaky/N` fails N times (503, 429 with Retry-After: 1, 502,
/// 504 in turn) before answering.
fn flaky_server() -> (Server, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let router = Router::new()
        .route(
            "/flaky/{failures}",
            get(
                move |axum::extract::Path(failures): axum::extract::Path<u32>| {
                    let counter = counter.clone();
                    async move {
                        let call = counter.fetch_add(1, Ordering::SeqCst);
                        if call >= failures {
                            return (StatusCode::OK, [("retry-after", "0")], CATALOG)
                                .into_response();
                        }
                        match call % 4 {
                            0 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                            1 => (
                                StatusCode::TOO_MANY_REQUESTS,
                                [("retry-after", "1")],
                                "slow down",
                            )
                                .into_response(),
                            2 => StatusCode::BAD_GATEWAY.into_response(),
                            _ => StatusCode::GATEWAY_TIMEOUT.into_response(),
                        }
                    }
                },
            ),
        )
        .route(
            "/teapot",
            get(|| async {
                (
                    StatusCode::IM_A_TEAPOT,
                    r#"{"description": "short and stout"}"#,
                )
            }),
        );
    (Server::start(router), calls)
}

fn policy(max_retries: usize) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_answers_are_retried_and_retry_after_is_honoured() {
    let (server, calls) = flaky_server();
    let fetcher = Fetcher::with_retry(policy(5)).unwrap();
    let started = Instant::now();
    let value = fetcher.get_json(&server.url("flaky/4")).await.unwrap();
    assert_eq!(value["id"], "c");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    // The 429 asked for one second.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_are_bounded_and_the_last_error_is_plain() {
    let (server, calls) = flaky_server();
    let fetcher = Fetcher::with_retry(policy(2)).unwrap();
    let error = fetcher
        .get_json(&server.url("flaky/100"))
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(error.is_retryable());
    assert!(
        error
            .to_string()
            .contains("temporarily unavailable (HTTP 502)"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_errors_are_not_retried_and_keep_the_server_explanation() {
    let (server, _) = flaky_server();
    let fetcher = Fetcher::with_retry(policy(5)).unwrap();
    let error = fetcher.get_json(&server.url("teapot")).await.unwrap_err();
    assert!(!error.is_retryable());
    assert_eq!(
        error.to_string(),
        format!(
            "{} answered with an error (HTTP 418): short and stout",
            server.url("teapot")
        )
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_read_stops_during_the_backoff() {
    let (server, _) = flaky_server();
    let cancel = CancellationToken::new();
    let fetcher = Fetcher::with_retry(RetryPolicy {
        min_delay: Duration::from_secs(60),
        max_delay: Duration::from_secs(60),
        ..policy(5)
    })
    .unwrap()
    .with_cancellation(cancel.clone());
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let error = fetcher
        .get_json(&server.url("flaky/100"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "cancelled");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_on_the_same_scheme_are_followed() {
    let router = Router::new()
        .route(
            "/moved",
            get(|| async { (StatusCode::FOUND, [("location", "/catalog.json")]) }),
        )
        .route("/catalog.json", get(|| async { CATALOG }));
    let server = Server::start(router);
    let value = Fetcher::with_retry(policy(0))
        .unwrap()
        .get_json(&server.url("moved"))
        .await
        .unwrap();
    assert_eq!(value["id"], "c");
}
