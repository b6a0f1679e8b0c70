//! Broker tests: decisions, the requester rule, timeouts without polling,
//! grants, cancellation, and racing reviewers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, SystemTime};

use super::*;

/// A minimal executor: proves the waiting side needs no particular runtime.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn broker(timeout: Duration) -> Broker {
    Broker::new(
        BrokerConfig {
            timeout,
            default_reviewer_groups: vec!["reviewers".into()],
            ..BrokerConfig::default()
        },
        None,
    )
    .unwrap()
}

fn req(requester: &str) -> ApprovalRequest {
    ApprovalRequest {
        session_id: "s1".into(),
        requester: requester.into(),
        requester_groups: vec!["ci".into()],
        target: "payments".into(),
        statement: "DELETE FROM accounts".into(),
        rule: "deletes need approval".into(),
        reviewer_groups: vec![],
    }
}

fn groups(g: &[&str]) -> Vec<String> {
    g.iter().map(|s| s.to_string()).collect()
}

#[test]
fn approve_wakes_the_waiter_with_reviewer_and_reason() {
    let b = broker(Duration::from_secs(60));
    let p = b.request(req("ci-job"));
    assert_ne!(p.id, 0);
    let listed = b.pending();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reviewer_groups, groups(&["reviewers"]));
    assert_eq!(listed[0].statement, "DELETE FROM accounts");
    let g = groups(&["reviewers"]);
    let alice = Reviewer {
        subject: "alice",
        groups: &g,
        local_operator: false,
    };
    let v = b
        .decide(
            p.id,
            &alice,
            ReviewerAnswer::Approve { grant: None },
            Some("ticket 42"),
        )
        .unwrap();
    assert_eq!(v.state, ApprovalState::Approved);
    assert_eq!(
        block_on(p.decision()),
        ApprovalOutcome::Approved {
            by: "alice".into(),
            reason: "ticket 42".into()
        }
    );
    assert!(b.pending().is_empty());
    assert_eq!(b.get(v.id).unwrap().state, ApprovalState::Approved);
}

#[test]
fn deny_from_another_thread_wakes_the_waiter() {
    let b = broker(Duration::from_secs(60));
    let p = b.request(req("ci-job"));
    let id = p.id;
    let b2 = b.clone();
    let t = std::thread::spawn(move || {
        let g = groups(&["reviewers"]);
        let r = Reviewer {
            subject: "bob",
            groups: &g,
            local_operator: false,
        };
        b2.decide(
            id,
            &r,
            ReviewerAnswer::Deny,
            Some("not during business hours"),
        )
        .unwrap();
    });
    assert_eq!(
        block_on(p.decision()),
        ApprovalOutcome::Denied {
            by: "bob".into(),
            reason: "not during business hours".into()
        }
    );
    t.join().unwrap();
}

#[test]
fn requester_and_outsiders_cannot_decide() {
    let b = broker(Duration::from_secs(60));
    let p = b.request(req("ci-job"));
    let g = groups(&["reviewers", "ci"]);
    let own = Reviewer {
        subject: "ci-job",
        groups: &g,
        local_operator: true,
    };
    assert!(matches!(
        b.decide(p.id, &own, ReviewerAnswer::Approve { grant: None }, None),
        Err(DecideError::OwnRequest { .. })
    ));
    let other = groups(&["ci"]);
    let outsider = Reviewer {
        subject: "mallory",
        groups: &other,
        local_operator: false,
    };
    assert!(matches!(
        b.decide(p.id, &outsider, ReviewerAnswer::Deny, None),
        Err(DecideError::NotReviewer { .. })
    ));
    // Still pending after both refusals; a local operator may decide.
    assert_eq!(b.pending().len(), 1);
    let local = Reviewer {
        subject: LOCAL_OPERATOR,
        groups: &[],
        local_operator: true,
    };
    b.decide(p.id, &local, ReviewerAnswer::Deny, None).unwrap();
    assert!(matches!(
        block_on(p.decision()),
        ApprovalOutcome::Denied { .. }
    ));
    assert!(matches!(
        b.decide(424242, &local, ReviewerAnswer::Deny, None),
        Err(DecideError::NotFound { id: 424242 })
    ));
}

#[test]
fn request_specific_reviewer_groups_override_the_default() {
    let b = broker(Duration::from_secs(60));
    let mut r = req("ci-job");
    r.reviewer_groups = groups(&["dba"]);
    let p = b.request(r);
    let g = groups(&["reviewers"]);
    let default_reviewer = Reviewer {
        subject: "alice",
        groups: &g,
        local_operator: false,
    };
    assert!(
        b.decide(p.id, &default_reviewer, ReviewerAnswer::Deny, None)
            .is_err()
    );
    assert!(b.is_reviewer_group_member(&groups(&["dba"])));
    assert!(!b.is_reviewer_group_member(&groups(&["ci"])));
    let d = groups(&["dba"]);
    let dba = Reviewer {
        subject: "dora",
        groups: &d,
        local_operator: false,
    };
    assert!(b.decide(p.id, &dba, ReviewerAnswer::Deny, None).is_ok());
}

#[test]
fn nobody_answering_times_out_without_polling() {
    let b = broker(Duration::from_millis(50));
    let p = b.request(req("ci-job"));
    let id = p.id;
    assert_eq!(block_on(p.decision()), ApprovalOutcome::TimedOut);
    assert_eq!(b.get(id).unwrap().state, ApprovalState::TimedOut);
    let g = groups(&["reviewers"]);
    let late = Reviewer {
        subject: "alice",
        groups: &g,
        local_operator: false,
    };
    assert_eq!(
        b.decide(id, &late, ReviewerAnswer::Deny, None).unwrap_err(),
        DecideError::AlreadyDecided {
            id,
            state: ApprovalState::TimedOut
        }
    );
}

#[test]
fn a_grant_covers_the_identity_on_the_target_until_it_expires() {
    let b = broker(Duration::from_secs(60));
    let p = b.request(req("ci-job"));
    let g = groups(&["reviewers"]);
    let alice = Reviewer {
        subject: "alice",
        groups: &g,
        local_operator: false,
    };
    b.decide(
        p.id,
        &alice,
        ReviewerAnswer::Approve {
            grant: Some(Duration::from_secs(600)),
        },
        Some("migration"),
    )
    .unwrap();
    let now = SystemTime::now();
    let grant = b.grant_covers("ci-job", "payments", now).unwrap();
    assert_eq!(grant.granted_by, "alice");
    assert!(
        b.grant_covers("ci-job", "payments", now + Duration::from_secs(601))
            .is_none()
    );
    assert!(b.grant_covers("other", "payments", now).is_none());
    assert!(b.grant_covers("ci-job", "ledger", now).is_none());
    // A statement grant is not an access window.
    assert!(b.access_granted("ci-job", "payments", now).is_none());
    // The next request from the same identity is answered at once.
    let next = b.request(req("ci-job"));
    assert_eq!(next.id, 0);
    assert!(
        matches!(block_on(next.decision()), ApprovalOutcome::Approved { by, .. } if by == "alice")
    );
    assert!(b.pending().is_empty());
    assert_eq!(b.grants().len(), 1);
}

#[test]
fn grant_length_is_bounded() {
    let b = broker(Duration::from_secs(60));
    let p = b.request(req("ci-job"));
    let g = groups(&["reviewers"]);
    let alice = Reviewer {
        subject: "alice",
        groups: &g,
        local_operator: false,
    };
    for d in [Duration::ZERO, MAX_GRANT + Duration::from_secs(60)] {
        assert!(matches!(
            b.decide(
                p.id,
                &alice,
                ReviewerAnswer::Approve { grant: Some(d) },
                None
            ),
            Err(DecideError::BadGrant { .. })
        ));
    }
    assert_eq!(b.pending().len(), 1);
}

#[test]
fn access_requests_and_access_windows() {
    let b = broker(Duration::from_secs(60));
    let p = b.request_access(ApprovalRequest {
        statement: String::new(),
        ..req("ci-job")
    });
    assert_eq!(b.pending()[0].kind, ApprovalKind::Access);
    let g = groups(&["reviewers"]);
    let alice = Reviewer {
        subject: "alice",
        groups: &g,
        local_operator: false,
    };
    b.decide(
        p.id,
        &alice,
        ReviewerAnswer::Approve {
            grant: Some(Duration::from_secs(60)),
        },
        None,
    )
    .unwrap();
    assert!(
        b.access_granted("ci-job", "payments", SystemTime::now())
            .is_some()
    );
    assert!(
        b.grant_covers("ci-job", "payments", SystemTime::now())
            .is_none()
    );
}

#[test]
fn dropping_the_pending_handle_withdraws_the_request() {
    let b = broker(Duration::from_secs(60));
    let p = b.request(req("ci-job"));
    let id = p.id;
    drop(p);
    assert!(b.pending().is_empty());
    let local = Reviewer {
        subject: LOCAL_OPERATOR,
        groups: &[],
        local_operator: true,
    };
    assert_eq!(
        b.decide(id, &local, ReviewerAnswer::Deny, None)
            .unwrap_err(),
        DecideError::AlreadyDecided {
            id,
            state: ApprovalState::Cancelled
        }
    );
}

#[test]
fn racing_reviewers_produce_exactly_one_decision() {
    for _ in 0..50 {
        let b = broker(Duration::from_secs(60));
        let p = b.request(req("ci-job"));
        let id = p.id;
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [
            ("alice", ReviewerAnswer::Approve { grant: None }),
            ("bob", ReviewerAnswer::Deny),
        ]
        .into_iter()
        .map(|(who, verdict)| {
            let b = b.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let g = groups(&["reviewers"]);
                let r = Reviewer {
                    subject: who,
                    groups: &g,
                    local_operator: false,
                };
                barrier.wait();
                b.decide(id, &r, verdict, None).map(|v| v.decided_by)
            })
        })
        .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(matches!(loser, DecideError::AlreadyDecided { .. }));
        let decision = block_on(p.decision());
        let by = match &decision {
            ApprovalOutcome::Approved { by, .. } | ApprovalOutcome::Denied { by, .. } => {
                Some(by.clone())
            }
            ApprovalOutcome::TimedOut => None,
        };
        assert_eq!(by.as_ref(), winners[0].as_ref());
    }
}

#[test]
fn notifier_hears_each_request_and_long_statements_are_cut() {
    struct Collect(Mutex<Vec<ApprovalView>>);
    impl Notify for Collect {
        fn approval_requested(&self, view: &ApprovalView) {
            self.0.lock().unwrap().push(view.clone());
        }
    }
    let seen = Arc::new(Collect(Mutex::new(Vec::new())));
    let b = Broker::new(BrokerConfig::default(), Some(seen.clone())).unwrap();
    let long = "é".repeat(MAX_STATEMENT_SHOWN);
    let _p = b.request(ApprovalRequest {
        statement: long,
        ..req("ci-job")
    });
    let got = seen.0.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].statement.len() <= MAX_STATEMENT_SHOWN + "…".len());
    assert!(got[0].statement.ends_with('…'));
}

#[test]
fn a_full_broker_denies_at_once() {
    let b = Broker::new(
        BrokerConfig {
            max_pending: 1,
            ..BrokerConfig::default()
        },
        None,
    )
    .unwrap();
    let _first = b.request(req("a"));
    let second = b.request(req("b"));
    assert_eq!(second.id, 0);
    assert!(matches!(
        block_on(second.decision()),
        ApprovalOutcome::Denied { .. }
    ));
}

#[test]
fn metrics_render_and_count_outcomes() {
    let b = broker(Duration::from_millis(20));
    let p = b.request(req("ci-job"));
    assert_eq!(block_on(p.decision()), ApprovalOutcome::TimedOut);
    let dropped = b.request(req("ci-job"));
    drop(dropped);
    let mut e = Exposition::new();
    b.render_metrics(&mut e);
    let s = crate::metrics::checker::check(&e.finish()).unwrap();
    assert_eq!(
        s["tollgate_approvals_decided_total{outcome=\"timed_out\"}"],
        1.0
    );
    assert_eq!(
        s["tollgate_approvals_decided_total{outcome=\"cancelled\"}"],
        1.0
    );
    assert_eq!(
        s["tollgate_approvals_requested_total{kind=\"statement\"}"],
        2.0
    );
    assert_eq!(s["tollgate_approvals_pending"], 0.0);
    assert_eq!(s["tollgate_approval_wait_seconds_count"], 1.0);
}

/// A session's waker that notes whether the broker's lock was held when
/// it was woken (issue 13: a compio waker may block the waking thread on a
/// shard that is itself waiting for that lock).
struct LockProbe {
    core: Arc<Core>,
    woken: std::sync::atomic::AtomicUsize,
    under_lock: std::sync::atomic::AtomicUsize,
}

impl Wake for LockProbe {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.core.state.try_lock().is_err() {
            self.under_lock.fetch_add(1, SeqCst);
        }
        self.woken.fetch_add(1, SeqCst);
    }
}

#[test]
fn waiters_are_answered_with_the_broker_lock_released() {
    use std::sync::atomic::Ordering::SeqCst;
    let b = broker(Duration::from_millis(300));
    let probe = Arc::new(LockProbe {
        core: b.handle.core.clone(),
        woken: Default::default(),
        under_lock: Default::default(),
    });
    let waker = Waker::from(probe.clone());
    let mut cx = Context::from_waker(&waker);
    // Three time out together; a reviewer denies the fourth.
    let pending: Vec<Pending> = (0..4).map(|_| b.request(req("ci-job"))).collect();
    let denied = pending[3].id;
    let mut waits: Vec<_> = pending
        .into_iter()
        .map(|p| Box::pin(p.decision()))
        .collect();
    for w in &mut waits {
        assert!(w.as_mut().poll(&mut cx).is_pending());
    }
    let g = groups(&["reviewers"]);
    let alice = Reviewer {
        subject: "alice",
        groups: &g,
        local_operator: false,
    };
    b.decide(denied, &alice, ReviewerAnswer::Deny, None)
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while probe.woken.load(SeqCst) < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(probe.woken.load(SeqCst), 4);
    assert_eq!(probe.under_lock.load(SeqCst), 0, "woken under the lock");
}

/// What a `[cluster]` mirror hears.
#[derive(Default)]
struct Heard(Mutex<Vec<(u64, Option<ApprovalState>)>>);

impl ApprovalMirror for Heard {
    fn opened(&self, view: &ApprovalView) {
        self.0.lock().unwrap().push((view.id, None));
    }
    fn closed(&self, id: u64, state: ApprovalState) {
        self.0.lock().unwrap().push((id, Some(state)));
    }
}

#[test]
fn a_mirrored_broker_uses_random_ids_and_takes_decisions_made_elsewhere() {
    let b = broker(Duration::from_millis(200));
    let heard = Arc::new(Heard::default());
    b.set_mirror(heard.clone());
    assert!(b.is_mirrored());
    let p1 = b.request(req("alice"));
    let p2 = b.request(req("alice"));
    assert!(p1.id != 0 && p2.id != 0 && p1.id != p2.id);
    assert!(p1.id < (1 << 53) && p2.id < (1 << 53));
    // Approved with a grant on another host: the waiter hears it, the grant holds here.
    let grant_ms = epoch_ms(SystemTime::now() + Duration::from_secs(600));
    assert!(b.apply_decision(p1.id, true, "rita", "ok", Some(grant_ms)));
    assert!(!b.apply_decision(p1.id, false, "sam", "late", None));
    assert_eq!(
        block_on(p1.decision()),
        ApprovalOutcome::Approved {
            by: "rita".into(),
            reason: "ok".into()
        }
    );
    assert!(
        b.grant_covers("alice", "payments", SystemTime::now())
            .is_some()
    );
    // The other times out here: the mirror is told, so the shared row closes.
    let id2 = p2.id;
    assert_eq!(block_on(p2.decision()), ApprovalOutcome::TimedOut);
    let heard = heard.0.lock().unwrap().clone();
    assert!(heard.contains(&(id2, None)));
    assert!(heard.contains(&(id2, Some(ApprovalState::TimedOut))));
    // A decision applied is not echoed back to the mirror as a local close.
    assert!(!heard.iter().any(|(id, s)| *id != id2 && s.is_some()));
}
