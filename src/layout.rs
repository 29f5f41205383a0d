//! Where things go at the destination, and why nothing escapes it or lands
//! on another thing's place.
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
//!
//! Two names that a file system could take for one are one name: [`Names`]
//! hands out segments unique after case folding and Unicode normalisation
//! (exFAT, NTFS and APFS ignore case; APFS and HFS+ ignore normalisation), so
//! `B04.TIF` and `b04.tif` never share a file, and the files Cairn writes
//! beside them (`.part`, `.tmp`, `collection.json`) are never anyone's name.
//!
//! Segments are bounded per level so that a whole relative path stays under
//! about 200 characters, leaving room for the destination folder within the
//! 260 characters that Windows allows by default.

use crate::seen::Seen;
use std::borrow::Cow;

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

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
/// The longest collection folder name, in characters (UTF-16 units).
pub const COLLECTION_CHARS: usize = 48;
/// The longest item folder name, in characters.
pub const ITEM_CHARS: usize = 72;
/// The longest asset file name, in characters.
pub const FILE_CHARS: usize = 72;
/// The longest relative path Cairn writes, in characters, with its `.part`
/// or `.tmp` suffix: the three levels above, their separators and a suffix.
pub const MAX_RELATIVE: usize = COLLECTION_CHARS + ITEM_CHARS + FILE_CHARS + 2 + 10;

/// What Cairn writes beside its named files, so no name may end up as one.
const SUFFIXES: [&str; 2] = [".part", ".tmp"];

/// Device names Windows reserves, with or without an extension.
fn windows_reserved(stem: &str) -> bool {
    const PLAIN: [&str; 6] = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"];
    if PLAIN.contains(&stem) {
        return true;
    }
    let Some(rest) = stem
        .strip_prefix("COM")
        .or_else(|| stem.strip_prefix("LPT"))
    else {
        return false;
    };
    let mut digits = rest.chars();
    matches!(
        (digits.next(), digits.next()),
        (Some('0'..='9' | '¹' | '²' | '³'), None)
    )
}

/// Makes `original` (an id or a file name; `what` names it in messages) safe as
/// one path segment of at most `max_chars` characters.
pub fn segment(what: &str, original: &str, max_chars: usize) -> Result<Segment, Refused> {
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
            // The name is written as it is in the catalog's relative
            // hrefs, where these would start a fragment or an escape.
            '#' | '%' => {
                reasons.push("characters with a meaning in web addresses replaced");
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
        .trim_end()
        .to_uppercase();
    if windows_reserved(&stem) {
        let at = name.find('.').unwrap_or(name.len());
        name.insert(at, '_');
        reasons.push("a name Windows reserves was suffixed");
    }
    if too_long(&name, max_chars) {
        name = shorten(&name, original, max_chars);
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

fn chars(name: &str) -> usize {
    name.encode_utf16().count()
}

fn too_long(name: &str, max_chars: usize) -> bool {
    name.len() > MAX_SEGMENT || chars(name) > max_chars
}

/// Keeps the start and the extension, and adds a short hash of the original so
/// two long names that share a start stay apart. The hash is SHA-256, so a
/// name is the same with every build of Cairn.
fn shorten(name: &str, original: &str, max_chars: usize) -> String {
    let digest = Sha256::digest(original.as_bytes());
    let tag = format!("-{}", hex::encode(&digest[..8]));
    let (stem, extension) = split_extension(name);
    let extension = if chars(extension) <= 16 {
        extension
    } else {
        ""
    };
    let mut keep = stem.to_string();
    while !keep.is_empty()
        && (keep.len() + tag.len() + extension.len() > MAX_SEGMENT
            || chars(&keep) + tag.len() + chars(extension) > max_chars)
    {
        keep.pop();
    }
    format!("{keep}{tag}{extension}")
}

/// `("name", ".ext")`; a name without a dot (or only a leading one) has no
/// extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(at) if at > 0 => name.split_at(at),
        _ => (name, ""),
    }
}

fn percent_decode(text: &str) -> Cow<'_, str> {
    // Decode repeatedly: `%252e` is `%2e` after one pass and `.` after two.
    let mut current: Cow<'_, str> = Cow::Borrowed(text);
    for _ in 0..4 {
        let decoded = unescape(&current);
        if decoded == current {
            break;
        }
        current = Cow::Owned(decoded.into_owned());
    }
    current
}

/// `text` with its percent-escapes decoded once (bytes that are not UTF-8
/// become U+FFFD).
pub fn unescape(text: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy()
}

/// The path, relative to the folder (or bucket prefix) at `inside`, of
/// `url`, decoded; `None` when it leads elsewhere, or names a segment that
/// could leave the folder (`..`, an encoded separator).
pub fn relative_path(inside: &url::Url, url: &url::Url) -> Option<String> {
    if url.scheme() != inside.scheme() || url.host_str() != inside.host_str() {
        return None;
    }
    let relative = url.path().strip_prefix(inside.path())?;
    let decoded: Vec<String> = relative
        .split('/')
        .map(|s| unescape(s).into_owned())
        .collect();
    if decoded
        .iter()
        .any(|s| s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\', '\0']))
    {
        return None;
    }
    Some(decoded.join("/"))
}

/// Whether `path` has the name of a file Cairn keeps beside another while
/// it works on it (a partial download `.part`, a document being written
/// `.tmp`): not part of a finished mirror unless the catalog names it.
pub fn is_own_temporary(path: &str) -> bool {
    SUFFIXES.iter().any(|suffix| path.ends_with(suffix))
}

/// The file name to give an asset: the last segment of its href, made safe;
/// when the href ends in a folder or query only, the asset key is used.
/// The path in the mirror of the document of the item whose folder is `dir`
/// (`<collection>/<item>`): `<collection>/<item>/<item>.json`.
pub fn item_document(dir: &str) -> String {
    let name = dir.rsplit('/').next().unwrap_or(dir);
    format!("{dir}/{name}.json")
}

pub fn asset_file_name(key: &str, href: &str) -> Result<Segment, Refused> {
    let path = href.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit(['/', '\\']).next().unwrap_or_default();
    let decoded = percent_decode(last);
    if decoded
        .trim_matches(|c: char| c == '.' || c == ' ')
        .is_empty()
    {
        return segment("the asset key", key, FILE_CHARS);
    }
    // A name with nothing usable in it: the asset is named after its key
    // rather than left out.
    segment("the asset file name", last, FILE_CHARS).or_else(|refused| {
        segment("the asset key", key, FILE_CHARS).map(|by_key| Segment {
            changed: Some(format!("{refused}; it is written as {:?}", by_key.name)),
            name: by_key.name,
        })
    })
}

/// The form under which two names are one on a file system that ignores
/// case or Unicode normalisation: NFC, then upper case then lower case, which
/// joins what full case folding joins (`µ` and `μ`, `ſ` and `s`, `ϑ` and `θ`,
/// the Kelvin sign and `k`, `ß` and `ss`).
pub fn fold(name: &str) -> String {
    // Plain ASCII (nearly every name): already composed, and its case
    // folds one letter for one.
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    name.nfc()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect()
}

/// The names given out in one folder: each unique after [`fold`], none equal
/// to a name Cairn writes itself (with its `.part` and `.tmp` beside it).
///
/// A name is remembered by its hash (see [`Seen`]), not by a copy: a
/// collection folder may hold a million items. Two names sharing a hash would
/// only make the second one be numbered, never two items share a folder.
#[derive(Debug, Clone)]
pub struct Names {
    taken: Seen,
    max_chars: usize,
}

impl Names {
    /// An empty folder whose names are at most `max_chars` long.
    pub fn new(max_chars: usize) -> Names {
        Names {
            taken: Seen::new(),
            max_chars,
        }
    }

    /// The root of a mirror: its own files are taken.
    pub fn root() -> Names {
        let mut names = Names::new(COLLECTION_CHARS);
        for own in ["catalog.json", "items.parquet", "provenance.jsonl"] {
            names.take(own);
        }
        names
    }

    /// A collection folder: its `collection.json` is taken.
    pub fn collection() -> Names {
        let mut names = Names::new(ITEM_CHARS);
        names.take("collection.json");
        names
    }

    /// Marks `name` (and what Cairn writes beside it) as used.
    pub fn take(&mut self, name: &str) {
        self.taken.insert(&fold(name));
    }

    /// Whether `name` or what Cairn writes beside it is in use: it is a name
    /// given out, or one with `.part` or `.tmp` added, or adding one of them
    /// to it gives a name given out.
    pub fn is_taken(&self, name: &str) -> bool {
        self.is_taken_folded(&fold(name))
    }

    /// [`Names::is_taken`] for a name folded already.
    fn is_taken_folded(&self, key: &str) -> bool {
        self.taken.contains(key)
            || SUFFIXES.iter().any(|suffix| {
                key.strip_suffix(suffix)
                    .is_some_and(|stem| self.taken.contains(stem))
                    || self.taken.contains(&[key, suffix].concat())
            })
    }

    /// `wanted` if it is free, else the first free `stem-2.ext`, `stem-3.ext`...
    /// (shortened to fit); the name given is marked as used.
    pub fn claim(&mut self, wanted: &str) -> String {
        let mut name = wanted.to_string();
        let mut key = fold(&name);
        let mut n = 2u64;
        while self.is_taken_folded(&key) {
            let (stem, extension) = split_extension(wanted);
            let suffix = format!("-{n}{extension}");
            let mut keep = stem.to_string();
            while !keep.is_empty()
                && (keep.len() + suffix.len() > MAX_SEGMENT
                    || chars(&keep) + chars(&suffix) > self.max_chars)
            {
                keep.pop();
            }
            name = format!("{keep}{suffix}");
            key = fold(&name);
            n += 1;
        }
        self.taken.insert(key.as_str());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(original: &str) -> String {
        segment("the id", original, ITEM_CHARS).unwrap().name
    }

    #[test]
    fn plain_ascii_folds_as_unicode_does() {
        let every: String = (0u8..128).map(char::from).collect();
        let unicode: String = every
            .nfc()
            .flat_map(char::to_uppercase)
            .flat_map(char::to_lowercase)
            .collect();
        assert_eq!(fold(&every), unicode);
        assert_eq!(fold("Scene_01.TIF"), "scene_01.tif");
    }

    #[test]
    fn ordinary_ids_are_kept() {
        for id in [
            "LC80140332018166LGN00",
            "S2A_MSIL2A_20230216T235751",
            "a b-c.d",
            "日本語",
        ] {
            let s = segment("the id", id, ITEM_CHARS).unwrap();
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
        for unusable in ["..", ".", "", " ", "%2e%2e", "/", "\\\\", "%00"] {
            let refused = segment("the id", unusable, ITEM_CHARS).unwrap_err();
            assert!(
                refused.to_string().contains("cannot be used"),
                "{unusable:?}"
            );
        }
    }

    #[test]
    fn every_name_windows_reserves_is_suffixed() {
        for (reserved, written) in [
            ("CON", "CON_"),
            ("aux.txt", "aux_.txt"),
            ("COM0", "COM0_"),
            ("lpt0.tif", "lpt0_.tif"),
            ("COM¹", "COM¹_"),
            ("LPT³.json", "LPT³_.json"),
            ("CONIN$", "CONIN$_"),
            ("conout$.log", "conout$_.log"),
            ("NUL .txt", "NUL _.txt"),
            ("nul.tar.gz", "nul_.tar.gz"),
        ] {
            assert_eq!(name(reserved), written, "{reserved}");
        }
        for fine in ["COM10", "LPT", "CONSOLE", "nullable", "COMA"] {
            assert_eq!(name(fine), fine);
        }
    }

    #[test]
    fn a_name_reads_the_same_as_a_relative_href() {
        assert_eq!(name("a#b"), "a_b");
        assert_eq!(name("100%"), "100_");
        // Escapes are decoded; a percent sign that is not one is replaced.
        assert_eq!(name("a%2541"), "aA");
        assert_eq!(name("a%zz"), "a_zz");
        let s = segment("the id", "x#1", ITEM_CHARS).unwrap();
        let message = s.changed.unwrap();
        assert!(message.contains("meaning in web addresses"), "{message}");
    }

    #[test]
    fn every_change_is_reported_with_the_original() {
        let s = segment("the id", "../x", ITEM_CHARS).unwrap();
        let message = s.changed.unwrap();
        assert!(message.contains("\"../x\""), "{message}");
        assert!(message.contains("path separators replaced"), "{message}");
    }

    #[test]
    fn long_names_are_shortened_stably_and_stay_distinct() {
        let a = format!("{}a.tif", "x".repeat(300));
        let b = format!("{}b.tif", "x".repeat(300));
        let (a, b) = (name(&a), name(&b));
        assert!(chars(&a) <= ITEM_CHARS && chars(&b) <= ITEM_CHARS);
        assert!(a.ends_with(".tif"));
        assert_ne!(a, b);
        // The same with every build: the tag is SHA-256, not a seeded hash.
        assert_eq!(a, format!("{}-479e836549c44d62.tif", "x".repeat(51)));
        let wide = "語".repeat(100);
        let short = name(&wide);
        assert!(short.len() <= MAX_SEGMENT && chars(&short) <= ITEM_CHARS);
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
        assert_eq!(n("data", "https://x.test/a/%2F"), "data");
        assert_eq!(n("b04", "https://x.test/a/%00%3A"), "b04");
    }

    #[test]
    fn names_are_unique_after_folding_and_beside_cairns_own_files() {
        let mut names = Names::new(FILE_CHARS);
        names.take("item.json");
        assert_eq!(names.claim("data.tif"), "data.tif");
        assert_eq!(names.claim("DATA.TIF"), "DATA-2.TIF");
        assert_eq!(names.claim("data-2.tif"), "data-2-2.tif");
        assert_eq!(names.claim("Item.JSON"), "Item-2.JSON");
        assert_eq!(names.claim("item.json.tmp"), "item.json-2.tmp");
        assert_eq!(names.claim("data.tif.part"), "data.tif-2.part");
        // "é" composed and decomposed are one name on APFS.
        assert_eq!(names.claim("caf\u{e9}.tif"), "caf\u{e9}.tif");
        assert_eq!(names.claim("cafe\u{301}.tif"), "cafe\u{301}-2.tif");
        // Letters that only full case folding joins.
        assert_eq!(names.claim("\u{b5}m.bin"), "\u{b5}m.bin");
        assert_eq!(names.claim("\u{3bc}m.bin"), "\u{3bc}m-2.bin");
        assert_eq!(names.claim("\u{17f}.bin"), "\u{17f}.bin");
        assert_eq!(names.claim("s.bin"), "s-2.bin");
        assert_eq!(names.claim("\u{3d1}.bin"), "\u{3d1}.bin");
        assert_eq!(names.claim("\u{3b8}.bin"), "\u{3b8}-2.bin");
        assert_eq!(names.claim("stra\u{df}e"), "stra\u{df}e");
        assert_eq!(names.claim("STRASSE"), "STRASSE-2");
        let mut root = Names::root();
        assert_eq!(root.claim("Catalog.json"), "Catalog-2.json");
        let mut collection = Names::collection();
        assert_eq!(collection.claim("collection.json"), "collection-2.json");
    }

    /// Whether `name` can be one segment on Linux, macOS and Windows alike.
    fn portable(name: &str, max_chars: usize) -> Result<(), String> {
        let bad = |why: &str| Err(format!("{name:?}: {why}"));
        if name.is_empty() || name == "." || name == ".." {
            return bad("empty or dots");
        }
        if name
            .chars()
            .any(|c| c.is_control() || "/\\:*?\"<>|".contains(c))
        {
            return bad("a forbidden character");
        }
        // Written as it is in relative hrefs, it must mean itself there.
        if name.contains(['#', '%', '?']) {
            return bad("a character with a meaning in web addresses");
        }
        if name.starts_with(['.', ' ']) || name.ends_with(['.', ' ']) {
            return bad("a leading or trailing dot or space");
        }
        if chars(name) > max_chars || name.len() > MAX_SEGMENT {
            return bad("too long");
        }
        let stem = name.split('.').next().unwrap_or_default().trim_end();
        if windows_reserved(&stem.to_uppercase()) {
            return bad("a name Windows reserves");
        }
        let mut components = std::path::Path::new("/mirror")
            .join(name)
            .components()
            .count();
        components -= 2; // the root and "mirror"
        if components != 1 {
            return bad("not exactly one path segment");
        }
        Ok(())
    }

    #[test]
    fn a_million_hostile_names_stay_one_portable_unique_segment() {
        const PIECES: [&str; 41] = [
            "..",
            ".",
            "/",
            "\\",
            "%2e",
            "%2F",
            "%25",
            "%",
            "#",
            ":",
            "\0",
            "\n",
            "\r",
            "CON",
            "com1",
            "LPT\u{b9}",
            "conin$",
            "Aux",
            " ",
            "a",
            "B",
            "\u{e9}",
            "e\u{301}",
            "\u{df}",
            "SS",
            "\u{130}",
            "\u{65e5}\u{672c}",
            "\u{1f642}",
            "x.tif",
            ".part",
            ".tmp",
            "*",
            "?",
            "<",
            "|",
            "~",
            "-2",
            "\u{202e}",
            "\u{200b}",
            "+",
            "collection.json",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut cases, mut refused) = (0u32, 0u32);
        let mut folder = Names::collection();
        let mut given: Vec<String> = Vec::new();
        while cases < 1_000_000 {
            let pieces = 1 + next() % 9;
            let mut name = String::new();
            for _ in 0..pieces {
                let piece = PIECES[(next() % PIECES.len() as u64) as usize];
                // Now and then a long run, to reach the shortening.
                let times = if next() % 50 == 0 { 40 } else { 1 };
                name.push_str(&piece.repeat(times));
            }
            cases += 1;
            let segment = match segment("the id", &name, ITEM_CHARS) {
                Ok(segment) => segment,
                Err(_) => {
                    refused += 1;
                    continue;
                }
            };
            portable(&segment.name, ITEM_CHARS).unwrap();
            assert_eq!(segment.changed.is_none(), segment.name == name, "{name:?}");
            // Every name given in one folder is unique where case and
            // normalisation are ignored, and as portable as the rest.
            let claimed = folder.claim(&segment.name);
            portable(&claimed, ITEM_CHARS).unwrap();
            given.push(claimed);
            if given.len() == 64 {
                let folded: std::collections::HashSet<String> =
                    given.iter().map(|n| fold(n)).collect();
                assert_eq!(folded.len(), given.len(), "{given:?}");
                assert!(!folded.contains("collection.json"));
                folder = Names::collection();
                given.clear();
            }
        }
        // The generator reaches both outcomes.
        assert!(
            refused > 1000 && refused < cases / 2,
            "{refused} of {cases} refused"
        );
    }
}
