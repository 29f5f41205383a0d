//! Where things go at the destination, and why nothing escapes it.
//!
//! ```text
//! DEST/catalog.json
//! DEST/<collection-id>/collection.json
//! DEST/<collection-id>/<item-id>/<item-id>.json
//! DEST/<collection-id>/<item-id>/<asset file name>
//! ```
//!
//! Ids and hrefs come from strangers. Each becomes exactly one path segment:
//! percent-escapes are decoded first (so `%2e%2e` is seen as `..`), then path
//! separators (`/`, `\`), drive and stream colons, NUL and control characters
//! are replaced, leading and trailing dots and spaces are trimmed, names that
//! Windows reserves get a suffix, and long names are shortened with a hash so
//! they stay unique. A segment that is empty or only dots after all that is
//! refused. Every change is reported so the user can see which item it was.

use std::borrow::Cow;

/// A name made safe to use as one path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The segment to use.
    pub name: String,
    /// What was changed and why, when anything was.
    pub changed: Option<String>,
}

/// Why a name cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {original:?} cannot be used as a file or folder name: {reason}")]
pub struct Refused {
    /// "the id", "the asset file name"...
    pub what: String,
    /// The name as the catalog gave it.
    pub original: String,
    /// Why.
    pub reason: String,
}

/// The longest segment Cairn writes, in bytes (file systems allow 255).
pub const MAX_SEGMENT: usize = 200;

const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Makes `original` (an id or a file name; `what` names it in messages) safe as
/// one path segment.
pub fn segment(what: &str, original: &str) -> Result<Segment, Refused> {
    let refuse = |reason: &str| Refused {
        what: what.to_string(),
        original: original.to_string(),
        reason: reason.to_string(),
    };
    let decoded: Cow<'_, str> = percent_decode(original);
    let mut reasons: Vec<&str> = Vec::new();
    if decoded != original {
        reasons.push("percent-escapes decoded");
    }
    let mut name = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        let replacement = match c {
            '/' | '\\' => {
                reasons.push("path separators replaced");
                '_'
            }
            ':' => {
                reasons.push("colons replaced");
                '_'
            }
            c if c.is_control() => {
                reasons.push("control characters replaced");
                '_'
            }
            '<' | '>' | '"' | '|' | '?' | '*' => {
                reasons.push("characters Windows forbids replaced");
                '_'
            }
            c => c,
        };
        name.push(replacement);
    }
    let trimmed = name.trim_matches(|c: char| c == '.' || c == ' ');
    if trimmed.len() != name.len() {
        reasons.push("leading or trailing dots and spaces removed");
    }
    let mut name = trimmed.to_string();
    if name.trim_matches('_').is_empty() {
        return Err(refuse(
            "nothing usable is left once unsafe characters are removed",
        ));
    }
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if WINDOWS_RESERVED.contains(&stem.as_str()) {
        name.insert(stem.len(), '_');
        reasons.push("a name Windows reserves was suffixed");
    }
    if name.len() > MAX_SEGMENT {
        name = shorten(&name, original);
        reasons.push("shortened");
    }
    reasons.dedup();
    let changed = (!reasons.is_empty()).then(|| {
        format!(
            "{what} {original:?} is written as {name:?} ({})",
            reasons.join(", ")
        )
    });
    Ok(Segment { name, changed })
}

/// Keeps the start and the extension, and adds a short hash of the original so
/// two long names that share a start stay apart.
fn shorten(name: &str, original: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    original.hash(&mut hasher);
    let tag = format!("-{:016x}", hasher.finish());
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| e.len() <= 16 && !e.is_empty())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let mut keep = MAX_SEGMENT - tag.len() - extension.len();
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{tag}{extension}", &name[..keep])
}

fn percent_decode(text: &str) -> Cow<'_, str> {
    // Decode repeatedly: `%252e` is `%2e` after one pass and `.` after two.
    let mut current: Cow<'_, str> = Cow::Borrowed(text);
    for _ in 0..4 {
        let decoded: String =
            url::form_urlencoded::parse(format!("x={}", current.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
        if decoded == current {
            break;
        }
        current = Cow::Owned(decoded);
    }
    current
}

/// The file name to give an asset: the last segment of its href, made safe;
/// when the href ends in a folder or query only, the asset key is used.
pub fn asset_file_name(key: &str, href: &str) -> Result<Segment, Refused> {
    let path = href.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit(['/', '\\']).next().unwrap_or_default();
    let decoded = percent_decode(last);
    if decoded
        .trim_matches(|c: char| c == '.' || c == ' ')
        .is_empty()
    {
        return segment("the asset key", key);
    }
    segment("the asset file name", last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(original: &str) -> String {
        segment("the id", original).unwrap().name
    }

    #[test]
    fn ordinary_ids_are_kept() {
        for id in [
            "LC80140332018166LGN00",
            "S2A_MSIL2A_20230216T235751",
            "a b-c.d",
            "日本語",
        ] {
            let s = segment("the id", id).unwrap();
            assert_eq!((s.name.as_str(), s.changed), (id, None));
        }
    }

    #[test]
    fn escapes_become_one_harmless_segment() {
        assert_eq!(name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(name("..\\..\\windows"), "_.._windows");
        assert_eq!(name("/etc/passwd"), "_etc_passwd");
        assert_eq!(name("C:\\Users\\x"), "C__Users_x");
        assert_eq!(name("%2e%2e%2fsecret"), "_secret");
        assert_eq!(name("%252e%252e%252fsecret"), "_secret");
        assert_eq!(name("a\0b\nc"), "a_b_c");
        assert_eq!(name("file.json:stream"), "file.json_stream");
        assert_eq!(name("CON"), "CON_");
        assert_eq!(name("aux.txt"), "aux_.txt");
        for unusable in ["..", ".", "", " ", "%2e%2e", "/", "\\\\", "%00"] {
            let refused = segment("the id", unusable).unwrap_err();
            assert!(
                refused.to_string().contains("cannot be used"),
                "{unusable:?}"
            );
        }
    }

    #[test]
    fn every_change_is_reported_with_the_original() {
        let s = segment("the id", "../x").unwrap();
        let message = s.changed.unwrap();
        assert!(message.contains("\"../x\""), "{message}");
        assert!(message.contains("path separators replaced"), "{message}");
    }

    #[test]
    fn long_names_are_shortened_and_stay_distinct() {
        let a = format!("{}a.tif", "x".repeat(300));
        let b = format!("{}b.tif", "x".repeat(300));
        let (a, b) = (name(&a), name(&b));
        assert!(a.len() <= MAX_SEGMENT && b.len() <= MAX_SEGMENT);
        assert!(a.ends_with(".tif"));
        assert_ne!(a, b);
    }

    #[test]
    fn asset_file_names_come_from_the_href() {
        let n = |key: &str, href: &str| asset_file_name(key, href).unwrap().name;
        assert_eq!(n("data", "https://x.test/a/B04.tif?sig=1#f"), "B04.tif");
        assert_eq!(n("data", "./B04.tif"), "B04.tif");
        assert_eq!(n("data", "https://x.test/download/"), "data");
        assert_eq!(
            n("data", "https://x.test/a/..%2F..%2Fevil.sh"),
            "_.._evil.sh"
        );
        assert_eq!(n("data", "s3://bucket/dir/..."), "data");
    }
}
