//! Checks one STAC document for what Cairn needs from it, in plain words.
//!
//! This is not JSON-schema validation: it checks the core fields a walk and a
//! mirror rely on (ids, links, extents, geometry, datetimes, assets), so that a
//! broken document is reported clearly and the walk goes on.

use serde_json::{Map, Value};
use url::Url;

use super::{Kind, json_kind, resolve};
use crate::fetch::Structure;

/// The outcome of checking one document.
#[derive(Debug, Default)]
pub struct Checked {
    /// The document's id, if it has a usable one.
    pub id: Option<String>,
    /// Its title, if any.
    pub title: Option<String>,
    /// The `child` and `item` links to follow, resolved.
    pub children: Vec<ChildLink>,
    /// What is wrong with it, one plain sentence each.
    pub problems: Vec<String>,
    /// False when the document cannot be used at all (an item without an id).
    pub usable: bool,
}

/// A `child` or `item` link to follow.
#[derive(Debug, Clone)]
pub struct ChildLink {
    /// Where it leads.
    pub url: Url,
    /// Whether it is an `item` link (else a `child` link).
    pub item: bool,
}

/// Checks a document of `kind` read from `url`: its value, and the `child`
/// and `item` links kept apart from it (see [`Document`](crate::fetch::Document)).
pub fn check_document(
    kind: Kind,
    value: &Value,
    structure: Option<&Structure>,
    url: &Url,
) -> Checked {
    let mut out = check(kind, value, url);
    if let Some(structure) = structure {
        let follows = matches!(kind, Kind::Catalog | Kind::Collection);
        let read = structure.each(|link| {
            check_link(follows, &link, url, &mut out);
            std::ops::ControlFlow::Continue(())
        });
        if let Err(e) = read {
            out.problems
                .push(format!("its links could not be read ({e})"));
        }
    }
    out
}

/// Checks `value`, a document of `kind` read from `url`.
pub fn check(kind: Kind, value: &Value, url: &Url) -> Checked {
    let mut out = Checked {
        usable: true,
        ..Default::default()
    };
    let Some(object) = value.as_object() else {
        out.usable = false;
        out.problems
            .push(format!("it is {} instead of an object", json_kind(value)));
        return out;
    };
    out.title = object
        .get("title")
        .and_then(Value::as_str)
        .map(str::to_string);
    match object.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => out.id = Some(id.clone()),
        Some(Value::String(_)) => out.problems.push("its \"id\" is empty".into()),
        Some(other) => out.problems.push(format!(
            "its \"id\" is {} instead of a string",
            json_kind(other)
        )),
        None => out.problems.push("it has no \"id\"".into()),
    }
    if !object.contains_key("stac_version") {
        out.problems.push("it has no \"stac_version\"".into());
    }
    match kind {
        Kind::Catalog | Kind::Collection | Kind::Api => {
            if kind == Kind::Collection {
                check_extent(object, &mut out.problems);
            }
            if !object.contains_key("description") && kind != Kind::Api {
                out.problems.push("it has no \"description\"".into());
            }
        }
        Kind::Item => {
            check_item(object, &mut out.problems);
            // An item without an id cannot be given a place in a mirror.
            out.usable = out.id.is_some()
                && object.get("properties").is_some_and(Value::is_object)
                && object.get("assets").is_none_or(Value::is_object);
        }
        Kind::ItemCollection => {
            if !object.get("features").is_some_and(Value::is_array) {
                out.problems.push("it has no \"features\" list".into());
                out.usable = false;
            }
            // An item collection needs no id.
            out.problems
                .retain(|p| !p.contains("\"id\"") && !p.contains("stac_version"));
        }
    }
    check_links(kind, object, url, &mut out);
    out
}

fn check_extent(object: &Map<String, Value>, problems: &mut Vec<String>) {
    let Some(extent) = object.get("extent") else {
        problems.push("the collection has no \"extent\"".into());
        return;
    };
    let bbox = extent.pointer("/spatial/bbox").and_then(Value::as_array);
    match bbox {
        None => problems.push("the collection's extent has no spatial bbox".into()),
        Some(boxes) => {
            let valid = boxes.iter().all(|b| {
                b.as_array().is_some_and(|b| {
                    (b.len() == 4 || b.len() == 6) && b.iter().all(Value::is_number)
                })
            });
            if !valid || boxes.is_empty() {
                problems
                    .push("the collection's spatial bbox is not a list of 4 or 6 numbers".into());
            }
        }
    }
    if extent
        .pointer("/temporal/interval")
        .and_then(Value::as_array)
        .is_none()
    {
        problems.push("the collection's extent has no temporal interval".into());
    }
}

fn check_item(object: &Map<String, Value>, problems: &mut Vec<String>) {
    match object.get("geometry") {
        None => problems.push("the item has no \"geometry\"".into()),
        Some(Value::Null) => {}
        Some(Value::Object(g)) if g.get("type").is_some_and(Value::is_string) => {}
        Some(other) => problems.push(format!(
            "the item's geometry is {} instead of a GeoJSON geometry",
            json_kind(other)
        )),
    }
    if let Some(bbox) = object.get("bbox") {
        let ok = bbox
            .as_array()
            .is_some_and(|b| (b.len() == 4 || b.len() == 6) && b.iter().all(Value::is_number));
        if !ok {
            problems.push("the item's bbox is not a list of 4 or 6 numbers".into());
        }
    }
    match object.get("properties") {
        Some(Value::Object(properties)) => {
            let datetime = properties.get("datetime");
            let range = properties.contains_key("start_datetime")
                && properties.contains_key("end_datetime");
            match datetime {
                Some(Value::String(s)) if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                    problems.push(format!(
                        "the item's datetime {s:?} is not an RFC 3339 date and time"
                    ))
                }
                Some(Value::String(_)) => {}
                Some(Value::Null) | None if range => {}
                Some(Value::Null) => problems.push(
                    "the item's datetime is null but it has no start_datetime and end_datetime"
                        .into(),
                ),
                None => problems.push("the item has no datetime".into()),
                Some(other) => problems.push(format!(
                    "the item's datetime is {} instead of a string",
                    json_kind(other)
                )),
            }
        }
        Some(other) => problems.push(format!(
            "the item's \"properties\" is {} instead of an object",
            json_kind(other)
        )),
        None => problems.push("the item has no \"properties\"".into()),
    }
    match object.get("assets") {
        None => problems.push("the item has no \"assets\"".into()),
        Some(Value::Object(assets)) => {
            for (key, asset) in assets {
                if !asset.get("href").is_some_and(Value::is_string) {
                    problems.push(format!("the asset {key:?} has no href"));
                }
            }
        }
        Some(other) => problems.push(format!(
            "the item's \"assets\" is {} instead of an object",
            json_kind(other)
        )),
    }
}

fn check_links(kind: Kind, object: &Map<String, Value>, url: &Url, out: &mut Checked) {
    let links = match object.get("links") {
        Some(Value::Array(links)) => links,
        Some(other) => {
            out.problems.push(format!(
                "its \"links\" is {} instead of a list",
                json_kind(other)
            ));
            return;
        }
        None if kind == Kind::ItemCollection => return,
        None => {
            out.problems.push("it has no \"links\"".into());
            return;
        }
    };
    let follows = matches!(kind, Kind::Catalog | Kind::Collection);
    for link in links {
        check_link(follows, link, url, out);
    }
}

/// Checks one link; a `child` or `item` link of a document that `follows`
/// its links is added to the children.
fn check_link(follows: bool, link: &Value, url: &Url, out: &mut Checked) {
    let Some(href) = link.get("href").and_then(Value::as_str) else {
        out.problems.push("one of its links has no href".into());
        return;
    };
    let rel = link.get("rel").and_then(Value::as_str).unwrap_or_default();
    if let Some(reason) = malformed_href(href, url) {
        out.problems
            .push(format!("its {rel:?} link {href:?} {reason}"));
        return;
    }
    if follows && (rel == "child" || rel == "item") {
        match resolve(url, href) {
            Ok(url) => out.children.push(ChildLink {
                url,
                item: rel == "item",
            }),
            Err(reason) => out.problems.push(reason),
        }
    }
}

/// Why `href` cannot be right, if it cannot.
fn malformed_href(href: &str, base: &Url) -> Option<&'static str> {
    let lower = href.to_ascii_lowercase();
    for scheme in ["http:", "https:"] {
        if lower.starts_with(scheme) && !lower[scheme.len()..].starts_with("//") {
            return Some("is malformed (it lacks the // after the scheme)");
        }
    }
    if href.starts_with('/') && !href.starts_with("//") {
        // A file-system path leaking from the machine that wrote the catalog.
        if base.scheme() != "file" {
            return Some("is an absolute local path on someone else's computer");
        }
        if !std::path::Path::new(href).exists() {
            return Some("is an absolute local path that does not exist on this computer");
        }
    }
    if href.chars().any(|c| c.is_control()) {
        return Some("contains control characters");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn url() -> Url {
        Url::parse("https://example.test/a/catalog.json").unwrap()
    }

    #[test]
    fn a_good_catalog_has_no_problems_and_yields_children() {
        let value = json!({
            "type": "Catalog", "id": "root", "stac_version": "1.1.0", "description": "d",
            "links": [
                {"rel": "child", "href": "./b/catalog.json"},
                {"rel": "item", "href": "https://other.test/item.json"},
                {"rel": "self", "href": "https://example.test/a/catalog.json"}
            ]
        });
        let checked = check(Kind::Catalog, &value, &url());
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        assert_eq!(checked.children.len(), 2);
        assert_eq!(checked.id.as_deref(), Some("root"));
    }

    #[test]
    fn an_item_without_id_is_unusable() {
        let value = json!({"type": "Feature", "stac_version": "1.0.0", "geometry": null,
            "properties": {"datetime": "2020-01-01T00:00:00Z"}, "links": [], "assets": {}});
        let checked = check(Kind::Item, &value, &url());
        assert!(!checked.usable);
        assert_eq!(checked.problems, vec!["it has no \"id\"".to_string()]);
    }

    #[test]
    fn malformed_and_leaked_hrefs_are_reported() {
        let value = json!({"type": "Catalog", "id": "x", "stac_version": "1.0.0", "description": "d",
        "links": [
            {"rel": "collection", "href": "https:/bucket.s3/c.json"},
            {"rel": "self", "href": "/Users/someone/catalog.json"}
        ]});
        let checked = check(Kind::Catalog, &value, &url());
        assert_eq!(checked.problems.len(), 2, "{:?}", checked.problems);
        assert!(checked.problems[0].contains("malformed"));
        assert!(checked.problems[1].contains("absolute local path"));
    }

    #[test]
    fn an_empty_extent_is_reported() {
        let value = json!({"id": "c", "stac_version": "1.0.0", "description": "d",
            "license": "x", "extent": {}, "links": []});
        let checked = check(Kind::Collection, &value, &url());
        assert!(checked.problems.iter().any(|p| p.contains("spatial bbox")));
        assert!(checked.problems.iter().any(|p| p.contains("temporal")));
    }
}
