//! Real API responses (recorded cassettes and pages) replayed from loopback:
//! pagination is followed to the end through the recorded `next` links, with
//! tokens in bodies and query strings kept.

use std::ops::ControlFlow;

use cairn::catalog::api::{Api, Cursor};
use cairn::catalog::walk::{WalkOptions, walk};
use cairn::catalog::{Kind, open};
use cairn::fetch::{Method, Request};
use serde_json::Value;
use stac::api::Search;

use crate::support::fetcher;
use crate::support::replay::{Exchange, Replay, load_transcript};

fn cassette(name: &str) -> (String, Vec<Exchange>) {
    load_transcript(
        &crate::support::fixtures()
            .join("api/cassettes")
            .join(format!("{name}.transcript.json")),
    )
}

fn first_request(replay: &Replay, exchange: &Exchange) -> Request {
    let url = replay.server.url(&exchange.target);
    match exchange.method.as_str() {
        "POST" => Request::post(url, exchange.body.clone().unwrap_or_default()),
        _ => Request::get(url),
    }
}

/// Follows a chain from its first recorded request and checks that every
/// recorded page was asked for, in order, with its token, and that the only
/// request not recorded is the last page's `next`.
async fn follow_chain(name: &str, key: &str, entries_per_page: usize) {
    let (origin, exchanges) = cassette(name);
    // Recordings may repeat a chain; follow the distinct pages once.
    let mut chain: Vec<Exchange> = Vec::new();
    for exchange in exchanges
        .into_iter()
        .filter(|e| e.response.get(key).is_some())
    {
        if !chain
            .iter()
            .any(|c| c.target == exchange.target && c.body == exchange.body)
        {
            chain.push(exchange);
        }
    }
    assert!(chain.len() >= 2, "{name}: {} pages", chain.len());
    let replay = Replay::start(&origin, chain.clone());
    let mut cursor = Cursor::start(first_request(&replay, &chain[0]), None);
    let mut delivered = 0;
    while let Some(page) = cursor.next_page(&fetcher(), key).await.unwrap() {
        delivered += page.len();
    }
    assert_eq!(delivered, chain.len() * entries_per_page, "{name}");
    let seen = replay.seen();
    assert_eq!(seen.len(), chain.len() + 1, "{name}: {seen:#?}");
    for (request, page) in seen.iter().zip(&chain) {
        assert!(request.recorded, "{name}: {request:?} was not recorded");
        assert_eq!(request.body, page.body, "{name}: the token must be kept");
    }
    let last = seen.last().unwrap();
    assert!(!last.recorded);
    assert_eq!(last.method, chain[0].method);
    let token_in = |s: &Option<Value>, t: &str| {
        s.as_ref().is_some_and(|b| b.to_string().contains("token"))
            || t.contains("token")
            || t.contains("startRecord")
    };
    assert!(
        token_in(&last.body, &last.target),
        "{name}: the final next link carries a token: {last:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn post_search_with_tokens_in_the_body() {
    follow_chain(
        "TestItemSearch.test_result_paging_max_items",
        "features",
        10,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn post_search_with_bbox_and_tokens() {
    follow_chain(
        "TestItemSearch.test_deprecations__get_item_collections-pages-True-True",
        "features",
        10,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_collections_paging_with_start_record() {
    follow_chain("TestCollectionSearch.test_result_paging", "collections", 10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_items_with_the_token_in_the_query() {
    let (origin, exchanges) = cassette("TestCollectionClient.test_get_items");
    let replay = Replay::start(&origin, exchanges.clone());
    // The landing page is recognised as an API without being told.
    let opened = open(&fetcher(), replay.server.url("/api/stac/v1").as_str())
        .await
        .unwrap();
    assert_eq!(opened.kind, Kind::Api);
    let items = exchanges
        .iter()
        .find(|e| e.target.contains("/items"))
        .unwrap();
    let mut cursor = Cursor::start(first_request(&replay, items), None);
    let page = cursor
        .next_page(&fetcher(), "features")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.len(), 10);
    let next = cursor.next.clone().unwrap();
    assert_eq!(next.method, Method::Get);
    assert!(
        next.url
            .query()
            .unwrap()
            .contains("token=next:aster-l1t:AST_L1T_00312272006013647_20150517144406"),
        "{}",
        next.url
    );
    assert!(
        next.url
            .as_str()
            .starts_with(&format!("http://{}", replay.server.addr))
    );
    // The next page was not recorded: the server's empty page ends the read.
    assert!(
        cursor
            .next_page(&fetcher(), "features")
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    assert!(cursor.is_done());
}

#[tokio::test(flavor = "multi_thread")]
async fn search_from_a_landing_page_replaces_the_body_with_the_next_link_body() {
    let (origin, exchanges) = cassette("test_get_items_without_ids");
    let replay = Replay::start(&origin, exchanges);
    let opened = open(&fetcher(), replay.server.url("/").as_str())
        .await
        .unwrap();
    assert_eq!(opened.kind, Kind::Api);
    let api = Api::new(opened.url, opened.value);
    let first = api.search_request(&Search::default()).unwrap();
    assert_eq!(first.method, Method::Post);
    let mut cursor = Cursor::start(first, None);
    let page = cursor
        .next_page(&fetcher(), "features")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.len(), 10);
    assert_eq!(
        cursor.next.as_ref().unwrap().body,
        Some(
            serde_json::json!({"token": "next:WildFires-LosAngeles-Jan-2025:11_031311102221_103001010C12B000"})
        )
    );
    while cursor
        .next_page(&fetcher(), "features")
        .await
        .unwrap()
        .is_some()
    {}
    assert!(
        replay.seen().iter().take(2).all(|s| s.recorded),
        "{:#?}",
        replay.seen()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn collections_of_a_recorded_api() {
    let (origin, exchanges) = cassette("TestAPI.test_collections_fallback");
    let replay = Replay::start(&origin, exchanges);
    let opened = open(&fetcher(), replay.server.url("/api/stac/v1").as_str())
        .await
        .unwrap();
    let api = Api::new(opened.url, opened.value);
    let collections = api.collections(&fetcher()).await.unwrap();
    assert_eq!(collections.len(), 31);
    assert!(collections.iter().all(|c| c["id"].is_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_collection_is_a_clear_not_found() {
    let (origin, exchanges) = cassette("test_get_collection_returns_none_if_not_found");
    let replay = Replay::start(&origin, exchanges);
    let error = fetcher()
        .get_json(&replay.server.url("/v1/collections/foo"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "not_found");
    assert!(error.to_string().contains("was not found"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_catalog_recorded_over_http_walks() {
    let (origin, exchanges) = cassette("test_non_recursion_on_fallback");
    let replay = Replay::start(&origin, exchanges);
    let root = replay
        .server
        .url("/stac-utils/pystac/v1.9.0/docs/example-catalog/catalog.json");
    let summary = walk(&fetcher(), &root, &WalkOptions::default(), |_| {
        ControlFlow::Continue(())
    })
    .await
    .unwrap();
    assert_eq!(
        (
            summary.catalogs,
            summary.collections,
            summary.items,
            summary.problems
        ),
        (1, 1, 4, 0)
    );
}

/// The recorded pages of the rustac client's tests: each page's `next` link must
/// be followed as given to reach the following page.
#[tokio::test(flavor = "multi_thread")]
async fn recorded_pages_chain_through_their_next_links() {
    let read = |name: &str| -> Value {
        serde_json::from_slice(
            &std::fs::read(crate::support::fixtures().join("api/pages").join(name)).unwrap(),
        )
        .unwrap()
    };
    for (first, second, key, method) in [
        (
            "search-page-1.json",
            "search-page-2.json",
            "features",
            "POST",
        ),
        ("items-page-1.json", "items-page-2.json", "features", "GET"),
        (
            "collections-page-1.json",
            "collections-page-2.json",
            "collections",
            "GET",
        ),
    ] {
        let page1 = read(first);
        let page2 = read(second);
        let next = page1["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rel"] == "next")
            .unwrap();
        let next_url = url::Url::parse(next["href"].as_str().unwrap()).unwrap();
        let origin = next_url.origin().ascii_serialization();
        let target = |u: &url::Url| u.as_str()[origin.len()..].to_string();
        let start_target = match method {
            "POST" => target(&next_url),
            _ => "/start".to_string(),
        };
        let exchanges = vec![
            Exchange {
                method: method.into(),
                target: start_target.clone(),
                body: (method == "POST").then(|| serde_json::json!({"start": true})),
                status: 200,
                response: page1.clone(),
            },
            Exchange {
                method: method.into(),
                target: target(&next_url),
                body: next.get("body").cloned(),
                status: 200,
                response: page2.clone(),
            },
        ];
        let replay = Replay::start(&origin, exchanges.clone());
        let mut cursor = Cursor::start(first_request(&replay, &exchanges[0]), None);
        let mut delivered = 0;
        while let Some(page) = cursor.next_page(&fetcher(), key).await.unwrap() {
            delivered += page.len();
        }
        let expected = page1[key].as_array().unwrap().len() + page2[key].as_array().unwrap().len();
        assert_eq!(delivered, expected, "{first}");
        let seen = replay.seen();
        assert!(seen[0].recorded && seen[1].recorded, "{first}: {seen:#?}");
    }
}
