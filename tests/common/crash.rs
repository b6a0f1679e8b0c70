//! The kill -9 tests' shared steps (tests/recording_crash_e2e.rs for
//! PostgreSQL, tests/mysql_crash.rs for MySQL): a Python driver whose
//! clients insert `(client, n)` rows through the gateway and list what was
//! acknowledged, the restart that recovers the recording, and reading the
//! statements back out of the export.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The text every driver's INSERT starts with; `(client, n)` follow.
pub const INSERT: &str = "INSERT INTO acked(client, n) VALUES (";

/// A child process, killed if the test ends before it exits.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to a minute for `child` to exit.
pub fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the Python `driver` with `args` and returns once it printed
/// `warm` (enough statements acknowledged to be under load).
pub fn start_load<I, S>(driver: &str, args: I) -> Proc
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut p = Proc(
        Command::new(super::python_bin())
            .arg("-c")
            .arg(driver)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut reader = BufReader::new(p.0.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert_eq!(first.trim_end(), "warm", "the clients never got going");
    // Keep the pipe open: the driver prints again at the end, and a
    // closed pipe would fail it.
    p.0.stdout = Some(reader.into_inner());
    p
}

/// The `client n` lines the driver wrote for every acknowledged statement.
pub fn read_acked(out: &Path) -> Vec<(u64, u64)> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| {
            let mut it = l.split(' ').map(|x| x.parse::<u64>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect()
}

/// Restarts the gateway `bin` on `config` (recovering the recording),
/// waits until it is ready, and stops it cleanly.
pub fn restart_and_stop(bin: &str, config: &Path, dir: &Path) {
    let log = dir.join("restart.log");
    let mut gw = Proc(
        Command::new(bin)
            .args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .env("TOLLGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    crate::assert_eventually!(
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("tollgate ready")),
        Duration::from_secs(30),
        "restarted gateway never became ready: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let ok = Command::new("kill")
        .args(["-TERM", &gw.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(wait_exit(&mut gw.0).success());
}

/// `recordings verify` on `rec` passes; then the export's lines.
pub fn verified_export(bin: &str, rec: &Path) -> String {
    let verify = Command::new(bin)
        .args(["recordings", "verify", "--dir"])
        .arg(rec)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let out = Command::new(bin)
        .args(["recordings", "export", "--all", "--dir"])
        .arg(rec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Adds the `(client, n)` of every driver INSERT in `text` to `got`.
pub fn collect_inserts(text: &str, got: &mut HashSet<(u64, u64)>) {
    for part in text.split(INSERT).skip(1) {
        let nums: Vec<u64> = part
            .split(')')
            .next()
            .unwrap_or("")
            .split(", ")
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [c, n] = nums[..] {
            got.insert((c, n));
        }
    }
}
