//! `cairn browse`: what a catalog or API holds, as a tree with counts.

use std::collections::HashMap;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use cairn::Result;
use cairn::catalog::api::Api;
use cairn::catalog::walk::{Problem, WalkEvent, WalkOptions, walk_opened};
use cairn::catalog::{Kind, Opened, open};
use cairn::fetch::Fetcher;
use serde_json::{Value, json};

use super::{EXIT_FAILED, EXIT_OK, json_line, open_store, plural};

/// Arguments of `cairn browse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A catalog, collection, item or STAC API: URL or path.
    source: String,
    /// Follow links at most this many levels below the source.
    #[arg(long, value_name = "N")]
    depth: Option<usize>,
    /// Print one JSON object per line (nodes, problems), then a summary line.
    #[arg(long)]
    json: bool,
    /// Documents read at once.
    #[arg(long, default_value_t = 32, value_name = "N")]
    concurrency: usize,
    #[command(flatten)]
    sign_in: super::SignIn,
}

/// Browses a source; exit code 1 when problems were found.
pub async fn run(args: Args, state: Option<PathBuf>) -> Result<u8> {
    let fetcher = args.sign_in.fetcher(&args.source)?;
    let opened = open(&fetcher, &args.source).await?;
    remember(state, &opened);
    if opened.kind == Kind::Api {
        return browse_api(&fetcher, opened, &args).await;
    }
    let options = WalkOptions {
        concurrency: args.concurrency,
        max_depth: args.depth,
        ..WalkOptions::default()
    };
    let mut tree = Tree::default();
    let mut problems = Vec::new();
    let mut out = std::io::stdout().lock();
    let root = opened.url.clone();
    let summary = walk_opened(&fetcher, opened, &options, |event| {
        if args.json {
            match &event {
                WalkEvent::Node(node) => {
                    let mut line = serde_json::to_value(node).unwrap_or_default();
                    line["type"] = json!("node");
                    json_line(&mut out, &line);
                }
                WalkEvent::Problem(problem) => {
                    json_line(
                        &mut out,
                        &json!({"type": "problem", "href": problem.href, "reason": problem.reason}),
                    );
                }
            }
        }
        match event {
            WalkEvent::Node(node) => tree.add(
                node.kind,
                node.id,
                node.title,
                node.href.to_string(),
                node.parent.map(|p| p.to_string()),
            ),
            WalkEvent::Problem(problem) => problems.push(problem),
        }
        ControlFlow::Continue(())
    })
    .await?;
    if args.json {
        let mut line = serde_json::to_value(&summary).unwrap_or_default();
        line["type"] = json!("summary");
        json_line(&mut out, &line);
    } else {
        tree.print(&mut out, root.as_str());
        let _ = writeln!(
            out,
            "\n{}, {}, {}",
            plural(summary.catalogs, "catalog"),
            plural(summary.collections, "collection"),
            plural(summary.items, "item")
        );
        if summary.not_followed > 0 {
            let _ = writeln!(
                out,
                "{} not followed (raise --depth to see more)",
                plural(summary.not_followed, "link")
            );
        }
        print_problems(&problems);
    }
    Ok(if summary.problems > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

async fn browse_api(fetcher: &Fetcher, opened: Opened, args: &Args) -> Result<u8> {
    let api = Api::new(opened.url.clone(), opened.value);
    let collections = api.collections(fetcher).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for collection in &collections {
            json_line(
                &mut out,
                &json!({
                    "type": "node", "kind": "collection",
                    "id": collection.get("id"), "title": collection.get("title"),
                    "parent": api.root().as_str(), "depth": 1,
                }),
            );
        }
        json_line(
            &mut out,
            &json!({"type": "summary", "collections": collections.len(), "search": api.can_search()}),
        );
    } else {
        let _ = writeln!(out, "STAC API {:?}  {}", api.title(), api.root());
        for (index, collection) in collections.iter().enumerate() {
            let branch = if index + 1 == collections.len() {
                "└──"
            } else {
                "├──"
            };
            let id = collection.get("id").and_then(Value::as_str).unwrap_or("?");
            let title = collection
                .get("title")
                .and_then(Value::as_str)
                .map(|t| format!(" {t:?}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{branch} collection {id}{title}{}",
                interval(collection)
            );
        }
        let search = if api.can_search() {
            "item search available"
        } else {
            "no item search"
        };
        let _ = writeln!(
            out,
            "\n{}; {search}",
            plural(collections.len() as u64, "collection")
        );
    }
    Ok(EXIT_OK)
}

/// The temporal extent as "  [2015 .. now]", when the collection gives one.
fn interval(collection: &Value) -> String {
    let Some(first) = collection
        .pointer("/extent/temporal/interval/0")
        .and_then(Value::as_array)
    else {
        return String::new();
    };
    let year = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(|s| s.chars().take(10).collect::<String>())
            .unwrap_or_else(|| "..".into())
    };
    format!("  [{} / {}]", year(first.first()), year(first.get(1)))
}

fn remember(state: Option<PathBuf>, opened: &Opened) {
    let title = opened.value.get("title").and_then(Value::as_str);
    let result = open_store(state)
        .and_then(|store| store.touch_source(opened.url.as_str(), title, Some(opened.kind.noun())));
    if let Err(error) = result {
        tracing::warn!("the source was not added to the history: {error}");
    }
}

fn print_problems(problems: &[Problem]) {
    if problems.is_empty() {
        return;
    }
    say_err!(
        "\n{} found (the walk went on past each):",
        plural(problems.len() as u64, "problem")
    );
    for problem in problems {
        say_err!("  - {}\n    {}", problem.href, problem.reason);
    }
}

/// Catalogs and collections with their direct item counts; items are counted, not kept.
#[derive(Default)]
struct Tree {
    nodes: HashMap<String, TreeNode>,
    children: HashMap<String, Vec<String>>,
}

struct TreeNode {
    kind: Kind,
    id: String,
    title: Option<String>,
    items: u64,
}

impl Tree {
    fn add(
        &mut self,
        kind: Kind,
        id: String,
        title: Option<String>,
        href: String,
        parent: Option<String>,
    ) {
        if kind == Kind::Item {
            let holder = parent.unwrap_or_else(|| href.clone());
            match self.nodes.get_mut(&holder) {
                Some(node) => node.items += 1,
                // The source itself is an item.
                None if holder == href => {
                    self.nodes.insert(
                        href,
                        TreeNode {
                            kind,
                            id,
                            title,
                            items: 0,
                        },
                    );
                }
                // The source is an item collection.
                None => {
                    let node = self.nodes.entry(holder).or_insert(TreeNode {
                        kind: Kind::ItemCollection,
                        id: "items".into(),
                        title: None,
                        items: 0,
                    });
                    node.items += 1;
                }
            }
            return;
        }
        if let Some(parent) = parent {
            self.children.entry(parent).or_default().push(href.clone());
        }
        self.nodes.insert(
            href,
            TreeNode {
                kind,
                id,
                title,
                items: 0,
            },
        );
    }

    fn total_items(&self, href: &str) -> u64 {
        let own = self.nodes.get(href).map_or(0, |n| n.items);
        own + self
            .children
            .get(href)
            .map_or(0, |c| c.iter().map(|c| self.total_items(c)).sum())
    }

    fn print(&self, out: &mut impl Write, root: &str) {
        self.print_node(out, root, "", "", true);
    }

    fn print_node(
        &self,
        out: &mut impl Write,
        href: &str,
        lead: &str,
        branch: &str,
        is_root: bool,
    ) {
        let Some(node) = self.nodes.get(href) else {
            return;
        };
        let title = node
            .title
            .as_ref()
            .map(|t| format!(" {t:?}"))
            .unwrap_or_default();
        let total = self.total_items(href);
        let counts = if node.kind == Kind::Item {
            "the source is one item".to_string()
        } else if total == node.items || node.items == 0 {
            plural(total, "item")
        } else {
            format!("{} here, {} in all", plural(node.items, "item"), total)
        };
        let place = if is_root {
            format!("  {href}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{lead}{branch}{} {}{title}  ({counts}){place}",
            node.kind.noun(),
            node.id
        );
        let mut children: Vec<&String> = self
            .children
            .get(href)
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        children.sort_by_key(|c| self.nodes.get(*c).map(|n| n.id.clone()));
        let lead = if is_root {
            String::new()
        } else {
            format!(
                "{lead}{}",
                if branch == "└── " {
                    "    "
                } else {
                    "│   "
                }
            )
        };
        for (index, child) in children.iter().enumerate() {
            let branch = if index + 1 == children.len() {
                "└── "
            } else {
                "├── "
            };
            self.print_node(out, child, &lead, branch, false);
        }
    }
}
