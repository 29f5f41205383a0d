//! Walking a static catalog: every `child` and `item` link, many at once.
//!
//! The walk keeps a bounded number of reads in flight (each read is parsed and
//! checked on the runtime's worker threads), remembers every address it has
//! read (by a hash of it) so that loops and duplicate links are followed once,
//! and reports each node and each problem to the caller as soon as it is known.
//! Documents are dropped as soon as the caller has seen them, so memory does
//! not grow with the catalog's bytes: only the set of visited addresses and the
//! links still to follow are kept.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;
use url::Url;

use super::{Kind, Opened, check, check_document, detect, open_url};
use crate::fetch::{Document, Features, Fetcher};
use crate::seen::Seen;
use crate::{Error, Result};

/// How a walk behaves.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// How many documents are read at once.
    pub concurrency: usize,
    /// How many links deep to go below the root (`None`: all the way).
    pub max_depth: Option<usize>,
    /// Follow only links to documents beneath this folder (or prefix); the
    /// others are reported and never read. For checking a mirror, whose
    /// links are untrusted.
    pub within: Option<Url>,
    /// Follow the `item` links of only these collections, by id (empty: of
    /// all)...
    pub only_collections: Vec<String>,
    /// ...and not of these. The `item` links of a catalog inside a
    /// collection count as that collection's. `child` links are followed
    /// either way (a collection inside one left out has its own id).
    pub skip_collections: Vec<String>,
    /// Take the documents read in the order they were asked for, not as
    /// they arrive, so that two walks of one catalog meet its items in one
    /// order (the first N of a walk are then the same N each time).
    pub ordered: bool,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            concurrency: 32,
            max_depth: None,
            within: None,
            only_collections: Vec::new(),
            skip_collections: Vec::new(),
            ordered: false,
        }
    }
}

/// A catalog, collection or item found by a walk.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// What it is.
    pub kind: Kind,
    /// Its id (for a node without one, the file name it was read from).
    pub id: String,
    /// Its title, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Where it was read from.
    pub href: Url,
    /// The node that linked to it (`None` for the root).
    pub parent: Option<Url>,
    /// Links below the root (0 for the root).
    pub depth: usize,
    /// The id of the nearest collection: the item's own `collection` field, or the
    /// collection it was found under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The document itself.
    #[serde(skip)]
    pub value: Value,
}

/// Something wrong found on the way; the walk goes on.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The document the problem is about.
    pub href: String,
    /// What is wrong, in plain words.
    pub reason: String,
}

/// What a walk reports, in the order it learns it.
#[derive(Debug, Clone)]
pub enum WalkEvent {
    /// A node was read and checked.
    Node(Box<Node>),
    /// A problem was found.
    Problem(Problem),
}

/// Counts at the end of a walk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WalkSummary {
    /// Catalogs found (including the root if it is one).
    pub catalogs: u64,
    /// Collections found.
    pub collections: u64,
    /// Items found.
    pub items: u64,
    /// Problems reported.
    pub problems: u64,
    /// Links not followed because of `max_depth`.
    pub not_followed: u64,
}

/// One document to read.
/// Kept small: a walk may hold hundreds of thousands of pending links, so the
/// parent and collection are shared between siblings.
struct Task {
    url: Url,
    parent: Arc<Url>,
    depth: usize,
    collection: Option<Arc<str>>,
}

/// What reading and checking one document gave.
struct Read {
    task: Task,
    outcome: Result<(Kind, Document, check::Checked, Url)>,
}

/// Walks the static catalog at `root`, calling `on_event` for every node and
/// problem; `on_event` returns [`ControlFlow::Break`] to stop the walk early.
/// Fails only when the root itself cannot be read or is not STAC; every later
/// failure becomes a [`Problem`] and the walk goes on.
pub async fn walk(
    fetcher: &Fetcher,
    root: &Url,
    options: &WalkOptions,
    on_event: impl FnMut(WalkEvent) -> ControlFlow<()>,
) -> Result<WalkSummary> {
    let opened = open_url(fetcher, root).await?;
    walk_from(fetcher, opened, root, options, on_event).await
}

/// Walks from a root already [`open`](super::open)ed, without reading it again.
pub async fn walk_opened(
    fetcher: &Fetcher,
    opened: Opened,
    options: &WalkOptions,
    on_event: impl FnMut(WalkEvent) -> ControlFlow<()>,
) -> Result<WalkSummary> {
    let asked = opened.url.clone();
    walk_from(fetcher, opened, &asked, options, on_event).await
}

/// Walks from `opened`, which was asked for as `asked`.
async fn walk_from(
    fetcher: &Fetcher,
    opened: Opened,
    asked: &Url,
    options: &WalkOptions,
    mut on_event: impl FnMut(WalkEvent) -> ControlFlow<()>,
) -> Result<WalkSummary> {
    let Opened {
        url: at,
        kind,
        value,
        features,
        structure,
    } = opened;
    if kind == Kind::Api {
        return Err(Error::invalid_input(format!(
            "{asked} is a STAC API, not a static catalog; search it instead"
        )));
    }
    let checked = check_document(kind, &value, structure.as_ref(), &at);
    let mut walker = Walker {
        options: options.clone(),
        summary: WalkSummary::default(),
        visited: Seen::new(),
        ids: HashMap::new(),
        stack: Vec::new(),
        stopped: false,
    };
    walker.visited.insert(asked.as_str());
    walker.visited.insert(at.as_str());
    let root_task = Task {
        url: at.clone(),
        parent: Arc::new(at),
        depth: 0,
        collection: None,
    };
    let document = Document {
        value,
        features,
        structure,
    };
    walker.accept(root_task, kind, document, checked, true, &mut on_event);

    let mut reads: JoinSet<(u64, Read)> = JoinSet::new();
    let concurrency = options.concurrency.max(1) as u64;
    // Reads are numbered as they are asked for; when `ordered`, those that
    // arrive early wait here for the ones asked for before them. (New
    // reads are then asked for only as one is taken, so which links are
    // read in which order depends on the catalog alone.)
    let (mut asked, mut taken) = (0u64, 0u64);
    let mut early: BTreeMap<u64, Read> = BTreeMap::new();
    while !walker.stopped {
        while asked - taken < concurrency {
            let Some(task) = walker.stack.pop() else {
                break;
            };
            let fetcher = fetcher.clone();
            let number = asked;
            asked += 1;
            reads.spawn(async move {
                let outcome = read(&fetcher, &task.url).await;
                (number, Read { task, outcome })
            });
        }
        let next = loop {
            if let Some(read) = early.remove(&taken) {
                break Some(read);
            }
            let Some(joined) = reads.join_next().await else {
                break None;
            };
            match joined {
                Ok((number, read)) if options.ordered && number != taken => {
                    early.insert(number, read);
                }
                Ok((_, read)) => break Some(read),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return Err(Error::Cancelled),
            }
        };
        let Some(Read { task, outcome }) = next else {
            break;
        };
        taken += 1;
        match outcome {
            Ok((kind, document, checked, at)) => {
                // A document reached through a redirect is where it ended
                // up: its relative links and assets resolve against that.
                let mut task = task;
                if at != task.url {
                    walker.visited.insert(at.as_str());
                    task.url = at;
                }
                walker.accept(task, kind, document, checked, false, &mut on_event)
            }
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(error) => {
                let reason = match &error {
                    Error::NotFound { .. } => {
                        format!("linked from {} but it does not exist", task.parent)
                    }
                    other => other.to_string(),
                };
                walker.problem(task.url.as_str(), reason, &mut on_event);
            }
        }
    }
    reads.abort_all();
    Ok(walker.summary)
}

async fn read(fetcher: &Fetcher, url: &Url) -> Result<(Kind, Document, check::Checked, Url)> {
    let (document, at) = fetcher.get_document_at(url).await?;
    let kind = detect(&document.value).map_err(|reason| Error::not_stac(url, reason))?;
    let checked = check_document(kind, &document.value, document.structure.as_ref(), &at);
    Ok((kind, document, checked, at))
}

struct Walker {
    options: WalkOptions,
    summary: WalkSummary,
    /// Every address read or queued, so each is read once (by its hash: a
    /// walk may reach millions).
    visited: Seen,
    /// Catalog and collection ids seen, with where, to report shared ids.
    ids: HashMap<String, Url>,
    /// Links still to read. A stack, so a walk goes deep first and the queue of
    /// pending links stays small.
    stack: Vec<Task>,
    /// Set when the caller asked to stop.
    stopped: bool,
}

impl Walker {
    fn accept(
        &mut self,
        task: Task,
        kind: Kind,
        document: Document,
        checked: check::Checked,
        is_root: bool,
        on_event: &mut impl FnMut(WalkEvent) -> ControlFlow<()>,
    ) {
        for reason in &checked.problems {
            self.problem(task.url.as_str(), reason.clone(), on_event);
        }
        if kind == Kind::Api {
            self.problem(
                task.url.as_str(),
                "this link leads to a STAC API, which a static walk does not enter".into(),
                on_event,
            );
            return;
        }
        // The links apart from the value were read by the check: its
        // children are all that is kept of them.
        let Document {
            value, features, ..
        } = document;
        if kind == Kind::ItemCollection {
            // Without a list of features, `check` has said so.
            if let Some(features) = features {
                self.accept_features(&task, &features, on_event);
            }
            return;
        }
        if !checked.usable {
            self.problem(
                task.url.as_str(),
                format!("this {} is skipped", kind.noun()),
                on_event,
            );
            return;
        }
        let id = checked
            .id
            .clone()
            .unwrap_or_else(|| file_stem(&task.url).to_string());
        let collection: Option<Arc<str>> = match kind {
            Kind::Collection => Some(id.as_str().into()),
            Kind::Item => value
                .get("collection")
                .and_then(Value::as_str)
                .map(Into::into)
                .or_else(|| task.collection.clone()),
            _ => task.collection.clone(),
        };
        match kind {
            Kind::Catalog => self.summary.catalogs += 1,
            Kind::Collection => self.summary.collections += 1,
            _ => self.summary.items += 1,
        }
        if matches!(kind, Kind::Catalog | Kind::Collection) {
            if let Some(other) = self.ids.get(&id) {
                let reason = format!("its id {id:?} is also used by {other}");
                self.problem(task.url.as_str(), reason, on_event);
            } else {
                self.ids.insert(id.clone(), task.url.clone());
            }
        }
        let depth = task.depth;
        let this = Arc::new(task.url.clone());
        let wanted = |c: &str| {
            let options = &self.options;
            (options.only_collections.is_empty() || options.only_collections.iter().any(|o| o == c))
                && !options.skip_collections.iter().any(|s| s == c)
        };
        let items_wanted = match kind {
            Kind::Collection => wanted(&id),
            Kind::Catalog => task.collection.as_deref().is_none_or(wanted),
            _ => true,
        };
        for child in checked.children {
            if self.stopped {
                break;
            }
            if child.item && !items_wanted {
                continue;
            }
            let child = child.url;
            if self.options.max_depth.is_some_and(|max| depth >= max) {
                self.summary.not_followed += 1;
                continue;
            }
            if let Some(within) = &self.options.within
                && (child.scheme() != within.scheme()
                    || child.host_str() != within.host_str()
                    || child.port() != within.port()
                    || !child.path().starts_with(within.path()))
            {
                let reason = format!(
                    "it links to {child}, which is outside the mirror; Cairn does not read it"
                );
                self.problem(task.url.as_str(), reason, on_event);
                continue;
            }
            if !self.visited.insert(child.as_str()) {
                let reason = format!(
                    "it links to {child}, which was already reached; the link is not followed again"
                );
                self.problem(task.url.as_str(), reason, on_event);
                continue;
            }
            self.stack.push(Task {
                url: child,
                parent: this.clone(),
                depth: depth + 1,
                collection: collection.clone(),
            });
        }
        let node = WalkEvent::Node(Box::new(Node {
            kind,
            id,
            title: checked.title,
            href: task.url,
            parent: (!is_root).then(|| Arc::unwrap_or_clone(task.parent)),
            depth,
            collection: collection.map(|c| c.to_string()),
            value,
        }));
        self.emit(node, on_event);
    }

    /// Items inside a FeatureCollection: each is parsed, checked and reported
    /// on its own, so that only one is in memory at a time.
    fn accept_features(
        &mut self,
        task: &Task,
        features: &Features,
        on_event: &mut impl FnMut(WalkEvent) -> ControlFlow<()>,
    ) {
        let mut index = 0;
        let parsed = features.each(|feature| {
            let href = format!("{}#/features/{index}", task.url);
            index += 1;
            self.accept_feature(task, &href, feature, on_event);
            if self.stopped {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        if let Err(e) = parsed {
            let reason = format!(
                "feature number {} could not be read ({e}); it and the features after it are skipped",
                index + 1
            );
            self.problem(task.url.as_str(), reason, on_event);
        }
    }

    fn accept_feature(
        &mut self,
        task: &Task,
        href: &str,
        feature: Value,
        on_event: &mut impl FnMut(WalkEvent) -> ControlFlow<()>,
    ) {
        let checked = check(Kind::Item, &feature, &task.url);
        for reason in &checked.problems {
            self.problem(href, reason.clone(), on_event);
        }
        let Some(id) = checked.id.filter(|_| checked.usable) else {
            self.problem(href, "this item is skipped".into(), on_event);
            return;
        };
        self.summary.items += 1;
        let collection = feature
            .get("collection")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| task.collection.as_deref().map(str::to_string));
        let node = WalkEvent::Node(Box::new(Node {
            kind: Kind::Item,
            id,
            title: checked.title,
            href: task.url.clone(),
            parent: Some(task.url.clone()),
            depth: task.depth + 1,
            collection,
            value: feature,
        }));
        self.emit(node, on_event);
    }

    fn problem(
        &mut self,
        href: &str,
        reason: String,
        on_event: &mut impl FnMut(WalkEvent) -> ControlFlow<()>,
    ) {
        self.summary.problems += 1;
        let problem = Problem {
            href: href.to_string(),
            reason,
        };
        self.emit(WalkEvent::Problem(problem), on_event);
    }

    fn emit(&mut self, event: WalkEvent, on_event: &mut impl FnMut(WalkEvent) -> ControlFlow<()>) {
        if !self.stopped && on_event(event).is_break() {
            self.stopped = true;
            self.stack.clear();
        }
    }
}

/// The name a document without a usable id goes by: its file's name
/// without the extension (as the walk, the plan and the browser all call it).
pub fn file_stem(url: &Url) -> &str {
    let name = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    match name.rsplit_once('.').map_or(name, |(stem, _)| stem) {
        "" => "catalog",
        stem => stem,
    }
}
