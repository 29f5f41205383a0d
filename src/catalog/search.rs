//! Finding the items of a source that match a search: `cairn search` and the
//! desktop app's map both come here.
//!
//! A STAC API is asked (its item search, or each collection's `items` when it
//! has none); a collection served by an API is read through its `items` link;
//! a static catalog is walked and each item is tested with the `stac` crate's
//! own matching rules and the CQL2 filter (which an API's items are tested
//! against too: a server may ignore a filter).

use std::ops::ControlFlow;

use serde_json::{Value, json};
use stac::api::Search;

use super::api::{Api, Cursor, items_link, items_request};
use super::filter::Matcher;
use super::walk::{Problem, WalkEvent, WalkOptions, walk_opened};
use super::{Kind, Opened, open};
use crate::fetch::{Fetcher, Request};
use crate::{Error, Result};

/// What a search finds, in the order it finds it.
#[derive(Debug, Clone)]
pub enum Found {
    /// A matching item (its `collection` filled in when the catalog implied it).
    Item(Value),
    /// Something that could not be read or matched; the search goes on.
    Problem(Problem),
}

/// Searches `source` (a URL or path), calling `on_found` for every matching
/// item and every problem, until `max_items` items or `on_found` breaks.
/// Returns how many items were found.
pub async fn search(
    fetcher: &Fetcher,
    source: &str,
    search: &Search,
    max_items: Option<u64>,
    mut on_found: impl FnMut(Found) -> ControlFlow<()>,
) -> Result<u64> {
    let opened = open(fetcher, source).await?;
    let items_endpoint = match opened.kind {
        Kind::Collection => items_link(&opened.value, &opened.url),
        _ => None,
    };
    let matcher = Matcher::new(search)?;
    if opened.kind == Kind::Api {
        let api = Api::new(opened.url, opened.value);
        let firsts = first_requests(&api, search)?;
        read_pages(fetcher, firsts, max_items, &matcher, on_found).await
    } else if let Some(items) = items_endpoint {
        // A collection served by an API: its items come from its `items` endpoint.
        let first = items_request(items, search)?;
        read_pages(fetcher, vec![first], max_items, &matcher, on_found).await
    } else {
        search_static(fetcher, opened, search, max_items, &mut on_found).await
    }
}

/// The first page of an API search: one item search, or, for an API without
/// search, one `items` read per collection.
fn first_requests(api: &Api, search: &Search) -> Result<Vec<Request>> {
    if api.can_search() {
        Ok(vec![api.search_request(search)?])
    } else if search.collections.is_empty() {
        Err(Error::invalid_input(format!(
            "{} has no item search; name the collections to read",
            api.root()
        )))
    } else {
        search
            .collections
            .iter()
            .map(|c| api.collection_items_request(c, search))
            .collect()
    }
}

/// Follows each first request's pages to the end, stopping at `max_items` in all.
async fn read_pages(
    fetcher: &Fetcher,
    firsts: Vec<Request>,
    max_items: Option<u64>,
    matcher: &Matcher,
    mut on_found: impl FnMut(Found) -> ControlFlow<()>,
) -> Result<u64> {
    let mut remaining = max_items;
    let mut found = 0;
    for first in firsts {
        // With a filter checked here, the limit counts the items that pass
        // it, not those the server sends.
        let mut cursor = Cursor::start(first, remaining.filter(|_| !matcher.filters()));
        while let Some(page) = cursor.next_page(fetcher, "features").await? {
            for item in page {
                // The server may not have applied the filter (or known it).
                if !matcher.passes_filter(&item) {
                    continue;
                }
                found += 1;
                if on_found(Found::Item(item)).is_break()
                    || max_items.is_some_and(|max| found >= max)
                {
                    return Ok(found);
                }
            }
        }
        remaining = max_items.map(|max| max.saturating_sub(found));
        if remaining == Some(0) {
            break;
        }
    }
    Ok(found)
}

/// Walks a static catalog and keeps the items that match.
async fn search_static(
    fetcher: &Fetcher,
    opened: Opened,
    search: &Search,
    max_items: Option<u64>,
    on_found: &mut impl FnMut(Found) -> ControlFlow<()>,
) -> Result<u64> {
    let mut found = 0;
    let matcher = Matcher::new(search)?;
    walk_opened(
        fetcher,
        opened,
        &WalkOptions::default(),
        |event| match event {
            WalkEvent::Problem(problem) => on_found(Found::Problem(problem)),
            WalkEvent::Node(node) if node.kind == Kind::Item => {
                let mut value = node.value;
                if value.get("collection").is_none()
                    && let (Some(collection), Some(object)) =
                        (&node.collection, value.as_object_mut())
                {
                    object.insert("collection".into(), json!(collection));
                }
                let matched = matcher.matches(&value);
                let flow = match matched {
                    Ok(true) => {
                        found += 1;
                        on_found(Found::Item(value))
                    }
                    Ok(false) => ControlFlow::Continue(()),
                    Err(reason) => on_found(Found::Problem(Problem {
                        href: node.href.to_string(),
                        reason: format!(
                            "the item could not be matched against the search: {reason}"
                        ),
                    })),
                };
                if max_items.is_some_and(|max| found >= max) {
                    ControlFlow::Break(())
                } else {
                    flow
                }
            }
            WalkEvent::Node(_) => ControlFlow::Continue(()),
        },
    )
    .await?;
    Ok(found)
}
