//! CLI client tests: argument parsing as the binary embeds it, table
//! layout, and every command against a live admin server with fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use clap::{Parser, Subcommand};

use super::*;
use crate::admin::tests::{FakeAudit, FakeAuth, FakeControl};
use crate::admin::{AdminConfig, AdminServer, AdminState, MemoryRevocations};
use crate::approvals::{ApprovalOutcome, ApprovalRequest, Broker, BrokerConfig};

/// How the binary embeds the client: admin commands at the top level.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Top,
    #[command(flatten)]
    admin: ClientOptions,
}

#[derive(Subcommand)]
enum Top {
    Check,
    #[command(flatten)]
    Admin(AdminCommand),
}

#[test]
fn parses_as_the_binary_embeds_it() {
    let cli = Cli::try_parse_from([
        "tollgate",
        "approvals",
        "approve",
        "42",
        "--reason",
        "ok",
        "--grant-minutes",
        "30",
        "--json",
        "--admin",
        "https://gw:9090",
    ])
    .unwrap();
    assert!(cli.admin.json);
    assert_eq!(cli.admin.admin, "https://gw:9090");
    match cli.command {
        Top::Admin(AdminCommand::Approvals(ApprovalsCommand::Approve {
            id,
            reason,
            grant_minutes,
        })) => {
            assert_eq!(
                (id, reason.as_deref(), grant_minutes),
                (42, Some("ok"), Some(30))
            );
        }
        _ => panic!("wrong command"),
    }
    // deny needs a reason; revoke needs exactly one of its targets.
    assert!(Cli::try_parse_from(["tollgate", "approvals", "deny", "1"]).is_err());
    assert!(Cli::try_parse_from(["tollgate", "revoke"]).is_err());
    assert!(
        Cli::try_parse_from(["tollgate", "revoke", "--subject", "a", "--issuer", "b"]).is_err()
    );
    let cli = Cli::try_parse_from(["tollgate", "revoke", "--token-id", "j1"]).unwrap();
    assert!(matches!(
        cli.command,
        Top::Admin(AdminCommand::Revoke(RevokeArgs {
            token_id: Some(_),
            ..
        }))
    ));
    let cli = Cli::try_parse_from(["tollgate", "revocations", "lift", "7"]).unwrap();
    assert!(matches!(
        cli.command,
        Top::Admin(AdminCommand::Revocations {
            action: Some(RevocationsCommand::Lift { id: 7 })
        })
    ));
    assert!(Cli::try_parse_from(["tollgate", "revocations"]).is_ok());
    let cli = Cli::try_parse_from(["tollgate", "sessions", "kill", "abc"]).unwrap();
    assert!(matches!(
        cli.command,
        Top::Admin(AdminCommand::Sessions(SessionsCommand::Kill { .. }))
    ));
    assert!(Cli::try_parse_from(["tollgate", "check"]).is_ok());
}

#[test]
fn tables_align_columns() {
    let mut out = Vec::new();
    table(
        &mut out,
        &["ID", "NAME", "NOTE"],
        &[
            vec!["1".into(), "alice".into(), "x".into()],
            vec!["100".into(), "é".into(), "".into()],
        ],
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["ID   NAME   NOTE", "1    alice  x", "100  é"]);
}

#[test]
fn spans_and_truncation() {
    assert_eq!(span(59_000), "59s");
    assert_eq!(span(-120_000), "-2m");
    assert_eq!(span(7_200_000), "2h");
    assert_eq!(short("a\nb", 10), "a b");
    assert_eq!(short("abcdef", 4), "abc…");
}

struct Live {
    server: AdminServer,
    broker: Broker,
}

fn live() -> Live {
    let control = Arc::new(FakeControl::with(&[
        ("000000010100002a", "ci-job"),
        ("0000000000000001000000000000002b", "etl"),
    ]));
    let broker = Broker::new(
        BrokerConfig {
            default_reviewer_groups: vec!["reviewers".into()],
            ..BrokerConfig::default()
        },
        None,
    )
    .unwrap();
    let config = AdminConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_groups: vec!["sre".into()],
        ..AdminConfig::default()
    };
    let state = AdminState::new(config, control, broker.clone())
        .with_auth(Arc::new(FakeAuth))
        .with_audit(Arc::new(FakeAudit::default()))
        .with_revocations(Arc::new(MemoryRevocations::default()))
        .with_reloader(Arc::new(|| Ok::<_, String>("3 targets".to_string())));
    Live {
        server: AdminServer::start(Arc::new(state)).unwrap(),
        broker,
    }
}

fn run(
    l: &Live,
    cmd: AdminCommand,
    token: Option<&str>,
    json: bool,
) -> Result<String, ClientError> {
    let opts = ClientOptions {
        admin: format!("http://{}/", l.server.local_addr()),
        token: token.map(str::to_string),
        json,
        ..ClientOptions::default()
    };
    let mut out = Vec::new();
    run_cli(cmd, opts, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn sessions_list_and_kill() {
    let l = live();
    let text = run(
        &l,
        AdminCommand::Sessions(SessionsCommand::List),
        None,
        false,
    )
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("SUBJECT"));
    assert!(lines[1].contains("ci-job") && lines[2].contains("etl"));
    let json = run(
        &l,
        AdminCommand::Sessions(SessionsCommand::List),
        None,
        true,
    )
    .unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 2);
    let kill = |id: &str| AdminCommand::Sessions(SessionsCommand::Kill { id: id.into() });
    let text = run(&l, kill("000000010100002a"), None, false).unwrap();
    assert_eq!(text, "ended 1 session(s)\n");
    match run(&l, kill("000000010100002a"), None, false) {
        Err(ClientError::Api {
            status: 404,
            message,
        }) => assert!(message.contains("no live session")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn approvals_through_the_cli() {
    let l = live();
    assert_eq!(
        run(
            &l,
            AdminCommand::Approvals(ApprovalsCommand::List),
            None,
            false
        )
        .unwrap(),
        "no pending approvals\n"
    );
    let p = l.broker.request(ApprovalRequest {
        session_id: "s".into(),
        requester: "ci-job".into(),
        target: "payments".into(),
        statement: "DELETE FROM accounts".into(),
        rule: "deletes".into(),
        ..ApprovalRequest::default()
    });
    let id = p.id;
    let text = run(
        &l,
        AdminCommand::Approvals(ApprovalsCommand::List),
        Some("alice-token"),
        false,
    )
    .unwrap();
    assert!(
        text.lines().nth(1).unwrap().starts_with(&id.to_string()),
        "{text}"
    );
    assert!(text.contains("DELETE FROM accounts"));
    // The requester's own token is refused.
    let approve = |token| {
        run(
            &l,
            AdminCommand::Approvals(ApprovalsCommand::Approve {
                id,
                reason: Some("CHG-9".into()),
                grant_minutes: Some(15),
            }),
            token,
            false,
        )
    };
    assert!(matches!(
        approve(Some("ci-token")),
        Err(ClientError::Api { status: 403, .. })
    ));
    let text = approve(Some("alice-token")).unwrap();
    assert!(
        text.starts_with(&format!(
            "approval {id} approved by alice; ci-job may repeat this on payments for"
        )),
        "{text}"
    );
    let decision = compio::runtime::Runtime::new()
        .unwrap()
        .block_on(p.decision());
    assert_eq!(
        decision,
        ApprovalOutcome::Approved {
            by: "alice".into(),
            reason: "CHG-9".into()
        }
    );
    let grants = run(
        &l,
        AdminCommand::Approvals(ApprovalsCommand::Grants),
        None,
        false,
    )
    .unwrap();
    assert!(
        grants.contains("ci-job") && grants.contains("alice"),
        "{grants}"
    );
    let shown = run(
        &l,
        AdminCommand::Approvals(ApprovalsCommand::Show { id }),
        None,
        false,
    )
    .unwrap();
    assert!(shown.contains("approved"), "{shown}");
    let deny = AdminCommand::Approvals(ApprovalsCommand::Deny {
        id,
        reason: "late".into(),
    });
    assert!(matches!(
        run(&l, deny, None, false),
        Err(ClientError::Api { status: 409, .. })
    ));
}

#[test]
fn revoke_revocations_and_reload() {
    let l = live();
    let revoke = AdminCommand::Revoke(RevokeArgs {
        subject: Some("ci-job".into()),
        token_id: None,
        issuer: None,
        reason: Some("leaked".into()),
        until: Some("2h".into()),
    });
    assert_eq!(
        run(&l, revoke, Some("sre-token"), false).unwrap(),
        "revoked subject ci-job; 1 live session(s) ended\n"
    );
    let listed = run(&l, AdminCommand::Revocations { action: None }, None, false).unwrap();
    assert!(
        listed.contains("subject") && listed.contains("sam") && listed.contains("leaked"),
        "{listed}"
    );
    // Lapses in just under two hours; revoked just now.
    assert!(listed.contains(" 1h") || listed.contains(" 2h"), "{listed}");
    let lift = AdminCommand::Revocations {
        action: Some(RevocationsCommand::Lift { id: 1 }),
    };
    assert_eq!(
        run(&l, lift.clone(), None, false).unwrap(),
        "lifted revocation 1 of subject ci-job\n"
    );
    assert!(matches!(
        run(&l, lift, None, false),
        Err(ClientError::Api { status: 404, .. })
    ));
    let bad = AdminCommand::Revoke(RevokeArgs {
        subject: Some("x".into()),
        token_id: None,
        issuer: None,
        reason: None,
        until: Some("someday".into()),
    });
    assert!(matches!(
        run(&l, bad, None, false),
        Err(ClientError::Usage { .. })
    ));
    assert_eq!(
        run(&l, AdminCommand::Reload, None, false).unwrap(),
        "reloaded: 3 targets\n"
    );
}

#[test]
fn transport_and_ca_errors_are_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = ClientOptions {
        admin: format!("http://127.0.0.1:{port}"),
        ..ClientOptions::default()
    };
    let e = run_cli(AdminCommand::Reload, opts, &mut Vec::new()).unwrap_err();
    assert!(matches!(e, ClientError::Transport { .. }), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let opts = ClientOptions {
        ca_file: Some(ca),
        ..ClientOptions::default()
    };
    assert!(matches!(
        Client::new(&opts),
        Err(ClientError::CaFile { .. })
    ));
}
