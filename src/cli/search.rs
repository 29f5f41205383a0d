//! `cairn search`: the items of a catalog or API that match a search.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use cairn::Result;
use cairn::catalog::api::build_search;
use cairn::catalog::filter::with_filter;
use cairn::catalog::search::{Found, search};
use cairn::words::printable;
use serde_json::{Value, json};

use super::{EXIT_FAILED, EXIT_OK, ItemFilter, json_line, plural};

/// Arguments of `cairn search`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A catalog, collection or STAC API: URL or path.
    source: String,
    #[command(flatten)]
    filter: ItemFilter,
    /// Items per page asked of an API.
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: u64,
    /// Print each item as one line of JSON, then a summary line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sign_in: super::SignIn,
}

/// Prints matching items; exit code 1 when problems were found on the way.
pub async fn run(args: Args, _state: Option<PathBuf>) -> Result<u8> {
    let search_for = with_filter(
        build_search(
            &args.filter.collections,
            args.filter.bbox.as_deref(),
            args.filter.datetime.as_deref(),
            Some(args.limit),
        )?,
        args.filter.filter.as_deref(),
    )?;
    let fetcher = args.sign_in.fetcher(&args.source)?;
    let mut printer = Printer {
        json: args.json,
        out: std::io::stdout().lock(),
        items: 0,
    };
    let mut problems = 0;
    search(
        &fetcher,
        &args.source,
        &search_for,
        args.filter.max_items,
        |found| {
            match found {
                Found::Item(item) => printer.item(&item),
                Found::Problem(problem) => {
                    problems += 1;
                    printer.problem(&problem.href, &problem.reason);
                }
            }
            ControlFlow::Continue(())
        },
    )
    .await?;
    printer.summary(problems);
    Ok(if problems > 0 { EXIT_FAILED } else { EXIT_OK })
}

struct Printer<'a> {
    json: bool,
    out: std::io::StdoutLock<'a>,
    items: u64,
}

impl Printer<'_> {
    fn item(&mut self, item: &Value) {
        self.items += 1;
        if self.json {
            json_line(&mut self.out, item);
            return;
        }
        let text = |key: &str| item.pointer(key).and_then(Value::as_str).unwrap_or("");
        let datetime = [
            text("/properties/datetime"),
            text("/properties/start_datetime"),
        ]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or("-");
        let assets = item
            .get("assets")
            .and_then(Value::as_object)
            .map_or(0, |a| a.len() as u64);
        let _ = writeln!(
            self.out,
            "{:<40} {:<24} {:<26} {}",
            printable(text("/id")),
            printable(text("/collection")),
            printable(datetime),
            plural(assets, "asset")
        );
    }

    fn problem(&mut self, href: &str, reason: &str) {
        if self.json {
            json_line(
                &mut self.out,
                &json!({"type": "problem", "href": href, "reason": reason}),
            );
        } else {
            say_err!("problem: {}\n  {}", printable(href), printable(reason));
        }
    }

    fn summary(&mut self, problems: u64) {
        if self.json {
            json_line(
                &mut self.out,
                &json!({"type": "summary", "items": self.items, "problems": problems}),
            );
        } else {
            let _ = writeln!(self.out, "\n{} found", plural(self.items, "item"));
            if problems > 0 {
                say_err!("{} on the way (listed above)", plural(problems, "problem"));
            }
        }
    }
}
