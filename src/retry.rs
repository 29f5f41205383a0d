//! Bounded, cancellable retries with jittered exponential backoff.
//!
//! The delay schedule comes from `backon`; this module adds what a long-running
//! mirror needs on top: a server's `Retry-After` is honoured (it wins when it asks
//! for longer than the schedule), and every wait races a cancellation token so that
//! pausing or quitting never hangs behind a sleep.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// How often and how patiently to retry a failed request.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts in all).
    pub max_retries: usize,
    /// The first delay; later delays grow exponentially.
    pub min_delay: Duration,
    /// The longest delay the schedule produces.
    pub max_delay: Duration,
    /// The longest `Retry-After` we accept; a server asking for more gets this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Default::default()
        }
    }

    /// The waits of one task under this policy.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            delays: ExponentialBuilder::default()
                .with_min_delay(self.min_delay)
                .with_max_delay(self.max_delay)
                .with_max_times(self.max_retries)
                .with_jitter()
                .build(),
            max_retry_after: self.max_retry_after,
        }
    }

    /// Runs `attempt` until it succeeds, fails with an error that is not
    /// retryable, runs out of retries, or `cancel` fires.
    pub async fn run<T, F, Fut>(&self, cancel: &CancellationToken, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = self.backoff();
        loop {
            let result = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Error::Cancelled),
                result = attempt() => result,
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retryable() => error,
                Err(error) => return Err(error),
            };
            let Some(delay) = backoff.after(&error) else {
                return Err(error);
            };
            tracing::debug!(%error, ?delay, "retrying");
            pause(cancel, delay).await?;
        }
    }
}

/// The waits between the attempts of one task: a jittered exponential
/// schedule, where a server's `Retry-After` wins when it asks for longer
/// (up to a cap). Every retry in Cairn waits by one of these.
#[derive(Debug)]
pub struct Backoff {
    delays: ExponentialBackoff,
    max_retry_after: Duration,
}

impl Backoff {
    /// How long to wait after `error` before the next attempt; `None` when
    /// the schedule is spent.
    pub fn after(&mut self, error: &Error) -> Option<Duration> {
        let scheduled = self.delays.next()?;
        Some(match error.retry_after() {
            Some(asked) => asked.min(self.max_retry_after).max(scheduled),
            None => scheduled,
        })
    }
}

/// Waits `delay`, or fails with [`Error::Cancelled`] as soon as `cancel`
/// fires: pausing or quitting never hangs behind a wait.
pub async fn pause(cancel: &CancellationToken, delay: Duration) -> Result<()> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Error::Cancelled),
        _ = tokio::time::sleep(delay) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reach;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_millis(50),
        }
    }

    fn busy(retry_after: Option<Duration>) -> Error {
        Error::Unavailable {
            href: "http://example.test".into(),
            reason: "busy".into(),
            retry_after,
            reach: Reach::Unknown,
        }
    }

    #[tokio::test]
    async fn retries_retryable_errors_then_gives_up() {
        let calls = AtomicUsize::new(0);
        let result: Result<()> = quick()
            .run(&CancellationToken::new(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(busy(None))
            })
            .await;
        assert!(matches!(result, Err(Error::Unavailable { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn does_not_retry_permanent_errors() {
        let calls = AtomicUsize::new(0);
        let result: Result<()> = quick()
            .run(&CancellationToken::new(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::NotFound { href: "x".into() })
            })
            .await;
        assert!(matches!(result, Err(Error::NotFound { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn honours_retry_after_up_to_the_cap() {
        let calls = AtomicUsize::new(0);
        let started = std::time::Instant::now();
        let result = quick()
            .run(&CancellationToken::new(), || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(busy(Some(Duration::from_secs(3600))))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(result.unwrap(), 7);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "waited {waited:?}");
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    }

    #[tokio::test]
    async fn cancellation_interrupts_the_wait() {
        let cancel = CancellationToken::new();
        let policy = RetryPolicy {
            min_delay: Duration::from_secs(3600),
            max_delay: Duration::from_secs(3600),
            ..quick()
        };
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trigger.cancel();
        });
        let result: Result<()> = policy.run(&cancel, || async { Err(busy(None)) }).await;
        assert!(matches!(result, Err(Error::Cancelled)));
    }
}
