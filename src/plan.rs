//! Planning a mirror: a selection becomes rows of items and assets in the state
//! store, before anything is downloaded.
//!
//! The source is walked (static catalogs) or searched (APIs); every matching
//! item is recorded with its selected assets, each given a safe place at the
//! destination ([`crate::layout`]) and the size and checksum the catalog
//! promises. Planning is idempotent: planning again keeps what is done.
//!
//! Rows go to the state store through the job's [`Ledger`], in batches, so a
//! job's transfers can run while it is still being planned.

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stac::api::Search;
use url::Url;

use crate::catalog::api::{Api, Cursor, build_search, items_link, items_request};
use crate::catalog::walk::{Problem, WalkEvent, WalkOptions, walk_opened};
use crate::catalog::{Kind, open, resolve};
use crate::checksum::Checksum;
use crate::fetch::Fetcher;
use crate::layout::{self, Names};
use crate::store::{CollectionRow, NewAsset, NewItem};
use crate::transfer::ledger::Ledger;
use crate::{Error, Result};

/// What to mirror: stored with the job, as JSON.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Only these collections (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<String>,
    /// West, south, east, north, as typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<String>,
    /// A date, date-time or range, as typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime: Option<String>,
    /// Asset keys, roles or media types to copy (empty: all assets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<String>,
    /// Stop after this many items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
}

impl Selection {
    /// The search this selection stands for (validated, with plain messages).
    pub fn search(&self) -> Result<Search> {
        build_search(
            &self.collections,
            self.bbox.as_deref(),
            self.datetime.as_deref(),
            Some(100),
        )
    }

    /// Whether an asset is selected: by key, by role, or by media type (a
    /// prefix such as `image/tiff` matches `image/tiff; application=geotiff`).
    pub fn wants_asset(&self, key: &str, asset: &Value) -> bool {
        if self.assets.is_empty() {
            return true;
        }
        let roles: Vec<&str> = asset
            .get("roles")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let media = asset.get("type").and_then(Value::as_str).unwrap_or("");
        self.assets.iter().any(|want| {
            want == key
                || roles.contains(&want.as_str())
                || (!media.is_empty() && media.starts_with(want.as_str()))
        })
    }
}

/// What a plan holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    /// Items selected.
    pub items: u64,
    /// Assets selected.
    pub assets: u64,
    /// Bytes announced by the catalog (for assets with `file:size`).
    pub bytes: u64,
    /// Assets whose size the catalog does not give.
    pub unknown_sizes: u64,
    /// Problems found on the way (the plan goes on past each).
    pub problems: Vec<Problem>,
}

/// Plans job `job_id`: reads the source and records every selected item and
/// asset. The destination layout is `<collection>/<item>/<file>`.
pub async fn plan(
    ledger: &Ledger,
    fetcher: &Fetcher,
    job_id: i64,
    source: &str,
    selection: &Selection,
) -> Result<PlanSummary> {
    let search = selection.search()?;
    let opened = open(fetcher, source).await?;
    let places = ledger.call(move |s| s.planned_places(job_id)).await?;
    let mut planner = Planner {
        ledger,
        job_id,
        selection,
        summary: PlanSummary::default(),
        places: Places::new(places),
    };
    let result = planner.read(fetcher, opened, &search).await;
    // What was read before a stop or an error is kept (planning again is
    // idempotent); every row is in the store when this returns.
    ledger.call(|_| Ok(())).await?;
    ledger.take_error()?;
    result.map(|()| planner.summary)
}

impl Planner<'_> {
    async fn read(
        &mut self,
        fetcher: &Fetcher,
        opened: crate::catalog::Opened,
        search: &Search,
    ) -> Result<()> {
        let max = self.selection.max_items;
        match opened.kind {
            Kind::Api => {
                let api = Api::new(opened.url.clone(), opened.value);
                for collection in api.collections(fetcher).await? {
                    let Some(id) = collection.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    if search.collections.is_empty() || search.collections.iter().any(|c| c == id) {
                        let href = api
                            .root()
                            .join(&format!("collections/{id}"))
                            .unwrap_or_else(|_| api.root().clone());
                        self.collection(id, &href, &collection)?;
                    }
                }
                let first = api.search_request(search)?;
                self.read_pages(fetcher, first, max).await?;
            }
            Kind::Collection if items_link(&opened.value, &opened.url).is_some() => {
                let id = opened
                    .value
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("collection")
                    .to_string();
                self.collection(&id, &opened.url, &opened.value)?;
                let items =
                    items_link(&opened.value, &opened.url).unwrap_or_else(|| opened.url.clone());
                self.read_pages(fetcher, items_request(items, search)?, max)
                    .await?;
            }
            _ => self.walk_static(fetcher, opened, search).await?,
        }
        Ok(())
    }
}

struct Planner<'a> {
    ledger: &'a Ledger,
    job_id: i64,
    selection: &'a Selection,
    summary: PlanSummary,
    places: Places,
}

/// The folders given out at the destination: one per collection and one per
/// item, each unique where a file system could take two names for one, and
/// the same when the job is planned again (they start from what the store
/// holds).
struct Places {
    root: Names,
    /// Collection id (`None`: items without one) to its folder.
    collections: HashMap<Option<String>, String>,
    /// The item folder names used in each collection folder.
    items_in: HashMap<String, Names>,
    /// (collection, item id) to the item's folder, as planned before.
    items: HashMap<(Option<String>, String), String>,
    /// The items of this plan, with where each was read: a second item with
    /// the same id in the same collection is reported, never mixed with the
    /// first.
    read: HashMap<(Option<String>, String), String>,
}

impl Places {
    fn new(planned: crate::store::PlannedPlaces) -> Places {
        let mut places = Places {
            root: Names::root(),
            collections: HashMap::new(),
            items_in: HashMap::new(),
            items: HashMap::new(),
            read: HashMap::new(),
        };
        places.root.take("items");
        for (id, dir) in planned.collections {
            places.root.take(&dir);
            places.collections.insert(Some(id), dir);
        }
        for (collection, item_id, dir) in planned.items {
            if let Some((collection_dir, name)) = dir.split_once('/') {
                places.root.take(collection_dir);
                places
                    .collections
                    .entry(collection.clone())
                    .or_insert_with(|| collection_dir.to_string());
                places
                    .items_in
                    .entry(collection_dir.to_string())
                    .or_insert_with(Names::collection)
                    .take(name);
            }
            places.items.insert((collection, item_id), dir);
        }
        places
    }

    /// The folder of collection `id`: the one it had, else a new one.
    fn collection(&mut self, id: Option<&str>) -> Result<String, layout::Refused> {
        let key = id.map(str::to_string);
        if let Some(dir) = self.collections.get(&key) {
            return Ok(dir.clone());
        }
        let dir = match id {
            Some(id) => {
                let segment = layout::segment("the collection id", id, layout::COLLECTION_CHARS)?;
                self.root.claim(&segment.name)
            }
            None => "items".to_string(),
        };
        self.collections.insert(key, dir.clone());
        Ok(dir)
    }
}

impl Planner<'_> {
    fn problem(&mut self, href: &str, reason: String) {
        self.summary.problems.push(Problem {
            href: href.to_string(),
            reason,
        });
    }

    fn full(&self) -> bool {
        self.selection
            .max_items
            .is_some_and(|max| self.summary.items >= max)
    }

    async fn read_pages(
        &mut self,
        fetcher: &Fetcher,
        first: crate::fetch::Request,
        max: Option<u64>,
    ) -> Result<()> {
        // A search stopped half-way (a crash, a pause) continues after the
        // last page recorded; a finished one starts again, to find what is new.
        let job_id = self.job_id;
        let saved = self
            .ledger
            .call(move |s| s.cursor(job_id, "search"))
            .await?;
        let mut cursor = match saved {
            Some(saved) if saved.next.is_some() => saved,
            _ => Cursor::start(first, max),
        };
        loop {
            let page_url = cursor
                .next
                .as_ref()
                .map(|r| r.url.to_string())
                .unwrap_or_default();
            let Some(page) = cursor.next_page(fetcher, "features").await? else {
                if let Some(reason) = cursor.ended_early.clone() {
                    self.problem(&page_url, reason);
                    // Saved as finished: the next plan starts the search
                    // afresh instead of at the page that went round.
                    let (job_id, cursor_now) = (self.job_id, cursor.clone());
                    self.ledger
                        .send(move |s| s.save_cursor(job_id, "search", &cursor_now));
                }
                break;
            };
            for item in page {
                let href = item_self_href(&item, &page_url).unwrap_or_else(|| page_url.clone());
                let collection = item
                    .get("collection")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                self.item(item, &href, collection)?;
            }
            // Saved after the page's items, so never ahead of them.
            let (job_id, cursor_now) = (self.job_id, cursor.clone());
            self.ledger
                .send(move |s| s.save_cursor(job_id, "search", &cursor_now));
        }
        Ok(())
    }

    async fn walk_static(
        &mut self,
        fetcher: &Fetcher,
        opened: crate::catalog::Opened,
        search: &Search,
    ) -> Result<()> {
        let options = WalkOptions::default();
        let mut failure: Option<Error> = None;
        let only_collections = search.items.bbox.is_none()
            && search.items.datetime.is_none()
            && search.items.filter.is_none()
            && search.items.query.is_none()
            && search.intersects.is_none()
            && search.ids.is_empty();
        walk_opened(fetcher, opened, &options, |event| {
            let outcome = match event {
                WalkEvent::Problem(problem) => {
                    self.summary.problems.push(problem);
                    Ok(())
                }
                WalkEvent::Node(node) if node.kind == Kind::Collection => {
                    if search.collections.is_empty() || search.collections.contains(&node.id) {
                        self.collection(&node.id, &node.href, &node.value)
                    } else {
                        Ok(())
                    }
                }
                WalkEvent::Node(node) if node.kind == Kind::Item => {
                    let mut value = node.value;
                    if value.get("collection").is_none()
                        && let (Some(c), Some(object)) = (&node.collection, value.as_object_mut())
                    {
                        object.insert("collection".into(), json!(c));
                    }
                    let matched = if only_collections {
                        // Nothing but collections to match: no need to read
                        // the whole item.
                        Ok(search.collections.is_empty()
                            || value
                                .get("collection")
                                .and_then(Value::as_str)
                                .is_some_and(|c| search.collections.iter().any(|w| w == c)))
                    } else {
                        serde_json::from_value::<stac::Item>(value.clone())
                            .map_err(|e| e.to_string())
                            .and_then(|item| search.matches(&item).map_err(|e| e.to_string()))
                    };
                    match matched {
                        Ok(true) => self.item(value, node.href.as_str(), node.collection.clone()),
                        Ok(false) => Ok(()),
                        Err(reason) => {
                            self.problem(
                                node.href.as_str(),
                                format!(
                                    "the item could not be matched against the selection: {reason}"
                                ),
                            );
                            Ok(())
                        }
                    }
                }
                WalkEvent::Node(_) => Ok(()),
            };
            if let Err(error) = outcome {
                failure = Some(error);
                return ControlFlow::Break(());
            }
            if self.full() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await?;
        failure.map_or(Ok(()), Err)
    }

    fn collection(&mut self, id: &str, href: &Url, document: &Value) -> Result<()> {
        let dir = match self.places.collection(Some(id)) {
            Ok(dir) => {
                if dir != id {
                    self.problem(
                        href.as_str(),
                        format!("the collection id {id:?} is written as the folder {dir:?}"),
                    );
                }
                dir
            }
            Err(refused) => {
                self.problem(href.as_str(), refused.to_string());
                return Ok(());
            }
        };
        let job_id = self.job_id;
        let row = CollectionRow {
            collection_id: id.to_string(),
            href: href.to_string(),
            dir,
            document: document.clone(),
        };
        self.ledger.send(move |s| s.plan_collection(job_id, &row));
        Ok(())
    }

    fn item(&mut self, item: Value, href: &str, collection: Option<String>) -> Result<()> {
        if self.full() {
            return Ok(());
        }
        let Some(id) = item.get("id").and_then(Value::as_str).map(str::to_string) else {
            self.problem(href, "the item has no id; it is skipped".into());
            return Ok(());
        };
        let base = Url::parse(href)
            .map_err(|e| Error::invalid_input(format!("{href} is not an address: {e}")))?;
        let key = (collection.clone(), id.clone());
        if let Some(first) = self.places.read.get(&key) {
            if first != href {
                let within = collection
                    .as_deref()
                    .map_or_else(String::new, |c| format!(" in the collection {c:?}"));
                let first = first.clone();
                self.problem(
                    href,
                    format!(
                        "another item with the id {id:?}{within} was read first, from {first}; this one is left out, so that the two are never mixed"
                    ),
                );
            }
            return Ok(());
        }
        self.places.read.insert(key.clone(), href.to_string());
        let collection_dir = match self.places.collection(collection.as_deref()) {
            Ok(dir) => dir,
            Err(refused) => {
                self.problem(href, format!("{refused}; the item is skipped"));
                return Ok(());
            }
        };
        let mut notes: Vec<String> = Vec::new();
        let dir = match self.places.items.get(&key) {
            Some(dir) => dir.clone(),
            None => {
                let segment = match layout::segment("the item id", &id, layout::ITEM_CHARS) {
                    Ok(s) => s,
                    Err(refused) => {
                        self.problem(href, format!("{refused}; the item is skipped"));
                        return Ok(());
                    }
                };
                notes.extend(segment.changed);
                let name = self
                    .places
                    .items_in
                    .entry(collection_dir.clone())
                    .or_insert_with(Names::collection)
                    .claim(&segment.name);
                if name != segment.name {
                    notes.push(format!(
                        "another item already has the folder {:?}; this one is written in {name:?}",
                        segment.name
                    ));
                }
                let dir = format!("{collection_dir}/{name}");
                self.places.items.insert(key, dir.clone());
                dir
            }
        };
        let item_json_name = format!("{}.json", dir.rsplit('/').next().unwrap_or_default());
        let mut names = Names::new(layout::FILE_CHARS);
        names.take(&item_json_name);
        let mut assets = Vec::new();
        if let Some(map) = item.get("assets").and_then(Value::as_object) {
            for (key, asset) in map {
                if !self.selection.wants_asset(key, asset) {
                    continue;
                }
                let Some(asset_href) = asset.get("href").and_then(Value::as_str) else {
                    notes.push(format!("the asset {key:?} has no href and is skipped"));
                    continue;
                };
                let source = match resolve(&base, asset_href) {
                    Ok(url) => url,
                    Err(reason) => {
                        notes.push(format!("the asset {key:?}: {reason}"));
                        continue;
                    }
                };
                if !matches!(
                    source.scheme(),
                    "http" | "https" | "file" | "s3" | "az" | "gs"
                ) {
                    notes.push(format!(
                        "the asset {key:?} has no address Cairn can copy from ({}:); it is left out",
                        source.scheme()
                    ));
                    continue;
                }
                let wanted = match layout::asset_file_name(key, asset_href) {
                    Ok(segment) => {
                        notes.extend(segment.changed);
                        segment.name
                    }
                    Err(refused) => {
                        notes.push(format!("{refused}; the asset {key:?} is skipped"));
                        continue;
                    }
                };
                // Two assets with one file name: the second is named after
                // its key too, then numbered until no other name is like it.
                let name = if names.is_taken(&wanted) {
                    let keyed = layout::segment(
                        "the asset file name",
                        &format!("{key}-{wanted}"),
                        layout::FILE_CHARS,
                    )
                    .map_or_else(|_| wanted.clone(), |s| s.name);
                    let name = names.claim(&keyed);
                    notes.push(format!(
                        "the asset {key:?} shares the file name {wanted:?} with another; it is written as {name:?}"
                    ));
                    name
                } else {
                    names.claim(&wanted)
                };
                let expected_size = asset.get("file:size").and_then(Value::as_u64);
                let expected_checksum = match asset.get("file:checksum").and_then(Value::as_str) {
                    Some(text) => match Checksum::parse(text) {
                        Ok(checksum) => Some(checksum.to_hex()),
                        Err(error) => {
                            notes.push(format!(
                                "the asset {key:?}: {error}; its sha2-256 is recorded instead"
                            ));
                            None
                        }
                    },
                    None => None,
                };
                match expected_size {
                    Some(size) => self.summary.bytes += size,
                    None => self.summary.unknown_sizes += 1,
                }
                assets.push(NewAsset {
                    key: key.clone(),
                    href: source.to_string(),
                    path: format!("{dir}/{name}"),
                    expected_size,
                    expected_checksum,
                    media_type: asset
                        .get("type")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
        }
        for note in &notes {
            self.problem(href, note.clone());
        }
        self.summary.items += 1;
        self.summary.assets += assets.len() as u64;
        let row = NewItem {
            job_id: self.job_id,
            collection,
            item_id: id,
            href: href.to_string(),
            dir,
            renamed: (!notes.is_empty()).then(|| notes.join("; ")),
            document: item,
            assets,
        };
        self.ledger.send(move |s| s.plan_item(&row).map(drop));
        Ok(())
    }
}

/// An item's own address, from its `self` link, when it is an absolute
/// address that the page it came on may point at.
fn item_self_href(item: &Value, page: &str) -> Option<String> {
    let page = Url::parse(page).ok()?;
    item.get("links")?
        .as_array()?
        .iter()
        .find(|l| l.get("rel").and_then(Value::as_str) == Some("self"))
        .and_then(|l| l.get("href").and_then(Value::as_str))
        .filter(|h| Url::parse(h).is_ok())
        .and_then(|h| resolve(&page, h).ok())
        .map(|url| url.to_string())
}
