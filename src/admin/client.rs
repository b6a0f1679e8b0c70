//! The operator CLI's side of the admin API: `tollgate approvals ...`,
//! `sessions ...`, `revoke`, `revocations`, `reload`. Readable aligned tables
//! by default, the API's JSON with `--json`.
//!
//! The binary embeds [`AdminCommand`] in its subcommands (`#[command(flatten)]`)
//! and [`ClientOptions`] in its top-level arguments (they are `global`, so
//! they may follow the subcommand), then calls [`run_cli`].

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Value, json};

/// Where the admin API is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct ClientOptions {
    /// Admin API base URL.
    #[arg(
        long = "admin",
        env = "TOLLGATE_ADMIN",
        default_value = "http://127.0.0.1:9090",
        global = true
    )]
    pub admin: String,
    /// Bearer token for the admin API (needed off loopback, and to act as
    /// yourself rather than the local operator).
    #[arg(
        long,
        env = "TOLLGATE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// CA certificate(s) (PEM) that signed the admin API's certificate.
    #[arg(long, global = true)]
    pub ca_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            admin: "http://127.0.0.1:9090".into(),
            token: None,
            ca_file: None,
            json: false,
        }
    }
}

/// Admin subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Just-in-time approval requests.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Live sessions across all shards.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Revoke a subject, a token id or an issuer: new sessions are refused
    /// and a subject's live sessions end.
    Revoke(RevokeArgs),
    /// List revocations (the default), or lift one.
    Revocations {
        #[command(subcommand)]
        action: Option<RevocationsCommand>,
    },
    /// Validate and apply the configuration file again.
    Reload,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ApprovalsCommand {
    /// Pending approval requests you may review.
    List,
    /// One request, pending or decided.
    Show { id: u64 },
    /// Approve a request (never your own).
    Approve {
        id: u64,
        #[arg(long)]
        reason: Option<String>,
        /// Also let this identity run statements needing approval on this
        /// target for N minutes without asking again.
        #[arg(long)]
        grant_minutes: Option<u64>,
    },
    /// Deny a request; the reason is shown to the requester.
    Deny {
        id: u64,
        #[arg(long)]
        reason: String,
    },
    /// Time-boxed grants in force.
    Grants,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RevocationsCommand {
    /// Revocations in force (the file's and the API's).
    List,
    /// Lift a revocation made through the API, by the id the list shows.
    Lift { id: u64 },
}

#[derive(Debug, Clone, Subcommand)]
pub enum SessionsCommand {
    /// Live sessions on every shard.
    List,
    /// End a session by id.
    Kill { id: String },
}

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["subject", "token_id", "issuer"])))]
pub struct RevokeArgs {
    #[arg(long)]
    pub subject: Option<String>,
    #[arg(long)]
    pub token_id: Option<String>,
    #[arg(long)]
    pub issuer: Option<String>,
    #[arg(long)]
    pub reason: Option<String>,
    /// The revocation lapses then: an RFC 3339 time
    /// (`2026-12-31T23:00:00Z`) or a span from now (`2h`, `7days`).
    #[arg(long)]
    pub until: Option<String>,
}

/// `--until` as the RFC 3339 time the API takes.
fn until_time(arg: &str) -> Result<String, ClientError> {
    if humantime::parse_rfc3339_weak(arg).is_ok() {
        return Ok(arg.to_string());
    }
    let span = humantime::parse_duration(arg).map_err(|e| ClientError::Usage {
        message: format!("--until {arg:?}: neither an RFC 3339 time nor a span like 2h ({e})"),
    })?;
    Ok(humantime::format_rfc3339_seconds(std::time::SystemTime::now() + span).to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    #[error("admin API answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("{path}: {message}")]
    CaFile { path: String, message: String },
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{message}")]
    Usage { message: String },
}

/// A connection to the admin API.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(opts: &ClientOptions) -> Result<Client, ClientError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .max_redirects(0);
        if let Some(path) = &opts.ca_file {
            let ca_err = |message: String| ClientError::CaFile {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                if let ureq::tls::PemItem::Certificate(c) =
                    item.map_err(|e| ca_err(e.to_string()))?
                {
                    certs.push(c);
                }
            }
            if certs.is_empty() {
                return Err(ca_err("no certificate in the file".into()));
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(Client {
            agent: config.build().into(),
            base: opts.admin.trim_end_matches('/').to_string(),
            token: opts.token.clone().filter(|t| !t.is_empty()),
        })
    }

    /// Call the API; a non-2xx answer becomes [`ClientError::Api`] with the
    /// server's `error` message.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let transport = |message: String| ClientError::Transport {
            url: url.clone(),
            message,
        };
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        // The server takes a POST only as JSON (a browser cannot send that
        // cross-site without a preflight it would never pass).
        let body = match body {
            Some(v) => Some(v.to_string()),
            None if method == "POST" => Some("{}".to_string()),
            None => None,
        };
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        let body = body.unwrap_or_default();
        let req = req.body(body).map_err(|e| transport(e.to_string()))?;
        let mut resp = self.agent.run(req).map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| transport(e.to_string()))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            let message = value["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            Err(ClientError::Api { status, message })
        }
    }
}

/// Turns one API answer into readable text.
type Render = fn(&Value, &mut dyn Write) -> std::io::Result<()>;

/// Run one admin subcommand, writing its output to `out`.
pub fn run_cli(
    cmd: AdminCommand,
    opts: ClientOptions,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let c = Client::new(&opts)?;
    let (value, render): (Value, Render) = match cmd {
        AdminCommand::Approvals(ApprovalsCommand::List) => {
            (c.call("GET", "/v1/approvals", None)?, print_approvals)
        }
        AdminCommand::Approvals(ApprovalsCommand::Show { id }) => (
            c.call("GET", &format!("/v1/approvals/{id}"), None)?,
            print_approval,
        ),
        AdminCommand::Approvals(ApprovalsCommand::Approve {
            id,
            reason,
            grant_minutes,
        }) => {
            let body = json!({ "reason": reason, "grant_minutes": grant_minutes });
            (
                c.call("POST", &format!("/v1/approvals/{id}/approve"), Some(&body))?,
                print_decision,
            )
        }
        AdminCommand::Approvals(ApprovalsCommand::Deny { id, reason }) => {
            let body = json!({ "reason": reason });
            (
                c.call("POST", &format!("/v1/approvals/{id}/deny"), Some(&body))?,
                print_decision,
            )
        }
        AdminCommand::Approvals(ApprovalsCommand::Grants) => {
            (c.call("GET", "/v1/grants", None)?, print_grants)
        }
        AdminCommand::Sessions(SessionsCommand::List) => {
            (c.call("GET", "/v1/sessions", None)?, print_sessions)
        }
        AdminCommand::Sessions(SessionsCommand::Kill { id }) => (
            c.call("DELETE", &format!("/v1/sessions/{id}"), None)?,
            |v, out| writeln!(out, "ended {} session(s)", v["killed"]),
        ),
        AdminCommand::Revoke(a) => {
            let mut body = json!({ "reason": a.reason });
            if let Some(u) = &a.until {
                body["until"] = Value::String(until_time(u)?);
            }
            for (key, v) in [
                ("subject", a.subject),
                ("token_id", a.token_id),
                ("issuer", a.issuer),
            ] {
                if let Some(v) = v {
                    body[key] = Value::String(v);
                }
            }
            (c.call("POST", "/v1/revocations", Some(&body))?, |v, out| {
                let r = &v["revocation"];
                writeln!(
                    out,
                    "revoked {} {}; {} live session(s) ended",
                    text(&r["kind"]),
                    text(&r["value"]),
                    v["sessions_ended"]
                )
            })
        }
        AdminCommand::Revocations {
            action: None | Some(RevocationsCommand::List),
        } => (c.call("GET", "/v1/revocations", None)?, print_revocations),
        AdminCommand::Revocations {
            action: Some(RevocationsCommand::Lift { id }),
        } => (
            c.call("DELETE", &format!("/v1/revocations/{id}"), None)?,
            |v, out| {
                let r = &v["lifted"];
                writeln!(
                    out,
                    "lifted revocation {} of {} {}",
                    r["id"],
                    text(&r["kind"]),
                    text(&r["value"])
                )
            },
        ),
        AdminCommand::Reload => (c.call("POST", "/v1/reload", None)?, |v, out| {
            writeln!(out, "reloaded: {}", text(&v["summary"]))
        }),
    };
    if opts.json {
        let pretty = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
        writeln!(out, "{pretty}")?;
    } else {
        render(&value, out)?;
    }
    Ok(())
}

/// A JSON value as table text: strings bare, null empty.
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        v => v.to_string(),
    }
}

/// One line, at most `max` characters.
fn short(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A signed span in compact form: `45s`, `12m`, `3h`, `2d`.
fn span(ms: i64) -> String {
    let s = ms.unsigned_abs() / 1000;
    let body = match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    };
    if ms < 0 { format!("-{body}") } else { body }
}

fn age(v: &Value) -> String {
    v.as_i64().map(|t| span(now_ms() - t)).unwrap_or_default()
}

fn until(v: &Value) -> String {
    v.as_i64().map(|t| span(t - now_ms())).unwrap_or_default()
}

/// Columns padded to their widest cell; the last column is not padded.
pub fn table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line =
        |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
            let mut s = String::new();
            for (i, (cell, w)) in cells.zip(&widths).enumerate() {
                if i + 1 == widths.len() {
                    s.push_str(cell);
                } else {
                    s.push_str(cell);
                    s.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
                }
            }
            writeln!(out, "{}", s.trim_end())
        };
    line(out, &mut headers.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map_or(&[], Vec::as_slice)
}

fn print_approvals(v: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = list(v, "approvals")
        .iter()
        .map(|a| {
            vec![
                text(&a["id"]),
                text(&a["kind"]),
                text(&a["requester"]),
                text(&a["target"]),
                short(&text(&a["rule"]), 30),
                age(&a["created_ms"]),
                until(&a["expires_ms"]),
                short(&text(&a["statement"]), 60),
            ]
        })
        .collect();
    if rows.is_empty() {
        return writeln!(out, "no pending approvals");
    }
    table(
        out,
        &[
            "ID",
            "KIND",
            "REQUESTER",
            "TARGET",
            "RULE",
            "AGE",
            "EXPIRES",
            "STATEMENT",
        ],
        &rows,
    )
}

fn print_approval(a: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    let mut rows = Vec::new();
    for key in [
        "id",
        "kind",
        "state",
        "requester",
        "target",
        "rule",
        "session_id",
        "reviewer_groups",
        "decided_by",
        "reason",
    ] {
        if !a[key].is_null() {
            rows.push(vec![key.to_string(), text(&a[key])]);
        }
    }
    rows.push(vec!["age".into(), age(&a["created_ms"])]);
    if a["state"] == "pending" {
        rows.push(vec!["expires in".into(), until(&a["expires_ms"])]);
    }
    if !a["grant_expires_ms"].is_null() {
        rows.push(vec!["grant ends in".into(), until(&a["grant_expires_ms"])]);
    }
    rows.push(vec!["statement".into(), text(&a["statement"])]);
    table(out, &["FIELD", "VALUE"], &rows)
}

fn print_decision(a: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    write!(
        out,
        "approval {} {} by {}",
        text(&a["id"]),
        text(&a["state"]),
        text(&a["decided_by"])
    )?;
    if !a["grant_expires_ms"].is_null() {
        write!(
            out,
            "; {} may repeat this on {} for {}",
            text(&a["requester"]),
            text(&a["target"]),
            until(&a["grant_expires_ms"])
        )?;
    }
    writeln!(out)
}

fn print_grants(v: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = list(v, "grants")
        .iter()
        .map(|g| {
            vec![
                text(&g["subject"]),
                text(&g["target"]),
                text(&g["kind"]),
                text(&g["granted_by"]),
                until(&g["expires_ms"]),
                short(&text(&g["reason"]), 50),
            ]
        })
        .collect();
    if rows.is_empty() {
        return writeln!(out, "no grants in force");
    }
    table(
        out,
        &["SUBJECT", "TARGET", "KIND", "BY", "ENDS IN", "REASON"],
        &rows,
    )
}

fn print_sessions(v: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    // Under `[cluster]` the list spans the fleet: each row names its host.
    let fleet = list(v, "sessions").iter().any(|s| s.get("host").is_some());
    let rows: Vec<Vec<String>> = list(v, "sessions")
        .iter()
        .map(|s| {
            let host = fleet.then(|| text(&s["host"]));
            host.into_iter()
                .chain([
                    text(&s["id"]),
                    text(&s["shard"]),
                    text(&s["target"]),
                    text(&s["subject"]),
                    text(&s["client"]),
                    age(&s["started_ms"]),
                    text(&s["bytes_up"]),
                    text(&s["bytes_down"]),
                    short(&text(&s["current_statement"]), 50),
                ])
                .collect()
        })
        .collect();
    if let Some(note) = v["fleet"].as_str().filter(|n| *n != "ok") {
        writeln!(out, "fleet: {note}")?;
    }
    if rows.is_empty() {
        return writeln!(out, "no live sessions");
    }
    let host_col: &[&str] = if fleet { &["HOST"] } else { &[] };
    table(
        out,
        &[
            host_col,
            &[
                "ID",
                "SHARD",
                "TARGET",
                "SUBJECT",
                "CLIENT",
                "AGE",
                "BYTES UP",
                "BYTES DOWN",
                "STATEMENT",
            ],
        ]
        .concat(),
        &rows,
    )
}

fn print_revocations(v: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = list(v, "revocations")
        .iter()
        .map(|r| {
            vec![
                r["id"].as_u64().map_or("-".into(), |id| id.to_string()),
                text(&r["kind"]),
                short(&text(&r["value"]), 60),
                text(&r["revoked_by"]),
                age(&r["revoked_ms"]),
                until(&r["until_ms"]),
                short(&text(&r["reason"]), 50),
            ]
        })
        .collect();
    if rows.is_empty() {
        return writeln!(out, "no revocations");
    }
    table(
        out,
        &["ID", "KIND", "VALUE", "BY", "AGE", "LAPSES IN", "REASON"],
        &rows,
    )
}

#[cfg(test)]
mod tests;
