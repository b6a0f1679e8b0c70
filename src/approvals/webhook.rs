//! Webhook notifier: each new approval request becomes a Slack-compatible
//! JSON POST (`text` + `blocks`, plus the request itself under `approval` for
//! other receivers). Sent from one background thread fed by a bounded queue,
//! retried with exponential backoff; when the queue is full the notification
//! is dropped and counted, so a slow receiver never slows a session.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use super::{ApprovalView, Notify};
use crate::metrics::Exposition;

#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Notifications waiting to be sent; more are dropped.
    pub queue: usize,
    /// Tries per notification, the first included.
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Whole-request timeout for one try.
    pub timeout: Duration,
}

impl Default for WebhookOptions {
    fn default() -> WebhookOptions {
        WebhookOptions {
            queue: 256,
            attempts: 5,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_millis(3200),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Default)]
pub struct WebhookStats {
    pub sent: AtomicU64,
    /// Gave up after the last try or on a permanent (4xx) refusal.
    pub failed: AtomicU64,
    pub retries: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped: AtomicU64,
}

impl WebhookStats {
    pub fn render(&self, e: &mut Exposition) {
        e.family(
            "tollgate_webhook_notifications_total",
            "counter",
            "Approval webhook notifications, by outcome.",
        );
        for (outcome, c) in [
            ("sent", &self.sent),
            ("failed", &self.failed),
            ("dropped", &self.dropped),
        ] {
            e.sample(
                "tollgate_webhook_notifications_total",
                &[("outcome", outcome)],
                c.load(Ordering::Relaxed) as f64,
            );
        }
        e.family(
            "tollgate_webhook_retries_total",
            "counter",
            "Webhook tries after the first.",
        );
        e.sample(
            "tollgate_webhook_retries_total",
            &[],
            self.retries.load(Ordering::Relaxed) as f64,
        );
    }
}

/// The notifier handed to the broker.
pub struct Webhook {
    queue: async_channel::Sender<String>,
    stats: Arc<WebhookStats>,
}

impl Webhook {
    /// Start the sender thread. `url` is `http://` or `https://` (validated
    /// by the admin config).
    pub fn start(url: String, opts: WebhookOptions) -> std::io::Result<Webhook> {
        let (tx, rx) = async_channel::bounded::<String>(opts.queue.max(1));
        let stats = Arc::new(WebhookStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("tollgate-webhook".into())
            .spawn(move || send_loop(&url, &opts, &rx, &thread_stats))?;
        Ok(Webhook { queue: tx, stats })
    }

    pub fn stats(&self) -> Arc<WebhookStats> {
        self.stats.clone()
    }
}

impl Notify for Webhook {
    fn approval_requested(&self, view: &ApprovalView) {
        let body = slack_payload(view).to_string();
        if self.queue.try_send(body).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                approval = view.id,
                "webhook queue full: notification dropped"
            );
        }
    }
}

enum Outcome {
    Sent,
    Retry(String),
    GiveUp(String),
}

fn post(agent: &ureq::Agent, url: &str, body: &str) -> Outcome {
    match agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
    {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match status {
                200..=299 => Outcome::Sent,
                // A receiver that refuses the payload will refuse it again;
                // rate limiting and server errors are worth another try.
                429 | 500..=599 => Outcome::Retry(format!("status {status}")),
                _ => Outcome::GiveUp(format!("status {status}")),
            }
        }
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

fn send_loop(
    url: &str,
    opts: &WebhookOptions,
    rx: &async_channel::Receiver<String>,
    stats: &WebhookStats,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(opts.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    while let Ok(body) = rx.recv_blocking() {
        let mut backoff = opts.first_backoff;
        for attempt in 1..=opts.attempts.max(1) {
            match post(&agent, url, &body) {
                Outcome::Sent => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Outcome::GiveUp(why) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %why, "webhook refused the notification");
                    break;
                }
                Outcome::Retry(why) if attempt < opts.attempts => {
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %why, attempt, "webhook try failed; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(opts.max_backoff);
                }
                Outcome::Retry(why) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %why, attempts = attempt, "webhook unreachable: notification lost");
                }
            }
        }
    }
}

/// Slack mrkdwn treats `&`, `<` and `>` as markup.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The JSON body for one request.
pub fn slack_payload(v: &ApprovalView) -> serde_json::Value {
    let what = match v.kind {
        super::ApprovalKind::Statement => "a statement",
        super::ApprovalKind::Access => "access",
    };
    let approve = format!("tollgate approvals approve {} --reason '...'", v.id);
    let deny = format!("tollgate approvals deny {} --reason '...'", v.id);
    let text = format!(
        "Approval {id} requested: {who} wants {what} on {target} (rule: {rule}). Approve: {approve}",
        id = v.id,
        who = v.requester,
        target = v.target,
        rule = v.rule,
    );
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!(
            "*Approval #{}* — {} wants {} on *{}*\n*Rule:* {}\n*Session:* `{}`",
            v.id,
            escape(&v.requester),
            what,
            escape(&v.target),
            escape(&v.rule),
            escape(&v.session_id),
        )},
    })];
    if !v.statement.is_empty() {
        // Keep a statement from closing the code block early.
        let stmt = escape(&v.statement).replace("```", "`\u{200b}``");
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("```{stmt}```")},
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!(
            "Approve: `{approve}`  Deny: `{deny}`  Reviewers: {}",
            escape(&v.reviewer_groups.join(", ")),
        )}],
    }));
    json!({"text": text, "blocks": blocks, "approval": v})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::time::Instant;

    use bytes::BytesMut;
    use tollgate_codecs::http::{Limits, parse_request};

    use super::super::{ApprovalKind, ApprovalState};
    use super::*;

    fn view() -> ApprovalView {
        ApprovalView {
            id: 7,
            kind: ApprovalKind::Statement,
            state: ApprovalState::Pending,
            session_id: "abc".into(),
            requester: "ci-job".into(),
            requester_groups: vec!["ci".into()],
            target: "payments".into(),
            statement: "DELETE FROM t WHERE a < 3 ```".into(),
            rule: "deletes".into(),
            reviewer_groups: vec!["reviewers".into()],
            created_ms: 1,
            expires_ms: 2,
            decided_by: None,
            reason: None,
            decided_ms: None,
            grant_expires_ms: None,
        }
    }

    /// A local HTTP receiver answering each request with the next status
    /// from `statuses` (then 200); bodies come back through the channel.
    /// A `None` status holds the connection open until `release` fires.
    fn receiver(statuses: Vec<u16>) -> (String, mpsc::Receiver<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut buf = BytesMut::new();
                let req = loop {
                    let mut chunk = [0u8; 4096];
                    let n = conn.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(r) = parse_request(&mut buf, &Limits::default()).unwrap() {
                        break Some(r);
                    }
                };
                let Some(req) = req else { continue };
                assert_eq!(req.method(), "POST");
                assert_eq!(req.path(), "/hook");
                let status = statuses.next().unwrap_or(200);
                let _ = tx.send(req.body().to_vec());
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        (url, rx)
    }

    fn fast() -> WebhookOptions {
        WebhookOptions {
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            ..WebhookOptions::default()
        }
    }

    fn eventually(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "never happened: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn payload_is_slack_shaped_and_escaped() {
        let p = slack_payload(&view());
        let text = p["text"].as_str().unwrap();
        assert!(text.contains("ci-job") && text.contains("payments"));
        assert!(text.contains("tollgate approvals approve 7"));
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        let stmt = blocks[1]["text"]["text"].as_str().unwrap();
        assert!(stmt.contains("a &lt; 3"), "{stmt}");
        assert_eq!(stmt.matches("```").count(), 2, "{stmt}");
        assert_eq!(p["approval"]["id"], 7);
    }

    #[test]
    fn receiver_gets_the_json_and_a_500_is_retried() {
        let (url, bodies) = receiver(vec![500]);
        let hook = Webhook::start(url, fast()).unwrap();
        hook.approval_requested(&view());
        let first = bodies.recv_timeout(Duration::from_secs(10)).unwrap();
        let second = bodies.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(first, second);
        let json: serde_json::Value = serde_json::from_slice(&second).unwrap();
        assert_eq!(json["approval"]["requester"], "ci-job");
        let stats = hook.stats();
        eventually("sent", || stats.sent.load(Ordering::Relaxed) == 1);
        assert_eq!(stats.retries.load(Ordering::Relaxed), 1);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_4xx_is_not_retried() {
        let (url, bodies) = receiver(vec![400]);
        let hook = Webhook::start(url, fast()).unwrap();
        hook.approval_requested(&view());
        bodies.recv_timeout(Duration::from_secs(10)).unwrap();
        let stats = hook.stats();
        eventually("failed", || stats.failed.load(Ordering::Relaxed) == 1);
        assert_eq!(stats.retries.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_unreachable_receiver_gives_up_after_the_configured_tries() {
        // A port that was free a moment ago: connection refused.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let hook = Webhook::start(
            format!("http://127.0.0.1:{port}/hook"),
            WebhookOptions {
                attempts: 3,
                ..fast()
            },
        )
        .unwrap();
        hook.approval_requested(&view());
        let stats = hook.stats();
        eventually("failed", || stats.failed.load(Ordering::Relaxed) == 1);
        assert_eq!(stats.retries.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_full_queue_drops_instead_of_blocking() {
        // A receiver that accepts and never answers: the sender thread is
        // stuck on its first try, so the one-slot queue fills.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let hook = Webhook::start(
            url,
            WebhookOptions {
                queue: 1,
                timeout: Duration::from_secs(30),
                ..fast()
            },
        )
        .unwrap();
        for _ in 0..5 {
            hook.approval_requested(&view());
        }
        // At most one in flight and one queued.
        assert!(hook.stats().dropped.load(Ordering::Relaxed) >= 3);
        drop(l);
    }
}
