//! A short retry for transient API answers (429, 5xx, dropped connections),
//! with jittered exponential backoff that honours the server's Retry-After
//! hint (from the Status body or, as API Priority and Fairness sends it, the
//! header). A timed-out request is not retried. Throttling (429) gets more
//! attempts than errors do: the server is answering, and asks us to wait.

use std::future::Future;
use std::time::Duration;

pub(crate) const ATTEMPTS: u32 = 4;
/// Attempts for a request answered 429 (client-go retries these ten times).
pub(crate) const THROTTLED_ATTEMPTS: u32 = 10;
const BASE: Duration = Duration::from_millis(200);
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Whether an error is worth another try, and how long the server asked us to
/// wait. A timed-out request is not retried: the timeout already bounds how
/// long one request may take, and a silent server must end the run.
pub(crate) fn transient(err: &kube::Error) -> Option<Option<Duration>> {
    match err {
        kube::Error::Api(s) if s.code == 429 || (500..=599).contains(&s.code) => {
            let hint = s.details.as_ref().and_then(|d| {
                (d.retry_after_seconds > 0)
                    .then(|| Duration::from_secs(d.retry_after_seconds as u64))
            });
            Some(hint)
        }
        kube::Error::HyperError(_) | kube::Error::Service(_)
            if !is_timeout(err) && is_dropped(err) =>
        {
            Some(None)
        }
        _ => None,
    }
}

/// The request ran out of time.
pub(crate) fn is_timeout(e: &dyn std::error::Error) -> bool {
    crate::error::is_timeout_text(&crate::error::source_chain(e).to_lowercase())
}

/// The connection broke before an answer came: the request may or may not
/// have been processed, so only idempotent requests (every one we send:
/// reads, and deletes with a uid precondition) may be retried.
fn is_dropped(e: &dyn std::error::Error) -> bool {
    let s = crate::error::source_chain(e).to_lowercase();
    [
        "connection closed",
        "connection reset",
        "broken pipe",
        "incomplete message",
        "unexpected eof",
        "unexpected end of file",
        "channel closed",
        "connection error",
    ]
    .iter()
    .any(|m| s.contains(m))
}

/// Full jitter: a random wait in [0, base·2^attempt], at least the server's hint.
pub(crate) fn backoff(attempt: u32, hint: Option<Duration>) -> Duration {
    let cap = BASE.saturating_mul(1 << attempt.min(6)).min(MAX_WAIT);
    let jittered = cap.mul_f64(fastrand::f64());
    hint.map_or(jittered, |h| h.min(MAX_WAIT).max(jittered))
}

pub(crate) async fn with_retry<T, F, Fut>(mut op: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) => match transient(&e) {
                Some(hint) if attempt + 1 < attempts_for(&e) => {
                    tokio::time::sleep(backoff(attempt, hint)).await;
                    attempt += 1;
                }
                _ => return Err(e),
            },
            ok => return ok,
        }
    }
}

fn attempts_for(e: &kube::Error) -> u32 {
    match e {
        kube::Error::Api(s) if s.code == 429 => THROTTLED_ATTEMPTS,
        _ => ATTEMPTS,
    }
}

/// `Client::request_text`, except that an error answer keeps the server's
/// `Retry-After` header in the Status details: API Priority and Fairness
/// answers 429 in plain text, with the hint only in the header.
pub(crate) async fn request_text(
    client: &kube::Client,
    req: http::Request<Vec<u8>>,
) -> Result<String, kube::Error> {
    let res = client.send(req.map(kube::client::Body::from)).await?;
    let code = res.status();
    let retry_after = res
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok());
    let body = res.into_body().collect_bytes().await?;
    let text = String::from_utf8(body.to_vec()).map_err(kube::Error::FromUtf8)?;
    if !(code.is_client_error() || code.is_server_error()) {
        return Ok(text);
    }
    let mut status = serde_json::from_str::<kube::core::Status>(&text).unwrap_or_else(|_| {
        kube::core::Status::failure(text.trim(), "Failed to parse error data")
            .with_code(code.as_u16())
    });
    if let Some(seconds) = retry_after.filter(|s| *s > 0) {
        let details = status
            .details
            .get_or_insert_with(|| kube::core::response::StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: vec![],
                retry_after_seconds: 0,
            });
        if details.retry_after_seconds == 0 {
            details.retry_after_seconds = seconds;
        }
    }
    Err(kube::Error::Api(Box::new(status)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::StatusDetails;
    use kube::core::Status;

    fn api(code: u16, retry_after: u32) -> kube::Error {
        let mut s = Status::failure("x", "y").with_code(code);
        if retry_after > 0 {
            s.details = Some(StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: vec![],
                retry_after_seconds: retry_after,
            });
        }
        kube::Error::Api(Box::new(s))
    }

    #[test]
    fn classifies_transient_answers() {
        assert_eq!(transient(&api(429, 3)), Some(Some(Duration::from_secs(3))));
        assert_eq!(transient(&api(503, 0)), Some(None));
        assert_eq!(transient(&api(404, 0)), None);
        assert_eq!(transient(&api(409, 0)), None);
        assert_eq!(transient(&api(403, 0)), None);
    }

    #[test]
    fn backoff_is_bounded_and_honours_hints() {
        for attempt in 0..10 {
            assert!(backoff(attempt, None) <= MAX_WAIT);
        }
        assert!(backoff(0, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        assert_eq!(backoff(0, Some(Duration::from_secs(600))), MAX_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_a_few_times_then_gives_up() {
        let mut calls = 0;
        let r: Result<(), _> = with_retry(|| {
            calls += 1;
            async { Err(api(503, 0)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, ATTEMPTS);
        let mut calls = 0;
        let r: Result<(), _> = with_retry(|| {
            calls += 1;
            async { Err(api(404, 0)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1, "a 404 is an answer, not a hiccup");
        let mut calls = 0;
        let r: Result<(), _> = with_retry(|| {
            calls += 1;
            async { Err(api(429, 1)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, THROTTLED_ATTEMPTS, "throttling is waited out longer");
    }
}
