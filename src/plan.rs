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
use crate::catalog::filter::Matcher;
use crate::catalog::walk::{Problem, WalkEvent, WalkOptions, walk_opened};
use crate::catalog::{Kind, open, resolve};
use crate::checksum::Checksum;
use crate::fetch::Fetcher;
use crate::layout::{self, Names};
use crate::rewrite;
use crate::seen::Seen;
use crate::store::{CollectionRow, NewAsset, NewItem};
use crate::transfer::ledger::Ledger;
use crate::{Error, Result};

/// The largest `file:size` believed (2^53 bytes, 9 PB).
const MAX_FILE_SIZE: u64 = 1 << 53;

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
    /// Only items whose properties pass this CQL2 text filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Only these items, by id (picked one by one; empty: no such limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// Not these items, by id (dropped one by one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Not these collections, by id (unticked one by one on a catalog's
    /// page): their items, and those of catalogs inside them, are neither
    /// read nor copied (an API is searched in its other collections). A
    /// collection inside one left out has an id of its own, and is copied
    /// unless it is left out too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_collections: Vec<String>,
    /// Which of an asset's addresses to copy from, when it offers others
    /// (the alternate-assets extension): `auto` for the one that needs no
    /// credentials, the name of an alternate (`s3`, `https`, ...), or `main`
    /// (as none, which jobs made before the choice existed have) for its own
    /// href (see [`Selection::asset_href`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate: Option<String>,
}

impl Selection {
    /// The search this selection stands for (validated, with plain messages).
    pub fn search(&self) -> Result<Search> {
        let search = build_search(
            &self.collections,
            self.bbox.as_deref(),
            self.datetime.as_deref(),
            Some(100),
        )?
        .ids(self.ids.clone());
        crate::catalog::filter::with_filter(search, self.filter.as_deref())
    }

    /// The address to copy `asset` from. With `auto`, its own href, unless
    /// that is a bucket address (which may need credentials, or bill the
    /// reader) and an alternate is on the web: then the first such
    /// alternate, as it needs no credentials. With an alternate named, that
    /// alternate's href where the asset has one, else its own. With `main`
    /// or nothing, its own.
    pub fn asset_href<'a>(&self, asset: &'a Value) -> Option<&'a str> {
        let own = asset.get("href").and_then(Value::as_str);
        let alternates = asset.get("alternate").and_then(Value::as_object);
        let href_of = |alternate: &'a Value| alternate.get("href").and_then(Value::as_str);
        match self.alternate.as_deref() {
            None | Some("main") => own,
            Some(name) if name != AUTO => alternates
                .and_then(|a| a.get(name))
                .and_then(href_of)
                .or(own),
            Some(_) => {
                let scheme = |href: &str| {
                    href.split_once("://")
                        .map(|(scheme, _)| scheme.to_ascii_lowercase())
                };
                let in_bucket = own
                    .and_then(scheme)
                    .is_some_and(|s| matches!(s.as_str(), "s3" | "az" | "gs"));
                let on_the_web = || {
                    alternates?
                        .values()
                        .filter_map(href_of)
                        .find(|href| scheme(href).is_some_and(|s| s == "https" || s == "http"))
                };
                match in_bucket {
                    true => on_the_web().or(own),
                    false => own,
                }
            }
        }
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

/// [`Selection::alternate`] for the address that needs no credentials.
pub const AUTO: &str = "auto";

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
    let matcher = Matcher::new(&search)?
        .excluding(&selection.exclude)
        .excluding_collections(&selection.exclude_collections);
    let opened = open(fetcher, source).await?;
    let places = ledger.call(move |s| s.planned_places(job_id)).await?;
    let run = ledger.call(move |s| s.open_run(job_id)).await?;
    let mut planner = Planner {
        ledger,
        job_id,
        run,
        unread: 0,
        selection,
        matcher,
        set_aside: Vec::new(),
        finishing: false,
        walking: false,
        summary: PlanSummary::default(),
        places: Places::new(places),
    };
    let mut result = planner.read(fetcher, opened, &search).await;
    if result.is_ok() {
        // An item set aside takes its place now if the document planned
        // before under its id was not read again (it moved, or went).
        planner.finishing = true;
        for (item, href, collection) in std::mem::take(&mut planner.set_aside) {
            if let Err(error) = planner.item(item, &href, collection) {
                result = Err(error);
                break;
            }
        }
    }
    // What was read before a stop or an error is kept (planning again is
    // idempotent); every row is in the store when this returns.
    let repeated = std::mem::take(&mut planner.places.repeated);
    let firsts = ledger
        .call(move |s| {
            repeated
                .into_iter()
                .map(|r| {
                    let first = s.item_href(job_id, r.collection.as_deref(), &r.id)?;
                    Ok((r, first))
                })
                .collect::<Result<Vec<_>>>()
        })
        .await?;
    ledger.take_error()?;
    result?;
    // Items not found again are gone from the source only if the whole
    // source was read: a document that could not be read, or a limit on
    // the count, hides items that are still there.
    let unread = match (planner.unread, selection.max_items) {
        (0, None) => None,
        (0, Some(_)) => Some("the selection has a limit on the number of items".to_string()),
        (1, _) => Some("a part of the source could not be read this time".to_string()),
        (parts, _) => Some(format!(
            "{parts} parts of the source could not be read this time"
        )),
    };
    // What was found is kept with the run (its history says it).
    match unread {
        None => ledger.call(move |s| s.mark_removed(run).map(drop)).await?,
        Some(why) => {
            ledger
                .call(move |s| s.note_removals_unchecked(run, &why))
                .await?
        }
    }
    for (repeat, first) in firsts {
        planner.repeated(repeat, first);
    }
    Ok(planner.summary)
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
                let mut searched = Vec::new();
                for collection in api.collections(fetcher).await? {
                    let Some(id) = collection.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    let wanted =
                        search.collections.is_empty() || search.collections.iter().any(|c| c == id);
                    if wanted && self.matcher.wants_collection(Some(id)) {
                        let href = api
                            .root()
                            .join(&format!("collections/{id}"))
                            .unwrap_or_else(|_| api.root().clone());
                        self.collection(id, &href, &collection)?;
                        searched.push(id.to_string());
                    }
                }
                // With collections left out, the others are searched (by
                // name: the items of those left out are not even sent).
                let narrowed;
                let search = if self.selection.exclude_collections.is_empty() {
                    search
                } else if searched.is_empty() {
                    return Ok(());
                } else {
                    narrowed = Search {
                        collections: searched,
                        ..search.clone()
                    };
                    &narrowed
                };
                let first = api.search_request(search)?;
                let sent_filter = api.filters() && search.items.filter.is_some();
                self.read_pages(fetcher, first, max, sent_filter).await?;
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
                self.read_pages(fetcher, items_request(items, search)?, max, false)
                    .await?;
            }
            _ => self.walk_static(fetcher, opened, search).await?,
        }
        Ok(())
    }
}

/// The most items held back until the end of a plan (see `Places::mine`).
const SET_ASIDE: usize = 1_000;

struct Planner<'a> {
    ledger: &'a Ledger,
    job_id: i64,
    /// The run this plan is part of.
    run: i64,
    /// Problems met that may have hidden items from the plan.
    unread: usize,
    selection: &'a Selection,
    /// What an item must be to be planned (the filter included).
    matcher: Matcher,
    /// Items whose id this job planned from another document before, held
    /// until the plan is read (see `Places::mine`).
    set_aside: Vec<(Value, String, Option<String>)>,
    /// Whether the plan is read and the items set aside are planned now.
    finishing: bool,
    /// Whether a static catalog is being walked (items have addresses of
    /// their own there; an API's pages do not, and a search's cursor is
    /// saved past the items of a page, so none is set aside).
    walking: bool,
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
    /// The items of this plan, by collection and id (hashed: a plan may hold
    /// millions): a second item with the same id in the same collection is
    /// never mixed with the first.
    read: Seen,
    /// Items read again under an id already read, reported once the plan
    /// is read (with where the first one came from).
    repeated: Vec<Repeated>,
    /// The (collection, item id) this job planned before, and with which
    /// document address (hashed): of two items with one id, the one planned
    /// before keeps its place, whichever a concurrent walk reads first.
    mine: Seen,
    mine_at: Seen,
}

/// An item whose collection and id were read before in the same plan.
struct Repeated {
    href: String,
    collection: Option<String>,
    id: String,
}

impl Places {
    fn new(planned: crate::store::PlannedPlaces) -> Places {
        let mut places = Places {
            root: Names::root(),
            collections: HashMap::new(),
            items_in: HashMap::new(),
            items: HashMap::new(),
            read: Seen::new(),
            repeated: Vec::new(),
            mine: Seen::new(),
            mine_at: Seen::new(),
        };
        places.root.take("items");
        for (id, dir) in planned.collections {
            places.root.take(&dir);
            places.collections.insert(Some(id), dir);
        }
        places.mine = planned.mine;
        places.mine_at = planned.mine_at;
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
    /// Something in the source that could not be read or used: the plan
    /// went past it, and so may have missed items.
    fn problem(&mut self, href: &str, reason: String) {
        self.unread += 1;
        self.notice(href, reason);
    }

    /// Something said about the source that hides nothing from the plan
    /// (a name changed to be safe on disk).
    fn notice(&mut self, href: &str, reason: String) {
        self.summary.problems.push(Problem {
            href: crate::provenance::redact(href),
            reason,
        });
    }

    /// Reports an item left out because another with its collection and id
    /// was read first, from `first` (unless it is the same document read
    /// twice, as a search whose pages overlap gives). Every item counted as
    /// read has a row, so `first` is known but for a failure of the store.
    fn repeated(&mut self, repeat: Repeated, first: Option<String>) {
        if first.as_deref() == Some(repeat.href.as_str()) {
            return;
        }
        let within = repeat
            .collection
            .as_deref()
            .map_or_else(String::new, |c| format!(" in the collection {c:?}"));
        let from = first.map_or_else(String::new, |first| format!(", from {first}"));
        self.problem(
            &repeat.href,
            format!(
                "another item with the id {:?}{within} was read first{from}; this one is left out, so that the two are never mixed",
                repeat.id
            ),
        );
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
        sent_filter: bool,
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
            // With a filter checked here, the count is of the items that
            // pass it (the planner stops at the limit), not of those sent.
            _ => Cursor::start(first, max.filter(|_| !self.matcher.filters())),
        };
        let first_url = cursor
            .next
            .as_ref()
            .map(|r| r.url.to_string())
            .unwrap_or_default();
        let mut dropped = 0u64;
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
                // The server may not have applied the filter (or known it).
                if !self.matcher.passes_filter(&item) {
                    dropped += 1;
                    continue;
                }
                let href = item_self_href(&item, &page_url).unwrap_or_else(|| page_url.clone());
                let collection = item
                    .get("collection")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                self.item(item, &href, collection)?;
            }
            // A limit reached among the items that pass the filter ends the
            // search (saved as finished, like one the server ended).
            let full = self.full();
            if full {
                cursor.next = None;
            }
            // Saved after the page's items, so never ahead of them.
            let (job_id, cursor_now) = (self.job_id, cursor.clone());
            self.ledger
                .send(move |s| s.save_cursor(job_id, "search", &cursor_now));
            if full {
                break;
            }
        }
        // A server sent the filter that returns items it does not keep is
        // worth saying (it may read the filter otherwise than Cairn).
        if dropped > 0 && sent_filter {
            let notice = format!(
                "{dropped} of the items the server sent do not pass the filter as Cairn reads it; they are left out"
            );
            self.notice(&first_url, notice);
        }
        Ok(())
    }

    async fn walk_static(
        &mut self,
        fetcher: &Fetcher,
        opened: crate::catalog::Opened,
        search: &Search,
    ) -> Result<()> {
        // The items of collections left out are not read at all.
        let options = WalkOptions {
            only_collections: search.collections.clone(),
            skip_collections: self.selection.exclude_collections.clone(),
            // The first N items are the same N each time the job plans.
            ordered: self.selection.max_items.is_some(),
            ..WalkOptions::default()
        };
        let mut failure: Option<Error> = None;
        let matcher = self.matcher.clone();
        let only_collections = matcher.only_collections();
        self.walking = true;
        walk_opened(fetcher, opened, &options, |event| {
            let outcome = match event {
                WalkEvent::Problem(problem) => {
                    self.unread += 1;
                    self.summary.problems.push(problem);
                    Ok(())
                }
                WalkEvent::Node(node) if node.kind == Kind::Collection => {
                    let wanted =
                        search.collections.is_empty() || search.collections.contains(&node.id);
                    if wanted && matcher.wants_collection(Some(&node.id)) {
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
                        let collection = value.get("collection").and_then(Value::as_str);
                        Ok((search.collections.is_empty()
                            || collection
                                .is_some_and(|c| search.collections.iter().any(|w| w == c)))
                            && matcher.wants_collection(collection))
                    } else {
                        matcher.matches(&value)
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
                    self.notice(
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
            document: rewrite::without_structure(document),
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
        // Refused before it counts as read: a second item with the id is
        // refused in the same words, not reported as left out for a first
        // one that is not there.
        let key = (collection.clone(), id.clone());
        // This job planned another document under this id before: that one
        // keeps the place if this plan reads it too (two items with one id,
        // read in another order this time). This one waits for the end.
        let pair = (collection.as_deref(), id.as_str());
        // (At most SET_ASIDE are held: a source whose every address changed
        // is planned as it is read, in bounded memory.)
        if self.walking
            && !self.finishing
            && self.set_aside.len() < SET_ASIDE
            && !self.places.mine_at.is_empty()
            && !self.places.mine_at.contains(&(pair.0, pair.1, href))
            && self.places.mine.contains(&pair)
            && !self.places.read.contains(&pair)
        {
            self.set_aside.push((item, href.to_string(), collection));
            return Ok(());
        }
        let collection_dir = match self.places.collection(collection.as_deref()) {
            Ok(dir) => dir,
            Err(refused) => {
                self.problem(href, format!("{refused}; the item is skipped"));
                return Ok(());
            }
        };
        // The folder it had in an earlier plan, else the name it asks for.
        let folder = match self.places.items.get(&key) {
            Some(dir) => Ok(dir.clone()),
            None => match layout::segment("the item id", &id, layout::ITEM_CHARS) {
                Ok(segment) => Err(segment),
                Err(refused) => {
                    self.problem(href, format!("{refused}; the item is skipped"));
                    return Ok(());
                }
            },
        };
        if !self
            .places
            .read
            .insert(&(collection.as_deref(), id.as_str()))
        {
            self.places.repeated.push(Repeated {
                href: href.to_string(),
                collection,
                id,
            });
            return Ok(());
        }
        let mut notes: Vec<String> = Vec::new();
        let dir = match folder {
            Ok(dir) => dir,
            Err(segment) => {
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
                format!("{collection_dir}/{name}")
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
                let Some(asset_href) = self.selection.asset_href(asset) else {
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
                // A size past any file's (2^53 bytes, 9 PB) is not
                // believed: it would only overflow the sums.
                let expected_size = match asset.get("file:size").and_then(Value::as_u64) {
                    Some(size) if size > MAX_FILE_SIZE => {
                        notes.push(format!(
                            "the asset {key:?} says it holds {size} bytes, more than any file; its size is not trusted and is checked as it is copied"
                        ));
                        None
                    }
                    size => size,
                };
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
                    Some(size) => self.summary.bytes = self.summary.bytes.saturating_add(size),
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
            self.notice(href, note.clone());
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
            document: item.to_string(),
            assets,
            run: Some(self.run),
        };
        drop(item);
        // Paced: a plan reads faster than the store writes, and rows waiting
        // would otherwise pile up in memory.
        self.ledger.send_paced(move |s| s.plan_item(&row).map(drop));
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::{Arc, Mutex};

    use rusqlite::trace::{TraceEvent, TraceEventCodes};

    use super::*;
    use crate::store::{NewJob, Store};

    #[test]
    fn an_assets_address_is_chosen_among_its_alternates() {
        // As Maxar's open data catalog has them.
        let bucket = serde_json::json!({"href": "s3://maxar-opendata/a/visual.tif",
            "alternate": {"public": {"href": "https://maxar-opendata.s3.amazonaws.com/a/visual.tif"}}});
        // As Earth Search has them.
        let web = serde_json::json!({"href": "https://sentinel-cogs.s3.amazonaws.com/b/B04.tif",
            "alternate": {"s3": {"href": "s3://sentinel-cogs/b/B04.tif"}}});
        let plain = serde_json::json!({"href": "s3://bucket/c.tif"});
        let with = |alternate: Option<&str>| Selection {
            alternate: alternate.map(str::to_string),
            ..Selection::default()
        };
        // Jobs made before the choice existed read the asset's own href.
        assert_eq!(
            with(None).asset_href(&bucket),
            Some("s3://maxar-opendata/a/visual.tif")
        );
        // The default of new jobs: the one that needs no credentials.
        let auto = with(Some(AUTO));
        assert_eq!(
            auto.asset_href(&bucket),
            Some("https://maxar-opendata.s3.amazonaws.com/a/visual.tif")
        );
        assert_eq!(
            auto.asset_href(&web),
            Some("https://sentinel-cogs.s3.amazonaws.com/b/B04.tif")
        );
        assert_eq!(auto.asset_href(&plain), Some("s3://bucket/c.tif"));
        // Named: that alternate where there is one, else the asset's own.
        let s3 = with(Some("s3"));
        assert_eq!(s3.asset_href(&web), Some("s3://sentinel-cogs/b/B04.tif"));
        assert_eq!(
            s3.asset_href(&bucket),
            Some("s3://maxar-opendata/a/visual.tif")
        );
        let main = with(Some("main"));
        assert_eq!(
            main.asset_href(&bucket),
            Some("s3://maxar-opendata/a/visual.tif")
        );
        // An alternate without an href is no address.
        let odd =
            serde_json::json!({"href": "s3://b/d.tif", "alternate": {"public": {"title": "x"}}});
        assert_eq!(auto.asset_href(&odd), Some("s3://b/d.tif"));
        assert_eq!(with(Some("public")).asset_href(&odd), Some("s3://b/d.tif"));
    }

    thread_local! {
        /// Statements run on this thread (the trace hook counts them).
        static STATEMENTS: Cell<u64> = const { Cell::new(0) };
    }

    fn count(event: TraceEvent<'_>) {
        if let TraceEvent::Stmt(..) = event {
            STATEMENTS.with(|n| n.set(n.get() + 1));
        }
    }

    /// The shape most big collections have: one asset per item, no size, a
    /// few properties; `n` items in one item collection.
    fn item_collection(n: usize) -> (Vec<u8>, usize) {
        let mut bytes = br#"{"type":"FeatureCollection","features":["#.to_vec();
        let mut documents = 0;
        for i in 0..n {
            if i > 0 {
                bytes.push(b',');
            }
            let item = json!({
                "type": "Feature", "stac_version": "1.1.0", "id": format!("chip-{i:07}"),
                "collection": "chips",
                "geometry": {"type": "Point", "coordinates": [i as f64 / 1e4, 1.5]},
                "bbox": [i as f64 / 1e4, 1.5, i as f64 / 1e4, 1.5],
                "properties": {"datetime": "2024-05-01T00:00:00Z", "label": i % 7},
                "links": [],
                "assets": {"data": {"href": format!("https://data.example/chips/{i:07}.tif"),
                                    "type": "image/tiff; application=geotiff", "roles": ["data"]}},
            });
            let text = item.to_string();
            documents += text.len();
            bytes.extend_from_slice(text.as_bytes());
        }
        bytes.extend_from_slice(b"]}");
        (bytes, documents)
    }

    fn database_bytes(store: &Store) -> u64 {
        let pages: i64 = store
            .conn()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        let size: i64 = store
            .conn()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        (pages * size) as u64
    }

    /// The per-item work of a plan, counted rather than timed: a change that
    /// adds a statement or a stored copy per item fails here.
    ///
    /// Bounds (written down in the README too): 4 SQL statements per
    /// one-asset item (the item row, its asset row, and a savepoint around
    /// them) and a few per batch of rows (its BEGIN and COMMIT): at most 4.05
    /// per item in all; and at most 512 bytes of state per item beyond the
    /// item's own document (its row, its asset's row, and their indexes).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn planning_a_hundred_thousand_items_costs_a_bounded_amount_per_item() {
        const ITEMS: usize = 100_000;
        let dir = tempfile::tempdir().unwrap();
        let (collection, documents) = item_collection(ITEMS);
        let source = dir.path().join("chips.json");
        std::fs::write(&source, collection).unwrap();
        let source = Url::from_file_path(&source).unwrap().to_string();

        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let job_id = store
            .create_job(&NewJob {
                source_url: source.clone(),
                destination: dir.path().join("mirror").display().to_string(),
                selection: json!({}),
                limit_rate: None,
                concurrency: 8,
                per_host: 6,
            })
            .unwrap();
        let before = database_bytes(&store);
        store
            .conn()
            .trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(count));
        let store = Arc::new(Mutex::new(store));
        let ledger = Ledger::start(store.clone(), job_id, None).unwrap();
        let fetcher = Fetcher::new().unwrap();
        let summary = plan(&ledger, &fetcher, job_id, &source, &Selection::default())
            .await
            .unwrap();
        let statements = ledger
            .call(|_| Ok(STATEMENTS.with(Cell::get)))
            .await
            .unwrap();
        drop(ledger);
        assert_eq!(summary.items, ITEMS as u64);
        assert_eq!(summary.assets, ITEMS as u64);
        assert!(summary.problems.is_empty(), "{:?}", summary.problems);

        let store = store.lock().unwrap();
        let counts = store.job_counts(job_id).unwrap();
        assert_eq!(counts.items, ITEMS as u64);
        let per_item_statements = statements as f64 / ITEMS as f64;
        let per_item_bytes = (database_bytes(&store) - before) as f64 / ITEMS as f64;
        let document = documents as f64 / ITEMS as f64;
        eprintln!(
            "planning {ITEMS} items: {per_item_statements:.2} statements and {per_item_bytes:.0} bytes of state per item (documents {document:.0} bytes)"
        );
        assert!(
            per_item_statements <= 4.05,
            "{per_item_statements:.2} statements per item; the bound is 4.05"
        );
        assert!(
            per_item_bytes <= document + 512.0,
            "{per_item_bytes:.0} bytes of state per item for documents of {document:.0}; the bound is the document and 512"
        );
    }
}
