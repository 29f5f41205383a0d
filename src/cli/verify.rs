//! `cairn verify DEST`: checks a mirror (a folder or a bucket) against the
//! `file:size` and `file:checksum` of every asset, finds item documents
//! edited since Cairn wrote them and files the catalog does not name, and
//! with `--repair` fetches again what is missing or damaged. The work is the
//! engine's ([`cairn::verify`]); this prints it.

use std::io::Write;
use std::path::PathBuf;

use cairn::Result;
use cairn::fetch::Fetcher;
use cairn::runner::Runner;
use cairn::store::Store;
use cairn::verify::{FindingKind, VerifyOptions, verify};
use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, json_line, plural};

/// Arguments of `cairn verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mirror: a folder (or its catalog.json), or the catalog.json of a
    /// mirror in a bucket (s3://, az://, gs://).
    destination: String,
    /// Print one JSON object per finding, then a summary line.
    #[arg(long)]
    json: bool,
    /// Fetch missing or damaged files again, and write edited item
    /// documents again, through the jobs that made them.
    #[arg(long)]
    repair: bool,
}

/// Verifies a mirror; exit code 1 when something is missing or wrong (and
/// was not repaired).
pub async fn run(args: Args, state: Option<PathBuf>) -> Result<u8> {
    // The state file of the jobs that made the mirror, if this computer has
    // one: it knows the item documents Cairn wrote, and the jobs to repair
    // through. Checking alone never creates one; a path that is not a file
    // (a folder given by mistake) is refused, not passed over.
    let path = Store::default_path(state.as_deref())?;
    let store = if !path.try_exists().unwrap_or(true) {
        None
    } else if args.repair {
        Some(Store::open(&path)?)
    } else {
        Some(Store::open_for_reading(&path)?)
    };
    let runner = match store {
        Some(store) => Some(Runner::new(store, Fetcher::new()?)),
        None => None,
    };
    let options = VerifyOptions {
        repair: args.repair,
    };
    let report = verify(&args.destination, runner.as_ref(), &options).await?;
    let problems = report.problems();
    let mut out = std::io::stdout().lock();
    if args.json {
        for finding in &report.findings {
            json_line(
                &mut out,
                &json!({"type": "problem", "kind": finding.kind, "href": finding.path,
                    "path": finding.path, "reason": finding.reason, "repaired": finding.repaired}),
            );
        }
        json_line(
            &mut out,
            &json!({"type": "summary", "items": report.items, "assets": report.assets,
                "verified": report.verified, "repaired": report.repaired,
                "documents": report.documents, "problems": problems,
                "extra": report.findings.iter().filter(|f| f.kind == FindingKind::Extra).count()}),
        );
    } else {
        for finding in &report.findings {
            let label = match (finding.repaired, finding.kind) {
                (true, _) => "repaired",
                (false, FindingKind::Extra) => "extra",
                (false, _) => "problem",
            };
            let _ = writeln!(out, "{label}: {}\n  {}", finding.path, finding.reason);
        }
        let repaired = if report.repaired > 0 {
            format!(" ({} fetched again or rewritten)", report.repaired)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{} of {} verified{repaired} in {}; {}.",
            report.verified,
            plural(report.assets, "asset"),
            plural(report.items, "item"),
            plural(problems as u64, "problem")
        );
        if problems > 0 && !args.repair {
            let _ = writeln!(
                out,
                "`{}` fetches damaged and missing files again.",
                super::repair_command(&args.destination)
            );
        }
    }
    Ok(if problems == 0 { EXIT_OK } else { EXIT_FAILED })
}
