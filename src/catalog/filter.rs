//! Filtering items by their properties with a CQL2 expression (`--filter`,
//! the app's property filter), and matching items against a whole search.
//!
//! A STAC API that offers the filter extension is sent the filter; every
//! item is also tested here with the `cql2` crate (an API may ignore a
//! filter it does not know, and a static catalog has no server to ask). An
//! item that lacks a property the filter names does not match.

use serde_json::Value;
use stac::api::{Filter, Search};

use crate::{Error, Result};

/// `search` with the CQL2 text `filter` (refused in plain words when it is
/// not CQL2), or as it is without one.
pub fn with_filter(mut search: Search, filter: Option<&str>) -> Result<Search> {
    if let Some(text) = filter.map(str::trim).filter(|t| !t.is_empty()) {
        parse(text)?;
        search.items.filter = Some(Filter::Cql2Text(text.to_string()));
    }
    Ok(search)
}

/// The deepest a filter may nest (brackets, or NOTs in a row): the parser
/// and the matching recurse once per level.
const MOST_NESTED: usize = 64;

/// How deeply `text` nests, outside quoted strings: its deepest brackets,
/// or its count of NOTs, whichever is more.
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut nots) = (0usize, 0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut word = String::new();
    for c in text.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        nots += usize::from(word.eq_ignore_ascii_case("not"));
        word.clear();
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    nots += usize::from(word.eq_ignore_ascii_case("not"));
    deepest.max(nots)
}

/// The CQL2 text `text` as an expression, or why it is not one.
fn parse(text: &str) -> Result<cql2::Expr> {
    if nesting(text) > MOST_NESTED {
        return Err(Error::invalid_input(format!(
            "the filter nests more than {MOST_NESTED} levels deep (brackets, or NOTs); write it more simply"
        )));
    }
    cql2::parse_text(text).map_err(|e| {
        let why = e.to_string();
        let why = why.lines().next().unwrap_or_default();
        Error::invalid_input(format!(
            "the filter {text:?} is not CQL2 text ({why}); write it as, for example, \"eo:cloud_cover < 20\" or \"platform = 'sentinel-2a'\""
        ))
    })
}

/// The search without its filter: what a server that does not know the
/// filter extension is sent.
pub fn without_filter(search: &Search) -> Search {
    let mut search = search.clone();
    search.items.filter = None;
    search.items.filter_crs = None;
    search
}

/// Tests items against a search, the CQL2 filter included.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Everything but the filter (the `stac` crate matches that).
    rest: Search,
    filter: Option<cql2::Expr>,
    /// The only items wanted, by id (empty: no such limit)...
    ids: std::collections::HashSet<String>,
    /// ...and those left out.
    exclude: std::collections::HashSet<String>,
    /// The collections left out, by id: their items are not wanted.
    exclude_collections: std::collections::HashSet<String>,
}

impl Matcher {
    /// A matcher for `search`.
    pub fn new(search: &Search) -> Result<Matcher> {
        let filter = match &search.items.filter {
            None => None,
            Some(Filter::Cql2Text(text)) => Some(parse(text)?),
            Some(Filter::Cql2Json(map)) => Some(
                serde_json::from_value::<cql2::Expr>(Value::Object(map.clone())).map_err(|e| {
                    Error::invalid_input(format!("the filter is not CQL2 JSON: {e}"))
                })?,
            ),
        };
        let mut rest = without_filter(search);
        let ids = std::mem::take(&mut rest.ids).into_iter().collect();
        Ok(Matcher {
            rest,
            filter,
            ids,
            exclude: Default::default(),
            exclude_collections: Default::default(),
        })
    }

    /// This matcher, leaving out the items of the collections `collections`.
    pub fn excluding_collections(mut self, collections: &[String]) -> Matcher {
        self.exclude_collections.extend(collections.iter().cloned());
        self
    }

    /// This matcher, leaving out the items with the ids `exclude`.
    pub fn excluding(mut self, exclude: &[String]) -> Matcher {
        self.exclude.extend(exclude.iter().cloned());
        self
    }

    /// Whether there is a filter on the items' properties.
    pub fn filters(&self) -> bool {
        self.filter.is_some()
            || !self.exclude.is_empty()
            || !self.ids.is_empty()
            || !self.exclude_collections.is_empty()
    }

    /// Whether only collections are asked for (an item need not be read
    /// whole to be matched).
    pub fn only_collections(&self) -> bool {
        let items = &self.rest.items;
        // The collections left out are told from an item's collection too.
        self.filter.is_none()
            && self.exclude.is_empty()
            && self.ids.is_empty()
            && items.bbox.is_none()
            && items.datetime.is_none()
            && items.query.is_none()
            && self.rest.intersects.is_none()
    }

    /// Whether an item of the collection `id` is wanted (not in a
    /// collection left out).
    pub fn wants_collection(&self, id: Option<&str>) -> bool {
        id.is_none_or(|c| !self.exclude_collections.contains(c))
    }

    /// Whether the item `value` matches the whole search, or why it could
    /// not be told.
    pub fn matches(&self, value: &Value) -> std::result::Result<bool, String> {
        let item =
            <stac::Item as serde::Deserialize>::deserialize(value).map_err(|e| e.to_string())?;
        Ok(self.rest.matches(&item).map_err(|e| e.to_string())? && self.passes_filter(value))
    }

    /// Whether the item `value` passes the filter (every item does when
    /// there is none; a comparison with a property it lacks is not true),
    /// is among the ids asked for, if any, and is not left out, nor in a
    /// collection left out.
    pub fn passes_filter(&self, value: &Value) -> bool {
        let id = value.get("id").and_then(Value::as_str).unwrap_or_default();
        (self.ids.is_empty() || self.ids.contains(id))
            && !self.exclude.contains(id)
            && self.wants_collection(value.get("collection").and_then(Value::as_str))
            && self.filter.as_ref().is_none_or(|filter| {
                filter
                    .clone()
                    .reduce(Some(value))
                    .is_ok_and(cql2::Expr::is_true)
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(cloud: Option<f64>, platform: &str) -> Value {
        let mut properties = json!({"datetime": "2024-06-01T00:00:00Z", "platform": platform});
        if let Some(cloud) = cloud {
            properties["eo:cloud_cover"] = json!(cloud);
        }
        json!({"type": "Feature", "stac_version": "1.1.0", "id": "a", "geometry": null,
               "properties": properties, "links": [], "assets": {}})
    }

    fn matcher(filter: &str) -> Matcher {
        Matcher::new(&with_filter(Search::new(), Some(filter)).unwrap()).unwrap()
    }

    #[test]
    fn items_pass_on_their_properties() {
        let m = matcher("eo:cloud_cover < 20 AND platform = 'sentinel-2a'");
        assert_eq!(m.matches(&item(Some(5.0), "sentinel-2a")), Ok(true));
        assert_eq!(m.matches(&item(Some(50.0), "sentinel-2a")), Ok(false));
        assert_eq!(m.matches(&item(Some(5.0), "landsat-9")), Ok(false));
        // A property the item lacks: not a match, not an error.
        assert_eq!(m.matches(&item(None, "sentinel-2a")), Ok(false));
        assert!(!m.only_collections());
    }

    #[test]
    fn items_picked_or_left_out_by_id() {
        let search = Search::new().ids(vec!["a".into(), "b".into()]);
        let picked = Matcher::new(&search).unwrap();
        assert_eq!(picked.matches(&item(None, "x")), Ok(true));
        let mut other = item(None, "x");
        other["id"] = json!("c");
        assert_eq!(picked.matches(&other), Ok(false));
        let dropped = Matcher::new(&Search::new())
            .unwrap()
            .excluding(&["a".into()]);
        assert_eq!(dropped.matches(&item(None, "x")), Ok(false));
        assert_eq!(dropped.matches(&other), Ok(true));
        assert!(!dropped.only_collections() && !picked.only_collections());
    }

    #[test]
    fn no_filter_passes_everything() {
        let m = Matcher::new(&with_filter(Search::new(), Some("  ")).unwrap()).unwrap();
        assert!(m.passes_filter(&item(None, "x")));
        assert!(m.only_collections());
    }

    #[test]
    fn a_filter_that_is_not_cql2_is_said_in_words() {
        let error = with_filter(Search::new(), Some("cloud cover is low")).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("the filter \"cloud cover is low\" is not CQL2 text"),
            "{text}"
        );
        assert!(text.contains("eo:cloud_cover < 20"), "{text}");
    }

    #[test]
    fn a_filter_nested_too_deeply_is_refused_in_words_not_by_a_crash() {
        let brackets = format!("{}a = 1{}", "(".repeat(5000), ")".repeat(5000));
        let nots = format!("{}a = 1", "NOT ".repeat(3000));
        for deep in [brackets, nots] {
            let text = with_filter(Search::new(), Some(&deep))
                .unwrap_err()
                .to_string();
            assert!(text.contains("nests more than 64 levels"), "{text}");
        }
        // Brackets and NOTs inside quoted strings are text, not nesting.
        let quoted = format!("title = '{}'", "((((not ".repeat(100));
        assert!(with_filter(Search::new(), Some(&quoted)).is_ok());
        let fine = format!("{}a = 1{}", "(".repeat(64), ")".repeat(64));
        assert!(with_filter(Search::new(), Some(&fine)).is_ok());
    }

    #[test]
    fn a_server_without_the_filter_extension_is_sent_none() {
        let search = with_filter(Search::new(), Some("eo:cloud_cover < 20")).unwrap();
        assert!(search.items.filter.is_some());
        assert!(without_filter(&search).items.filter.is_none());
    }
}
