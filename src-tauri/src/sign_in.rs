//! Signing in to a source from the window: the form, what it becomes for the
//! engine, and "Test the connection".
//!
//! What the person types is kept in memory, by the source's host, for as
//! long as the app runs, and in the system's keyring when they ask (see
//! `cairn::vault`): a token is never written anywhere else. A job records
//! only that it signs in with a token; after a restart it is given the one
//! kept in the keyring, else asks for it again.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::time::Duration;

use cairn::catalog::browse::{ItemSummary, look};
use cairn::catalog::search::{Found, search};
use cairn::fetch::access::{Header, Secrets, Settings, default_netrc, parse_signing};
use cairn::fetch::{Fetcher, parse_location};
use cairn::{Error, Result};
use serde::{Deserialize, Serialize};
use specta::Type;

/// How a source is signed in to, as the window's form says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum SignInKind {
    /// The source is public.
    #[default]
    None,
    /// A token, sent as `Authorization: Bearer …` to the source's host.
    Token,
    /// The logins of a `.netrc` file (NASA Earthdata).
    Netrc,
    /// Planetary Computer signs the addresses of its files.
    PlanetaryComputer,
}

/// The sign-in form of a source.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct SignInForm {
    /// Which way.
    pub kind: SignInKind,
    /// The token, for [`SignInKind::Token`] (never written).
    #[serde(default)]
    pub token: String,
    /// The `.netrc` file, for [`SignInKind::Netrc`] (empty: the usual one).
    #[serde(default)]
    pub netrc: String,
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret.
        f.debug_struct("SignInForm")
            .field("kind", &self.kind)
            .field("netrc", &self.netrc)
            .finish_non_exhaustive()
    }
}

impl SignInForm {
    /// What a job records of this form, and its secrets.
    pub fn read(&self) -> Result<(Settings, Secrets)> {
        match self.kind {
            SignInKind::None => Ok((Settings::default(), Secrets::default())),
            SignInKind::Token => {
                let token = self.token.trim();
                if token.is_empty() {
                    return Err(Error::invalid_input(
                        "write the token the catalog gave you, or choose another way to sign in",
                    ));
                }
                let header = Header::parse(&format!("Authorization: Bearer {token}"))?;
                Ok((
                    Settings {
                        headers: vec![header.name().to_string()],
                        ..Settings::default()
                    },
                    Secrets {
                        headers: vec![header],
                    },
                ))
            }
            SignInKind::Netrc => {
                let path = match self.netrc.trim() {
                    "" => default_netrc().ok_or_else(|| {
                        Error::invalid_input(
                            "there is no .netrc file in your home folder; create one with a line such as: machine urs.earthdata.nasa.gov login NAME password PASSWORD, or give the file's path",
                        )
                    })?,
                    path => std::path::absolute(path).map_err(|e| Error::Io {
                        path: path.to_string(),
                        source: e,
                    })?,
                };
                Ok((
                    Settings {
                        netrc: Some(path),
                        ..Settings::default()
                    },
                    Secrets::default(),
                ))
            }
            SignInKind::PlanetaryComputer => {
                let sign = match std::env::var("CAIRN_PC_TOKEN_URL") {
                    Ok(url) => parse_signing(&format!("planetary-computer={url}"))?,
                    Err(_) => parse_signing("planetary-computer")?,
                };
                Ok((
                    Settings {
                        sign: Some(sign),
                        ..Settings::default()
                    },
                    Secrets::default(),
                ))
            }
        }
    }
}

/// The key sign-ins are kept under: the host and port of `source`.
fn origin(source: &str) -> Option<String> {
    let url = parse_location(source).ok()?;
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default()?
    ))
}

/// The sign-ins the person gave, by host.
#[derive(Default)]
pub struct SignIns {
    by_origin: Mutex<HashMap<String, (Settings, Secrets)>>,
    /// The hosts whose keyring entry was looked for: each is asked for once.
    recalled: Mutex<std::collections::HashSet<String>>,
    /// Held while the keyring is asked: a second caller for the same host
    /// waits for the first one's answer.
    lookup: Mutex<()>,
}

/// The keyring account a host's sign-in is kept under.
fn vault_account(origin: &str) -> String {
    format!("source {origin}")
}

impl SignIns {
    /// Keeps `form` for the host of `source` (a form that signs in with
    /// nothing forgets it).
    pub fn set(&self, source: &str, form: &SignInForm) -> Result<()> {
        let Some(origin) = origin(source) else {
            // A file on this computer: nothing to sign in to.
            return Ok(());
        };
        let read = form.read()?;
        let mut by_origin = self.by_origin.lock().unwrap_or_else(|e| e.into_inner());
        let mut recalled = self.recalled.lock().unwrap_or_else(|e| e.into_inner());
        match form.kind {
            // Back to what this computer keeps, if anything.
            SignInKind::None => {
                recalled.remove(&origin);
                by_origin.remove(&origin);
            }
            _ => {
                recalled.insert(origin.clone());
                by_origin.insert(origin, read);
            }
        }
        Ok(())
    }

    /// Keeps `form` for the host of `source` in the system's keyring.
    /// Blocking: the keyring is asked over D-Bus on Linux.
    pub fn remember(&self, source: &str, form: &SignInForm) -> Result<()> {
        let Some(origin) = origin(source) else {
            return Ok(());
        };
        let kept = serde_json::to_string(form).map_err(|e| {
            Error::invalid_input(format!("the sign-in could not be written down: {e}"))
        })?;
        cairn::vault::remember(&vault_account(&origin), &kept)
    }

    /// Removes what the keyring keeps for the host of `source`, and what
    /// was given while the app runs. Blocking, as [`SignIns::remember`].
    pub fn forget(&self, source: &str) -> Result<()> {
        let Some(origin) = origin(source) else {
            return Ok(());
        };
        self.by_origin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&origin);
        self.recalled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(origin.clone());
        cairn::vault::forget(&vault_account(&origin))
    }

    /// What the keyring keeps for the host of `source`, in words without
    /// its secret. Blocking, as [`SignIns::remember`].
    pub fn kept(&self, source: &str) -> Option<String> {
        let form = kept_form(&origin(source)?)?;
        Some(match form.kind {
            SignInKind::None => return None,
            SignInKind::Token => "a token".to_string(),
            SignInKind::Netrc if form.netrc.trim().is_empty() => {
                "the logins of your .netrc file".to_string()
            }
            SignInKind::Netrc => format!("the logins of {}", form.netrc.trim()),
            SignInKind::PlanetaryComputer => "Planetary Computer's signed addresses".to_string(),
        })
    }

    /// What the host of `source` signs in with: what was given while the
    /// app runs, else what the keyring keeps, else nothing.
    pub fn get(&self, source: &str) -> (Settings, Secrets) {
        let Some(origin) = origin(source) else {
            return Default::default();
        };
        let given = || {
            self.by_origin
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&origin)
                .cloned()
        };
        if let Some(given) = given() {
            return given;
        }
        let _lookup = self.lookup.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(given) = given() {
            return given;
        }
        let first = self
            .recalled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(origin.clone());
        let Some(read) = first
            .then(|| kept_form(&origin))
            .flatten()
            .and_then(|form| form.read().ok())
        else {
            return Default::default();
        };
        self.by_origin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(origin)
            .or_insert(read)
            .clone()
    }

    /// `fetcher`, signed in for `source` as given.
    pub fn fetcher(&self, fetcher: &Fetcher, source: &str) -> Result<Fetcher> {
        let (settings, secrets) = self.get(source);
        signed_in(fetcher, source, &settings, &secrets)
    }
}

/// The sign-in form the keyring keeps for `origin`, if any.
fn kept_form(origin: &str) -> Option<SignInForm> {
    let kept = cairn::vault::recall(&vault_account(origin))?;
    serde_json::from_str(&kept).ok()
}

fn signed_in(
    fetcher: &Fetcher,
    source: &str,
    settings: &Settings,
    secrets: &Secrets,
) -> Result<Fetcher> {
    fetcher.signed_in(settings, secrets, &parse_location(source)?)
}

/// What "Test the connection" found, in words.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
pub struct Tested {
    /// Whether everything tried worked.
    pub ok: bool,
    /// What worked, and what did not and what to do.
    pub message: String,
}

/// Opens `source` signed in as `form` says, then asks for the first byte of
/// one of its files: the catalog may be public while its files are not.
pub async fn test(fetcher: &Fetcher, source: &str, form: &SignInForm) -> Result<Tested> {
    let (settings, secrets) = form.read()?;
    let fetcher = signed_in(fetcher, source, &settings, &secrets)?;
    let entry = match look(&fetcher, source).await {
        Ok(entry) => entry,
        Err(Error::AccessDenied { status, .. }) => {
            return Ok(Tested {
                ok: false,
                message: refused("The catalog", status, form.kind),
            });
        }
        Err(error) => return Err(error),
    };
    let name = entry.title.clone().unwrap_or_else(|| entry.id.clone());
    let opened = format!("Cairn opened “{name}”");
    // One file of one item, found within a few seconds.
    let query = cairn::plan::Selection::default().search()?;
    let mut first: Option<ItemSummary> = None;
    let found = tokio::time::timeout(
        Duration::from_secs(20),
        search(&fetcher, source, &query, Some(1), |found| {
            if let Found::Item(item) = found {
                first = ItemSummary::of(&item);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }),
    )
    .await;
    let asset = first.and_then(|item| item.assets.into_iter().next());
    let Some(asset) = asset.filter(|_| matches!(found, Ok(Ok(_)))) else {
        return Ok(Tested {
            ok: true,
            message: format!(
                "{opened}. No file of it was found to try quickly; the estimate will tell whether its files can be read."
            ),
        });
    };
    let Ok(url) = url::Url::parse(&asset.href) else {
        return Ok(Tested {
            ok: true,
            message: format!("{opened}."),
        });
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Ok(Tested {
            ok: true,
            message: format!(
                "{opened}. Its files are in a bucket ({}://): their access is checked when they are copied.",
                url.scheme()
            ),
        });
    }
    let status = fetcher.probe(&url).await;
    Ok(match status {
        Ok(200..=299) => Tested {
            ok: true,
            message: format!("{opened}, and one of its files answered: signing in works."),
        },
        Ok(code @ (401 | 403)) => Tested {
            ok: false,
            message: format!(
                "{opened}, but {}",
                refused("one of its files", code, form.kind)
            ),
        },
        Ok(code) => Tested {
            ok: false,
            message: format!(
                "{opened}, but one of its files answered with an error (HTTP {code})."
            ),
        },
        Err(error) => Tested {
            ok: false,
            message: format!(
                "{opened}, but one of its files could not be read: {}",
                error.reason()
            ),
        },
    })
}

/// `what` refused access with HTTP `status`, signed in as `kind`: what to do.
fn refused(what: &str, status: u16, kind: SignInKind) -> String {
    match kind {
        SignInKind::None => {
            format!("{what} refused access (HTTP {status}): it needs a sign-in; choose how above.")
        }
        SignInKind::Token => format!(
            "{what} refused the token (HTTP {status}): check it; it may be wrong or out of date."
        ),
        SignInKind::Netrc => format!(
            "{what} refused the login (HTTP {status}): check the login and password in the .netrc file, and that it names the login host (for NASA Earthdata: urs.earthdata.nasa.gov)."
        ),
        SignInKind::PlanetaryComputer => format!(
            "{what} refused access (HTTP {status}) although signed: the token service may refuse this collection, or want a subscription key (PC_SDK_SUBSCRIPTION_KEY)."
        ),
    }
}
