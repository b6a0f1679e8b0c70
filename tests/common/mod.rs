//! Shared end-to-end harness: a real `tollgate` process on free ports, echo
//! upstreams, and `assert_eventually!` instead of sleeps.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod control;
pub mod crash;
pub mod garage;
pub mod httpgw;
pub mod mariadb;
pub mod mygw;
pub mod mywire;
pub mod pg;
pub mod pggw;
pub mod pgwire;
pub mod pki;
pub mod s3fleet;
pub mod sshgw;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Retry a condition until it holds or the deadline passes.
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr, $timeout:expr, $($msg:tt)+) => {{
        let deadline = std::time::Instant::now() + $timeout;
        loop {
            if $cond {
                break;
            }
            if std::time::Instant::now() > deadline {
                panic!($($msg)+);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }};
}

/// A port nobody listened on a moment ago. Racy (another process may take it before the
/// caller binds): only for servers that cannot bind port 0 and report it. Gateways listen
/// on port 0 and report their ports (`--ready-file`, [`Gateway::port`]).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An address that refuses connections for as long as the returned socket lives: bound
/// but not listening, so no other process can take the port meanwhile.
pub fn refusing_addr() -> (socket2::Socket, SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    (s, addr)
}

pub fn tollgate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tollgate")
}

/// An echo upstream: echoes until the client half-closes, then finishes and
/// closes its side. Counts connections it accepted.
pub struct Echo {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Echo {
    pub fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut c) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    c.set_nodelay(true).ok();
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if c.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let _ = c.shutdown(Shutdown::Write);
                });
            }
        });
        Echo {
            addr,
            accepted,
            stop,
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// A running `tollgate run` process with JSON logs captured to a file.
pub struct Gateway {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub log: PathBuf,
    /// The admin API's port (each test gateway gets its own), known once [`Gateway::wait_ready`]
    /// has read the ready file.
    pub admin_port: u16,
    /// Where `tollgate run --ready-file` reports the bound addresses.
    pub ready_file: PathBuf,
    /// The parsed ready file, once [`Gateway::wait_ready`] saw it.
    pub ready: Option<serde_json::Value>,
    /// Where this gateway records sessions.
    pub recordings: PathBuf,
}

impl Gateway {
    /// Write `config` (TOML) to a temp dir and start the gateway on it,
    /// waiting until it reports that it is ready.
    pub fn start(config: &str) -> Gateway {
        let mut g = Gateway::spawn(config);
        g.wait_ready();
        g
    }

    /// Start without waiting for readiness (for start-up failures).
    pub fn spawn(config: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("tollgate.toml");
        std::fs::write(&cfg, config).unwrap();
        Gateway::spawn_in(dir, cfg)
    }

    /// Start on a config file; unless it says otherwise, the gateway records
    /// into the temp dir and serves its admin API on a port the kernel picks.
    pub fn spawn_in(dir: tempfile::TempDir, cfg: PathBuf) -> Gateway {
        Gateway::spawn_logging(dir, cfg, "json")
    }

    /// [`spawn_in`](Self::spawn_in) with the log in `log_format` (`json`,
    /// or `human` for tests of what an operator reads).
    pub fn spawn_logging(dir: tempfile::TempDir, cfg: PathBuf, log_format: &str) -> Gateway {
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        let recordings = dir.path().join("recordings");
        if !text.contains("[recorder]") {
            text = format!("[recorder]\ndir = \"{}\"\n\n{text}", recordings.display());
        }
        if !text.contains("[admin]") {
            text = format!("[admin]\nlisten = \"127.0.0.1:0\"\n\n{text}");
        }
        std::fs::write(&cfg, text).unwrap();
        let log = dir.path().join("tollgate.log");
        let ready_file = dir.path().join("ready.json");
        let child = Command::new(tollgate_bin())
            .args(["run", "--log-format", log_format, "--config"])
            .arg(&cfg)
            .arg("--ready-file")
            .arg(&ready_file)
            .env("TOLLGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Gateway {
            child,
            dir,
            config: cfg,
            log,
            admin_port: 0,
            ready_file,
            ready: None,
            recordings,
        }
    }

    /// Waits for the ready file (written once every shard listens and the admin API is
    /// up) and takes the bound ports from it.
    pub fn wait_ready(&mut self) {
        // Written through a rename: once it parses, it is whole.
        let read = || {
            std::fs::read(&self.ready_file)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        };
        assert_eventually!(
            read().is_some(),
            Duration::from_secs(20),
            "gateway never became ready; log:\n{}",
            self.log_text()
        );
        let report = read().unwrap();
        let admin: SocketAddr = report["admin"].as_str().unwrap().parse().unwrap();
        self.admin_port = admin.port();
        self.ready = Some(report);
    }

    /// The first address `target` listens on (from the ready file).
    pub fn addr(&self, target: &str) -> SocketAddr {
        let ready = self.ready.as_ref().expect("wait_ready first");
        ready["targets"][target][0]
            .as_str()
            .unwrap_or_else(|| panic!("no target {target:?} in {ready}"))
            .parse()
            .unwrap()
    }

    /// The port of [`Gateway::addr`].
    pub fn port(&self, target: &str) -> u16 {
        self.addr(target).port()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_count(&self, needle: &str) -> usize {
        self.log_text().matches(needle).count()
    }

    /// Parsed JSON log lines whose message is `msg`.
    pub fn log_events(&self, msg: &str) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == msg)
            .collect()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Wait for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run `tollgate <args>` against this gateway's admin API and recordings.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(tollgate_bin())
            .args(args)
            .env(
                "TOLLGATE_ADMIN",
                format!("http://127.0.0.1:{}", self.admin_port),
            )
            .env("TOLLGATE_RECORDINGS", &self.recordings)
            .output()
            .unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tcp target section for tests.
pub fn tcp_target(name: &str, listen: u16, upstream: SocketAddr, extra: &str) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\nprotocol = \"tcp\"\nlisten = [\"127.0.0.1:{listen}\"]\n\
         upstream = \"{upstream}\"\nunauthenticated = true\n{extra}\n"
    )
}

pub fn connect(port: u16) -> TcpStream {
    connect_to(SocketAddr::from(([127, 0, 0, 1], port)))
}

pub fn connect_to(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Send `msg`, read back exactly its length.
pub fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}

/// Read until EOF or error; returns bytes read and whether it was a clean EOF.
pub fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("connection still open after the read timeout")
            }
            Err(_) => return (out, false),
        }
    }
}

/// The Python with the test drivers (psycopg), set up by tests/deps.sh.
pub fn python_bin() -> String {
    std::env::var("TOLLGATE_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/target/pyenv/bin/python");
        if Path::new(venv).exists() {
            venv.to_string()
        } else {
            "python3".to_string()
        }
    })
}

/// Run a Python snippet with `args`; returns its trimmed stdout, panics on failure.
pub fn python(code: &str, args: &[&str]) -> String {
    let out = Command::new(python_bin())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
