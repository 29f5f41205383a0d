//! A JSON document as read, with an item collection's features left unparsed.
//!
//! A parsed `serde_json::Value` takes many times the bytes it came from (a
//! 9 MB item collection of 20,000 items takes over 200 MB). An item
//! collection is read as its head (everything but `features`) and its bytes;
//! the features are parsed one at a time as the caller goes through them, so
//! the document costs its size in memory and one item at a time.
//!
//! A catalog's or collection's `child` and `item` links are kept apart too (a
//! collection may link a million items, and a link as a `Value` takes nearly
//! a kilobyte): each is parsed with the document, then written as compact
//! JSON text, and handed out again one at a time by [`Structure::each`]. The
//! other links stay in the value, and an item or an item collection keeps all
//! of its links.

use std::fmt;
use std::ops::{ControlFlow, Range};

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Share;

/// A document that was read: its value, and for an item collection its
/// features, still as bytes.
#[derive(Debug)]
pub struct Document {
    /// The document. For an item collection, everything but its features: its
    /// `features` is an empty list, and the features are in [`Document::features`].
    pub value: Value,
    /// An item collection's features, read one at a time.
    pub features: Option<Features>,
    /// The document's `child` and `item` links, read one at a time (they
    /// are not in [`Document::value`]); `None` when it has none or was
    /// parsed whole.
    pub structure: Option<Structure>,
}

/// The `child` and `item` links of a catalog or collection, as the compact
/// JSON text of a list, parsed as they are gone through.
pub struct Structure {
    bytes: Bytes,
    range: Range<usize>,
    _share: Option<Share>,
}

impl fmt::Debug for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Structure")
            .field("bytes", &self.range.len())
            .finish()
    }
}

impl Structure {
    /// Calls `each` with every `child` and `item` link in order, until it
    /// breaks.
    pub fn each(&self, mut each: impl FnMut(Value) -> ControlFlow<()>) -> serde_json::Result<()> {
        serde_json::Deserializer::from_slice(&self.bytes[self.range.clone()]).deserialize_seq(Each(
            |link: Value| {
                if is_structural(&link) {
                    each(link)
                } else {
                    ControlFlow::Continue(())
                }
            },
        ))
    }
}

/// Whether `link` is a `child` or `item` link.
fn is_structural(link: &Value) -> bool {
    matches!(
        link.get("rel").and_then(Value::as_str),
        Some("child" | "item")
    )
}

/// The `features` of an item collection, parsed as they are gone through.
pub struct Features {
    bytes: Bytes,
    range: Range<usize>,
    /// The document's share of the memory budget, held while its bytes are.
    _share: Option<Share>,
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Features")
            .field("bytes", &self.range.len())
            .finish()
    }
}

impl Document {
    /// Parses `bytes`. An object whose `type` is `FeatureCollection` and whose
    /// `features` is a list keeps its features as bytes; anything else is
    /// parsed whole.
    pub(super) fn parse(bytes: Bytes, share: Option<Share>) -> serde_json::Result<Document> {
        let starts_object = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{');
        if !starts_object {
            return whole(&bytes);
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let mut head = Head { base: &bytes }.deserialize(&mut deserializer)?;
        deserializer.end()?;
        if head.whole {
            return whole(&bytes);
        }
        let kind = head.value.get("type").and_then(Value::as_str);
        let collection = kind == Some("FeatureCollection");
        // Only a catalog's or a collection's child and item links are kept
        // apart: anything else keeps its links as they were.
        if !matches!(kind, Some("Catalog" | "Collection"))
            && let Some(links) = head.links.take()
        {
            if !collection {
                return whole(&bytes);
            }
            let structural: Vec<Value> = serde_json::from_slice(&links)?;
            if let Some(Value::Array(kept)) = head.value.get_mut("links") {
                kept.extend(structural);
            }
        }
        let (features, share) = match head.features {
            Some(range) if collection => (
                Some(Features {
                    bytes: bytes.clone(),
                    range,
                    _share: share,
                }),
                None,
            ),
            // A list called `features` in something else is kept as it is.
            Some(_) => return whole(&bytes),
            None => (None, share),
        };
        Ok(Document {
            value: head.value,
            features,
            structure: head.links.map(|links| Structure {
                range: 0..links.len(),
                bytes: Bytes::from(links),
                _share: share,
            }),
        })
    }
}

fn whole(bytes: &[u8]) -> serde_json::Result<Document> {
    Ok(Document {
        value: serde_json::from_slice(bytes)?,
        features: None,
        structure: None,
    })
}

impl Features {
    /// Calls `each` with every feature in order until it breaks. A feature
    /// that is not valid JSON ends the list with an error (the bytes were
    /// checked to be JSON when the document was read, so this is rare: a
    /// feature nested too deep, say).
    pub fn each(&self, each: impl FnMut(Value) -> ControlFlow<()>) -> serde_json::Result<()> {
        serde_json::Deserializer::from_slice(&self.bytes[self.range.clone()])
            .deserialize_seq(Each(each))
    }

    /// How many features there are.
    pub fn count(&self) -> usize {
        let mut count = 0;
        let _ = serde_json::Deserializer::from_slice(&self.bytes[self.range.clone()])
            .deserialize_seq(Count(&mut count));
        count
    }
}

/// Reads the top-level object, keeping `features` as a range of the bytes
/// when it is a list, and the `links` list too when it has `child` or `item`
/// links (which are then left out of the value).
struct Head<'a> {
    base: &'a [u8],
}

/// What [`Head`] read.
struct Read {
    value: Value,
    features: Option<Range<usize>>,
    /// The `child` and `item` links, as the JSON text of a list.
    links: Option<Vec<u8>>,
    /// The document is to be parsed whole after all.
    whole: bool,
}

impl<'de> DeserializeSeed<'de> for Head<'_> {
    type Value = Read;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Head<'_> {
    type Value = Read;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Map::new();
        let mut features = None;
        let mut links = None;
        let mut whole = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "links" {
                // Through this document's own parser: its depth and the
                // places of its errors are the document's.
                let (value, structural) = map.next_value_seed(Links)?;
                links = structural;
                object.insert(key, value);
                continue;
            }
            if key != "features" {
                let value = map.next_value()?;
                object.insert(key, value);
                continue;
            }
            let raw: &'de RawValue = map.next_value()?;
            let text = raw.get();
            if text.starts_with('[') {
                let start = text.as_ptr() as usize - self.base.as_ptr() as usize;
                features = Some(start..start + text.len());
                object.insert(key, Value::Array(Vec::new()));
            } else {
                // Not a list: the document is parsed whole, as it is.
                features = None;
                whole = true;
            }
        }
        Ok(Read {
            value: Value::Object(object),
            features,
            links,
            whole,
        })
    }
}

/// A document's `links`: a list gives its `child` and `item` links apart,
/// written as the compact JSON text of a list, and the others as the value;
/// anything else is the value as it is.
struct Links;

type LinksRead = (Value, Option<Vec<u8>>);

impl<'de> DeserializeSeed<'de> for Links {
    type Value = LinksRead;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<LinksRead, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Links {
    type Value = LinksRead;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of links")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LinksRead, A::Error> {
        let mut kept = Vec::new();
        let mut structural: Vec<u8> = Vec::new();
        while let Some(link) = seq.next_element::<Value>()? {
            if is_structural(&link) {
                structural.push(if structural.is_empty() { b'[' } else { b',' });
                serde_json::to_writer(&mut structural, &link).map_err(de::Error::custom)?;
            } else {
                kept.push(link);
            }
        }
        let structural = (!structural.is_empty()).then(|| {
            structural.push(b']');
            structural
        });
        Ok((Value::Array(kept), structural))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LinksRead, A::Error> {
        let value = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok((value, None))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<LinksRead, E> {
        Ok((Value::Bool(v), None))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<LinksRead, E> {
        Ok((Value::from(v), None))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<LinksRead, E> {
        Ok((Value::from(v), None))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<LinksRead, E> {
        Ok((Value::from(v), None))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<LinksRead, E> {
        Ok((Value::String(v.to_string()), None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<LinksRead, E> {
        Ok((Value::Null, None))
    }
}

struct Each<F>(F);

impl<'de, F: FnMut(Value) -> ControlFlow<()>> Visitor<'de> for Each<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of features")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(feature) = seq.next_element::<Value>()? {
            if (self.0)(feature).is_break() {
                // The rest is skipped, not parsed.
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                break;
            }
        }
        Ok(())
    }
}

struct Count<'a>(&'a mut usize);

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {
            *self.0 += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Document {
        Document::parse(Bytes::copy_from_slice(text.as_bytes()), None).unwrap()
    }

    fn ids(features: &Features) -> Vec<Value> {
        let mut ids = Vec::new();
        features
            .each(|f| {
                ids.push(f["id"].clone());
                ControlFlow::Continue(())
            })
            .unwrap();
        ids
    }

    #[test]
    fn an_item_collection_keeps_its_features_as_bytes() {
        let doc = parse(
            r#" {"features": [{"id": "a"}, {"id": "b", "x": [1, {"features": []}]}],
                "type": "FeatureCollection", "links": []} "#,
        );
        assert_eq!(
            doc.value,
            json!({"features": [], "type": "FeatureCollection", "links": []})
        );
        let features = doc.features.as_ref().unwrap();
        assert_eq!(features.count(), 2);
        assert_eq!(ids(features), [json!("a"), json!("b")]);
    }

    #[test]
    fn a_caller_that_stops_stops_the_parse() {
        let doc = parse(r#"{"type": "FeatureCollection", "features": [{"id": 1}, {"id": 2}]}"#);
        let mut seen = 0;
        doc.features
            .unwrap()
            .each(|_| {
                seen += 1;
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(seen, 1);
    }

    #[test]
    fn other_documents_are_parsed_whole() {
        for text in [
            r#"{"type": "Catalog", "features": [1, 2]}"#,
            r#"{"type": "FeatureCollection", "features": {"not": "a list"}}"#,
            r#"{"type": "FeatureCollection"}"#,
            r#"[{"type": "FeatureCollection", "features": []}]"#,
            r#""text""#,
        ] {
            let doc = parse(text);
            assert!(doc.features.is_none(), "{text}");
            assert_eq!(
                doc.value,
                serde_json::from_str::<Value>(text).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn child_and_item_links_are_kept_as_bytes() {
        let doc = parse(
            r#"{"type": "Collection", "links": [{"rel": "self", "href": "c.json"},
                {"rel": "item", "href": "a.json"}, {"rel": "license", "href": "l"},
                {"rel": "child", "href": "b/catalog.json", "title": "B"}, 7]}"#,
        );
        assert_eq!(
            doc.value["links"],
            json!([{"rel": "self", "href": "c.json"}, {"rel": "license", "href": "l"}, 7])
        );
        let mut structural = Vec::new();
        doc.structure
            .unwrap()
            .each(|link| {
                structural.push(link);
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(
            structural,
            [
                json!({"rel": "item", "href": "a.json"}),
                json!({"rel": "child", "href": "b/catalog.json", "title": "B"})
            ]
        );
        let plain = parse(r#"{"type": "Catalog", "links": [{"rel": "root", "href": "c.json"}]}"#);
        assert!(plain.structure.is_none());
        assert_eq!(plain.value["links"][0]["rel"], "root");
    }

    #[test]
    fn links_are_parsed_as_deep_and_refused_in_the_same_words_as_the_whole() {
        let nested = |n: usize| format!("{}1{}", r#"{"k":"#.repeat(n), "}".repeat(n));
        for depth in 122..130 {
            for rel in ["item", "license"] {
                let text = format!(
                    r#"{{"type": "Collection", "links": [{{"rel": "{rel}", "href": "a.json", "x": {}}}]}}"#,
                    nested(depth)
                );
                let whole = serde_json::from_str::<Value>(&text).map_err(|e| e.to_string());
                let read =
                    Document::parse(Bytes::from(text.clone()), None).map_err(|e| e.to_string());
                assert_eq!(read.is_ok(), whole.is_ok(), "{rel} at depth {depth}");
                if let (Err(read), Err(whole)) = (read, whole) {
                    assert_eq!(read, whole);
                }
            }
        }
        let text =
            "{\"type\": \"Catalog\",\n\n\"links\": [\n{\"rel\": \"item\", \"href\": 1e999}]}";
        assert_eq!(
            Document::parse(Bytes::from(text), None)
                .unwrap_err()
                .to_string(),
            serde_json::from_str::<Value>(text).unwrap_err().to_string()
        );
    }

    #[test]
    fn an_item_and_an_item_collection_keep_all_their_links() {
        let text = r#"{"type": "Feature", "id": "i", "links": [{"rel": "child", "href": "c.json"},
            {"rel": "license", "href": "l"}, {"rel": "item", "href": "b.json"}]}"#;
        let doc = parse(text);
        assert!(doc.structure.is_none());
        assert_eq!(doc.value, serde_json::from_str::<Value>(text).unwrap());
        let doc = parse(
            r#"{"type": "FeatureCollection", "features": [], "links": [{"rel": "item", "href": "b.json"},
                {"rel": "next", "href": "p2"}]}"#,
        );
        assert!(doc.structure.is_none());
        assert_eq!(doc.value["links"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn broken_json_is_refused_wherever_it_is() {
        for text in [
            r#"{"type": "FeatureCollection", "features": [{"id": 1}, {"id": ]}"#,
            r#"{"type": "FeatureCollection", "features": [] "#,
            r#"{"type": "FeatureCollection", "features": []} trailing"#,
            r#"{"type": "Catalog", "links": [{"rel": "child", "href": ]}"#,
            "",
        ] {
            assert!(
                Document::parse(Bytes::copy_from_slice(text.as_bytes()), None).is_err(),
                "{text}"
            );
        }
    }
}
