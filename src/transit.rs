//! Bytes checked on their way into a bucket.
//!
//! Every request object_store sends for Cairn goes through [`Checked`], an
//! HTTP client that hashes the body of each upload and compares the hash
//! with the one the store says it received:
//! - Azure Blob answers Put Blob, Put Block and Put Block List with the
//!   `Content-MD5` of the body it received.
//! - Google Cloud Storage answers an upload and each part of a multipart
//!   upload with `x-goog-hash: md5=...`. Each upload also carries its own
//!   `Content-MD5`, which GCS checks itself (it refuses the request with
//!   BadDigest when the bytes differ).
//! - S3 checks the `x-amz-checksum-sha256` object_store sends with each
//!   request, and answers with the checksum it keeps.
//!
//! A store that names no hash is not checked this way (the object's size
//! still is, after the upload). A difference, or the store's own refusal of
//! a body that does not match the hash sent with it, fails the request with
//! a [`Mismatch`], which [`damage`] finds among an error's sources; the
//! upload is then sent again (see `Destination::publish`).

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use digest::Digest;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService, ReqwestConnector,
};

/// The kind of store a client speaks to: it decides which hash is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    S3,
    Azure,
    Gcs,
}

/// An object_store HTTP connector whose uploads are checked in transit.
#[derive(Debug)]
pub(crate) struct Checked(pub(crate) Store);

impl HttpConnector for Checked {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Service {
            inner,
            store: self.0,
        }))
    }
}

/// The store received other bytes than were sent.
#[derive(Debug, thiserror::Error)]
#[error("the store received other bytes than were sent ({what})")]
pub struct Mismatch {
    what: String,
    /// Whether the store kept the damaged bytes under the object's key (an
    /// upload in one request, or the request that completes a multipart
    /// upload), rather than refusing them or taking them as one part.
    stored: bool,
}

impl Mismatch {
    /// A mismatch as a failed request holds it, for tests of the words.
    pub(crate) fn example() -> HttpError {
        HttpError::new(
            HttpErrorKind::Unknown,
            Mismatch {
                what: "MD5 XrY7u+Ae7tCTyyK7j1rNww== sent, ZWz5o1aFrFbLgBNR9VNngA== received".into(),
                stored: true,
            },
        )
    }
}

/// Whether `error`, or one of its sources, says that a store received other
/// bytes than were sent ([`Mismatch`]); if so, whether it kept them under
/// the object's key (`Some(true)`: the object is damaged) or not.
pub fn damage(error: &(dyn std::error::Error + 'static)) -> Option<bool> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(mismatch) = error.downcast_ref::<Mismatch>() {
            return Some(mismatch.stored);
        }
        next = error.source();
    }
    None
}

/// The codes with which stores refuse a body that does not match the hash
/// sent with it (S3, GCS, Azure, MinIO).
const REFUSALS: [&str; 5] = [
    "<Code>BadDigest</Code>",
    "<Code>InvalidDigest</Code>",
    "<Code>Md5Mismatch</Code>",
    "<Code>XAmzContentSHA256Mismatch</Code>",
    "<Code>XAmzContentChecksumMismatch</Code>",
];

/// The most of a refusal's body read to find its code.
const REFUSAL_READ: usize = 64 * 1024;

/// Whether the request at `uri` uploads one part of a multipart upload
/// (S3's and GCS's `partNumber`, Azure's Put Block) rather than a whole
/// object.
fn is_part(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.starts_with("partNumber=") || pair == "comp=block")
    })
}

#[derive(Debug)]
struct Service {
    inner: HttpClient,
    store: Store,
}

#[async_trait]
impl HttpService for Service {
    async fn call(&self, mut request: HttpRequest) -> Result<HttpResponse, HttpError> {
        // Uploads are PUTs with a body; a copy or a listing has none.
        if request.method() != Method::PUT || request.body().content_length() == 0 {
            return self.inner.execute(request).await;
        }
        // A clone shares the body's buffers: nothing is copied.
        let body = request.body().clone();
        if self.store == Store::Gcs && !request.headers().contains_key("content-md5") {
            let md5 = BASE64.encode(digest::<md5::Md5>(&body).await?);
            // Base64 is always a valid header value.
            let value = HeaderValue::from_str(&md5).expect("base64");
            request.headers_mut().insert("content-md5", value);
        }
        let stored = !is_part(request.uri());
        let response = self.inner.execute(request).await?;
        if response.status() == http::StatusCode::BAD_REQUEST {
            return refusal(response).await;
        }
        if !response.status().is_success() {
            return Ok(response);
        }
        let Some(named) = Named::find(response.headers(), self.store) else {
            return Ok(response);
        };
        let sent = named.of(&body).await?;
        if sent != named.value {
            return Err(HttpError::new(
                HttpErrorKind::Unknown,
                Mismatch {
                    what: format!(
                        "{} {sent} sent, {} received",
                        named.kind.name(),
                        named.value
                    ),
                    stored,
                },
            ));
        }
        Ok(response)
    }
}

/// A refusal of an upload (HTTP 400): a [`Mismatch`] when the store says
/// the body did not match its hash, else the answer as it came.
async fn refusal(response: HttpResponse) -> Result<HttpResponse, HttpError> {
    let (parts, body) = response.into_parts();
    let mut read = Vec::new();
    let mut body = body;
    while read.len() < REFUSAL_READ
        && let Some(frame) = body.frame().await
    {
        if let Ok(data) = frame?.into_data() {
            read.extend_from_slice(&data);
        }
    }
    let text = String::from_utf8_lossy(&read);
    if let Some(code) = REFUSALS.iter().find(|code| text.contains(**code)) {
        return Err(HttpError::new(
            HttpErrorKind::Unknown,
            Mismatch {
                what: format!(
                    "the store refused it: {}",
                    code.trim_start_matches("<Code>")
                        .trim_end_matches("</Code>")
                ),
                stored: false,
            },
        ));
    }
    let rest = http_body_util::Full::new(bytes::Bytes::from(read))
        .map_err(|never: std::convert::Infallible| match never {});
    Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(rest)))
}

/// A hash a store names in its answer to an upload, as it writes it.
#[derive(Debug, PartialEq)]
struct Named {
    kind: Kind,
    value: String,
}

/// The hashes stores name, each as it is written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// SHA-256, base64 (S3's `x-amz-checksum-sha256`).
    Sha256,
    /// MD5, base64 (`Content-MD5`, GCS's `x-goog-hash: md5=`).
    Md5,
    /// MD5, hex (an S3 ETag, of an object not encrypted with a key the
    /// store does not hold).
    Md5Hex,
    /// Azure's CRC-64 (the NVMe polynomial), base64 of its little-endian
    /// bytes (`x-ms-content-crc64`, the answer to Put Block).
    Crc64,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sha256 => "SHA-256",
            Kind::Md5 | Kind::Md5Hex => "MD5",
            Kind::Crc64 => "CRC-64",
        }
    }
}

impl Named {
    /// The hash `headers` name for the body of the request they answer.
    fn find(headers: &HeaderMap, store: Store) -> Option<Named> {
        let value = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::trim)
                .find(|v| !v.is_empty())
                .map(str::to_string)
        };
        let named = |kind, value| Some(Named { kind, value });
        match store {
            Store::S3 => {
                if let Some(sha256) = value("x-amz-checksum-sha256") {
                    return named(Kind::Sha256, sha256);
                }
                // An object encrypted with a KMS key or the customer's key
                // has an ETag that is not its MD5.
                let encrypted = value("x-amz-server-side-encryption")
                    .is_some_and(|v| v != "AES256")
                    || value("x-amz-server-side-encryption-customer-algorithm").is_some();
                let etag = value("etag")?;
                let etag = etag.trim_matches('"');
                let md5 = etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
                if encrypted || !md5 {
                    return None;
                }
                named(Kind::Md5Hex, etag.to_ascii_lowercase())
            }
            Store::Azure => match value("content-md5") {
                Some(md5) => named(Kind::Md5, md5),
                None => named(Kind::Crc64, value("x-ms-content-crc64")?),
            },
            // `x-goog-hash: crc32c=...,md5=...`, in one header or several.
            Store::Gcs => headers
                .get_all("x-goog-hash")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .find_map(|part| part.trim().strip_prefix("md5="))
                .and_then(|md5| named(Kind::Md5, md5.to_string())),
        }
    }

    /// The same hash of `body`, written the same way.
    async fn of(&self, body: &HttpRequestBody) -> Result<String, HttpError> {
        Ok(match self.kind {
            Kind::Sha256 => BASE64.encode(digest::<sha2::Sha256>(body).await?),
            Kind::Md5 => BASE64.encode(digest::<md5::Md5>(body).await?),
            Kind::Md5Hex => hex::encode(digest::<md5::Md5>(body).await?),
            Kind::Crc64 => {
                let mut crc = CRC64.digest();
                for_each_piece(body, |piece| crc.update(piece)).await?;
                BASE64.encode(crc.finalize().to_le_bytes())
            }
        })
    }
}

/// Azure Storage's CRC-64: the NVMe polynomial, reflected.
static CRC64: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_NVME);

/// The digest of a request body, read without copying it.
async fn digest<D: Digest + Send>(body: &HttpRequestBody) -> Result<Vec<u8>, HttpError> {
    let mut hasher = D::new();
    for_each_piece(body, |piece| hasher.update(piece)).await?;
    Ok(hasher.finalize().to_vec())
}

/// Calls `f` with each piece of a request body in order.
async fn for_each_piece(
    body: &HttpRequestBody,
    mut f: impl FnMut(&[u8]) + Send,
) -> Result<(), HttpError> {
    let mut body = body.clone();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            f(&data);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn found(pairs: &[(&'static str, &str)], store: Store) -> Option<(Kind, String)> {
        Named::find(&headers(pairs), store).map(|n| (n.kind, n.value))
    }

    #[test]
    fn the_hash_a_store_names_is_found_in_its_answer() {
        let gcs = [
            ("x-goog-hash", "crc32c=n03x6A=="),
            ("x-goog-hash", "md5=Ojk9c3dhfxgoKVVHYwFbHQ=="),
        ];
        assert_eq!(
            found(&gcs, Store::Gcs),
            Some((Kind::Md5, "Ojk9c3dhfxgoKVVHYwFbHQ==".into()))
        );
        assert_eq!(
            found(&[("x-goog-hash", "crc32c=n03x6A==, md5=AAAA")], Store::Gcs),
            Some((Kind::Md5, "AAAA".into()))
        );
        assert_eq!(
            found(&[("x-goog-hash", "crc32c=n03x6A==")], Store::Gcs),
            None
        );
        // Azure: Put Blob names the MD5, Put Block the CRC-64.
        let blob = [("content-md5", " BBBB "), ("x-ms-content-crc64", "CCCC")];
        assert_eq!(found(&blob, Store::Azure), Some((Kind::Md5, "BBBB".into())));
        let block = [("x-ms-content-crc64", "CCCC")];
        assert_eq!(
            found(&block, Store::Azure),
            Some((Kind::Crc64, "CCCC".into()))
        );
        // S3: the checksum it kept, else an ETag that is an MD5.
        let etag = "\"656CF9A35685AC56CB801351F5536780\"";
        assert_eq!(
            found(
                &[("etag", etag), ("x-amz-checksum-sha256", "DDDD")],
                Store::S3
            ),
            Some((Kind::Sha256, "DDDD".into()))
        );
        assert_eq!(
            found(
                &[("etag", etag), ("x-amz-server-side-encryption", "AES256")],
                Store::S3
            ),
            Some((Kind::Md5Hex, "656cf9a35685ac56cb801351f5536780".into()))
        );
        for not_md5 in [
            vec![("etag", etag), ("x-amz-server-side-encryption", "aws:kms")],
            vec![
                ("etag", etag),
                ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
            ],
            vec![("etag", "\"656cf9a35685ac56cb801351f5536780-3\"")],
            vec![("etag", "\"0x1DA99B599D29FD0\"")],
            vec![],
        ] {
            assert_eq!(found(&not_md5, Store::S3), None, "{not_md5:?}");
        }
    }

    #[tokio::test]
    async fn a_body_in_pieces_hashes_as_one() {
        let whole = HttpRequestBody::from(b"hello world".to_vec());
        let pieces = HttpRequestBody::from(object_store::PutPayload::from_iter([
            bytes::Bytes::from_static(b"hello "),
            bytes::Bytes::from_static(b"world"),
        ]));
        for body in [&whole, &pieces] {
            let md5 = Named {
                kind: Kind::Md5,
                value: String::new(),
            };
            assert_eq!(md5.of(body).await.unwrap(), "XrY7u+Ae7tCTyyK7j1rNww==");
            let md5 = Named {
                kind: Kind::Md5Hex,
                value: String::new(),
            };
            assert_eq!(
                md5.of(body).await.unwrap(),
                "5eb63bbbe01eeed093cb22bb8f5acdc3"
            );
            let sha256 = Named {
                kind: Kind::Sha256,
                value: String::new(),
            };
            assert_eq!(
                sha256.of(body).await.unwrap(),
                "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
            );
        }
    }

    #[tokio::test]
    async fn the_crc64_is_azure_storages() {
        // CRC-64/NVME's check value: the CRC of "123456789".
        let body = HttpRequestBody::from(b"123456789".to_vec());
        let crc = Named {
            kind: Kind::Crc64,
            value: String::new(),
        };
        assert_eq!(
            crc.of(&body).await.unwrap(),
            BASE64.encode(0xae8b14860a799888u64.to_le_bytes())
        );
    }

    #[test]
    fn a_mismatch_is_found_among_the_sources() {
        assert_eq!(damage(&Mismatch::example()), Some(true));
        // A key or a message that only names a code is not a mismatch.
        let named = std::io::Error::other("403 Forbidden: PUT /bucket/BadDigest.tif");
        assert_eq!(damage(&named), None);
    }

    #[test]
    fn parts_are_told_from_whole_objects() {
        let uri = |u: &str| u.parse::<http::Uri>().unwrap();
        assert!(is_part(&uri("http://h/b/k?partNumber=2&uploadId=x")));
        assert!(is_part(&uri("http://h/a/c/k?comp=block&blockid=QQ%3D%3D")));
        assert!(!is_part(&uri("http://h/a/c/k?comp=blocklist")));
        assert!(!is_part(&uri("http://h/b/k")));
        assert!(!is_part(&uri("http://h/b/comp=block.tif")));
    }

    #[tokio::test]
    async fn a_refusal_for_the_hash_is_a_mismatch_and_any_other_passes_as_it_came() {
        let answer = |text: &'static str| {
            let body = http_body_util::Full::new(bytes::Bytes::from_static(text.as_bytes()))
                .map_err(|never: std::convert::Infallible| match never {});
            http::Response::builder()
                .status(400)
                .body(HttpResponseBody::new(body))
                .unwrap()
        };
        let refused = refusal(answer("<Error><Code>BadDigest</Code></Error>")).await;
        let error = refused.unwrap_err();
        assert_eq!(damage(&error), Some(false));
        assert!(error.to_string().contains("BadDigest"), "{error}");
        let other = refusal(answer(
            "<Error><Code>InvalidArgument</Code><Key>BadDigest</Key></Error>",
        ))
        .await
        .unwrap();
        assert_eq!(other.status(), 400);
        let bytes = other.into_body().bytes().await.unwrap();
        assert_eq!(
            &bytes[..],
            b"<Error><Code>InvalidArgument</Code><Key>BadDigest</Key></Error>"
        );
    }
}
