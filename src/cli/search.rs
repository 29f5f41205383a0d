//! `cairn search`: the items of a catalog or API that match a search.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use cairn::catalog::api::{Api, Cursor, build_search, items_link, items_request};
use cairn::catalog::walk::{WalkEvent, WalkOptions, walk};
use cairn::catalog::{Kind, open};
use cairn::fetch::{Fetcher, Request};
use cairn::{Error, Result};
use serde_json::{Value, json};
use stac::api::Search;

use super::{EXIT_FAILED, EXIT_OK, ItemFilter, interrupt_token, json_line, plural};

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
}

/// Prints matching items; exit code 1 when problems were found on the way.
pub async fn run(args: Args, _state: Option<PathBuf>) -> Result<u8> {
    let search = build_search(
        &args.filter.collections,
        args.filter.bbox.as_deref(),
        args.filter.datetime.as_deref(),
        Some(args.limit),
    )?;
    let fetcher = Fetcher::new()?.with_cancellation(interrupt_token());
    let opened = open(&fetcher, &args.source).await?;
    let mut printer = Printer {
        json: args.json,
        out: std::io::stdout().lock(),
        items: 0,
    };
    let items_endpoint = match opened.kind {
        Kind::Collection => items_link(&opened.value, &opened.url),
        _ => None,
    };
    let problems = if opened.kind == Kind::Api {
        let api = Api::new(opened.url, opened.value);
        let firsts = first_requests(&api, &search)?;
        read_pages(&fetcher, firsts, args.filter.max_items, &mut printer).await?;
        0
    } else if let Some(items) = items_endpoint {
        // A collection served by an API: its items come from its `items` endpoint.
        read_pages(
            &fetcher,
            vec![items_request(items, &search)?],
            args.filter.max_items,
            &mut printer,
        )
        .await?;
        0
    } else {
        search_static(
            &fetcher,
            &opened.url,
            &search,
            args.filter.max_items,
            &mut printer,
        )
        .await?
    };
    printer.summary(problems);
    Ok(if problems > 0 { EXIT_FAILED } else { EXIT_OK })
}

/// The first page of an API search: one item search, or, for an API without
/// search, one `items` read per collection.
fn first_requests(api: &Api, search: &Search) -> Result<Vec<Request>> {
    if api.can_search() {
        Ok(vec![api.search_request(search)?])
    } else if search.collections.is_empty() {
        Err(Error::invalid_input(format!(
            "{} has no item search; name the collections to read with --collections",
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
    printer: &mut Printer<'_>,
) -> Result<()> {
    let mut remaining = max_items;
    for first in firsts {
        let mut cursor = Cursor::start(first, remaining);
        while let Some(page) = cursor.next_page(fetcher, "features").await? {
            for item in page {
                printer.item(&item);
            }
        }
        remaining = remaining.map(|r| r.saturating_sub(cursor.delivered));
        if remaining == Some(0) {
            break;
        }
    }
    Ok(())
}

/// Walks a static catalog and keeps the items that match, tested with the `stac`
/// crate's own matching rules.
async fn search_static(
    fetcher: &Fetcher,
    root: &url::Url,
    search: &Search,
    max_items: Option<u64>,
    printer: &mut Printer<'_>,
) -> Result<u64> {
    let mut problems = 0;
    walk(fetcher, root, &WalkOptions::default(), |event| {
        match event {
            WalkEvent::Problem(problem) => {
                problems += 1;
                printer.problem(&problem.href, &problem.reason);
            }
            WalkEvent::Node(node) if node.kind == Kind::Item => {
                let mut value = node.value;
                if value.get("collection").is_none()
                    && let (Some(collection), Some(object)) =
                        (&node.collection, value.as_object_mut())
                {
                    object.insert("collection".into(), json!(collection));
                }
                match serde_json::from_value::<stac::Item>(value.clone())
                    .map_err(|e| e.to_string())
                    .and_then(|item| search.matches(&item).map_err(|e| e.to_string()))
                {
                    Ok(true) => printer.item(&value),
                    Ok(false) => {}
                    Err(reason) => {
                        problems += 1;
                        printer.problem(
                            node.href.as_str(),
                            &format!("the item could not be matched against the search: {reason}"),
                        );
                    }
                }
                if max_items.is_some_and(|max| printer.items >= max) {
                    return ControlFlow::Break(());
                }
            }
            WalkEvent::Node(_) => {}
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok(problems)
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
            text("/id"),
            text("/collection"),
            datetime,
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
            eprintln!("problem: {href}\n  {reason}");
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
                eprintln!("{} on the way (listed above)", plural(problems, "problem"));
            }
        }
    }
}
