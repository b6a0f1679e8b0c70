//! The `tollgate-load http` command line: the URL(s), the token header, the
//! body size; the token and load-model options are the SQL modes' own.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;

use super::{HttpBackend, HttpWorkload, Target};
use crate::sql::Password;
use crate::sql::cli::{Label, LoadArgs, gateway_password, plan, run_both};

pub const HTTP_HELP: &str = "\
TOKENS: through tollgate every request carries `<token header>: Bearer <token>`
(--token-header, default Authorization: the target's http.token_header). Give
the token with --token (or TOLLGATE_TOKEN, or --token-file), or let the tool
mint one with a development key (`tollgate token keygen`): --token-key KEY --iss
ISSUER [--sub --groups --aud --ttl]. --token-per-session mints a new one for
every connection (with `connect`: for every request). The --direct URL gets no
token.

WORKLOADS: get (GET the URL), post (POST --body-size bytes), mixed (80 % GET,
10 % POST, 10 % PUT), each on kept-alive connections; connect (a new connection
per request, a GET with `Connection: close`: token check and upstream connect
every time). A status of 400 or more counts as a server error.

JSON OUTPUT (--json): the object of `tollgate-load pg` (see its --help), with
  mode \"http\", workload get | post | mixed | connect, protocol http | https,
  ops {select: GETs, insert: POSTs, update: PUTs, connect: connections},
  sessions (connections opened by the driver; a connection the server closed
  after a response is reopened inside the next request, its time included).

EXIT STATUS: 0 when the run completed; 2 when a path completed no request and
had errors (stderr says which and the last error); 1 on a usage or set-up error.
";

#[derive(Args, Debug)]
pub struct HttpArgs {
    /// What each request does.
    #[arg(value_enum)]
    pub workload: HttpWorkload,
    /// The URL under test: tollgate's HTTP listener and a path behind it.
    #[arg(long, env = "TOLLGATE_LOAD_URL")]
    pub url: String,
    /// Also run the same load against this URL (the upstream directly, no token), after the gateway.
    #[arg(long)]
    pub direct: Option<String>,
    /// The header the token goes in, as `Bearer <token>` (the target's http.token_header).
    #[arg(long, default_value = "Authorization")]
    pub token_header: String,
    /// Body of each POST and PUT (64, 4KiB, 1MB, ...).
    #[arg(long, default_value = "1KiB", value_parser = crate::parse_size_arg)]
    pub body_size: u64,
    /// Send each body as a JSON object of --body-size bytes (`application/json`) instead of octets.
    #[arg(long)]
    pub json_body: bool,
    /// CA certificate (PEM) that https:// URLs are verified against (chain and host name).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Largest `--body-size`: one copy is shared by every connection.
const MAX_BODY: u64 = 1 << 30;

/// An HTTP field name (RFC 9110 token).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub fn run_http(args: HttpArgs) -> anyhow::Result<ExitCode> {
    let workload = args.workload;
    let plan = plan(&args.load, workload.driver_workload(), 1)?;
    if !is_header_name(&args.token_header) {
        bail!(
            "--token-header {:?} is not a header name",
            args.token_header
        );
    }
    if args.body_size > MAX_BODY {
        bail!("--body-size must be at most 1 GiB");
    }
    let body_size = usize::try_from(args.body_size)?;
    let password = gateway_password(&args.load)?;
    if let Password::Token(token) = &password
        && (token.is_empty() || token.bytes().any(|b| b.is_ascii_control() || b == b' '))
    {
        bail!("the token is empty or has spaces or control characters");
    }
    let target = Target::parse(&args.url, args.ca.as_deref()).context("--url")?;
    let label = Label {
        mode: "http",
        workload: workload.name(),
        protocol: target.scheme,
    };
    let json = args.json_body;
    let shape = move |b: HttpBackend| if json { b.with_json_body() } else { b };
    let gateway = shape(HttpBackend::new(
        target,
        &args.token_header,
        password,
        body_size,
        workload,
    ));
    let direct = args
        .direct
        .as_deref()
        .map(|url| Target::parse(url, args.ca.as_deref()))
        .transpose()
        .context("--direct")?
        .map(|target| {
            shape(HttpBackend::new(
                target,
                &args.token_header,
                Password::FromDsn,
                body_size,
                workload,
            ))
        });
    run_both(&plan, label, gateway, direct, args.load.json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_tokens() {
        assert!(is_header_name("Authorization"));
        assert!(is_header_name("X-Api-Token"));
        assert!(!is_header_name(""));
        assert!(!is_header_name("X Token"));
        assert!(!is_header_name("X-Token:"));
        assert!(!is_header_name("X\r\nEvil"));
    }
}
