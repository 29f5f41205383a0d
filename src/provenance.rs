//! Where a mirrored file's bytes came from, and what the server said.
//!
//! For every asset Cairn copies it records the address it asked for, the
//! address the bytes finally came from (after redirects), the time, the HTTP
//! status and the response headers that identify the content (ETag,
//! Last-Modified, Content-Length, Content-Type and any checksum header). The
//! record is kept in the state store with the asset and written into the
//! mirror as `provenance.jsonl`, one line per file, so that an archive can
//! show years later exactly what the server served.
//!
//! Nothing secret is ever recorded: headers are taken from a short list of
//! identifying ones (never a request header, never a cookie), and addresses
//! lose their user name and password and every query parameter that signs
//! or authorises a request ([`redact`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use url::Url;

/// What the server said when an asset's bytes were fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The address Cairn asked for ([`redact`]ed).
    pub requested: String,
    /// The address the bytes came from, after redirects ([`redact`]ed).
    #[serde(rename = "final")]
    pub final_url: String,
    /// When the answer came (RFC 3339, UTC).
    pub fetched_at: String,
    /// The HTTP status of the answer; absent for a local file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The headers that identify the content, lower-cased names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Bytes an earlier attempt had already fetched, when this answer
    /// continued a partial download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<u64>,
}

/// Response headers recorded, beside any `x-amz-checksum-*` and
/// `x-goog-*hash*` header: they say which bytes were served.
const IDENTIFYING: [&str; 16] = [
    "etag",
    "last-modified",
    "content-length",
    "content-type",
    "content-range",
    "content-md5",
    "content-digest",
    "repr-digest",
    "digest",
    "content-crc64",
    "x-ms-blob-content-md5",
    "x-ms-version-id",
    "x-amz-version-id",
    "x-goog-generation",
    "x-checksum-sha256",
    "x-checksum-md5",
];

fn identifying(name: &str) -> bool {
    IDENTIFYING.contains(&name)
        || name.starts_with("x-amz-checksum-")
        || (name.starts_with("x-goog-") && name.contains("hash"))
}

/// Parameters of an Azure shared access signature: taken out with its
/// `sig` (alone, names such as `sr` or `st` mean other things elsewhere).
const SAS_PARAMETERS: [&str; 17] = [
    "sig", "se", "st", "sp", "sv", "sr", "srt", "ss", "spr", "sip", "skoid", "sktid", "skt", "ske",
    "sks", "skv", "sdd",
];

/// Query parameters that sign or authorise a request (S3 and GCS signed
/// addresses, CloudFront, Akamai, OAuth tokens, API keys, passwords): never
/// recorded. Compared without regard to case; see also [`secret_parameter`].
const SECRET_PARAMETERS: [&str; 28] = [
    "signature",
    "awsaccesskeyid",
    "expires",
    "policy",
    "key-pair-id",
    "googleaccessid",
    "hdnts",
    "hdnea",
    "__token__",
    "token",
    "jwt",
    "access_token",
    "id_token",
    "refresh_token",
    "api_key",
    "api-key",
    "apikey",
    "x-api-key",
    "subscription-key",
    "access_key",
    "accesskey",
    "auth_key",
    "key",
    "password",
    "passwd",
    "pwd",
    "session",
    "sessionid",
];

fn secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMETERS.contains(&name.as_str())
        || name.starts_with("x-amz-")
        || name.starts_with("x-goog-")
        || name.contains("signature")
        || name.contains("token")
        || name.contains("secret")
        || name.contains("credential")
        || name.contains("password")
        || name.contains("auth")
}

/// `address` without a user name, a password, any query parameter that
/// signs or authorises a request, or a fragment that carries parameters
/// (`#access_token=...`). What stays is kept as it was written (the query is
/// rebuilt only when something is taken out, from its own text). Text that
/// is not an absolute address is returned as it is.
pub fn redact(address: &str) -> String {
    // A user name and a password come before an `@`, a query after a `?`,
    // a fragment after a `#`: without them there is nothing to take out,
    // and the address is not parsed (a copy redacts every file's).
    if !address.contains(['@', '?', '#']) {
        return address.to_string();
    }
    redact_parsed(address)
}

/// [`redact`] of an address that may hold something to take out.
fn redact_parsed(address: &str) -> String {
    let Ok(mut url) = Url::parse(address) else {
        return address.to_string();
    };
    let mut changed = false;
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("");
        let _ = url.set_password(None);
        changed = true;
    }
    if url.fragment().is_some_and(|f| f.contains('=')) {
        url.set_fragment(None);
        changed = true;
    }
    if let Some(query) = url.query().map(str::to_string) {
        let name_of = |part: &str| {
            let name = part.split('=').next().unwrap_or_default();
            percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .to_ascii_lowercase()
        };
        // Parameters are separated by `&`, and by `;` for some servers.
        let parts = || query.split(['&', ';']);
        let signed = parts().any(|part| name_of(part) == "sig");
        let secret = |part: &str| {
            let name = name_of(part);
            secret_parameter(&name) || (signed && SAS_PARAMETERS.contains(&name.as_str()))
        };
        if parts().any(secret) {
            // The kept parts with the separators that followed them.
            let mut kept = String::new();
            let mut rest = query.as_str();
            while !rest.is_empty() {
                let end = rest.find(['&', ';']).map_or(rest.len(), |n| n + 1);
                let (part, next) = rest.split_at(end);
                if !secret(part.trim_end_matches(['&', ';'])) {
                    kept.push_str(part);
                }
                rest = next;
            }
            let kept = kept.trim_end_matches(['&', ';']);
            url.set_query((!kept.is_empty()).then_some(kept));
            changed = true;
        }
    }
    if changed {
        url.to_string()
    } else {
        address.to_string()
    }
}

/// The time `at` in RFC 3339, UTC, to the millisecond.
pub fn timestamp(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Provenance {
    /// The record of an HTTP answer to a request for `requested`.
    /// `at` is where the answer came from in the end, as Cairn asked
    /// (without a signature it added).
    pub fn of_response(
        requested: &Url,
        at: &Url,
        response: &reqwest::Response,
        resumed_from: u64,
    ) -> Provenance {
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| identifying(name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        Provenance {
            requested: redact(requested.as_str()),
            final_url: redact(at.as_str()),
            fetched_at: timestamp(SystemTime::now()),
            status: Some(response.status().as_u16()),
            headers,
            resumed_from: (resumed_from > 0).then_some(resumed_from),
        }
    }

    /// The record of a read from a bucket: what the store said of the object.
    pub fn of_object(url: &Url, meta: &object_store::ObjectMeta, resumed_from: u64) -> Provenance {
        let mut read = Provenance::read_as_is(url, meta.size, Some(meta.last_modified.into()));
        if let Some(etag) = &meta.e_tag {
            read.headers.insert("etag".into(), etag.clone());
        }
        read.resumed_from = (resumed_from > 0).then_some(resumed_from);
        read
    }

    /// The record of a copy from a local file.
    pub fn of_file(
        url: &Url,
        len: u64,
        modified: Option<SystemTime>,
        resumed_from: u64,
    ) -> Provenance {
        let mut read = Provenance::read_as_is(url, len, modified);
        read.resumed_from = (resumed_from > 0).then_some(resumed_from);
        read
    }

    /// The record of a read without redirects or an HTTP status: its
    /// length and, if known, when it was last changed.
    fn read_as_is(url: &Url, len: u64, modified: Option<SystemTime>) -> Provenance {
        let mut headers = BTreeMap::from([("content-length".to_string(), len.to_string())]);
        if let Some(modified) = modified {
            headers.insert("last-modified".into(), httpdate::fmt_http_date(modified));
        }
        Provenance {
            requested: redact(url.as_str()),
            final_url: redact(url.as_str()),
            fetched_at: timestamp(SystemTime::now()),
            status: None,
            headers,
            resumed_from: None,
        }
    }

    /// The record as stored in the state file.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One line of a mirror's `provenance.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// The file, relative to the mirror's root.
    pub path: String,
    /// The collection of its item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Its item's id.
    pub item: String,
    /// Its asset's key.
    pub asset: String,
    /// Its verified size.
    #[serde(rename = "file:size")]
    pub size: u64,
    /// Its verified checksum (multihash, hex).
    #[serde(rename = "file:checksum")]
    pub checksum: String,
    /// When Cairn last verified it (RFC 3339).
    pub verified_at: String,
    /// The asset's address in the catalog ([`redact`]ed).
    pub href: String,
    /// What the server said when the bytes were fetched; absent when the
    /// file was found already in place and no earlier copy was recorded.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub fetched: Option<Provenance>,
}

impl Line {
    /// The line for a verified file a job recorded.
    pub fn of(file: &crate::store::MirroredFile) -> Line {
        Line {
            path: file.path.clone(),
            collection: file.collection.clone(),
            item: file.item_id.clone(),
            asset: file.key.clone(),
            size: file.size,
            checksum: file.checksum.clone(),
            verified_at: file.verified_at.clone(),
            href: redact(&file.href),
            fetched: file
                .provenance
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_secret_is_kept_as_written() {
        for plain in [
            "https://example.org/a%20b.tif?band=1&band=2",
            "https://example.org/x?flag&path=a/b&q=a%20b",
            "https://example.org/wms?sr=4326&code=L2A&st=ok",
        ] {
            assert_eq!(redact(plain), plain);
        }
        assert_eq!(
            redact("https://example.org/x?flag&sig=abc&path=a/b#frag"),
            "https://example.org/x?flag&path=a/b#frag"
        );
        assert_eq!(
            redact("https://example.org/x?a=1;sig=SECRET;b=2"),
            "https://example.org/x?a=1;b=2"
        );
        assert_eq!(
            redact("https://example.org/x#access_token=abc"),
            "https://example.org/x"
        );
        for secret in [
            "api-key",
            "X-Api-Key",
            "subscription-key",
            "pwd",
            "hdnts",
            "jwt",
            "sessionid",
        ] {
            assert_eq!(
                redact(&format!("https://example.org/x?{secret}=s3cr3t&page=2")),
                "https://example.org/x?page=2",
                "{secret}"
            );
        }
    }

    #[test]
    fn separators_the_parser_could_make_of_other_text_are_not_made() {
        // Full-width @ ? # (which IDNA maps to ASCII in a host, after the
        // address is split, where the URL deny list refuses them), escapes,
        // backslashes, tabs and line breaks the parser drops, opaque
        // schemes: parsing finds nothing to take out of any of them.
        for address in [
            "https://u\u{FF20}h/",
            "https://h\u{FF1F}sig=x/",
            "https://h\u{FF03}a=b",
            "https://a%40b/",
            "https://h/p%3Fsig=x",
            "https://h/p%23access_token=x",
            "http:\\\\u:p\\h",
            "ht\ttps://u:p\nh/",
            "javascript:x",
            "data:,x",
            "file:///tmp/a:b",
        ] {
            assert_eq!(redact_parsed(address), address);
            assert_eq!(redact(address), address);
        }
    }

    proptest::proptest! {
        /// What the quick look in [`redact`] lets through unparsed is what
        /// parsing would have kept as it was: any text without `@`, `?`
        /// or `#`, addresses of every scheme, escapes, spaces, controls.
        #[test]
        fn an_address_without_userinfo_query_or_fragment_is_kept_as_written(
            scheme in "(https?|s3|file|ftp|x-y\\+z)",
            rest in "[^@?#]{0,40}",
        ) {
            for address in [format!("{scheme}://{rest}"), format!("{scheme}:{rest}"), rest.clone()] {
                proptest::prop_assert_eq!(redact_parsed(&address), address);
            }
        }
    }

    #[test]
    fn signatures_credentials_and_tokens_are_taken_out() {
        let sas = "https://acct.blob.core.windows.net/c/b.tif?st=2024-01-01&se=2024-01-02&sp=r&sv=2021-06-08&sr=c&skoid=a&sig=SeCrEt%2Bsig";
        assert_eq!(redact(sas), "https://acct.blob.core.windows.net/c/b.tif");
        let s3 = "https://b.s3.amazonaws.com/k.tif?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA&X-Amz-Signature=abc&versionId=3";
        assert_eq!(redact(s3), "https://b.s3.amazonaws.com/k.tif?versionId=3");
        let user = "https://name:pass@data.example/x.tif?page=2&access_token=t0k";
        assert_eq!(redact(user), "https://data.example/x.tif?page=2");
        assert_eq!(redact("./relative.tif"), "./relative.tif");
        let plain = "https://example.org/a%20b.tif?band=1&band=2";
        assert_eq!(redact(plain), "https://example.org/a%20b.tif?band=1&band=2");
    }

    #[test]
    fn only_identifying_headers_are_kept() {
        for name in [
            "etag",
            "x-amz-checksum-sha256",
            "x-goog-hash",
            "content-md5",
        ] {
            assert!(identifying(name), "{name}");
        }
        for name in [
            "set-cookie",
            "authorization",
            "www-authenticate",
            "x-amz-request-id",
            "location",
        ] {
            assert!(!identifying(name), "{name}");
        }
    }

    #[test]
    fn a_line_carries_the_record_flat() {
        let provenance = Provenance {
            requested: "https://a.test/x".into(),
            final_url: "https://b.test/x".into(),
            fetched_at: "2026-01-01T00:00:00.000Z".into(),
            status: Some(200),
            headers: BTreeMap::from([("etag".into(), "\"1\"".into())]),
            resumed_from: None,
        };
        let line = Line {
            path: "c/i/x".into(),
            collection: Some("c".into()),
            item: "i".into(),
            asset: "data".into(),
            size: 3,
            checksum: "1220ab".into(),
            verified_at: "2026-01-01T00:00:01.000Z".into(),
            href: "https://a.test/x".into(),
            fetched: Some(provenance),
        };
        let text = serde_json::to_string(&line).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["final"], "https://b.test/x");
        assert_eq!(value["status"], 200);
        assert_eq!(value["headers"]["etag"], "\"1\"");
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
    }
}
