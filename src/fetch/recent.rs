//! Documents read a moment ago, kept for a while: what a person has just
//! browsed in the app is not read again for the estimate that follows.
//!
//! Only public documents are kept (GET over HTTP, no sign-in, no extra
//! headers), each for [`Recent::FRESH_FOR`] at most and within a bound on
//! bytes; the oldest go first. Copies and syncs never read from here: they
//! read the source as it is.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use url::Url;

/// Bodies by address, with where they were in the end and when they came.
#[derive(Debug)]
pub struct Recent {
    most_bytes: usize,
    fresh_for: Duration,
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    /// Body, final address, when it came, and its number in `order`.
    by_url: HashMap<String, (Bytes, Url, Instant, u64)>,
    /// Addresses in the order they came, numbered: an address read again
    /// comes again, and its earlier places no longer count.
    order: VecDeque<(String, u64)>,
    next: u64,
    bytes: usize,
}

impl Recent {
    /// How long a document is taken as it was.
    pub const FRESH_FOR: Duration = Duration::from_secs(10 * 60);

    /// At most `most_bytes` of documents, each for [`Recent::FRESH_FOR`].
    pub fn new(most_bytes: usize) -> Recent {
        Recent::with_freshness(most_bytes, Recent::FRESH_FOR)
    }

    /// At most `most_bytes` of documents, each for `fresh_for`.
    pub fn with_freshness(most_bytes: usize, fresh_for: Duration) -> Recent {
        Recent {
            most_bytes,
            fresh_for,
            kept: Mutex::default(),
        }
    }

    /// The body read from `url` lately, and where it was in the end.
    pub fn get(&self, url: &Url) -> Option<(Bytes, Url)> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let (bytes, at, came, _) = kept.by_url.get(url.as_str())?;
        if came.elapsed() <= self.fresh_for {
            return Some((bytes.clone(), at.clone()));
        }
        let (bytes, _, _, _) = kept.by_url.remove(url.as_str())?;
        kept.bytes -= bytes.len();
        None
    }

    /// Keeps the body read from `url`; one larger than a quarter of the
    /// bound is not kept.
    pub fn put(&self, url: &Url, bytes: &Bytes, at: &Url) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let key = url.as_str().to_string();
        // What is no longer fresh goes (the oldest are at the front).
        while let Some((oldest, number)) = kept.order.front().cloned() {
            match kept.by_url.get(&oldest) {
                Some(entry) if entry.3 == number && entry.2.elapsed() <= self.fresh_for => break,
                Some(entry) if entry.3 == number => {
                    let size = entry.0.len();
                    kept.by_url.remove(&oldest);
                    kept.bytes -= size;
                }
                _ => {}
            }
            kept.order.pop_front();
        }
        if bytes.len() > self.most_bytes / 4 {
            // Too big to keep; an older body under this address is not given out.
            if let Some((old, _, _, _)) = kept.by_url.remove(&key) {
                kept.bytes -= old.len();
            }
            return;
        }
        let number = kept.next;
        kept.next += 1;
        let came = (bytes.clone(), at.clone(), Instant::now(), number);
        if let Some((old, _, _, _)) = kept.by_url.insert(key.clone(), came) {
            kept.bytes -= old.len();
        }
        kept.bytes += bytes.len();
        kept.order.push_back((key, number));
        // The oldest go first; a place an address left (it came again) is
        // passed over.
        while kept.bytes > self.most_bytes {
            let Some((oldest, number)) = kept.order.pop_front() else {
                break;
            };
            if kept
                .by_url
                .get(&oldest)
                .is_some_and(|entry| entry.3 == number)
                && let Some((old, _, _, _)) = kept.by_url.remove(&oldest)
            {
                kept.bytes -= old.len();
            }
        }
        // Places left behind are cleared once they outnumber the documents.
        if kept.order.len() > 2 * kept.by_url.len() + 64 {
            let Kept { order, by_url, .. } = &mut *kept;
            order.retain(|(key, number)| by_url.get(key).is_some_and(|entry| entry.3 == *number));
        }
    }

    /// How many bytes are kept.
    pub fn bytes(&self) -> usize {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(path: &str) -> Url {
        Url::parse(&format!("https://example.org/{path}")).unwrap()
    }

    #[test]
    fn a_document_is_kept_within_the_bound_the_oldest_going_first() {
        let recent = Recent::new(4000);
        let body = Bytes::from(vec![b'x'; 900]);
        for i in 0..4 {
            recent.put(
                &url(&format!("{i}.json")),
                &body,
                &url(&format!("{i}.json")),
            );
        }
        assert_eq!(recent.bytes(), 3600);
        assert_eq!(recent.get(&url("0.json")).unwrap().0.len(), 900);
        // A fifth pushes the first out.
        recent.put(&url("4.json"), &body, &url("moved/4.json"));
        assert!(recent.get(&url("0.json")).is_none());
        assert_eq!(recent.get(&url("4.json")).unwrap().1, url("moved/4.json"));
        assert_eq!(recent.bytes(), 3600);
        // Read again, an address counts from its new place.
        recent.put(&url("1.json"), &body, &url("1.json"));
        recent.put(&url("5.json"), &body, &url("5.json"));
        assert!(
            recent.get(&url("1.json")).is_some(),
            "kept: it was read again"
        );
        assert!(recent.get(&url("2.json")).is_none(), "the oldest went");
        // Too big for the bound: not kept at all, and an older body under
        // its address goes.
        recent.put(
            &url("big.json"),
            &Bytes::from(vec![0; 10]),
            &url("big.json"),
        );
        recent.put(
            &url("big.json"),
            &Bytes::from(vec![0; 1001]),
            &url("big.json"),
        );
        assert!(recent.get(&url("big.json")).is_none());
    }

    #[test]
    fn a_document_older_than_its_freshness_is_read_again() {
        let recent = Recent::with_freshness(1 << 20, Duration::from_millis(30));
        recent.put(&url("a.json"), &Bytes::from_static(b"{}"), &url("a.json"));
        assert!(recent.get(&url("a.json")).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(recent.get(&url("a.json")).is_none());
        assert_eq!(recent.bytes(), 0);
        // Stale ones go when something new comes, asked for or not.
        recent.put(&url("b.json"), &Bytes::from_static(b"[]"), &url("b.json"));
        std::thread::sleep(Duration::from_millis(60));
        recent.put(&url("c.json"), &Bytes::from_static(b"{}"), &url("c.json"));
        assert_eq!(recent.bytes(), 2);
    }

    #[test]
    fn the_queue_stays_bounded_when_one_address_is_read_over_and_over() {
        let recent = Recent::new(1 << 20);
        for _ in 0..10_000 {
            recent.put(&url("a.json"), &Bytes::from_static(b"{}"), &url("a.json"));
        }
        let kept = recent.kept.lock().unwrap();
        assert!(kept.order.len() <= 66, "{}", kept.order.len());
        assert_eq!(kept.bytes, 2);
    }
}
