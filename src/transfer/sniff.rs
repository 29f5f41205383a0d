//! Telling a file from a web page: when the catalog says what an asset is (its
//! media type, or else its file name's extension says), an answer that plainly
//! is something else is refused instead of saved under the asset's name.
//!
//! A login page after a redirect, a captive portal, an object store's XML
//! error sent with status 200: each arrives as a successful download, and
//! without a checksum in the catalog nothing else would notice. Only answers
//! that are plainly wrong are refused: a web page or a text document where a
//! binary format (TIFF, PNG, JPEG, JPEG 2000, HDF5/NetCDF, Zip, Parquet, ...)
//! was promised. Two binary formats are never judged against each other, since
//! catalogs do get media types wrong.

/// What the catalog promises, when it promises a binary format.
fn binary_kind(media_type: Option<&str>, path: &str) -> Option<&'static str> {
    if let Some(media) = media_type {
        let media = media.split(';').next().unwrap_or_default().trim();
        let media = media.to_ascii_lowercase();
        let kind = match media.as_str() {
            m if m.starts_with("image/tiff") => "TIFF",
            "image/png" => "PNG",
            "image/jpeg" | "image/jpg" => "JPEG",
            "image/jp2" | "image/jpx" | "image/j2k" => "JPEG 2000",
            "image/webp" => "WebP",
            "application/x-hdf5" | "application/x-hdf" | "application/hdf5" => "HDF5",
            "application/netcdf" | "application/x-netcdf" => "NetCDF",
            "application/zip" | "application/x-zip-compressed" => "Zip",
            "application/gzip" | "application/x-gzip" => "gzip",
            "application/vnd.apache.parquet" | "application/x-parquet" => "Parquet",
            "application/x-zarr" | "application/vnd+zarr" => return None,
            // Text formats in image clothing (SVG is XML).
            m if m.ends_with("+xml") || m.ends_with("+json") => return None,
            m if m.starts_with("image/") => "image",
            m if m.starts_with("video/") || m.starts_with("audio/") => "media",
            _ => return None,
        };
        return Some(kind);
    }
    let name = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let extension = name.rsplit_once('.').map(|(_, e)| e)?;
    Some(match extension {
        "tif" | "tiff" => "TIFF",
        "png" => "PNG",
        "jpg" | "jpeg" => "JPEG",
        "jp2" | "j2k" => "JPEG 2000",
        "h5" | "hdf" | "hdf5" | "he5" => "HDF5",
        "nc" | "nc4" => "NetCDF",
        "zip" => "Zip",
        "gz" => "gzip",
        "parquet" => "Parquet",
        _ => return None,
    })
}

/// Whether `first` (the start of a body) is a web page or another text
/// document, and if so a few words of it to show.
fn text_start(first: &[u8]) -> Option<String> {
    let trimmed = first
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(first)
        .trim_ascii_start();
    if trimmed.is_empty() {
        return None;
    }
    let head = String::from_utf8_lossy(&trimmed[..trimmed.len().min(256)]).into_owned();
    let lower = head.to_ascii_lowercase();
    let markup = [
        "<!doctype",
        "<html",
        "<head",
        "<body",
        "<?xml",
        "<error",
        "<title",
    ]
    .iter()
    .any(|tag| lower.starts_with(tag));
    // Text all the way: printable characters and white space only.
    let textual = trimmed[..trimmed.len().min(512)]
        .iter()
        .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
        && std::str::from_utf8(&trimmed[..trimmed.len().min(512)]).is_ok();
    (markup || (textual && trimmed.len() >= 16)).then(|| {
        let line: String = head
            .split(['\n', '\r'])
            .next()
            .unwrap_or_default()
            .chars()
            .take(80)
            .collect();
        line
    })
}

/// Why an answer is not the asset the catalog describes, if it plainly is
/// not. `media_type` is the catalog's; `path` the address's path;
/// `content_type` the server's header; `first` the first bytes of the body
/// (`None` when the header alone is judged).
pub fn wrong_content(
    media_type: Option<&str>,
    path: &str,
    content_type: Option<&str>,
    first: Option<&[u8]>,
) -> Option<String> {
    let kind = binary_kind(media_type, path)?;
    let web_page = || {
        format!(
            "the server sent a web page instead of the {kind} file the catalog describes (perhaps a login page, or a notice that the file moved); nothing was saved"
        )
    };
    let html = content_type.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.starts_with("text/html") || t.starts_with("application/xhtml")
    });
    if html {
        return Some(web_page());
    }
    let start = text_start(first?)?;
    Some(if start.to_ascii_lowercase().contains("html") {
        web_page()
    } else {
        format!(
            "the server sent text instead of the {kind} file the catalog describes (it begins {start:?}); nothing was saved"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: &[u8] = b"\n  <!DOCTYPE html>\n<html><head><title>Sign in</title>";

    #[test]
    fn a_web_page_for_a_binary_asset_is_refused() {
        for media in [
            Some("image/tiff; application=geotiff; profile=cloud-optimized"),
            Some("image/png"),
            Some("application/x-hdf5"),
            Some("application/vnd.apache.parquet"),
            None,
        ] {
            let reason = wrong_content(media, "/a/B04.tif", None, Some(LOGIN)).unwrap();
            assert!(reason.contains("web page"), "{reason}");
            let reason = wrong_content(media, "/a/B04.tif", Some("text/html; charset=utf-8"), None);
            assert!(reason.unwrap().contains("perhaps a login page"));
        }
        let xml = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>";
        let reason = wrong_content(Some("image/jp2"), "/x", None, Some(xml)).unwrap();
        assert!(reason.contains("JPEG 2000"), "{reason}");
        let text = b"Service temporarily unavailable, try again later";
        let reason = wrong_content(Some("application/netcdf"), "/x", None, Some(text)).unwrap();
        assert!(reason.contains("sent text"), "{reason}");
    }

    #[test]
    fn real_files_and_text_assets_pass() {
        let tiff = b"II*\0\x08\0\0\0\x10\0\0\x01\x03\0\x01\0\0\0";
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let parquet = b"PAR1\x15\x04\x15\x10\x15\x14L";
        for (media, body) in [
            (Some("image/tiff"), &tiff[..]),
            (Some("image/png"), &png[..]),
            (Some("application/x-parquet"), &parquet[..]),
            // Another binary format than promised: the catalog may be wrong.
            (Some("image/tiff"), &png[..]),
        ] {
            assert_eq!(
                wrong_content(media, "/x", Some("application/octet-stream"), Some(body)),
                None
            );
        }
        // Text assets, or assets of unknown kind, are not judged.
        for media in [
            Some("text/html"),
            Some("application/json"),
            Some("text/plain"),
            Some("application/geo+json"),
            None,
        ] {
            assert_eq!(
                wrong_content(media, "/x/metadata", Some("text/html"), Some(LOGIN)),
                None
            );
        }
    }
}
