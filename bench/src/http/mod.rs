//! `tollgate-load http`: requests through tollgate's HTTP gateway (the token
//! in a header on every request) and, with `--direct`, to the upstream itself.
//!
//! It runs on the SQL modes' driver (`crate::sql::driver`: threads, closed and
//! open models, warm-up, HDR histograms, progress, the JSON summary), as one
//! more [`Backend`]: a session is a keep-alive connection, an operation one
//! request. The HTTP workloads map onto the driver's draws: `get` is
//! `select1` (a GET each), `post` is `insert` (a POST each), `mixed` is
//! `mixed` (80 % GET, 10 % POST, 10 % PUT) and `connect` is `connect` (a new
//! connection per request, sent with `Connection: close`). So the summary's
//! `ops` read select = GET, insert = POST, update = PUT.

pub mod cli;
pub mod client;

use std::net::ToSocketAddrs as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use rustls_pki_types::ServerName;

use crate::sql::tls::{SslMode, client_config};
use crate::sql::{Backend, Op, OpError, Password, SetupReport, Workload};
use client::{Conn, Endpoint};

/// What each request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpWorkload {
    /// GET the URL on a kept-alive connection.
    Get,
    /// POST `--body-size` bytes to the URL on a kept-alive connection.
    Post,
    /// 80 % GET, 10 % POST, 10 % PUT (bodies of `--body-size` bytes).
    Mixed,
    /// A new connection per request (a GET with `Connection: close`): the
    /// gateway's token check and upstream connect on every request.
    Connect,
}

impl HttpWorkload {
    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Mixed => "mixed",
            Self::Connect => "connect",
        }
    }

    /// The driver's workload whose draws this one uses.
    pub fn driver_workload(self) -> Workload {
        match self {
            Self::Get => Workload::Select1,
            Self::Post => Workload::Insert,
            Self::Mixed => Workload::Mixed,
            Self::Connect => Workload::Connect,
        }
    }
}

/// The method an operation of the driver becomes.
fn method(op: Op) -> &'static str {
    match op {
        Op::Select1 | Op::PointSelect { .. } => "GET",
        Op::Insert { .. } => "POST",
        Op::Update { .. } => "PUT",
    }
}

/// A parsed `http://` or `https://` URL.
pub struct Target {
    endpoint: Endpoint,
    /// `host[:port]` as the URL wrote it (the Host header).
    authority: String,
    /// Path and query (the request-target).
    target: String,
    /// `host:port` for the summary.
    addr: String,
    pub scheme: &'static str,
}

impl Target {
    /// `ca`: the PEM file `https://` is verified against (chain and host name).
    pub fn parse(url: &str, ca: Option<&Path>) -> anyhow::Result<Target> {
        let parsed = url::Url::parse(url).context("not an http:// or https:// URL")?;
        let scheme = match parsed.scheme() {
            "http" => "http",
            "https" => "https",
            other => bail!("the URL's scheme is {other}, not http or https"),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            bail!("the URL must not carry user information (the token goes in a header)");
        }
        if parsed.fragment().is_some() {
            bail!("the URL must not have a #fragment");
        }
        let host = parsed.host_str().context("the URL has no host")?;
        let port = parsed
            .port_or_known_default()
            .context("the URL has no port")?;
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (bare_host, port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        let tls = match (scheme, ca) {
            ("https", Some(ca)) => {
                let config = client_config(SslMode::VerifyFull, Some(ca))?;
                let name = ServerName::try_from(bare_host.to_owned())
                    .with_context(|| format!("{host} as a TLS server name"))?;
                Some((config, name))
            }
            ("https", None) => bail!("an https:// URL needs --ca FILE (the CA to verify it with)"),
            _ => None,
        };
        let mut target = parsed.path().to_owned();
        if let Some(query) = parsed.query() {
            target.push('?');
            target.push_str(query);
        }
        Ok(Target {
            endpoint: Endpoint { addr, tls },
            authority,
            target,
            addr: format!("{host}:{port}"),
            scheme,
        })
    }
}

/// One path (the gateway, or the upstream directly).
pub struct HttpBackend {
    target: Target,
    /// The header the token goes in; `Password::FromDsn`: none is sent.
    token_header: String,
    password: Password,
    body: Arc<[u8]>,
    /// The Content-Type of `body`.
    content_type: &'static str,
    workload: HttpWorkload,
}

/// A JSON object of `size` bytes (or its skeleton, when that is longer).
fn json_body(size: usize) -> Vec<u8> {
    const OPEN: &[u8] = br#"{"env":"staging","pad":""#;
    const CLOSE: &[u8] = br#""}"#;
    let pad = size.saturating_sub(OPEN.len() + CLOSE.len());
    let mut body = Vec::with_capacity(OPEN.len() + pad + CLOSE.len());
    body.extend_from_slice(OPEN);
    body.extend((0..pad).map(|i| b'a' + (i % 26) as u8));
    body.extend_from_slice(CLOSE);
    body
}

/// Bodies up to this size go out in the same write as the head.
const JOIN_BODY_BELOW: usize = 64 * 1024;

impl HttpBackend {
    pub fn new(
        target: Target,
        token_header: &str,
        password: Password,
        body_size: usize,
        workload: HttpWorkload,
    ) -> HttpBackend {
        // A recognisable, compressible-but-not-trivial pattern.
        let body: Vec<u8> = (0..body_size).map(|i| b'a' + (i % 26) as u8).collect();
        HttpBackend {
            target,
            token_header: token_header.to_owned(),
            password,
            body: body.into(),
            content_type: "application/octet-stream",
            workload,
        }
    }

    /// Bodies as a JSON object of the same size (`{"env":"staging","pad":"abc…"}`,
    /// its skeleton at least), labelled `application/json`: what a gateway's
    /// rules on JSON fields read.
    pub fn with_json_body(mut self) -> HttpBackend {
        self.body = json_body(self.body.len()).into();
        self.content_type = "application/json";
        self
    }

    /// The head of a request of `method` with this token (and body length).
    fn head(&self, method: &str, token: Option<&str>, body: bool, close: bool) -> Vec<u8> {
        let mut head = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tollgate-load/{}\r\n",
            self.target.target,
            self.target.authority,
            env!("CARGO_PKG_VERSION")
        );
        if let Some(token) = token {
            head.push_str(&format!("{}: Bearer {token}\r\n", self.token_header));
        }
        if body {
            head.push_str(&format!(
                "Content-Type: {}\r\nContent-Length: {}\r\n",
                self.content_type,
                self.body.len()
            ));
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// The session's prebuilt requests (one token for all of them).
    fn requests(&self, token: Option<&str>) -> Requests {
        let with_body = |method| {
            let mut head = self.head(method, token, true, false);
            if self.body.len() < JOIN_BODY_BELOW {
                head.extend_from_slice(&self.body);
            }
            head
        };
        Requests {
            get: self.head("GET", token, false, false),
            post: with_body("POST"),
            put: with_body("PUT"),
            body: (self.body.len() >= JOIN_BODY_BELOW).then(|| Arc::clone(&self.body)),
        }
    }
}

/// A session's requests, built once.
struct Requests {
    get: Vec<u8>,
    post: Vec<u8>,
    put: Vec<u8>,
    /// A large body, written after the head rather than copied into it.
    body: Option<Arc<[u8]>>,
}

impl Requests {
    /// A `connect` session sends its one request before it is handed out.
    fn none() -> Requests {
        Requests {
            get: Vec::new(),
            post: Vec::new(),
            put: Vec::new(),
            body: None,
        }
    }
}

pub struct HttpSession {
    endpoint: Endpoint,
    requests: Requests,
    /// `None` after the server ended the connection: the next request opens one.
    conn: Option<Conn>,
}

/// A status of 400 or more is an error, the connection kept if it may be.
fn check(answer: &client::Answer) -> Result<(), OpError> {
    if answer.status < 400 {
        return Ok(());
    }
    Err(OpError::Server {
        code: format!("HTTP {}", answer.status),
        message: answer.detail.clone(),
    })
}

impl Backend for HttpBackend {
    type Session = HttpSession;

    fn addr(&self) -> String {
        self.target.addr.clone()
    }

    async fn connect(&self, _session: u32) -> Result<HttpSession, OpError> {
        let token = self.password.for_session()?;
        let mut conn = Conn::open(&self.target.endpoint).await?;
        if self.workload == HttpWorkload::Connect {
            // The operation is the whole connection: one request, then the close.
            let request = self.head("GET", token.as_deref(), false, true);
            let answer = conn.exchange(&[&request], "GET").await?;
            check(&answer)?;
            return Ok(HttpSession {
                endpoint: self.target.endpoint.clone(),
                requests: Requests::none(),
                conn: Some(conn),
            });
        }
        Ok(HttpSession {
            endpoint: self.target.endpoint.clone(),
            requests: self.requests(token.as_deref()),
            conn: Some(conn),
        })
    }

    async fn setup(&self, _workload: Workload, _rows: u32) -> Result<SetupReport, OpError> {
        Ok(SetupReport::default())
    }
}

impl crate::sql::Session for HttpSession {
    async fn run(&mut self, op: Op) -> Result<(), OpError> {
        let conn = match self.conn.as_mut() {
            Some(conn) => conn,
            None => self.conn.insert(Conn::open(&self.endpoint).await?),
        };
        let method = method(op);
        let head: &[u8] = match method {
            "GET" => &self.requests.get,
            "POST" => &self.requests.post,
            _ => &self.requests.put,
        };
        let result = match (&self.requests.body, method) {
            (Some(body), "POST" | "PUT") => conn.exchange(&[head, body], method).await,
            _ => conn.exchange(&[head], method).await,
        };
        match result {
            Ok(answer) => {
                if !answer.keep_alive {
                    self.conn = None;
                }
                check(&answer)
            }
            Err(err) => {
                // The connection's state is unknown: the next request opens another.
                self.conn = None;
                Err(err)
            }
        }
    }

    fn prepared(&self) -> u64 {
        0
    }

    async fn close(self) {
        if let Some(conn) = self.conn {
            conn.close().await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_are_json_of_the_asked_size() {
        for size in [0, 10, 26, 27, 1024] {
            let body = json_body(size);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["env"], "staging");
            assert_eq!(body.len(), size.max(26), "size {size}");
        }
    }

    #[test]
    fn urls_become_targets() {
        let t = Target::parse("http://127.0.0.1:8080/items/a?x=1", None).unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.target, "/items/a?x=1");
        assert_eq!(t.addr, "127.0.0.1:8080");
        let t = Target::parse("http://127.0.0.1", None).unwrap();
        assert_eq!(
            (t.authority.as_str(), t.target.as_str()),
            ("127.0.0.1", "/")
        );
        assert_eq!(t.addr, "127.0.0.1:80");
        assert!(Target::parse("https://127.0.0.1:1/", None).is_err());
        assert!(Target::parse("ftp://127.0.0.1/", None).is_err());
        assert!(Target::parse("http://u:p@127.0.0.1/", None).is_err());
        assert!(Target::parse("127.0.0.1:80", None).is_err());
    }

    #[test]
    fn requests_carry_the_token_and_the_body() {
        let target = Target::parse("http://127.0.0.1:9/p", None).unwrap();
        let backend =
            HttpBackend::new(target, "X-Token", Password::FromDsn, 5, HttpWorkload::Mixed);
        let r = backend.requests(Some("t.k.n"));
        let get = String::from_utf8(r.get).unwrap();
        assert!(
            get.starts_with("GET /p HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"),
            "{get}"
        );
        assert!(get.contains("\r\nX-Token: Bearer t.k.n\r\n"), "{get}");
        assert!(
            get.ends_with("\r\n\r\n") && !get.contains("Content-Length"),
            "{get}"
        );
        let post = String::from_utf8(r.post).unwrap();
        assert!(post.starts_with("POST /p "), "{post}");
        assert!(post.ends_with("Content-Length: 5\r\n\r\nabcde"), "{post}");
        assert!(String::from_utf8(r.put).unwrap().starts_with("PUT /p "));
        assert!(r.body.is_none());
        let direct = backend.requests(None);
        assert!(!String::from_utf8(direct.get).unwrap().contains("Bearer"));
    }

    #[test]
    fn large_bodies_are_written_after_the_head() {
        let target = Target::parse("http://127.0.0.1:9/p", None).unwrap();
        let backend = HttpBackend::new(
            target,
            "Authorization",
            Password::FromDsn,
            JOIN_BODY_BELOW,
            HttpWorkload::Post,
        );
        let r = backend.requests(None);
        assert!(r.post.ends_with(b"\r\n\r\n"));
        assert_eq!(r.body.unwrap().len(), JOIN_BODY_BELOW);
    }
}
