//! Verifying a mirror, and repairing it: shared by `cairn verify`, the app
//! and the watcher.
//!
//! A check reads the mirror on its own, from its root catalog: every asset
//! with a relative href must be there with its `file:size` and
//! `file:checksum`. With the state file of the jobs that made the mirror it
//! also finds item documents edited since Cairn wrote them (their checksums
//! were recorded), and in a folder, files that belong to no entry of the
//! catalog (reported, never touched).
//!
//! A repair fetches what is missing or damaged again. When a job of the
//! state file recorded the file, the repair goes through that job: its rows
//! are reopened and the job runs over them without reading its source again,
//! so the bytes come through the job's own transfers, with its retries,
//! limits, staging and ledger, verified before they replace anything; an
//! edited item document is written again by the same run. A mirror made
//! with another state file is repaired from the address each asset records
//! (`alternate.source.href`), http(s) only, verified first, in folders.
//!
//! A mirror may have been made, or changed, by someone else: its hrefs are
//! untrusted. An asset whose href leads outside the mirror is reported and
//! never read or written; files are read and repaired through the mirror's
//! [`Folder`], which follows no link; and a repair fetches only from
//! http(s) addresses, never from a file on this computer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::catalog::Kind;
use crate::catalog::walk::{WalkEvent, WalkOptions, walk};
use crate::checksum::{Algorithm, Checksum, Fixity};
use crate::destination::{catalog_location, is_bucket_address, normalize, object_store_for};
use crate::fetch::{Fetcher, parse_location};
use crate::folder::{Entry, Folder};
use crate::limit::Limits;
use crate::rewrite::{INDEX, PROVENANCE};
use crate::runner::Runner;
use crate::store::WrittenDocument;
use crate::transfer::copy::{AssetCopy, verify_existing};
use crate::{Error, Result};

/// Files checked at once.
const AT_ONCE: usize = 4;

/// What was found wrong with one file of a mirror.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// An asset file, or an item document, is not there.
    Missing,
    /// An asset file does not match its `file:size` or `file:checksum`.
    Changed,
    /// An item document differs from what Cairn wrote.
    Edited,
    /// A file in the mirror folder that no entry of the catalog names
    /// (reported, never touched; it does not make the check fail).
    Extra,
    /// An asset that cannot be checked (no checksum, unreadable, an href
    /// that leads outside the mirror).
    Unchecked,
    /// A document of the catalog that could not be read.
    Catalog,
    /// An asset the job could not copy: its item says why (`cairn:missing`);
    /// `cairn resume` tries it again.
    NotMirrored,
}

/// One file found wrong, in words.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What is wrong.
    pub kind: FindingKind,
    /// The file, relative to the mirror's root (or the address, for a
    /// document outside it).
    pub path: String,
    /// What is wrong, in plain words.
    pub reason: String,
    /// Whether a repair put it right.
    pub repaired: bool,
}

/// What a check found.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Items in the catalog.
    pub items: u64,
    /// Assets mirrored (with a relative href).
    pub assets: u64,
    /// Assets that match their size and checksum (after any repair).
    pub verified: u64,
    /// Files a repair put right.
    pub repaired: u64,
    /// Item documents checked against the checksum recorded when written.
    pub documents: u64,
    /// What is wrong, or was, file by file.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Findings that make the mirror not whole: not repaired, and not
    /// merely an extra file.
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| !f.repaired && f.kind != FindingKind::Extra)
            .count()
    }
}

/// How to check.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Fetch again what is missing or damaged.
    pub repair: bool,
}

/// A mirror to check: where its root is, and how to read it.
struct Mirror {
    /// The root catalog.
    root: Url,
    /// The folder (or bucket prefix) that holds it.
    inside: Url,
    /// A folder's handle (`None` for a bucket).
    folder: Option<Arc<Folder>>,
    /// The destination as jobs record it.
    destination: String,
}

impl Mirror {
    fn open(text: &str) -> Result<Mirror> {
        // A bucket address stands for the catalog.json under it.
        let text = text.trim_end_matches('/');
        // A root catalog named as a link: what it points at is elsewhere,
        // and a repair would write there.
        let named = match text.split_once("://") {
            _ if !text.ends_with(".json") => None,
            Some(("file", _)) => Url::parse(text).ok().and_then(|u| u.to_file_path().ok()),
            Some(_) => None,
            None => Some(std::path::PathBuf::from(text)),
        };
        if named.is_some_and(|path| {
            std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        }) {
            return Err(Error::invalid_input(format!(
                "{text} is a link; Cairn checks a mirror's own files only, never through a link: give the mirror's folder"
            )));
        }
        let root = if is_bucket_address(text) && !text.ends_with(".json") {
            parse_location(&catalog_location(text))?
        } else {
            parse_location(text)?
        };
        let inside = root
            .join(".")
            .map_err(|e| Error::invalid_input(format!("{root}: {e}")))?;
        let (folder, destination) = if root.scheme() == "file" {
            let path = inside
                .to_file_path()
                .map_err(|()| Error::invalid_input(format!("{inside} is not a folder")))?;
            let folder = Folder::open(&path).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
            // As jobs record it: absolute, without a trailing separator.
            let path: std::path::PathBuf = path.components().collect();
            (
                Some(Arc::new(folder)),
                normalize(&path.display().to_string())?,
            )
        } else {
            (None, inside.as_str().trim_end_matches('/').to_string())
        };
        Ok(Mirror {
            root,
            inside,
            folder,
            destination,
        })
    }

    /// What reads the mirror's documents: as its files are read, beneath
    /// its folder, never through a link that could lead to the user's own
    /// files.
    fn fetcher(&self) -> Result<Fetcher> {
        Ok(match &self.folder {
            Some(folder) => Fetcher::new()?.reading_within(self.inside.clone(), folder.clone()),
            None => Fetcher::new()?,
        })
    }

    /// The path of `url` inside the mirror, or `None` when it leads elsewhere.
    fn relative(&self, url: &Url) -> Option<String> {
        crate::layout::relative_path(&self.inside, url)
    }
}

/// One asset to check.
struct Check {
    /// Its file, relative to the mirror.
    relative: String,
    url: Url,
    media_type: Option<String>,
    size: Option<u64>,
    checksum: Option<String>,
    source: Option<String>,
}

/// Checks the mirror at `destination` (a folder, its catalog.json, or a
/// bucket address); with `options.repair`, fetches again what is missing or
/// damaged. `runner` holds the state file of the jobs that made it, if any:
/// through it, edited item documents are found and repairs go through the
/// jobs.
pub async fn verify(
    destination: &str,
    runner: Option<&Runner>,
    options: &VerifyOptions,
) -> Result<Report> {
    let report = check_mirror(destination, runner, options).await?;
    // The mirrors list says how each mirror stood at its last check. A state
    // file opened only for reading keeps no record; the check stands.
    if let Some(runner) = runner {
        // Under the destination as its jobs record it: a folder as typed
        // (the app passes a job's own), else as the mirror resolves it.
        let destination = crate::destination::normalize(destination)
            .ok()
            .filter(|place| !place.ends_with(".json"))
            .map_or_else(|| Mirror::open(destination).map(|m| m.destination), Ok)?;
        let problems = report.problems() as u64;
        if let Err(error) = runner
            .with_store(|s| s.record_check(&destination, report.assets, report.verified, problems))
        {
            tracing::debug!(%error, "the check was not recorded");
        }
    }
    Ok(report)
}

async fn check_mirror(
    destination: &str,
    runner: Option<&Runner>,
    options: &VerifyOptions,
) -> Result<Report> {
    let mirror = Mirror::open(destination)?;
    let fetcher = mirror.fetcher()?;
    let documents = written_documents(&mirror, runner)?;
    let (mut report, checks) = inspect(&mirror, &fetcher, &documents).await?;
    let repairable = |f: &Finding| {
        matches!(
            f.kind,
            FindingKind::Missing | FindingKind::Changed | FindingKind::Edited
        )
    };
    if !options.repair || !report.findings.iter().any(repairable) {
        return Ok(report);
    }
    let by_path: HashMap<&str, &Check> = checks.iter().map(|c| (c.relative.as_str(), c)).collect();
    // Through the jobs that recorded them, where a job did: (asset rows,
    // item rows, and their paths) by job.
    let mut jobs: BTreeMap<i64, Repairs> = BTreeMap::new();
    let mut direct: Vec<&Check> = Vec::new();
    for finding in report.findings.iter().filter(|f| repairable(f)) {
        if let Some(document) = documents.get(&finding.path) {
            let job = jobs.entry(document.job_id).or_default();
            job.1.push(document.row);
            job.2.push(finding.path.clone());
            continue;
        }
        let Some(&check) = by_path.get(finding.path.as_str()) else {
            continue;
        };
        let recorded = match runner {
            Some(runner) => {
                let (destination, path) = (mirror.destination.clone(), check.relative.clone());
                runner.with_store(move |s| s.mirrored_file(&destination, &path))?
            }
            None => None,
        };
        match recorded {
            Some(file) => {
                let job = jobs.entry(file.job_id).or_default();
                job.0.push(file.id);
                job.2.push(finding.path.clone());
            }
            None => direct.push(check),
        }
    }
    // Why a repair failed, by path.
    let mut failed: HashMap<String, String> = HashMap::new();
    if let Some(runner) = runner {
        for (job_id, (assets, items, paths)) in jobs {
            if let Err(error) = runner.repair(job_id, assets, items).await {
                for path in paths {
                    failed.insert(path, error.to_string());
                }
                continue;
            }
            // What the job could not fetch again, and why.
            for failure in runner.with_store(move |s| s.failures(job_id))? {
                let words = match documents.contains_key(&failure.path) {
                    true => format!("writing it again failed: {}", failure.reason),
                    false => format!(
                        "fetching it again from {} failed: {}",
                        crate::provenance::redact(&failure.href),
                        failure.reason
                    ),
                };
                failed.insert(failure.path, words);
            }
        }
    }
    // Not while another program copies into the folder (see `writer`).
    let held = match (&mirror.folder, direct.is_empty()) {
        (Some(folder), false) => match crate::writer::Writer::take(folder.root()) {
            Ok(Some(writer)) => Ok(Some(writer)),
            Ok(None) => Err(
                "another program is copying into the mirror folder; repair it once that has ended"
                    .to_string(),
            ),
            Err(error) => Err(format!("the mirror folder could not be opened: {error}")),
        },
        _ => Ok(None),
    };
    if let Err(why) = &held {
        for check in direct.drain(..) {
            failed.insert(check.relative.clone(), why.clone());
        }
    }
    if let Some(folder) = &mirror.folder {
        let results: Vec<(String, std::result::Result<(), String>)> =
            futures::stream::iter(0..direct.len())
                .map(|n| {
                    let (check, folder, fetcher) = (direct[n], folder.clone(), fetcher.clone());
                    async move {
                        let result = repair_directly(check, &folder, &fetcher).await;
                        (check.relative.clone(), result)
                    }
                })
                .buffer_unordered(AT_ONCE)
                .collect()
                .await;
        for (path, result) in results {
            if let Err(why) = result {
                failed.insert(path, why);
            }
        }
        drop(held);
    } else {
        for check in direct {
            failed.insert(
                check.relative.clone(),
                "no job of this state file recorded it, and Cairn repairs a bucket only through the job that made it".into(),
            );
        }
    }
    // Each file that was wrong, checked again; after an item document was
    // written again (its assets may be others now), the whole mirror.
    let written_before: HashSet<String> = documents.keys().cloned().collect();
    let documents = written_documents(&mirror, runner)?;
    let rewritten = report.findings.iter().any(|f| {
        f.kind == FindingKind::Edited
            || (f.kind == FindingKind::Missing && documents.contains_key(&f.path))
    });
    if rewritten {
        let (mut after, _) = inspect(&mirror, &fetcher, &documents).await?;
        let still: HashSet<&str> = after.findings.iter().map(|f| f.path.as_str()).collect();
        // Not found wrong again, and not said to have failed: put right.
        // A document whose rewrite failed has no record to be compared
        // with: it is not found wrong, and not right either. (A file whose
        // repair failed and that the documents written again no longer
        // name is no longer the mirror's: it is not said.)
        let (repaired, unrepaired): (Vec<Finding>, Vec<Finding>) = report
            .findings
            .into_iter()
            .filter(|f| repairable(f) && !still.contains(f.path.as_str()))
            .filter(|f| !failed.contains_key(&f.path) || written_before.contains(&f.path))
            .partition(|f| !failed.contains_key(&f.path));
        let repaired: Vec<Finding> = repaired
            .into_iter()
            .map(|f| put_right(f, &documents))
            .collect();
        after.findings.extend(unrepaired);
        for finding in &mut after.findings {
            if let Some(why) = failed.get(&finding.path) {
                finding.reason = format!("{}; the repair failed: {why}", finding.reason);
            }
        }
        after.repaired = repaired.len() as u64;
        after.findings.extend(repaired);
        after.findings.sort_by(|a, b| a.path.cmp(&b.path));
        return Ok(after);
    }
    for finding in report.findings.iter_mut().filter(|f| repairable(f)) {
        let still = match by_path.get(finding.path.as_str()) {
            Some(check) => check_one(check, mirror.folder.as_deref()).await,
            None if documents.contains_key(&finding.path) => {
                check_document(&mirror, &finding.path, &documents)
            }
            // An item document its job did not write again (see `failed`).
            None => Some(finding.clone()),
        };
        match still {
            None => {
                *finding = put_right(finding.clone(), &documents);
                report.repaired += 1;
                if by_path.contains_key(finding.path.as_str()) {
                    report.verified += 1;
                }
            }
            Some(now) => {
                finding.kind = now.kind;
                finding.reason = match failed.get(&finding.path) {
                    Some(why) => format!("{}; the repair failed: {why}", now.reason),
                    None => now.reason,
                };
            }
        }
    }
    Ok(report)
}

/// `finding`, repaired: what was wrong, and what was done.
fn put_right(finding: Finding, documents: &HashMap<String, WrittenDocument>) -> Finding {
    let done = if documents.contains_key(&finding.path) {
        "written again as Cairn wrote it"
    } else {
        "fetched again and verified"
    };
    Finding {
        reason: format!("{}; {done}", finding.reason),
        repaired: true,
        ..finding
    }
}

/// What a repair asks of one job: asset rows, item rows, and their paths.
type Repairs = (Vec<i64>, Vec<i64>, Vec<String>);

/// The item documents the jobs of `runner`'s state file wrote into the
/// mirror, with their checksums.
fn written_documents(
    mirror: &Mirror,
    runner: Option<&Runner>,
) -> Result<HashMap<String, WrittenDocument>> {
    match runner {
        Some(runner) => {
            let destination = mirror.destination.clone();
            runner.with_store(move |s| s.written_documents(&destination))
        }
        None => Ok(HashMap::new()),
    }
}

/// Checks the item document at `path` against the checksum recorded when
/// Cairn wrote it; a finding when it is missing or differs.
fn check_document(
    mirror: &Mirror,
    path: &str,
    documents: &HashMap<String, WrittenDocument>,
) -> Option<Finding> {
    let (folder, written) = (mirror.folder.as_ref()?, documents.get(path)?);
    let finding = |kind, reason: &str| {
        Some(Finding {
            kind,
            path: path.to_string(),
            reason: reason.to_string(),
            repaired: false,
        })
    };
    match folder.read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            finding(FindingKind::Missing, "the item's document is missing")
        }
        Err(_) => finding(FindingKind::Unchecked, "the item's document cannot be read"),
        Ok(bytes) if Checksum::of(Algorithm::Sha2_256, &bytes).to_hex() != written.checksum => {
            finding(
                FindingKind::Edited,
                "the item's document was changed since Cairn wrote it",
            )
        }
        Ok(_) => None,
    }
}

/// What the walk of a mirror's catalog found (see [`walk_mirror`]).
struct Walked {
    report: Report,
    /// The files its items name: assets and previous versions.
    checks: Vec<Check>,
    /// Every file the catalog names.
    named: HashSet<String>,
    /// The item documents.
    items: Vec<String>,
}

/// Walks the catalog of `mirror` (its own documents only): the files its
/// items name, and in `report` the documents that could not be read, the
/// assets not mirrored, and the items.
async fn walk_mirror(
    mirror: &Mirror,
    fetcher: &Fetcher,
    documents: &HashMap<String, WrittenDocument>,
) -> Result<Walked> {
    let mut report = Report::default();
    let mut checks = Vec::new();
    // Every file the catalog names, to find the ones it does not.
    let mut named: HashSet<String> = [INDEX, PROVENANCE].iter().map(|s| s.to_string()).collect();
    let mut items: Vec<String> = Vec::new();
    // Only documents inside the mirror are read: its links are untrusted.
    let options = WalkOptions {
        within: Some(mirror.inside.clone()),
        ..WalkOptions::default()
    };
    let summary = walk(fetcher, &mirror.root, &options, |event| {
        match event {
            WalkEvent::Problem(problem) => {
                let at = Url::parse(&problem.href)
                    .ok()
                    .and_then(|url| mirror.relative(&url));
                let finding = match at {
                    Some(path) if documents.contains_key(&path) => Finding {
                        kind: FindingKind::Missing,
                        reason: format!("the item's document {}", problem.reason),
                        path,
                        repaired: false,
                    },
                    at => Finding {
                        kind: FindingKind::Catalog,
                        path: at.unwrap_or(problem.href),
                        reason: problem.reason,
                        repaired: false,
                    },
                };
                report.findings.push(finding);
            }
            WalkEvent::Node(node) => {
                if let Some(path) = mirror.relative(&node.href) {
                    named.insert(path.clone());
                    if node.kind == Kind::Item {
                        items.push(path);
                    }
                }
                if node.kind == Kind::Item {
                    gather_assets(mirror, &node.href, &node.value, &mut checks, &mut report);
                }
            }
        }
        ControlFlow::Continue(())
    })
    .await?;
    report.items = summary.items;
    report.assets = checks.len() as u64;
    let not_mirrored = report
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::NotMirrored);
    if summary.items > 0 && checks.is_empty() && !not_mirrored {
        report.findings.push(Finding {
            kind: FindingKind::Catalog,
            path: "catalog.json".into(),
            reason: "no asset of this catalog is in the folder (they all point elsewhere): there is nothing to verify; is this the folder of a mirror?".into(),
            repaired: false,
        });
    }
    named.extend(checks.iter().map(|c| c.relative.clone()));
    Ok(Walked {
        report,
        checks,
        named,
        items,
    })
}

/// What a mirror's own catalog says of its files, read as `cairn verify`
/// reads it (its documents only, never through a link).
#[derive(Default)]
pub(crate) struct Claims {
    /// By path in the mirror, the `file:checksum` the item naming the file
    /// gives it (an asset, or a previous version kept).
    pub checksums: HashMap<String, String>,
    /// The documents the catalog links that could not be read, with why.
    pub unreadable: Vec<(String, String)>,
}

/// The claims of the catalog of the mirror at `destination` (a folder, or
/// a bucket address).
pub(crate) async fn claims(destination: &str) -> Result<Claims> {
    let mirror = Mirror::open(destination)?;
    let fetcher = mirror.fetcher()?;
    let walked = walk_mirror(&mirror, &fetcher, &HashMap::new()).await?;
    Ok(Claims {
        checksums: walked
            .checks
            .into_iter()
            .filter_map(|check| Some((check.relative, check.checksum?)))
            .collect(),
        unreadable: walked
            .report
            .findings
            .into_iter()
            .filter(|finding| finding.kind == FindingKind::Catalog)
            .map(|finding| (finding.path, finding.reason))
            .collect(),
    })
}

/// One pass over the mirror: the report, and the assets it checked.
async fn inspect(
    mirror: &Mirror,
    fetcher: &Fetcher,
    documents: &HashMap<String, WrittenDocument>,
) -> Result<(Report, Vec<Check>)> {
    let Walked {
        mut report,
        checks,
        named,
        items,
    } = walk_mirror(mirror, fetcher, documents).await?;

    // The assets.
    let folder = mirror.folder.clone();
    let all = &checks;
    let verdicts: Vec<Option<Finding>> = futures::stream::iter(0..all.len())
        .map(|n| {
            let folder = folder.clone();
            async move { check_one(&all[n], folder.as_deref()).await }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    for verdict in verdicts {
        match verdict {
            None => report.verified += 1,
            Some(finding) => report.findings.push(finding),
        }
    }

    if let Some(folder) = &mirror.folder {
        // The item documents Cairn wrote, against their recorded checksums.
        for path in &items {
            if documents.contains_key(path) {
                report.documents += 1;
                report
                    .findings
                    .extend(check_document(mirror, path, documents));
            }
        }
        // The files no entry names.
        let mut extra = Vec::new();
        folder
            .each_entry(|path, kind| {
                let own = crate::layout::is_own_temporary(path);
                match kind {
                    Entry::Folder => {}
                    _ if own || named.contains(path) => {}
                    Entry::File => {
                        extra.push((path.to_string(), "no entry of the catalog names this file"))
                    }
                    Entry::Link => extra.push((
                        path.to_string(),
                        "a link no entry of the catalog names (not followed)",
                    )),
                    Entry::Unreadable => extra.push((
                        path.to_string(),
                        "a folder that cannot be read (the files in it are not checked)",
                    )),
                    Entry::Other | Entry::NotUnicode => extra.push((
                        path.to_string(),
                        "something no entry of the catalog names (not a regular file)",
                    )),
                }
                Ok(())
            })
            .map_err(|e| Error::io(folder.root(), e))?;
        report
            .findings
            .extend(extra.into_iter().map(|(path, why)| Finding {
                kind: FindingKind::Extra,
                path,
                reason: format!("{why}; it is left as it is"),
                repaired: false,
            }));
    }
    report.findings.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((report, checks))
}

/// The mirrored assets of the item at `href` (those with a relative href).
fn gather_assets(
    mirror: &Mirror,
    href: &Url,
    item: &Value,
    checks: &mut Vec<Check>,
    report: &mut Report,
) {
    let Some(assets) = item.get("assets").and_then(Value::as_object) else {
        return;
    };
    for (key, asset) in assets {
        if let Some(why) = asset.get("cairn:missing").and_then(Value::as_str) {
            report.findings.push(Finding {
                kind: FindingKind::NotMirrored,
                path: format!(
                    "{} asset {key:?}",
                    mirror.relative(href).unwrap_or_else(|| href.to_string())
                ),
                reason: format!("{why}; resuming its job tries it again"),
                repaired: false,
            });
            continue;
        }
        let source = asset
            .pointer("/alternate/source/href")
            .and_then(Value::as_str)
            .map(str::to_string);
        gather_file(mirror, (href, key), asset, source, checks, report);
        // The previous versions of its file a sync kept (they cannot be
        // fetched again: the source has other bytes now).
        let versions = asset.get(crate::rewrite::VERSIONS_FIELD);
        for version in versions.and_then(Value::as_array).into_iter().flatten() {
            gather_file(mirror, (href, key), version, None, checks, report);
        }
    }
}

/// The file `entry` (an asset, or a previous version of one) of the asset
/// `key` of the item at `href`, when its href is a file of the mirror.
fn gather_file(
    mirror: &Mirror,
    (href, key): (&Url, &str),
    entry: &Value,
    source: Option<String>,
    checks: &mut Vec<Check>,
    report: &mut Report,
) {
    let Some(text) = entry.get("href").and_then(Value::as_str) else {
        return;
    };
    if text.contains("://") || Url::parse(text).is_ok() {
        return; // not mirrored (an address, not a file of the mirror)
    }
    let Ok(url) = href.join(text) else {
        return;
    };
    let Some(relative) = mirror.relative(&url) else {
        report.findings.push(Finding {
            kind: FindingKind::Unchecked,
            path: format!(
                "{} asset {key:?}",
                mirror.relative(href).unwrap_or_else(|| href.to_string())
            ),
            reason: format!(
                "its href {text:?} leads outside the mirror; Cairn does not read or write there"
            ),
            repaired: false,
        });
        return;
    };
    let field = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_string);
    checks.push(Check {
        relative,
        url,
        media_type: field("type"),
        size: entry.get("file:size").and_then(Value::as_u64),
        checksum: field("file:checksum"),
        source,
    });
}

/// Checks one asset; a finding when it is not whole.
async fn check_one(check: &Check, folder: Option<&Folder>) -> Option<Finding> {
    let finding = |kind, reason: String| {
        Some(Finding {
            kind,
            path: check.relative.clone(),
            reason,
            repaired: false,
        })
    };
    let expected = match check.checksum.as_deref().map(Checksum::parse) {
        Some(Ok(checksum)) => checksum,
        Some(Err(error)) => return finding(FindingKind::Unchecked, error.to_string()),
        None => {
            return finding(
                FindingKind::Unchecked,
                "it has no file:checksum to verify against".into(),
            );
        }
    };
    let Some(folder) = folder else {
        return match verify_object(&check.url, check.size, expected).await {
            Ok(()) => None,
            Err((kind, reason)) => finding(kind, reason),
        };
    };
    let path = folder.display(&check.relative);
    match folder.file_len(&check.relative) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => finding(
            FindingKind::Missing,
            format!("{} is missing", path.display()),
        ),
        // Not read is not damaged: said, and never "repaired" over.
        Err(error) => finding(
            FindingKind::Unchecked,
            format!("{} cannot be read: {error}", path.display()),
        ),
        Ok(_) => {
            if let Ok(place) = folder.place(&check.relative, false)
                && verify_existing(&place, check.size, Some(expected))
                    .await
                    .is_some()
            {
                return None;
            }
            finding(
                FindingKind::Changed,
                format!(
                    "{} does not match its file:size or file:checksum",
                    path.display()
                ),
            )
        }
    }
}

/// Fetches a missing or damaged file of a folder again from the address the
/// mirror records, verified before it replaces anything.
async fn repair_directly(
    check: &Check,
    folder: &Folder,
    fetcher: &Fetcher,
) -> std::result::Result<(), String> {
    let Some(source) = check.source.as_deref().and_then(|s| Url::parse(s).ok()) else {
        return Err("the mirror does not record where it came from".into());
    };
    if !matches!(source.scheme(), "http" | "https" | "s3" | "az" | "gs") {
        return Err(format!(
            "the mirror says it came from {source}, and Cairn repairs only from web and bucket addresses"
        ));
    }
    let expected = check
        .checksum
        .as_deref()
        .and_then(|c| Checksum::parse(c).ok());
    let place = folder
        .place(&check.relative, true)
        .map(Arc::new)
        .map_err(|e| e.to_string())?;
    let copy = AssetCopy {
        url: source.clone(),
        place,
        expected_size: check.size,
        expected_checksum: expected,
        validator: None,
        flush: true,
        media_type: check.media_type.clone(),
        min_speed: crate::fetch::MinSpeed::default(),
    };
    copy.run(
        fetcher,
        &Limits::unlimited(),
        &CancellationToken::new(),
        &Arc::new(AtomicU64::new(0)),
        |_| {},
    )
    .await
    .map_err(|e| format!("fetching it again from {source} failed: {}", e.reason()))?;
    copy.commit().await.map_err(|e| e.reason())
}

/// Streams an object from its bucket through the checksum.
async fn verify_object(
    url: &Url,
    size: Option<u64>,
    expected: Checksum,
) -> std::result::Result<(), (FindingKind, String)> {
    // Not read is not damaged (a busy store, no permission).
    let unreadable = |e: String| (FindingKind::Unchecked, e);
    let store = object_store_for(url).map_err(|e| unreadable(e.to_string()))?;
    let key = object_store::path::Path::from_url_path(url.path())
        .map_err(|e| unreadable(format!("{url} is not a valid object address: {e}")))?;
    let result = match store.get(&key).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => {
            return Err((FindingKind::Missing, format!("{url} is missing")));
        }
        Err(error) => return Err(unreadable(format!("{url} could not be read: {error}"))),
    };
    let mut fixity = Fixity::new(Some(expected));
    let mut stream = result.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| unreadable(format!("{url} could not be read: {e}")))?;
        fixity.update(&chunk);
    }
    fixity.finish(size).map(|_| ()).map_err(|mismatch| {
        (
            FindingKind::Changed,
            format!("{url} does not match: {mismatch}"),
        )
    })
}
