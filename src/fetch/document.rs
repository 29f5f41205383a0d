//! A JSON document as read, with an item collection's features left unparsed.
//!
//! A parsed `serde_json::Value` takes many times the bytes it came from (a
//! 9 MB item collection of 20,000 items takes over 200 MB). An item
//! collection is read as its head (everything but `features`) and its bytes;
//! the features are parsed one at a time as the caller goes through them, so
//! the document costs its size in memory and one item at a time.
//!
//! A catalog's or collection's `child` and `item` links are kept the same
//! way (a collection may link a million items, and a link as a `Value` takes
//! nearly a kilobyte): the other links stay in the value, these are parsed
//! one at a time by [`Structure::each`].

use std::fmt;
use std::ops::{ControlFlow, Range};

use bytes::Bytes;
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

/// The `child` and `item` links of a document, parsed as they are gone
/// through.
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
        let head = Head { base: &bytes }.deserialize(&mut deserializer)?;
        deserializer.end()?;
        let collection =
            head.value.get("type").and_then(Value::as_str) == Some("FeatureCollection");
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
            structure: head.links.map(|range| Structure {
                bytes,
                range,
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
    links: Option<Range<usize>>,
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
        while let Some(key) = map.next_key::<String>()? {
            if key == "links" {
                let raw: &'de RawValue = map.next_value()?;
                let text = raw.get();
                let value = if text.starts_with('[') {
                    let mut kept = Vec::new();
                    let mut structural = false;
                    serde_json::Deserializer::from_str(text)
                        .deserialize_seq(Each(|link: Value| {
                            if is_structural(&link) {
                                structural = true;
                            } else {
                                kept.push(link);
                            }
                            ControlFlow::Continue(())
                        }))
                        .map_err(de::Error::custom)?;
                    let start = text.as_ptr() as usize - self.base.as_ptr() as usize;
                    links = structural.then_some(start..start + text.len());
                    Value::Array(kept)
                } else {
                    links = None;
                    serde_json::from_str(text).map_err(de::Error::custom)?
                };
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
                let value = serde_json::from_str(text).map_err(de::Error::custom)?;
                features = None;
                object.insert(key, value);
            }
        }
        Ok(Read {
            value: Value::Object(object),
            features,
            links,
        })
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
