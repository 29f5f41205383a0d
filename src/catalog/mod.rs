//! Opening a STAC source and finding out what it is.
//!
//! [`open`] reads the document a SOURCE points at and [`detect`]s its kind:
//! catalog, collection, item, item collection, or STAC API landing page. The user
//! never has to say which. Static sources are then [`walk`](walk::walk)ed; APIs are
//! queried through [`api::Api`].

pub mod api;
pub mod browse;
mod check;
pub mod filter;
pub mod search;
pub mod walk;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

pub use check::{Checked, check, check_document};

use crate::fetch::{Features, Fetcher, Structure, parse_location};
use crate::{Error, Result};

/// What a STAC document is.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A catalog (links to children and items).
    Catalog,
    /// A collection (a catalog with extents and a license).
    Collection,
    /// One item (a GeoJSON Feature with assets).
    Item,
    /// A GeoJSON FeatureCollection of items.
    ItemCollection,
    /// The landing page of a STAC API.
    Api,
}

impl Kind {
    /// The word a person would use.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Catalog => "catalog",
            Kind::Collection => "collection",
            Kind::Item => "item",
            Kind::ItemCollection => "item collection",
            Kind::Api => "STAC API",
        }
    }
}

/// Works out what kind of STAC document `value` is, or says why it is none.
///
/// Works for STAC 0.8 to 1.1: before 1.0, catalogs and collections had no `type`,
/// so a collection is recognised by its `extent` or `license`.
pub fn detect(value: &Value) -> std::result::Result<Kind, String> {
    let Some(object) = value.as_object() else {
        return Err(format!(
            "the document is {} instead of a JSON object",
            json_kind(value)
        ));
    };
    if object.get("conformsTo").is_some_and(Value::is_array) {
        return Ok(Kind::Api);
    }
    match object.get("type").and_then(Value::as_str) {
        Some("Feature") => return Ok(Kind::Item),
        Some("FeatureCollection") => return Ok(Kind::ItemCollection),
        Some("Collection") => return Ok(Kind::Collection),
        Some("Catalog") => return Ok(Kind::Catalog),
        Some(other) if object.contains_key("stac_version") => {
            return Err(format!(
                "its \"type\" is {other:?}, which is not a STAC type"
            ));
        }
        _ => {}
    }
    if object.contains_key("extent") || object.contains_key("license") {
        Ok(Kind::Collection)
    } else if object.contains_key("links") || object.contains_key("stac_version") {
        Ok(Kind::Catalog)
    } else {
        Err("it has no \"type\", \"stac_version\" or \"links\", so it is not STAC".into())
    }
}

/// A document that was opened and recognised.
#[derive(Debug)]
pub struct Opened {
    /// Where it was read from.
    pub url: Url,
    /// What it is.
    pub kind: Kind,
    /// The document (for an item collection, without its features).
    pub value: Value,
    /// An item collection's features, parsed as they are gone through.
    pub features: Option<Features>,
    /// Its `child` and `item` links, parsed as they are gone through (they
    /// are not in `value`).
    pub structure: Option<Structure>,
}

/// Reads the document that `source` (a URL or a path) points at and detects its kind.
pub async fn open(fetcher: &Fetcher, source: &str) -> Result<Opened> {
    open_url(fetcher, &parse_location(source)?).await
}

/// Reads the document at `url` and detects its kind.
pub(crate) async fn open_url(fetcher: &Fetcher, url: &Url) -> Result<Opened> {
    // Where the document ended up (after redirects) is what its links mean.
    let (document, at) = fetcher.get_document_at(url).await?;
    let kind = detect(&document.value).map_err(|reason| Error::not_stac(&at, reason))?;
    Ok(Opened {
        url: at,
        kind,
        value: document.value,
        features: document.features,
        structure: document.structure,
    })
}

/// Resolves a link's `href` against the document it was found in.
///
/// Only a document on this computer may point at this computer's files: a
/// remote catalog (web server or bucket) whose links or assets say `file://`
/// is refused, so that no stranger's catalog makes Cairn read, and copy away,
/// the user's own files.
pub fn resolve(base: &Url, href: &str) -> std::result::Result<Url, String> {
    let mut url = base
        .join(href)
        .map_err(|e| format!("the link {href:?} is not a valid address ({e})"))?;
    url.set_fragment(None);
    if url.scheme() == "file" && base.scheme() != "file" {
        return Err(format!(
            "{:?} points at a file on this computer, but it was found in a document that is not ({}); Cairn reads local files only for a catalog that is itself on this computer",
            crate::provenance::redact(href),
            crate::provenance::redact(base.as_str())
        ));
    }
    Ok(url)
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_every_kind() {
        assert_eq!(detect(&json!({"type": "Feature"})), Ok(Kind::Item));
        assert_eq!(
            detect(&json!({"type": "FeatureCollection", "features": []})),
            Ok(Kind::ItemCollection)
        );
        assert_eq!(detect(&json!({"type": "Collection"})), Ok(Kind::Collection));
        assert_eq!(detect(&json!({"type": "Catalog"})), Ok(Kind::Catalog));
        assert_eq!(
            detect(&json!({"type": "Catalog", "conformsTo": [], "links": []})),
            Ok(Kind::Api)
        );
        // STAC 0.8/0.9: no type on catalogs and collections.
        assert_eq!(
            detect(&json!({"stac_version": "0.9.0", "id": "c", "extent": {}})),
            Ok(Kind::Collection)
        );
        assert_eq!(
            detect(&json!({"stac_version": "0.8.0", "id": "c", "links": []})),
            Ok(Kind::Catalog)
        );
        assert!(detect(&json!([1, 2])).unwrap_err().contains("a list"));
        assert!(detect(&json!({"hello": "world"})).is_err());
        assert!(
            detect(&json!({"type": "Poster", "stac_version": "1.0.0"}))
                .unwrap_err()
                .contains("Poster")
        );
    }

    #[test]
    fn resolves_relative_and_absolute_links() {
        let base = Url::parse("http://h/a/b/catalog.json").unwrap();
        assert_eq!(
            resolve(&base, "../c/collection.json#x").unwrap().as_str(),
            "http://h/a/c/collection.json"
        );
        assert_eq!(
            resolve(&base, "https://o/x.json").unwrap().as_str(),
            "https://o/x.json"
        );
    }

    #[test]
    fn only_a_local_document_may_point_at_local_files() {
        let local = Url::parse("file:///data/catalog.json").unwrap();
        assert_eq!(
            resolve(&local, "file:///data/b.tif").unwrap().as_str(),
            "file:///data/b.tif"
        );
        assert_eq!(
            resolve(&local, "./a/b.tif").unwrap().as_str(),
            "file:///data/a/b.tif"
        );
        for base in ["http://h/catalog.json", "s3://bucket/catalog.json"] {
            let base = Url::parse(base).unwrap();
            for href in [
                "file:///etc/passwd",
                "FILE:///home/me/.ssh/id_rsa",
                "file:x",
            ] {
                let error = resolve(&base, href).unwrap_err();
                assert!(error.contains("a file on this computer"), "{error}");
            }
        }
        // The words never carry the login or the signature of the address.
        let signed = Url::parse("http://alice:S3CRET@h/i.json?X-Amz-Signature=SIG").unwrap();
        let error = resolve(&signed, "file:///etc/passwd?token=T0K").unwrap_err();
        for secret in ["S3CRET", "SIG", "T0K"] {
            assert!(!error.contains(secret), "{error}");
        }
    }
}
