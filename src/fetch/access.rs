//! Signing in where the data lives: extra headers, `.netrc` logins (with the
//! round trip through a login host that NASA Earthdata makes), and Planetary
//! Computer's signed blob addresses.
//!
//! Every HTTP request of a job (catalog documents and asset bytes alike) is
//! sent by [`Access::send`], which follows redirects itself, one hop at a
//! time, so that each hop carries only what belongs to its host:
//!
//! - the headers given for a source go to the source's host (and port) only;
//! - a `.netrc` login goes only to the host its `machine` line names, and
//!   only over https (or to this computer);
//! - cookies go back only to the scheme, host and port that set them (the
//!   login's session), whatever their `Domain` says;
//! - a header the request itself carries that could authorise it
//!   (`Authorization`, `Cookie`) is not sent on to another host;
//! - a redirect from https to http is refused.
//!
//! What a job records of this ([`Settings`]) holds no secret: the names of
//! its headers, the path of the `.netrc` file and the token service. The
//! header values live in memory only, and a signed address never leaves
//! [`Access::send`] (what it returns is the address without its signature).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::cookie::CookieStore;
use reqwest::header::{COOKIE, HeaderMap, HeaderName, HeaderValue, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::{Error, Result};

/// Planetary Computer's token service.
pub const PLANETARY_COMPUTER_TOKENS: &str =
    "https://planetarycomputer.microsoft.com/api/sas/v1/token";

/// Storage accounts of Planetary Computer that are public: their addresses
/// are read as they are.
const PUBLIC_ACCOUNTS: &[&str] = &["ai4edatasetspublicassets"];

/// The most redirects one request follows.
const MAX_HOPS: usize = 10;

/// How a job signs in, as recorded with it: nothing secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Settings {
    /// The names of the headers sent to the source's host (their values
    /// are never recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// The `.netrc` file whose logins are used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netrc: Option<PathBuf>,
    /// How blob addresses are signed, if they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<Signing>,
    /// Whether S3 buckets are read as requester-pays buckets: their owners
    /// bill the account whose credentials sign the requests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requester_pays: bool,
}

impl Settings {
    /// Whether the job signs in at all.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
            && self.netrc.is_none()
            && self.sign.is_none()
            && !self.requester_pays
    }
}

/// A way of signing addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Signing {
    /// Planetary Computer: blob addresses get a SAS token from its token
    /// service (`{token_url}/{account}/{container}`).
    PlanetaryComputer {
        /// The token service.
        token_url: String,
    },
}

/// One header, as given: `Name: value`.
#[derive(Clone)]
pub struct Header {
    name: HeaderName,
    value: HeaderValue,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value is a secret.
        write!(f, "{}: …", self.name)
    }
}

impl Header {
    /// Reads `Name: value`.
    pub fn parse(text: &str) -> Result<Header> {
        let Some((name, value)) = text.split_once(':') else {
            return Err(Error::invalid_input(
                "a header is written as Name: value (for example Authorization: Bearer …); this one has no colon",
            ));
        };
        // Not repeated in the error: a mistyped header may hold its secret there.
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            Error::invalid_input(
                "the part of a header before its colon must be its name (letters, digits and dashes), as in Authorization: Bearer …",
            )
        })?;
        if matches!(
            name.as_str(),
            "host" | "content-length" | "range" | "if-range" | "cookie"
        ) {
            return Err(Error::invalid_input(format!(
                "the {name} header is set by Cairn itself and cannot be given"
            )));
        }
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            Error::invalid_input(format!(
                "the value of the {name} header holds characters a header cannot carry (a line break, or a control character)"
            ))
        })?;
        value.set_sensitive(true);
        Ok(Header { name, value })
    }

    /// The header's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
}

/// Reads `--sign`: `planetary-computer`, or `planetary-computer=TOKEN_URL`.
pub fn parse_signing(text: &str) -> Result<Signing> {
    let (kind, url) = match text.split_once('=') {
        Some((kind, url)) => (kind.trim(), Some(url.trim())),
        None => (text.trim(), None),
    };
    match kind {
        "planetary-computer" | "pc" => {
            let token_url = url.unwrap_or(PLANETARY_COMPUTER_TOKENS);
            let parsed = Url::parse(token_url).map_err(|_| {
                Error::invalid_input(format!(
                    "{token_url:?} is not a web address; give the address of the token service, such as {PLANETARY_COMPUTER_TOKENS}"
                ))
            })?;
            if !private_way(&parsed) {
                return Err(Error::invalid_input(format!(
                    "the token service {token_url} must be an https address (or one on this computer)"
                )));
            }
            Ok(Signing::PlanetaryComputer {
                token_url: parsed.as_str().trim_end_matches('/').to_string(),
            })
        }
        other => Err(Error::invalid_input(format!(
            "Cairn does not know how to sign addresses for {other:?}; it knows planetary-computer"
        ))),
    }
}

/// The `.netrc` file used when none is named: `$NETRC`, else `~/.netrc`.
pub fn default_netrc() -> Option<PathBuf> {
    netrc::Netrc::get_file()
}

/// The secrets of a job's [`Settings`], held in memory only.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// The headers' values.
    pub headers: Vec<Header>,
}

/// Scheme, host and port, as a request goes to them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn of(url: &Url) -> Option<Origin> {
        Some(Origin {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
    }
}

/// Whether what authorises a request may travel to `url` in clear: over
/// https, or to this computer.
fn private_way(url: &Url) -> bool {
    url.scheme() == "https" || on_this_computer(url)
}

/// Whether `url` is on this computer (a loopback address or `localhost`).
pub(crate) fn on_this_computer(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// What a job sends to sign in, and what it learns on the way (cookies,
/// tokens). Shared by all of a job's requests.
#[derive(Default)]
pub struct Access {
    settings: Settings,
    /// The headers, and the host they go to.
    headers: Option<(Origin, Vec<Header>)>,
    /// `.netrc` logins by host: (login, password).
    logins: HashMap<String, (String, String)>,
    /// Cookies, by the origin that set them.
    cookies: std::sync::Mutex<HashMap<Origin, Arc<reqwest::cookie::Jar>>>,
    sas: Option<Sas>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// One request to send through [`Access::send`].
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// GET, HEAD or POST.
    pub method: Method,
    /// Where to.
    pub url: &'a Url,
    /// Headers of the request itself (Accept, Range): sent on every hop.
    pub headers: HeaderMap,
    /// A JSON body (POST).
    pub body: Option<&'a Value>,
}

impl<'a> Outgoing<'a> {
    /// A GET of `url`.
    pub fn get(url: &'a Url) -> Outgoing<'a> {
        Outgoing {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// With one more header.
    pub fn header(mut self, name: HeaderName, value: impl TryInto<HeaderValue>) -> Outgoing<'a> {
        if let Ok(value) = value.try_into() {
            self.headers.insert(name, value);
        }
        self
    }
}

/// An answer, and the address it came from in the end (after redirects,
/// without any signature Cairn added).
pub struct Answer {
    /// The server's answer.
    pub response: reqwest::Response,
    /// Where it came from.
    pub at: Url,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The response's own Debug names the address as sent (signed).
        f.debug_struct("Answer")
            .field("status", &self.response.status())
            .field("at", &crate::provenance::redact(self.at.as_str()))
            .finish()
    }
}

impl Access {
    /// Nothing to sign in with: requests go as they are (redirects are
    /// still followed hop by hop, and https to http refused).
    pub fn none() -> Arc<Access> {
        Arc::new(Access::default())
    }

    /// Whether it signs in to nothing: no headers, no `.netrc`, no signed
    /// blob addresses, no requester-pays reading.
    pub fn is_anonymous(&self) -> bool {
        self.settings.is_empty()
            && self.headers.is_none()
            && self.logins.is_empty()
            && self.sas.is_none()
    }

    /// Whether S3 buckets are read as requester-pays buckets.
    pub fn requester_pays(&self) -> bool {
        self.settings.requester_pays
    }

    /// Signing in as `settings` say, for the source at `source`, with
    /// `secrets` (the values of its headers). A header the settings name
    /// without a value is refused in words; so is a `.netrc` file that
    /// cannot be read.
    pub fn new(settings: &Settings, secrets: &Secrets, source: &Url) -> Result<Access> {
        let missing: Vec<&str> = settings
            .headers
            .iter()
            .filter(|name| {
                !secrets
                    .headers
                    .iter()
                    .any(|h| h.name().eq_ignore_ascii_case(name))
            })
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Error::invalid_input(format!(
                "this job signs in to {} with the header{} {}, whose value Cairn does not keep once it stops; give {} again to continue",
                source.host_str().unwrap_or("its source"),
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
            )));
        }
        // Only the headers the job names: a value kept from before is not sent.
        let named: Vec<Header> = secrets
            .headers
            .iter()
            .filter(|h| {
                settings
                    .headers
                    .iter()
                    .any(|name| h.name().eq_ignore_ascii_case(name))
            })
            .cloned()
            .collect();
        let headers = match (Origin::of(source), named.is_empty()) {
            (Some(origin), false) => Some((origin, named)),
            _ => None,
        };
        let logins = match &settings.netrc {
            Some(path) => read_netrc(path)?,
            None => HashMap::new(),
        };
        let sas = settings.sign.as_ref().map(|signing| match signing {
            Signing::PlanetaryComputer { token_url } => Sas::new(token_url),
        });
        Ok(Access {
            settings: settings.clone(),
            headers,
            logins,
            cookies: Default::default(),
            sas,
        })
    }

    /// Sends `request` with `client`, following redirects hop by hop with
    /// the credentials of each hop's host, and signing blob addresses. A
    /// signed address the server refuses (403) is signed again with a new
    /// token, once. `cancel` stops the wait.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        request: Outgoing<'_>,
        cancel: &CancellationToken,
    ) -> Result<Answer> {
        let asked = request.url.as_str();
        let first = Origin::of(request.url);
        let mut own = request.headers.clone();
        let mut url = request.url.clone();
        let (mut method, mut body) = (request.method.clone(), request.body);
        let mut resigned = false;
        let mut hops = 0;
        loop {
            let signed = match &self.sas {
                Some(sas) => sas.sign(client, &url, cancel).await?,
                None => None,
            };
            let target = signed.as_ref().map_or(&url, |(signed, _, _)| signed);
            let mut builder = client
                .request(method.clone(), target.clone())
                .headers(own.clone());
            builder = self.credentials(builder, &url);
            if let Some(body) = body {
                builder = builder.json(body);
            }
            let response = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Error::Cancelled),
                response = builder.send() => {
                    response.map_err(|e| super::transport_error(asked, &e))?
                }
            };
            if response.headers().contains_key(SET_COOKIE)
                && let Some(jar) = self.jar(&url)
            {
                let mut set = response.headers().get_all(SET_COOKIE).iter();
                jar.set_cookies(&mut set, &url);
            }
            let status = response.status();
            if status == StatusCode::FORBIDDEN
                && let Some((_, key, token)) = &signed
                && !resigned
                && let Some(sas) = &self.sas
            {
                // The token may have run out early (or the clocks differ).
                sas.forget(key, token).await;
                resigned = true;
                continue;
            }
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok(Answer { response, at: url });
            }
            let Some(location) = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(Answer { response, at: url });
            };
            let next = url.join(location).map_err(|_| Error::Redirect {
                href: asked.to_string(),
                reason: format!(
                    "it leads to {:?}, which is not a valid address",
                    crate::provenance::redact(location)
                ),
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(Error::Redirect {
                    href: asked.to_string(),
                    reason: format!(
                        "it leads to {:?}, which Cairn does not follow: it follows redirects only to http and https addresses",
                        crate::provenance::redact(next.as_str())
                    ),
                });
            }
            if url.scheme() == "https" && next.scheme() == "http" {
                return Err(Error::Redirect {
                    href: asked.to_string(),
                    reason: "Cairn does not follow it: it leads from a secure (https) address to one that is not (http), where what is sent could be read on the way".into(),
                });
            }
            hops += 1;
            if hops > MAX_HOPS {
                return Err(Error::Redirect {
                    href: asked.to_string(),
                    reason: format!(
                        "Cairn does not follow it: it went through more than {MAX_HOPS} redirects"
                    ),
                });
            }
            // As browsers do: 303 (but for a HEAD), and 301 or 302 after a
            // POST, become a GET.
            if (status == StatusCode::SEE_OTHER && method != Method::HEAD)
                || (method == Method::POST
                    && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND))
            {
                method = Method::GET;
                body = None;
            }
            // What the request itself carried to authorise it stays with
            // the host it was meant for.
            if Origin::of(&next) != first {
                for name in [
                    reqwest::header::AUTHORIZATION,
                    COOKIE,
                    reqwest::header::PROXY_AUTHORIZATION,
                ] {
                    own.remove(name);
                }
            }
            url = next;
            resigned = false;
        }
    }

    /// `builder` with what `url`'s host is owed: its headers, its login,
    /// its cookies.
    fn credentials(
        &self,
        mut builder: reqwest::RequestBuilder,
        url: &Url,
    ) -> reqwest::RequestBuilder {
        let origin = Origin::of(url);
        if let Some((to, headers)) = &self.headers
            && origin.as_ref() == Some(to)
        {
            for header in headers {
                builder = builder.header(header.name.clone(), header.value.clone());
            }
        }
        if let Some(origin) = &origin
            && let Some((login, password)) = self.logins.get(&origin.host)
            && private_way(url)
        {
            builder = builder.basic_auth(login, Some(password));
        }
        if let Some(jar) = self.jar(url)
            && let Some(cookies) = jar.cookies(url)
        {
            builder = builder.header(COOKIE, cookies);
        }
        builder
    }

    /// The cookie jar of `url`'s origin.
    fn jar(&self, url: &Url) -> Option<Arc<reqwest::cookie::Jar>> {
        let origin = Origin::of(url)?;
        let mut jars = self.cookies.lock().unwrap_or_else(|e| e.into_inner());
        Some(jars.entry(origin).or_default().clone())
    }
}

/// The logins of a `.netrc` file, by host (its `default` entry is not
/// used: a password goes only to the host it names).
fn read_netrc(path: &Path) -> Result<HashMap<String, (String, String)>> {
    let parsed = netrc::Netrc::from_file(path).map_err(|error| match error {
        netrc::Error::Io(source) => match source.kind() {
            std::io::ErrorKind::NotFound => Error::invalid_input(format!(
                "there is no .netrc file at {}; create it with a line such as: machine urs.earthdata.nasa.gov login NAME password PASSWORD",
                path.display()
            )),
            _ => Error::io(path, source),
        },
        // The parser's message may quote the file: it is not repeated.
        netrc::Error::Parsing { .. } => Error::invalid_input(format!(
            "{} could not be read as a .netrc file: each login is written as machine HOST login NAME password PASSWORD",
            path.display()
        )),
    })?;
    Ok(parsed
        .hosts
        .into_iter()
        .filter(|(host, _)| host != "default")
        .map(|(host, auth)| (host.to_ascii_lowercase(), (auth.login, auth.password)))
        .collect())
}

/// A blob container: (account, container).
type Container = (String, String);

/// A SAS token and when to get a new one.
#[derive(Clone)]
struct Token {
    /// The query to add (empty: the container is not signed).
    query: String,
    renew_at: SystemTime,
}

/// Planetary Computer's signing: a SAS token per container from the token
/// service, kept until shortly before it runs out.
struct Sas {
    token_url: String,
    tokens: tokio::sync::Mutex<HashMap<Container, Token>>,
}

impl Sas {
    fn new(token_url: &str) -> Sas {
        Sas {
            token_url: token_url.trim_end_matches('/').to_string(),
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// `url` signed, the container whose token signed it, and the token;
    /// `None` for an address that is not a blob, is public, is signed
    /// already, or is in a container the token service does not know.
    async fn sign(
        &self,
        client: &reqwest::Client,
        url: &Url,
        cancel: &CancellationToken,
    ) -> Result<Option<(Url, Container, String)>> {
        let Some(container) = blob_container(url) else {
            return Ok(None);
        };
        // A signature is never sent where it could be read on the way.
        if !private_way(url) {
            return Ok(None);
        }
        if PUBLIC_ACCOUNTS.contains(&container.0.as_str())
            || url.query_pairs().any(|(name, _)| name == "sig")
        {
            return Ok(None);
        }
        // One request for a token at a time: the others wait for it.
        let mut tokens = self.tokens.lock().await;
        let now = SystemTime::now();
        let token = match tokens.get(&container) {
            Some(token) if token.renew_at > now => token.clone(),
            _ => {
                let token = self.fetch(client, &container, cancel).await?;
                tokens.insert(container.clone(), token.clone());
                token
            }
        };
        drop(tokens);
        if token.query.is_empty() {
            return Ok(None);
        }
        let mut signed = url.clone();
        let query = match url.query() {
            Some(query) if !query.is_empty() => format!("{query}&{}", token.query),
            _ => token.query.clone(),
        };
        signed.set_query(Some(&query));
        Ok(Some((signed, container, token.query)))
    }

    /// Forgets the token of `container` (the server refused it).
    /// Forgets `token`, the token of `container` the server refused (unless
    /// another request already got a new one).
    async fn forget(&self, container: &Container, token: &str) {
        let mut tokens = self.tokens.lock().await;
        if tokens.get(container).is_some_and(|t| t.query == token) {
            tokens.remove(container);
        }
    }

    /// Asks the token service for a token for `container`.
    async fn fetch(
        &self,
        client: &reqwest::Client,
        (account, container): &Container,
        cancel: &CancellationToken,
    ) -> Result<Token> {
        let address = format!("{}/{account}/{container}", self.token_url);
        let url = Url::parse(&address).map_err(|_| {
            Error::invalid_input(format!("{address} is not a valid token service address"))
        })?;
        let mut request = client.get(url.clone());
        // Planetary Computer's subscription key, when the person has one.
        if let Ok(key) = std::env::var("PC_SDK_SUBSCRIPTION_KEY")
            && private_way(&url)
            && let Ok(mut value) = HeaderValue::from_str(key.trim())
        {
            value.set_sensitive(true);
            request = request.header("ocp-apim-subscription-key", value);
        }
        // The token service is asked as it is: not signed, and not
        // followed elsewhere (the client follows no redirect).
        let mut response = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Error::Cancelled),
            response = request.send() => {
                response.map_err(|e| super::transport_error(&address, &e))?
            }
        };
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            // Not a container the service signs (a public one, or an
            // address that only looks like a blob): read as it is.
            return Ok(Token {
                query: String::new(),
                renew_at: SystemTime::now() + Duration::from_secs(3600),
            });
        }
        if !status.is_success() {
            let error = super::status_error_of(&address, &mut response).await;
            return Err(match error {
                Error::Unavailable { .. } | Error::AccessDenied { .. } => error,
                _ => error_words(&address, status.as_u16()),
            });
        }
        #[derive(Deserialize)]
        struct Answer {
            token: String,
            #[serde(rename = "msft:expiry")]
            expiry: String,
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| super::transport_error(&address, &e))?;
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|_| {
            Error::not_stac(
                &address,
                "the token service did not answer with a token ({\"token\", \"msft:expiry\"}); check the address given to --sign",
            )
        })?;
        let expiry = chrono::DateTime::parse_from_rfc3339(&answer.expiry)
            .map(SystemTime::from)
            .map_err(|_| {
                Error::not_stac(
                    &address,
                    "the token service gave a token without a valid time it runs out",
                )
            })?;
        let now = SystemTime::now();
        let life = expiry.duration_since(now).unwrap_or(Duration::ZERO);
        // Renewed a quarter of its life before it runs out, at most five
        // minutes before.
        let margin = (life / 4).min(Duration::from_secs(300));
        Ok(Token {
            query: answer.token.trim_start_matches('?').to_string(),
            renew_at: now + life - margin,
        })
    }
}

/// The error for a token service that answered `status`.
fn error_words(address: &str, status: u16) -> Error {
    Error::Http {
        href: address.to_string(),
        status,
        detail: Some("the token service did not give a token for this storage container".into()),
    }
}

/// The (account, container) of a blob address: the account-host form
/// (`https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB`), or the path form
/// the storage emulators use on this computer
/// (`http://127.0.0.1:10000/ACCOUNT/CONTAINER/BLOB`).
pub fn blob_container(url: &Url) -> Option<Container> {
    let host = url.host_str()?.to_ascii_lowercase();
    let mut segments = url.path_segments()?.filter(|s| !s.is_empty());
    if let Some(account) = host.strip_suffix(".blob.core.windows.net") {
        let container = segments.next()?;
        segments.next()?;
        return Some((account.to_string(), container.to_string()));
    }
    if on_this_computer(url) {
        let account = segments.next()?;
        let container = segments.next()?;
        segments.next()?;
        return Some((account.to_string(), container.to_string()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_addresses_are_found_in_both_forms() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            blob_container(&url(
                "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/01/C/x.tif"
            )),
            Some(("sentinel2l2a01".into(), "sentinel2-l2".into()))
        );
        assert_eq!(
            blob_container(&url("http://127.0.0.1:10000/devstoreaccount1/data/a/b.tif")),
            Some(("devstoreaccount1".into(), "data".into()))
        );
        // A container alone is not a blob; other hosts are not blobs, nor
        // is the path form anywhere but on this computer.
        assert_eq!(
            blob_container(&url("https://acct.blob.core.windows.net/data")),
            None
        );
        assert_eq!(blob_container(&url("https://example.org/a/b/c.tif")), None);
        assert_eq!(
            blob_container(&url("http://203.0.113.7/acct/data/x.tif")),
            None
        );
    }

    #[test]
    fn headers_are_read_and_their_values_kept_out_of_sight() {
        let header = Header::parse("Authorization: Bearer s3cret").unwrap();
        assert_eq!(header.name(), "authorization");
        assert!(!format!("{header:?}").contains("s3cret"));
        for bad in ["no colon", "bad name: x", "Host: example.org", "X: a\nb"] {
            assert!(Header::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signing_is_read_with_or_without_its_service() {
        assert_eq!(
            parse_signing("planetary-computer").unwrap(),
            Signing::PlanetaryComputer {
                token_url: PLANETARY_COMPUTER_TOKENS.into()
            }
        );
        assert_eq!(
            parse_signing("planetary-computer=http://127.0.0.1:9/token/").unwrap(),
            Signing::PlanetaryComputer {
                token_url: "http://127.0.0.1:9/token".into()
            }
        );
        assert!(parse_signing("aws").is_err());
        assert!(parse_signing("planetary-computer=ftp://x").is_err());
        assert!(parse_signing("planetary-computer=http://tokens.example.org/t").is_err());
    }

    #[test]
    fn a_job_without_the_value_of_its_header_says_so() {
        let settings = Settings {
            headers: vec!["x-api-key".into()],
            ..Settings::default()
        };
        let source = Url::parse("https://stac.example.org/").unwrap();
        let error = Access::new(&settings, &Secrets::default(), &source).unwrap_err();
        assert!(error.to_string().contains("x-api-key"), "{error}");
        let secrets = Secrets {
            headers: vec![Header::parse("X-Api-Key: k").unwrap()],
        };
        assert!(Access::new(&settings, &secrets, &source).is_ok());
    }

    #[test]
    fn netrc_logins_are_read_by_host_without_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        std::fs::write(
            &path,
            "machine urs.example.org login me password pw\ndefault login any password other\n",
        )
        .unwrap();
        let logins = read_netrc(&path).unwrap();
        assert_eq!(logins.len(), 1);
        assert_eq!(logins["urs.example.org"], ("me".into(), "pw".into()));
        let error = read_netrc(&dir.path().join("none")).unwrap_err();
        assert!(error.to_string().contains("no .netrc file"), "{error}");
    }
}
