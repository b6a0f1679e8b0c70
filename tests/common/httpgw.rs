//! nginx as an HTTP upstream (started as root with a temp prefix on a free
//! port, logging the `Authorization` it receives) and a tollgate with an
//! `http` target in front of it, for the HTTP gateway tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::pggw::{AUD, ISS};
use super::{Gateway, free_port, tollgate_bin};

/// What nginx answers: `/` a short text, `/dav/` PUT/GET/DELETE of files,
/// `/chunked/` the same files re-sent chunked (sub_filter drops the length).
pub struct Nginx {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub access_log: PathBuf,
    pub www: PathBuf,
}

impl Nginx {
    /// `tls`: listen with this certificate and key only.
    /// `keepalive`: nginx's `keepalive_timeout` (how long it keeps an idle
    /// connection).
    pub fn start(tls: Option<(&std::path::Path, &std::path::Path)>, keepalive: &str) -> Nginx {
        Nginx::start_with(tls, None, keepalive)
    }

    /// As `start`; `client_ca`: with `tls`, ask for a client certificate
    /// from this CA (optional: `/mtls/` answers 403 without a valid one,
    /// and the access log's `cn=` shows the subject).
    pub fn start_with(
        tls: Option<(&std::path::Path, &std::path::Path)>,
        client_ca: Option<&std::path::Path>,
        keepalive: &str,
    ) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut ssl = match tls {
            None => String::new(),
            Some((c, k)) => format!(
                " ssl;\n    ssl_certificate {};\n    ssl_certificate_key {}",
                c.display(),
                k.display()
            ),
        };
        if let Some(ca) = client_ca {
            ssl += &format!(
                ";\n    ssl_verify_client optional;\n    ssl_client_certificate {}",
                ca.display()
            );
        }
        let www = d.join("www");
        std::fs::create_dir_all(www.join("dav")).unwrap();
        let port = free_port();
        let access_log = d.join("access.log");
        let conf = format!(
            r#"daemon off;
master_process off;
user root;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  log_format auth '$request_method $request_uri auth=[$http_authorization] key=[$http_x_api_key] xff=[$http_x_forwarded_for] via=[$http_via] fwd=[$http_forwarded] te=[$http_transfer_encoding] conn=$connection ae=[$http_accept_encoding] cn=[$ssl_client_s_dn]';
  access_log {log} auth;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_requests 1000;
  keepalive_timeout {keepalive};
  server {{
    listen 127.0.0.1:{port}{ssl};
    root {www};
    client_max_body_size 64m;
    types {{ application/json json; application/octet-stream bin; }}
    default_type text/plain;
    location = / {{ return 200 "hello\n"; }}
    location /items/ {{ return 200 "item $request_method $uri\n"; }}
    location = /empty {{ return 204; }}
    location /api/ {{ return 200 "k8s $request_method $request_uri\n"; }}
    location /apis/ {{ return 200 "k8s $request_method $request_uri\n"; }}
    location /mtls/ {{
      if ($ssl_client_verify != SUCCESS) {{ return 403 "no client certificate\n"; }}
      return 200 "client $ssl_client_s_dn\n";
    }}
    location /dav/ {{ dav_methods PUT DELETE; create_full_put_path on; }}
    location /gz/ {{ alias {www}/dav/; add_header Content-Encoding gzip; }}
    location /chunked/ {{
      alias {www}/dav/;
      sub_filter 'zzz' 'zzz';
      sub_filter_once off;
      sub_filter_types *;
    }}
  }}
}}
"#,
            d = d.display(),
            log = access_log.display(),
            www = www.display(),
        );
        let conf_path = d.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (tests/deps.sh installs it)");
        crate::assert_eventually!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            Duration::from_secs(10),
            "nginx did not listen: {}",
            std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
        );
        Nginx {
            child,
            dir,
            port,
            access_log,
            www,
        }
    }

    pub fn access(&self) -> String {
        std::fs::read_to_string(&self.access_log).unwrap_or_default()
    }

    /// The access log once it has at least `lines` lines (nginx writes a
    /// line after it sent the response, so a caller can be faster).
    pub fn access_lines(&self, lines: usize) -> String {
        crate::assert_eventually!(
            self.access().lines().count() >= lines,
            Duration::from_secs(10),
            "nginx logged fewer than {lines} requests: {}",
            self.access()
        );
        self.access()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket (or fake) upstream from `tests/common/ws_upstream.py` in
/// `mode`, logging what it saw to `log`.
pub struct WsUpstream {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl WsUpstream {
    pub fn start(mode: &str) -> WsUpstream {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("upstream.log");
        std::fs::write(&log, "").unwrap();
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/ws_upstream.py");
        let child = Command::new(super::python_bin())
            .arg(script)
            .arg(mode)
            .arg(port.to_string())
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        crate::assert_eventually!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            Duration::from_secs(15),
            "ws upstream {mode} did not listen: {}",
            std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
        );
        WsUpstream {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    pub fn seen(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stored credential nginx must see and no caller ever may.
pub const SECRET: &str = "upstream-secret-7f3a9c";

/// How the test gateway is set up beyond the defaults.
#[derive(Default)]
pub struct Options<'a> {
    /// Extra lines of `[target.http]`.
    pub http: &'a str,
    /// Whole tables after it (`[[target.http.rules]]`).
    pub tables: &'a str,
    /// TLS on the caller's side and to nginx (verified against a test CA).
    pub tls: bool,
    /// nginx's `keepalive_timeout` (default 75s).
    pub nginx_keepalive: Option<&'a str>,
    /// Another upstream than nginx (a port on 127.0.0.1).
    pub upstream: Option<u16>,
    /// Extra keys of the `[[target]]` table itself (`idle_timeout`).
    pub target: &'a str,
    /// With `tls`: plaintext to the upstream (one that is not nginx).
    pub plain_upstream: bool,
}

pub struct HttpGateway {
    pub gw: Gateway,
    /// The CA of every test certificate (TLS runs only).
    pub ca: Option<PathBuf>,
    pub nginx: Nginx,
    pub port: u16,
    pub key: PathBuf,
    pub secret_file: PathBuf,
}

impl HttpGateway {
    /// `http` holds extra lines of `[target.http]`, `tables` whole tables
    /// after it (`[[target.http.rules]]`).
    pub fn start(http: &str, tables: &str) -> HttpGateway {
        HttpGateway::with(Options {
            http,
            tables,
            ..Options::default()
        })
    }

    pub fn with(o: Options<'_>) -> HttpGateway {
        let dir = tempfile::tempdir().unwrap();
        let keepalive = o.nginx_keepalive.unwrap_or("75s");
        let (nginx, ca, tls) = if o.tls {
            let ca = super::pki::Ca::new(dir.path(), "test-ca");
            let (nc, nk) = ca.server(dir.path(), "nginx");
            let (gc, gk) = ca.server(dir.path(), "gw");
            let mut tls = format!(
                "[target.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                gc.display(),
                gk.display(),
            );
            if !o.plain_upstream {
                tls += &format!(
                    "[target.upstream_tls]\nmode = \"verify-full\"\nca_file = \"{}\"\n",
                    ca.cert.display()
                );
            }
            (
                Nginx::start(Some((&nc, &nk)), keepalive),
                Some(ca.cert.clone()),
                tls,
            )
        } else {
            (Nginx::start(None, keepalive), None, String::new())
        };
        let keys = dir.path().join("keys");
        let out = Command::new(tollgate_bin())
            .args(["token", "keygen", "--dir"])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let secret_file = dir.path().join("upstream.secret");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let cfg = format!(
            r#"
[engine]
shards = 1

[[identity.issuer]]
name = "test"
issuer = "{ISS}"
audience = ["{AUD}"]
jwks_file = "{jwks}"

[[target]]
name = "api"
protocol = "http"
listen = ["127.0.0.1:0"]
upstream = "127.0.0.1:{upport}"
{target}
[target.credential]
user = "svc"
password_file = "{secret}"
{tls}
[target.access]
groups = ["ci"]
[target.http]
{http}
{tables}
"#,
            jwks = keys.join("tollgate-dev-jwks.json").display(),
            upport = o.upstream.unwrap_or(nginx.port),
            target = o.target,
            secret = secret_file.display(),
            http = o.http,
            tables = o.tables,
            tls = tls,
        );
        let cfg_path = dir.path().join("tollgate.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let mut gw = Gateway::spawn_logging(dir, cfg_path, "json");
        gw.wait_ready();
        let port = gw.port("api");
        HttpGateway {
            gw,
            ca,
            nginx,
            port,
            key: keys.join("tollgate-dev-key.pem"),
            secret_file,
        }
    }

    pub fn token(&self, sub: &str, groups: &str) -> String {
        super::pggw::mint(&self.key, sub, groups, "10m", None)
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// `curl -sS -i` with `args`: (exit ok, the whole output with heads).
    pub fn curl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("curl")
            .args(["-sS", "-i", "--max-time", "20"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Everything a caller, operator or auditor could read: the gateway's
    /// log and the recordings export.
    pub fn log_and_export(&self) -> String {
        let export = self.gw.cli(&["recordings", "export", "--all"]);
        assert!(export.status.success(), "{export:?}");
        format!(
            "{}\n{}",
            self.gw.log_text(),
            String::from_utf8_lossy(&export.stdout)
        )
    }
}
