//! Catalogs to start from: the demo that ships with the app, public catalogs
//! many people use, and the ones this person bookmarked or opened.

use serde::Serialize;
use specta::Type;

/// Where a source in the list comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The small catalog that ships with Cairn (works offline).
    Demo,
    /// A public catalog from Cairn's list.
    WellKnown,
    /// Bookmarked by this person.
    Bookmark,
    /// Opened before.
    Recent,
}

/// A catalog or API to browse.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
pub struct SourceEntry {
    /// Its address.
    pub url: String,
    /// Its name.
    pub title: String,
    /// A line about it.
    pub description: Option<String>,
    /// Where it comes from.
    pub origin: Origin,
    /// Whether it is bookmarked.
    pub bookmarked: bool,
}

/// Public catalogs to start from: (title, address, what it holds).
pub const WELL_KNOWN: &[(&str, &str, &str)] = &[
    (
        "Earth Search (Element 84)",
        "https://earth-search.aws.element84.com/v1",
        "Sentinel-1, Sentinel-2, Landsat, NAIP and Copernicus DEM on AWS Open Data",
    ),
    (
        "Microsoft Planetary Computer",
        "https://planetarycomputer.microsoft.com/api/stac/v1",
        "Over a hundred environmental datasets; most assets need a signed address",
    ),
    (
        "USGS Landsat (LandsatLook)",
        "https://landsatlook.usgs.gov/stac-server",
        "Landsat Collection 2, from the USGS",
    ),
    (
        "NASA CMR-STAC",
        "https://cmr.earthdata.nasa.gov/stac",
        "NASA's Common Metadata Repository, one catalog per data centre",
    ),
    (
        "Copernicus Data Space",
        "https://stac.dataspace.copernicus.eu/v1",
        "Sentinel missions from the European Space Agency",
    ),
    (
        "Digital Earth Africa",
        "https://explorer.digitalearth.africa/stac",
        "Analysis-ready Landsat and Sentinel data over Africa",
    ),
    (
        "Digital Earth Australia",
        "https://explorer.dea.ga.gov.au/stac",
        "Geoscience Australia's analysis-ready data",
    ),
    (
        "Maxar Open Data",
        "https://maxar-opendata.s3.amazonaws.com/events/catalog.json",
        "High-resolution imagery released after natural disasters (static catalog)",
    ),
    (
        "Capella Space Open Data",
        "https://capella-open-data.s3.us-west-2.amazonaws.com/stac/catalog.json",
        "Synthetic aperture radar samples (static catalog)",
    ),
    (
        "Umbra Open Data",
        "https://s3.us-west-2.amazonaws.com/umbra-open-data-catalog/stac/catalog.json",
        "Synthetic aperture radar over sites around the world (static catalog)",
    ),
];

/// The list shown on the start screen: the demo, then bookmarks, then the
/// public catalogs, then other catalogs opened before.
pub fn list(demo: Option<&str>, known: &[cairn::store::Source]) -> Vec<SourceEntry> {
    let mut out: Vec<SourceEntry> = Vec::new();
    let bookmarked = |url: &str| known.iter().any(|s| s.url == url && s.bookmarked);
    if let Some(url) = demo {
        out.push(SourceEntry {
            url: url.to_string(),
            title: "Cairn demo catalog".into(),
            description: Some("A small catalog that ships with Cairn; works offline".into()),
            origin: Origin::Demo,
            bookmarked: bookmarked(url),
        });
    }
    for source in known.iter().filter(|s| s.bookmarked) {
        if out.iter().any(|e| e.url == source.url) {
            continue;
        }
        out.push(entry(source, Origin::Bookmark));
    }
    for (title, url, description) in WELL_KNOWN {
        if out.iter().any(|e| e.url == *url) {
            continue;
        }
        out.push(SourceEntry {
            url: url.to_string(),
            title: title.to_string(),
            description: Some(description.to_string()),
            origin: Origin::WellKnown,
            bookmarked: false,
        });
    }
    for source in known {
        if out.iter().any(|e| e.url == source.url) {
            continue;
        }
        out.push(entry(source, Origin::Recent));
    }
    out
}

fn entry(source: &cairn::store::Source, origin: Origin) -> SourceEntry {
    SourceEntry {
        url: source.url.clone(),
        title: source.title.clone().unwrap_or_else(|| source.url.clone()),
        description: source.kind.clone(),
        origin,
        bookmarked: source.bookmarked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(url: &str, bookmarked: bool) -> cairn::store::Source {
        cairn::store::Source {
            id: 1,
            url: url.into(),
            title: Some(format!("title of {url}")),
            kind: Some("catalog".into()),
            bookmarked,
        }
    }

    #[test]
    fn the_demo_comes_first_then_bookmarks_then_public_then_recent_without_repeats() {
        let known = [
            source("https://recent.example/catalog.json", false),
            source("https://mine.example/stac", true),
            source(WELL_KNOWN[0].1, true),
        ];
        let list = list(Some("file:///demo/catalog.json"), &known);
        let origins: Vec<Origin> = list.iter().map(|e| e.origin).collect();
        assert_eq!(origins[0], Origin::Demo);
        assert_eq!(list[1].url, "https://mine.example/stac");
        assert_eq!(list[2].url, WELL_KNOWN[0].1);
        assert_eq!(list[2].origin, Origin::Bookmark);
        assert_eq!(list.last().unwrap().origin, Origin::Recent);
        assert_eq!(list.len(), 1 + 2 + (WELL_KNOWN.len() - 1) + 1);
    }
}
