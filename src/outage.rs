//! Servers a job cannot reach, and whether to wait for them.
//!
//! A laptop that goes offline for a while, or the one server of a catalog
//! going down for the night, should not fail a job's files: every file's
//! attempts would be spent in seconds. So while a job hears from no server
//! at all, a try that cannot reach its server (the connection refused, no
//! route, no answer to the name lookup) waits for it and counts no attempt,
//! for up to [`OUTAGE`]; the job says which server it waits for, and says
//! again when that ends.
//!
//! While other servers answer, the fault is that one server's (it is gone,
//! or a link leads to a wrong host): its files are tried as usual, and fail
//! after their attempts, so that one dead server does not hold up the rest
//! of the job for an hour. To tell the two apart when nothing else is
//! going on, the job asks the server of its catalog (once in a while, while
//! it waits for another): if that one answers, the computer is online.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use url::Url;

/// How long a server that cannot be reached is waited for, at most.
pub const OUTAGE: Duration = Duration::from_secs(60 * 60);

/// An answer (or a byte) from any server this recently means the job is
/// not cut off: the server that fails is at fault on its own.
const HEARD: Duration = Duration::from_secs(1);

/// The first wait between tries of a server waited for; later ones double.
const FIRST_WAIT: Duration = Duration::from_millis(500);

/// The longest wait between tries of a server waited for.
pub const LONGEST_WAIT: Duration = Duration::from_secs(20);

/// How often the catalog's server is asked, at most, while another is
/// waited for; and how long one asking may take.
pub const PROBE_EVERY: Duration = Duration::from_secs(10);

/// A change in what a job waits for, to say to the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The server: its scheme, host and port.
    pub server: String,
    /// Whether its files wait for it from now on (else: no longer).
    pub waiting: bool,
    /// What happened, in plain words.
    pub reason: String,
}

/// What a job knows of the servers it cannot reach. Shared by its plan and
/// its transfers.
pub struct Outages {
    state: Mutex<State>,
    /// The job's count of bytes received, and its value when last looked
    /// at: bytes arriving are answers too.
    bytes: std::sync::Arc<AtomicU64>,
    bytes_seen: AtomicU64,
    /// The catalog's address, asked whether the computer is online.
    probe: Option<Url>,
    say: Box<dyn Fn(Change) + Send + Sync>,
}

#[derive(Debug, Default)]
struct State {
    /// The servers waited for, since when.
    waited: HashMap<String, Instant>,
    /// The servers no longer waited for (others answered meanwhile, or an
    /// hour went by) until they answer again.
    not_waited: HashSet<String>,
    /// When some server was last heard from.
    heard: Option<Instant>,
    /// When the catalog's server was last asked.
    probed: Option<Instant>,
}

impl std::fmt::Debug for Outages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outages")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Outages {
    /// Outages of a job whose received bytes `bytes` counts, and whose
    /// catalog is at `catalog`; `say` is told every change (it should not
    /// block: it is called from the job's tasks).
    pub fn new(
        bytes: std::sync::Arc<AtomicU64>,
        catalog: Option<Url>,
        say: impl Fn(Change) + Send + Sync + 'static,
    ) -> Outages {
        Outages {
            state: Mutex::default(),
            bytes,
            bytes_seen: AtomicU64::new(0),
            probe: catalog.filter(|url| matches!(url.scheme(), "http" | "https")),
            say: Box::new(say),
        }
    }

    /// The address to ask now whether the computer is online, while
    /// `server` is waited for: the catalog's, unless it is on that same
    /// server, or nearer or farther than it (a catalog on this computer or
    /// the local network answers when the internet is gone), or was asked
    /// less than [`PROBE_EVERY`] ago. Whoever asks tells
    /// [`Outages::answered`] of an answer, within [`PROBE_EVERY`].
    pub fn probe_due(&self, server: &str) -> Option<Url> {
        let probe = self.probe.as_ref()?;
        if self::server(probe) == server
            || Url::parse(server).map(|at| distance(&at)).ok() != Some(distance(probe))
        {
            return None;
        }
        let mut state = self.lock();
        if !state.waited.contains_key(server)
            || state.probed.is_some_and(|at| at.elapsed() < PROBE_EVERY)
        {
            return None;
        }
        state.probed = Some(Instant::now());
        Some(probe.clone())
    }

    /// The job's count of bytes received from servers, which its transfers
    /// add to.
    pub fn bytes(&self) -> std::sync::Arc<AtomicU64> {
        self.bytes.clone()
    }

    /// Looks at the count of bytes received: bytes that arrived since the
    /// last look are news from a server. Called a few times a second.
    pub fn look(&self) {
        let bytes = self.bytes.load(Ordering::Relaxed);
        if self.bytes_seen.swap(bytes, Ordering::Relaxed) != bytes {
            self.lock().heard = Some(Instant::now());
        }
    }

    /// A try found `server` unreachable, after `waits` such tries in a row
    /// by the same caller: how long to wait before the next one, or `None`
    /// when it is not waited for (its tries count as usual).
    pub fn unreachable(&self, server: &str, waits: u32) -> Option<Duration> {
        let now = Instant::now();
        let mut state = self.lock();
        let heard = state.heard;
        let ended = match state.waited.get(server) {
            // Others answered since it stopped: the fault is its own.
            Some(since) if heard.is_some_and(|heard| heard > *since) => {
                "still cannot be reached while other servers answer, so the fault is its own: its files are tried as usual, and fail if it stays out of reach"
            }
            Some(since) if now.duration_since(*since) >= OUTAGE => {
                "has not answered for an hour: its files are tried as usual, and fail if it stays out of reach"
            }
            Some(_) => return Some(wait(waits)),
            None if state.not_waited.contains(server) => return None,
            None if heard.is_some_and(|heard| now.duration_since(heard) < HEARD) => return None,
            None => {
                state.waited.insert(server.to_string(), now);
                drop(state);
                (self.say)(Change {
                    server: server.to_string(),
                    waiting: true,
                    reason: format!(
                        "cannot be reached (it may be down, or this computer may be offline). Its files wait for it, and none counts as failed: Cairn tries it again every {} seconds or sooner, for up to an hour",
                        LONGEST_WAIT.as_secs()
                    ),
                });
                return Some(wait(waits));
            }
        };
        state.waited.remove(server);
        state.not_waited.insert(server.to_string());
        drop(state);
        (self.say)(Change {
            server: server.to_string(),
            waiting: false,
            reason: ended.to_string(),
        });
        None
    }

    /// `server` answered (with anything, an error status included).
    pub fn answered(&self, server: &str) {
        let mut state = self.lock();
        state.heard = Some(Instant::now());
        if !state.not_waited.is_empty() {
            state.not_waited.remove(server);
        }
        if state.waited.is_empty() || state.waited.remove(server).is_none() {
            return;
        }
        drop(state);
        (self.say)(Change {
            server: server.to_string(),
            waiting: false,
            reason: "answers again; its files are copied".to_string(),
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How far the host of `url` is: this computer (0), the local network (1),
/// or anywhere else, a name included (2).
fn distance(url: &Url) -> u8 {
    if crate::fetch::access::on_this_computer(url) {
        return 0;
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_private() || ip.is_link_local() => 1,
        Some(url::Host::Ipv6(ip)) if ip.is_unique_local() || ip.is_unicast_link_local() => 1,
        _ => 2,
    }
}

/// The wait after `waits` tries in a row found a server unreachable.
fn wait(waits: u32) -> Duration {
    FIRST_WAIT
        .saturating_mul(1 << waits.min(16))
        .min(LONGEST_WAIT)
}

/// The server of `url`, as outages are told apart and named: scheme, host
/// and port (when not the scheme's own).
pub fn server(url: &Url) -> String {
    match url.origin() {
        origin @ url::Origin::Tuple(..) => origin.ascii_serialization(),
        // A bucket: its scheme and name.
        url::Origin::Opaque(_) => {
            format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn outages() -> (Outages, Arc<Mutex<Vec<Change>>>, Arc<AtomicU64>) {
        let said = Arc::new(Mutex::new(Vec::new()));
        let bytes = Arc::new(AtomicU64::new(0));
        let kept = said.clone();
        let catalog = Url::parse("https://stac.test/catalog.json").ok();
        let outages = Outages::new(bytes.clone(), catalog, move |change| {
            kept.lock().unwrap().push(change)
        });
        (outages, said, bytes)
    }

    #[test]
    fn a_job_that_hears_from_no_server_waits_and_says_so_once() {
        let (outages, said, _) = outages();
        assert_eq!(outages.unreachable("https://a.test", 0), Some(FIRST_WAIT));
        assert_eq!(
            outages.unreachable("https://a.test", 1),
            Some(FIRST_WAIT * 2)
        );
        assert_eq!(
            outages.unreachable("https://a.test", 12),
            Some(LONGEST_WAIT)
        );
        let said_now = said.lock().unwrap().clone();
        assert_eq!(said_now.len(), 1);
        assert!(said_now[0].waiting && said_now[0].reason.contains("cannot be reached"));
        outages.answered("https://a.test");
        let last = said.lock().unwrap().last().cloned().unwrap();
        assert!(!last.waiting && last.reason.contains("answers again"));
        // Said once: answering again is not news.
        outages.answered("https://a.test");
        assert_eq!(said.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_server_that_fails_while_others_answer_is_not_waited_for() {
        let (outages, said, _) = outages();
        outages.answered("https://b.test");
        assert_eq!(outages.unreachable("https://a.test", 0), None);
        assert!(said.lock().unwrap().is_empty());
    }

    #[test]
    fn waiting_ends_when_others_answer_or_bytes_arrive() {
        let (outages, said, bytes) = outages();
        assert!(outages.unreachable("https://a.test", 0).is_some());
        std::thread::sleep(Duration::from_millis(2));
        // A download from another server goes on: bytes arrive.
        bytes.fetch_add(10, Ordering::Relaxed);
        outages.look();
        assert_eq!(outages.unreachable("https://a.test", 1), None);
        let last = said.lock().unwrap().last().cloned().unwrap();
        assert!(!last.waiting && last.reason.contains("the fault is its own"));
        // Not waited for again, even once the others are quiet, until it
        // answers: no news either.
        std::thread::sleep(HEARD);
        assert_eq!(outages.unreachable("https://a.test", 0), None);
        assert_eq!(said.lock().unwrap().len(), 2);
        outages.answered("https://a.test");
        std::thread::sleep(HEARD);
        assert!(outages.unreachable("https://a.test", 0).is_some());
        assert_eq!(said.lock().unwrap().len(), 3);
    }

    #[test]
    fn the_catalogs_server_is_asked_now_and_then_while_another_is_waited_for() {
        let (outages, _, _) = outages();
        assert_eq!(
            outages.probe_due("https://data.test"),
            None,
            "not waited for"
        );
        assert!(outages.unreachable("https://data.test", 0).is_some());
        let asked = outages.probe_due("https://data.test").unwrap();
        assert_eq!(asked.as_str(), "https://stac.test/catalog.json");
        assert_eq!(
            outages.probe_due("https://data.test"),
            None,
            "asked a moment ago"
        );
        // The catalog's own server is not asked about itself.
        assert!(outages.unreachable("https://stac.test", 0).is_some());
        assert_eq!(outages.probe_due("https://stac.test"), None);
        // It answered: the computer is online, and the wait ends.
        outages.answered("https://stac.test");
        assert_eq!(outages.unreachable("https://data.test", 1), None);
    }

    #[test]
    fn a_catalog_nearer_than_the_server_waited_for_is_not_asked() {
        let said = |_| {};
        let local = Url::parse("http://localhost:8080/catalog.json").ok();
        let outages = Outages::new(Arc::default(), local, said);
        assert!(outages.unreachable("https://data.example.org", 0).is_some());
        assert_eq!(outages.probe_due("https://data.example.org"), None);
        assert!(outages.unreachable("http://127.0.0.1:9", 0).is_some());
        assert!(outages.probe_due("http://127.0.0.1:9").is_some());
        let lan = Url::parse("http://192.168.1.20/catalog.json").ok();
        let outages = Outages::new(Arc::default(), lan, said);
        assert!(outages.unreachable("https://data.example.org", 0).is_some());
        assert_eq!(outages.probe_due("https://data.example.org"), None);
    }

    #[test]
    fn servers_are_named_by_scheme_host_and_port() {
        let name = |u: &str| server(&Url::parse(u).unwrap());
        assert_eq!(
            name("https://data.example.org/a/b.tif"),
            "https://data.example.org"
        );
        assert_eq!(name("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080");
        assert_eq!(name("s3://bucket/key"), "s3://bucket");
    }
}
