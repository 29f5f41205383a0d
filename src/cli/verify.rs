//! `cairn verify DEST`: checks a mirror on its own, without the state file:
//! every asset with a relative href must be there with its `file:size` and
//! `file:checksum`.

use std::io::Write;
use std::ops::ControlFlow;

use cairn::catalog::Kind;
use cairn::catalog::walk::{WalkEvent, WalkOptions, walk};
use cairn::checksum::Checksum;
use cairn::fetch::{Fetcher, parse_location};
use cairn::transfer::copy::verify_existing;
use cairn::{Error, Result};
use serde_json::{Value, json};

use super::{EXIT_FAILED, EXIT_OK, json_line, plural};

/// Arguments of `cairn verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mirror's folder (or its catalog.json).
    destination: String,
    /// Print one JSON object per problem, then a summary line.
    #[arg(long)]
    json: bool,
}

struct Check {
    href: String,
    path: std::path::PathBuf,
    size: Option<u64>,
    checksum: Option<String>,
}

/// Verifies every asset of a mirror; exit code 1 when any is missing or wrong.
pub async fn run(args: Args) -> Result<u8> {
    let root = parse_location(&args.destination)?;
    if root.scheme() != "file" {
        return Err(Error::invalid_input("verify checks a local mirror folder"));
    }
    let fetcher = Fetcher::new()?;
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
                    if href.contains("://") {
                        continue; // not mirrored (left out by the selection)
                    }
                    let Ok(url) = node.href.join(href) else {
                        continue;
                    };
                    let Ok(path) = url.to_file_path() else {
                        continue;
                    };
                    checks.push(Check {
                        href: format!("{} asset {key:?}", node.href),
                        path,
                        size: asset.get("file:size").and_then(Value::as_u64),
                        checksum: asset
                            .get("file:checksum")
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
    let mut verified = 0u64;
    for check in &checks {
        let expected = match check.checksum.as_deref().map(Checksum::parse) {
            Some(Ok(checksum)) => Some(checksum),
            Some(Err(error)) => {
                problems.push((check.href.clone(), error.to_string()));
                continue;
            }
            None => {
                problems.push((
                    check.href.clone(),
                    "it has no file:checksum to verify against".into(),
                ));
                continue;
            }
        };
        if !check.path.exists() {
            problems.push((
                check.href.clone(),
                format!("{} is missing", check.path.display()),
            ));
        } else if verify_existing(&check.path, check.size, expected)
            .await
            .is_some()
        {
            verified += 1;
        } else {
            problems.push((
                check.href.clone(),
                format!(
                    "{} does not match its file:size or file:checksum",
                    check.path.display()
                ),
            ));
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
            &json!({"type": "summary", "items": summary.items, "assets": checks.len(), "verified": verified, "problems": problems.len()}),
        );
    } else {
        for (href, reason) in &problems {
            let _ = writeln!(out, "problem: {href}\n  {reason}");
        }
        let _ = writeln!(
            out,
            "{} of {} verified in {}; {}.",
            verified,
            plural(checks.len() as u64, "asset"),
            plural(summary.items, "item"),
            plural(problems.len() as u64, "problem")
        );
    }
    Ok(if problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}
