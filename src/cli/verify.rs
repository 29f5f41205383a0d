//! `cairn verify DEST`: checks a mirror on its own, without the state file:
//! every asset with a relative href must be there with its `file:size` and
//! `file:checksum`. The mirror may be a folder or a bucket. With `--repair`,
//! what is missing or damaged in a folder is fetched again from the address
//! the mirror recorded (`alternate.source.href`), verified, and put back.
//!
//! A mirror may have been made, or changed, by someone else: its hrefs are
//! untrusted. An asset whose href leads outside the mirror folder is reported
//! and never read or written; files are read and repaired through the
//! mirror's [`Folder`], which follows no link; and a repair fetches only from
//! http(s) addresses, never from a file on this computer.

use std::io::Write;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use cairn::catalog::Kind;
use cairn::catalog::walk::{WalkEvent, WalkOptions, walk};
use cairn::checksum::{Checksum, Fixity};
use cairn::destination::{catalog_location, is_bucket_address, object_store_for};
use cairn::fetch::{Fetcher, parse_location};
use cairn::folder::Folder;
use cairn::limit::Limits;
use cairn::transfer::copy::{AssetCopy, verify_existing};
use cairn::{Error, Result};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::{EXIT_FAILED, EXIT_OK, json_line, plural};

/// Files checked at once.
const AT_ONCE: usize = 4;

/// Arguments of `cairn verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mirror: a folder (or its catalog.json), or the catalog.json of a
    /// mirror in a bucket (s3://, az://, gs://).
    destination: String,
    /// Print one JSON object per problem, then a summary line.
    #[arg(long)]
    json: bool,
    /// Fetch missing or damaged files again from their original address
    /// (folders only).
    #[arg(long)]
    repair: bool,
}

struct Check {
    href: String,
    url: Url,
    /// The file's path inside a mirror folder (`None` for a bucket).
    relative: Option<String>,
    media_type: Option<String>,
    size: Option<u64>,
    checksum: Option<String>,
    source: Option<String>,
}

/// What became of one asset.
enum Verdict {
    Verified,
    Repaired,
    Problem(String),
}

/// Verifies every asset of a mirror; exit code 1 when any is missing or wrong
/// (and was not repaired).
pub async fn run(args: Args) -> Result<u8> {
    // A bucket address stands for the catalog.json under it.
    let text = args.destination.trim_end_matches('/');
    let root = if is_bucket_address(text) && !text.ends_with(".json") {
        parse_location(&catalog_location(text))?
    } else {
        parse_location(text)?
    };
    let local = root.scheme() == "file";
    if !local && args.repair {
        return Err(Error::invalid_input(
            "--repair works on a mirror folder; for a bucket, run `cairn resume` on the job that made it",
        ));
    }
    let fetcher = Fetcher::new()?;
    // The folder (or bucket prefix) that holds the root catalog: every asset
    // must be inside it.
    let inside = root
        .join(".")
        .map_err(|e| Error::invalid_input(format!("{root}: {e}")))?;
    let folder = if local {
        let path = inside
            .to_file_path()
            .map_err(|()| Error::invalid_input(format!("{inside} is not a folder")))?;
        Some(Arc::new(Folder::open(&path).map_err(|source| {
            Error::Io {
                path: path.display().to_string(),
                source,
            }
        })?))
    } else {
        None
    };
    let mut checks = Vec::new();
    let mut problems: Vec<(String, String)> = Vec::new();
    let summary = walk(&fetcher, &root, &WalkOptions::default(), |event| {
        match event {
            WalkEvent::Problem(p) => problems.push((p.href, p.reason)),
            WalkEvent::Node(node) if node.kind == Kind::Item => {
                let assets = node
                    .value
                    .get("assets")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (key, asset) in assets {
                    let Some(href) = asset.get("href").and_then(Value::as_str) else {
                        continue;
                    };
                    if href.contains("://") || Url::parse(href).is_ok() {
                        continue; // not mirrored (an address, not a file of the mirror)
                    }
                    let Ok(url) = node.href.join(href) else {
                        continue;
                    };
                    let name = format!("{} asset {key:?}", node.href);
                    let Some(relative) = inside_mirror(&inside, &url) else {
                        problems.push((
                            name,
                            format!(
                                "its href {href:?} leads outside the mirror; Cairn does not read or write there"
                            ),
                        ));
                        continue;
                    };
                    checks.push(Check {
                        href: name,
                        url,
                        relative: local.then_some(relative),
                        media_type: asset
                            .get("type")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        size: asset.get("file:size").and_then(Value::as_u64),
                        checksum: asset
                            .get("file:checksum")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        source: asset
                            .pointer("/alternate/source/href")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    });
                }
            }
            WalkEvent::Node(_) => {}
        }
        ControlFlow::Continue(())
    })
    .await?;
    let repair = args.repair.then(|| fetcher.assets().clone());
    let verdicts: Vec<(String, Verdict)> = futures::stream::iter(&checks)
        .map(|check| {
            let repair = repair.clone();
            let folder = folder.clone();
            async move {
                (
                    check.href.clone(),
                    check_one(check, folder.as_ref(), repair).await,
                )
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let (mut verified, mut repaired) = (0u64, 0u64);
    for (href, verdict) in verdicts {
        match verdict {
            Verdict::Verified => verified += 1,
            Verdict::Repaired => {
                verified += 1;
                repaired += 1;
            }
            Verdict::Problem(reason) => problems.push((href, reason)),
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        for (href, reason) in &problems {
            json_line(
                &mut out,
                &json!({"type": "problem", "href": href, "reason": reason}),
            );
        }
        json_line(
            &mut out,
            &json!({"type": "summary", "items": summary.items, "assets": checks.len(), "verified": verified, "repaired": repaired, "problems": problems.len()}),
        );
    } else {
        for (href, reason) in &problems {
            let _ = writeln!(out, "problem: {href}\n  {reason}");
        }
        let repaired = if repaired > 0 {
            format!(" ({repaired} fetched again and repaired)")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{} of {} verified{repaired} in {}; {}.",
            verified,
            plural(checks.len() as u64, "asset"),
            plural(summary.items, "item"),
            plural(problems.len() as u64, "problem")
        );
        if !problems.is_empty() && !args.repair && local {
            let _ = writeln!(
                out,
                "`cairn verify {} --repair` fetches damaged and missing files again.",
                args.destination
            );
        }
    }
    Ok(if problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// The path of `url` inside the mirror whose root folder (or prefix) is
/// `inside`, or `None` when it leads elsewhere.
fn inside_mirror(inside: &Url, url: &Url) -> Option<String> {
    if url.scheme() != inside.scheme() || url.host_str() != inside.host_str() {
        return None;
    }
    let relative = url.path().strip_prefix(inside.path())?;
    let decoded: Vec<String> = relative
        .split('/')
        .map(|s| cairn::layout::unescape(s).into_owned())
        .collect();
    if decoded
        .iter()
        .any(|s| s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\', '\0']))
    {
        return None;
    }
    Some(decoded.join("/"))
}

/// Checks one asset; with `repair`, fetches a missing or damaged local file
/// again from its recorded source.
async fn check_one(
    check: &Check,
    folder: Option<&Arc<Folder>>,
    repair: Option<reqwest::Client>,
) -> Verdict {
    let expected = match check.checksum.as_deref().map(Checksum::parse) {
        Some(Ok(checksum)) => checksum,
        Some(Err(error)) => return Verdict::Problem(error.to_string()),
        None => {
            return Verdict::Problem("it has no file:checksum to verify against".into());
        }
    };
    let local = folder.zip(check.relative.as_deref());
    let problem = if let Some((folder, relative)) = local {
        let path = folder.display(relative);
        match folder.file_len(relative) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                format!("{} is missing", path.display())
            }
            Err(error) => format!("{} cannot be read: {error}", path.display()),
            Ok(_) => {
                let place = folder.place(relative, false);
                if let Ok(place) = place
                    && verify_existing(&place, check.size, Some(expected.clone()))
                        .await
                        .is_some()
                {
                    return Verdict::Verified;
                }
                format!(
                    "{} does not match its file:size or file:checksum",
                    path.display()
                )
            }
        }
    } else {
        match verify_object(&check.url, check.size, expected.clone()).await {
            Ok(()) => return Verdict::Verified,
            Err(reason) => reason,
        }
    };
    let (Some(http), Some((folder, relative))) = (repair, local) else {
        return Verdict::Problem(problem);
    };
    let Some(source) = check.source.as_deref().and_then(|s| Url::parse(s).ok()) else {
        return Verdict::Problem(format!(
            "{problem}; it cannot be repaired: the mirror does not record where it came from"
        ));
    };
    if !matches!(source.scheme(), "http" | "https") {
        return Verdict::Problem(format!(
            "{problem}; it is not repaired: the mirror says it came from {source}, and Cairn repairs only from http(s) addresses"
        ));
    }
    let place = match folder.place(relative, true) {
        Ok(place) => Arc::new(place),
        Err(error) => {
            return Verdict::Problem(format!("{problem}; the repair failed: {error}"));
        }
    };
    let copy = AssetCopy {
        url: source.clone(),
        place,
        expected_size: check.size,
        expected_checksum: Some(expected),
        validator: None,
        flush: true,
        media_type: check.media_type.clone(),
        min_speed: cairn::fetch::MinSpeed::default(),
    };
    let fetched = copy
        .run(
            &http,
            &Limits::unlimited(),
            &CancellationToken::new(),
            &Arc::new(AtomicU64::new(0)),
            |_| {},
        )
        .await;
    match fetched {
        Ok(_) => match copy.commit().await {
            Ok(()) => Verdict::Repaired,
            Err(error) => Verdict::Problem(format!("{problem}; the repair failed: {error}")),
        },
        Err(error) => Verdict::Problem(format!(
            "{problem}; fetching it again from {source} failed: {error}"
        )),
    }
}

/// Streams an object from its bucket through the checksum.
async fn verify_object(
    url: &Url,
    size: Option<u64>,
    expected: Checksum,
) -> std::result::Result<(), String> {
    let store = object_store_for(url).map_err(|e| e.to_string())?;
    let key = object_store::path::Path::from_url_path(url.path())
        .map_err(|e| format!("{url} is not a valid object address: {e}"))?;
    let result = match store.get(&key).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Err(format!("{url} is missing")),
        Err(error) => return Err(format!("{url} could not be read: {error}")),
    };
    let mut fixity = Fixity::new(Some(expected));
    let mut stream = result.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("{url} could not be read: {e}"))?;
        fixity.update(&chunk);
    }
    fixity
        .finish(size)
        .map(|_| ())
        .map_err(|mismatch| format!("{url} does not match: {mismatch}"))
}
