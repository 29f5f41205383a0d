//! STAC APIs: collections and item search, with pagination.
//!
//! Pages are followed through `next` links exactly as the server describes them:
//! method, `body`, `headers` and `merge`. Where the search stands is a [`Cursor`],
//! which serializes, so a half-finished search can be stored and continued after a
//! crash. A search stops at the last page, on an empty page, or at `max_items`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use stac::api::{GetSearch, Search};
use url::Url;

use super::resolve;
use crate::fetch::{Fetcher, Method, Request};
use crate::{Error, Result};

/// A STAC API, known by its landing page.
#[derive(Debug, Clone)]
pub struct Api {
    root: Url,
    landing: Value,
}

/// Where a paginated read stands: the next request to send, and what was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The next page to ask for; `None` when the read is finished.
    pub next: Option<Request>,
    /// Pages read so far.
    pub pages: u64,
    /// Items (or collections) delivered so far.
    pub delivered: u64,
    /// Stop after this many items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// Fingerprints of the last requests sent and pages read, to notice a
    /// server whose `next` links go round in a circle, or that hands out the
    /// same items under ever new tokens. Bounded: [`RECENT`] of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<String>,
    /// Why the read stopped before the server said it was over, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_early: Option<String>,
}

/// How many recent requests and pages a cursor remembers.
pub const RECENT: usize = 64;

/// A short fingerprint of `what` under `kind` (stable across runs).
fn fingerprint(kind: &str, what: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(kind.as_bytes())
        .chain_update(what)
        .finalize();
    format!("{kind}:{}", hex::encode(&digest[..8]))
}

/// What identifies a page's entries: their ids (with collections), or the
/// entries themselves when they have none.
fn page_fingerprint(entries: &[Value]) -> String {
    let mut text = String::new();
    for entry in entries {
        match entry.get("id").and_then(Value::as_str) {
            Some(id) => {
                text.push_str(
                    entry
                        .get("collection")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                );
                text.push('\u{1f}');
                text.push_str(id);
            }
            None => text.push_str(&entry.to_string()),
        }
        text.push('\u{1e}');
    }
    fingerprint("page", text.as_bytes())
}

impl Cursor {
    /// A cursor at the first page, `first`.
    pub fn start(first: Request, max_items: Option<u64>) -> Cursor {
        Cursor {
            next: Some(first),
            pages: 0,
            delivered: 0,
            max_items,
            recent: Vec::new(),
            ended_early: None,
        }
    }

    /// Whether there is nothing more to read.
    pub fn is_done(&self) -> bool {
        self.next.is_none()
    }

    /// Reads the next page and moves the cursor past it. Returns the page's
    /// entries (features, or collections when `key` is "collections"), or `None`
    /// when the read is finished.
    pub async fn next_page(&mut self, fetcher: &Fetcher, key: &str) -> Result<Option<Vec<Value>>> {
        let Some(request) = self.next.take() else {
            return Ok(None);
        };
        let asked = fingerprint(
            "request",
            serde_json::to_string(&request)
                .unwrap_or_default()
                .as_bytes(),
        );
        if self.pages > 0 && self.recent.contains(&asked) {
            return Ok(self.end_early(format!(
                "the server's next link leads back to a page already read ({}); the read stops there, with every item read so far kept",
                request.url
            )));
        }
        let page = fetcher.json(&request).await;
        let mut page = match page {
            Ok(page) => page,
            Err(error) => {
                // Keep the cursor where it was so the page can be asked for again.
                self.next = Some(request);
                return Err(error);
            }
        };
        // Taken out of the page rather than copied: the rest of it (its
        // links) is all that is looked at from here.
        let Some(Value::Array(mut entries)) = page.get_mut(key).map(Value::take) else {
            self.next = Some(request.clone());
            return Err(Error::not_stac(
                &request.url,
                format!("the page has no \"{key}\" list"),
            ));
        };
        self.pages += 1;
        if !entries.is_empty() {
            let seen = page_fingerprint(&entries);
            if self.recent.contains(&seen) {
                return Ok(self.end_early(format!(
                    "the server sent the same items again under a new page address ({}); the read stops there, with every item read so far kept",
                    request.url
                )));
            }
            self.remember(seen);
        }
        self.remember(asked);
        if let Some(max) = self.max_items {
            let room = max.saturating_sub(self.delivered) as usize;
            entries.truncate(room);
        }
        self.delivered += entries.len() as u64;
        let full = self.max_items.is_some_and(|max| self.delivered >= max);
        self.next = if entries.is_empty() || full {
            None
        } else {
            next_request(&page, &request)?
        };
        if self.next.as_ref() == Some(&request) {
            tracing::warn!(url = %request.url, "the server sent the same next page again; stopping");
            self.next = None;
        }
        Ok(Some(entries))
    }

    fn remember(&mut self, fingerprint: String) {
        self.recent.push(fingerprint);
        if self.recent.len() > 2 * RECENT {
            self.recent.remove(0);
        }
    }

    /// Ends the read for `reason`, which stays on the cursor to be reported.
    fn end_early(&mut self, reason: String) -> Option<Vec<Value>> {
        tracing::warn!("{reason}");
        self.next = None;
        self.ended_early = Some(reason);
        None
    }
}

/// The request a page's `next` link describes, if it has one.
///
/// `merge: true` merges the link's body into the current one; otherwise the link's
/// body replaces it. Link headers are added to the current ones.
pub fn next_request(page: &Value, current: &Request) -> Result<Option<Request>> {
    let Some(link) = page
        .get("links")
        .and_then(Value::as_array)
        .and_then(|links| {
            links
                .iter()
                .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))
        })
    else {
        return Ok(None);
    };
    let href = link
        .get("href")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::not_stac(&current.url, "its \"next\" link has no href"))?;
    let url =
        resolve(&current.url, href).map_err(|reason| Error::not_stac(&current.url, reason))?;
    let method = match link.get("method").and_then(Value::as_str) {
        Some(m) if m.eq_ignore_ascii_case("POST") => Method::Post,
        _ => Method::Get,
    };
    let merge = link.get("merge").and_then(Value::as_bool).unwrap_or(false);
    let link_body = link.get("body").and_then(Value::as_object).cloned();
    let body = match method {
        Method::Get => None,
        Method::Post => {
            let mut body = if merge {
                current
                    .body
                    .as_ref()
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default()
            } else {
                Map::new()
            };
            body.extend(link_body.unwrap_or_default());
            Some(Value::Object(body))
        }
    };
    let mut headers = current.headers.clone();
    if let Some(extra) = link.get("headers").and_then(Value::as_object) {
        for (name, value) in extra {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            headers.insert(name.clone(), value);
        }
    }
    Ok(Some(Request {
        method,
        url,
        body,
        headers,
    }))
}

impl Api {
    /// An API from its landing page, read from `root`.
    pub fn new(root: Url, landing: Value) -> Api {
        Api { root, landing }
    }

    /// The landing page's address.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The landing page's title, or its id.
    pub fn title(&self) -> String {
        ["title", "id"]
            .iter()
            .find_map(|k| self.landing.get(*k).and_then(Value::as_str))
            .unwrap_or("STAC API")
            .to_string()
    }

    fn links(&self, rel: &str) -> impl Iterator<Item = &Value> {
        let rel = rel.to_string();
        self.landing
            .get("links")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(move |l| l.get("rel").and_then(Value::as_str) == Some(rel.as_str()))
    }

    fn link_url(&self, rel: &str) -> Option<Url> {
        self.links(rel)
            .find_map(|l| l.get("href").and_then(Value::as_str))
            .and_then(|href| resolve(&self.root, href).ok())
    }

    fn conforms(&self, needle: &str) -> bool {
        self.landing
            .get("conformsTo")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .filter_map(Value::as_str)
                    .any(|c| c.contains(needle))
            })
    }

    fn endpoint(&self, path: &str) -> Result<Url> {
        let mut base = self.root.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join(path)
            .map_err(|e| Error::invalid_input(format!("cannot build the {path} address: {e}")))
    }

    /// The first request for the list of collections.
    pub fn collections_request(&self) -> Result<Request> {
        let url = match self.link_url("data") {
            Some(url) => url,
            None => self.endpoint("collections")?,
        };
        Ok(Request::get(url))
    }

    /// Every collection of the API, following `/collections` pagination.
    pub async fn collections(&self, fetcher: &Fetcher) -> Result<Vec<Value>> {
        let mut cursor = Cursor::start(self.collections_request()?, None);
        let mut all = Vec::new();
        while let Some(page) = cursor.next_page(fetcher, "collections").await? {
            all.extend(page);
        }
        Ok(all)
    }

    /// Whether the API has an item search endpoint.
    pub fn can_search(&self) -> bool {
        self.links("search").next().is_some() || self.conforms("item-search")
    }

    /// The first request of an item search. POST when the API offers it (bodies
    /// carry any parameter without length limits), GET otherwise.
    pub fn search_request(&self, search: &Search) -> Result<Request> {
        let search_links = self.search_links();
        let url = search_links
            .iter()
            .find_map(|l| l.get("href").and_then(Value::as_str))
            .and_then(|href| resolve(&self.root, href).ok());
        let url = match url {
            Some(url) => url,
            None if self.can_search() => self.endpoint("search")?,
            None => {
                return Err(Error::invalid_input(format!(
                    "{} has no item search; browse its collections instead",
                    self.root
                )));
            }
        };
        let post = self.posts();
        let search = self.filter_for(search, post)?;
        if post {
            let body = serde_json::to_value(&search)
                .map_err(|e| Error::invalid_input(format!("the search cannot be sent: {e}")))?;
            Ok(Request::post(url, body))
        } else {
            Ok(Request::get(with_query(url, &search)?))
        }
    }

    /// The API's links to its item search that speak JSON.
    fn search_links(&self) -> Vec<&Value> {
        self.links("search")
            .filter(|l| {
                l.get("type")
                    .and_then(Value::as_str)
                    .is_none_or(|t| t.contains("json"))
            })
            .collect()
    }

    /// Whether the item search is asked by POST (bodies carry any
    /// parameter without length limits) rather than GET.
    fn posts(&self) -> bool {
        self.search_links().iter().any(|l| {
            l.get("method")
                .and_then(Value::as_str)
                .is_some_and(|m| m.eq_ignore_ascii_case("POST"))
        })
    }

    /// The language the API takes a filter in, asked by POST or GET: CQL2
    /// JSON in a body, text in an address, else the other one the API
    /// lists; `None` when it offers no filter extension.
    fn filter_language(&self, post: bool) -> Option<&'static str> {
        let extension = self.conforms("item-search#filter")
            || self.conforms("ogcapi-features-3/1.0/conf/filter")
            || self.conforms("ogcapi-features-3/1.0/conf/features-filter");
        if !extension {
            return None;
        }
        let (json, text) = (
            self.conforms("conf/cql2-json"),
            self.conforms("conf/cql2-text"),
        );
        match (post, json, text) {
            (true, true, _) | (false, true, false) => Some("cql2-json"),
            (_, _, true) => Some("cql2-text"),
            _ => None,
        }
    }

    /// Whether a search of this API is sent its filter (see [`Api::search_request`]).
    pub fn filters(&self) -> bool {
        self.filter_language(self.posts()).is_some()
    }

    /// `search` as this API is sent it: the filter in the language it
    /// takes, or none (its items are filtered by Cairn either way).
    fn filter_for(&self, search: &Search, post: bool) -> Result<Search> {
        let Some(filter) = search.items.filter.clone() else {
            return Ok(search.clone());
        };
        let mut sent = super::filter::without_filter(search);
        sent.items.filter = match self.filter_language(post) {
            None => None,
            Some("cql2-json") => Some(filter.into_cql2_json().map_err(|e| {
                Error::invalid_input(format!("the filter cannot be written as CQL2 JSON: {e}"))
            })?),
            Some(_) => Some(filter.into_cql2_text().map_err(|e| {
                Error::invalid_input(format!("the filter cannot be written as CQL2 text: {e}"))
            })?),
        };
        Ok(sent)
    }

    /// The first request for the items of one collection (for APIs without search).
    pub fn collection_items_request(&self, collection: &str, search: &Search) -> Result<Request> {
        let url = self.endpoint(&format!("collections/{}/items", encode_segment(collection)))?;
        with_items_query(url, &self.filter_for(search, false)?)
    }
}

/// The first GET request for an `items` endpoint (`/collections/{id}/items`),
/// with the search's bbox, datetime and limit as query parameters.
/// A server whose conformance is not known is not sent the search's filter.
pub fn items_request(items: Url, search: &Search) -> Result<Request> {
    with_items_query(items, &super::filter::without_filter(search))
}

fn with_items_query(items: Url, search: &Search) -> Result<Request> {
    let mut search = search.clone();
    search.collections.clear();
    Ok(Request::get(with_query(items, &search)?))
}

/// The `items` endpoint a collection served by an API links to, if any.
pub fn items_link(collection: &Value, base: &Url) -> Option<Url> {
    collection
        .get("links")?
        .as_array()?
        .iter()
        .filter(|l| l.get("rel").and_then(Value::as_str) == Some("items"))
        .find_map(|l| l.get("href").and_then(Value::as_str))
        .and_then(|href| resolve(base, href).ok())
}

/// `url` with the search as query parameters (the GET form of a search).
fn with_query(mut url: Url, search: &Search) -> Result<Url> {
    let get = GetSearch::try_from(search.clone())
        .map_err(|e| Error::invalid_input(format!("the search cannot be sent: {e}")))?;
    let params = serde_json::to_value(get)
        .map_err(|e| Error::invalid_input(format!("the search cannot be sent: {e}")))?;
    if let Value::Object(params) = params {
        let mut pairs = url.query_pairs_mut();
        for (key, value) in params {
            match value {
                Value::Null => {}
                Value::String(s) => {
                    pairs.append_pair(&key, &s);
                }
                other => {
                    pairs.append_pair(&key, &other.to_string());
                }
            }
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(url)
}

fn encode_segment(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Builds a validated search from what a user typed.
pub fn build_search(
    collections: &[String],
    bbox: Option<&str>,
    datetime: Option<&str>,
    limit: Option<u64>,
) -> Result<Search> {
    let mut search = Search::new().collections(collections.to_vec());
    if let Some(bbox) = bbox {
        let numbers: std::result::Result<Vec<f64>, _> =
            bbox.split(',').map(|n| n.trim().parse::<f64>()).collect();
        let numbers = numbers.map_err(|_| {
            Error::invalid_input(format!(
                "the bbox {bbox:?} is not four numbers: give it as west,south,east,north"
            ))
        })?;
        if numbers.len() != 4 && numbers.len() != 6 {
            return Err(Error::invalid_input(format!(
                "the bbox {bbox:?} has {} numbers; give four: west,south,east,north",
                numbers.len()
            )));
        }
        let bbox: stac::Bbox = numbers
            .try_into()
            .map_err(|e| Error::invalid_input(format!("the bbox {bbox:?} is not valid: {e}")))?;
        search = search.bbox(bbox);
    }
    if let Some(datetime) = datetime {
        search = search.datetime(normalize_datetime(datetime)?);
    }
    if let Some(limit) = limit {
        search = search.limit(limit);
    }
    search
        .valid()
        .map_err(|e| Error::invalid_input(format!("the search is not valid: {e}")))
}

/// Turns what a person types into an RFC 3339 instant or interval, as STAC APIs
/// expect. Dates stand for whole days: `2024-01-01/2024-06-30` runs from the
/// first second of January 1 to the last of June 30; a single date is that day.
pub fn normalize_datetime(input: &str) -> Result<String> {
    let invalid = || {
        Error::invalid_input(format!(
            "the datetime {input:?} is not a date, a date and time, or a range like 2020-01-01/2021-01-01 (use .. for an open end)"
        ))
    };
    let one = |part: &str, end: bool| -> Result<String> {
        let part = part.trim();
        if part.is_empty() || part == ".." {
            return Ok("..".into());
        }
        if let Ok(date) = chrono::NaiveDate::parse_from_str(part, "%Y-%m-%d") {
            let time = if end { "23:59:59Z" } else { "00:00:00Z" };
            return Ok(format!("{date}T{time}"));
        }
        chrono::DateTime::parse_from_rfc3339(part)
            .map(|_| part.to_string())
            .map_err(|_| invalid())
    };
    let text = match input.split('/').collect::<Vec<_>>().as_slice() {
        [single] if chrono::NaiveDate::parse_from_str(single.trim(), "%Y-%m-%d").is_ok() => {
            format!("{}/{}", one(single, false)?, one(single, true)?)
        }
        [single] if single.trim() != ".." => one(single, false)?,
        [start, end] => {
            let (start, end) = (one(start, false)?, one(end, true)?);
            if start == ".." && end == ".." {
                return Err(invalid());
            }
            format!("{start}/{end}")
        }
        _ => return Err(invalid()),
    };
    if let Ok((Some(start), Some(end))) = stac::datetime::parse(&text)
        && start > end
    {
        return Err(Error::invalid_input(format!(
            "the datetime range {input:?} ends before it starts"
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn datetimes_people_type_become_rfc3339() {
        let n = |s: &str| normalize_datetime(s).unwrap();
        assert_eq!(
            n("2024-01-01/2024-06-30"),
            "2024-01-01T00:00:00Z/2024-06-30T23:59:59Z"
        );
        assert_eq!(n("2024-03-05"), "2024-03-05T00:00:00Z/2024-03-05T23:59:59Z");
        assert_eq!(n("2024-03-05T10:00:00Z"), "2024-03-05T10:00:00Z");
        assert_eq!(n("../2024-01-01"), "../2024-01-01T23:59:59Z");
        assert_eq!(
            n("2020-01-01T00:00:00+02:00/"),
            "2020-01-01T00:00:00+02:00/.."
        );
        for bad in [
            "..",
            "../..",
            "yesterday",
            "2024-13-01",
            "2024-01-01/2023-01-01",
            "a/b/c",
        ] {
            assert!(normalize_datetime(bad).is_err(), "{bad}");
        }
    }

    fn post(body: Value) -> Request {
        Request::post(Url::parse("https://api.test/search").unwrap(), body)
    }

    #[test]
    fn next_link_body_replaces_or_merges() {
        let current = post(json!({"collections": ["a"], "limit": 10}));
        let page = json!({"links": [{"rel": "next", "href": "https://api.test/search", "method": "POST",
            "body": {"token": "t1"}}]});
        let next = next_request(&page, &current).unwrap().unwrap();
        assert_eq!(next.body, Some(json!({"token": "t1"})));

        let page = json!({"links": [{"rel": "next", "href": "/search", "method": "POST",
            "body": {"token": "t2"}, "merge": true, "headers": {"x-page": "2"}}]});
        let next = next_request(&page, &current).unwrap().unwrap();
        assert_eq!(
            next.body,
            Some(json!({"collections": ["a"], "limit": 10, "token": "t2"}))
        );
        assert_eq!(next.headers.get("x-page").map(String::as_str), Some("2"));
    }

    #[test]
    fn next_link_get_keeps_the_query_token() {
        let current = Request::get(Url::parse("https://api.test/collections/c/items").unwrap());
        let page = json!({"links": [{"rel": "next",
            "href": "https://api.test/collections/c/items?limit=1&token=next:abc"}]});
        let next = next_request(&page, &current).unwrap().unwrap();
        assert_eq!(next.method, Method::Get);
        assert_eq!(next.url.query(), Some("limit=1&token=next:abc"));
        assert_eq!(next_request(&json!({"links": []}), &current).unwrap(), None);
    }

    #[test]
    fn searches_are_validated_with_plain_messages() {
        let search = build_search(
            &["a".into()],
            Some("-10,-5,10,5"),
            Some("2020-01-01T00:00:00Z/.."),
            Some(5),
        )
        .unwrap();
        assert_eq!(search.collections, vec!["a".to_string()]);
        let err = build_search(&[], Some("1,2,3"), None, None).unwrap_err();
        assert!(err.to_string().contains("has 3 numbers"), "{err}");
        let err = build_search(&[], Some("a,b,c,d"), None, None).unwrap_err();
        assert!(err.to_string().contains("west,south,east,north"), "{err}");
        let err = build_search(&[], None, Some("last tuesday"), None).unwrap_err();
        assert!(err.to_string().contains("last tuesday"), "{err}");
    }

    #[test]
    fn search_prefers_post_when_offered() {
        let landing = json!({"conformsTo": [], "links": [
            {"rel": "search", "href": "/search", "method": "GET", "type": "application/geo+json"},
            {"rel": "search", "href": "/search", "method": "POST", "type": "application/geo+json"}]});
        let api = Api::new(Url::parse("http://api.test/").unwrap(), landing);
        let search = build_search(&["c".into()], Some("0,0,1,1"), None, Some(5)).unwrap();
        let request = api.search_request(&search).unwrap();
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.body.unwrap()["bbox"], json!([0.0, 0.0, 1.0, 1.0]));

        let landing =
            json!({"conformsTo": ["https://api.stacspec.org/v1.0.0/item-search"], "links": []});
        let api = Api::new(Url::parse("http://api.test/v1").unwrap(), landing);
        let request = api.search_request(&search).unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.url.path(), "/v1/search");
        let query = request.url.query().unwrap();
        assert!(
            query.contains("bbox=0%2C0%2C1%2C1") || query.contains("bbox=0,0,1,1"),
            "{query}"
        );
        assert!(query.contains("collections=c"), "{query}");
    }

    #[test]
    fn a_filter_goes_in_the_language_the_api_takes_or_not_at_all() {
        let search = crate::catalog::filter::with_filter(
            build_search(&[], None, None, Some(5)).unwrap(),
            Some("eo:cloud_cover < 20"),
        )
        .unwrap();
        let post = json!([{"rel": "search", "href": "/search", "method": "POST", "type": "application/geo+json"}]);
        let filter = "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter";
        let json_only = "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json";
        let text_too = "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text";
        let api = |conforms: &[&str], links: &Value| {
            Api::new(
                Url::parse("http://api.test/").unwrap(),
                json!({"conformsTo": conforms, "links": links}),
            )
        };
        // POST to an API that takes CQL2 JSON: the filter as JSON.
        let body = api(&[filter, json_only], &post)
            .search_request(&search)
            .unwrap()
            .body
            .unwrap();
        assert_eq!(body["filter-lang"], "cql2-json");
        assert_eq!(body["filter"]["op"], "<", "{body}");
        // GET to an API that takes text: in the address.
        let get = api(&[filter, json_only, text_too], &json!([]));
        let query = get
            .search_request(&search)
            .unwrap()
            .url
            .query()
            .unwrap()
            .to_string();
        assert!(query.contains("filter-lang=cql2-text"), "{query}");
        assert!(get.filters());
        // No filter extension (or no language it names): no filter sent.
        for none in [api(&[], &post), api(&[filter], &post)] {
            let request = none.search_request(&search).unwrap();
            assert!(request.body.unwrap().get("filter").is_none());
            assert!(!none.filters());
        }
    }
}
