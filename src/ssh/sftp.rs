//! The `sftp` subsystem decoded on one channel (tokio side), when the
//! target has sftp rules or records files (`[target.ssh]` sftp keys).
//!
//! Caller → host ([`SftpUp`], in the connection's handler): the byte stream
//! is cut into packets (each length capped before it is buffered); each
//! request naming a path goes to the compio side to be judged and recorded
//! ([`Event::Sftp`]) before it is forwarded. A refused request never
//! reaches the host: the caller gets `SSH_FX_PERMISSION_DENIED` with the
//! rule's message, written by the channel's down task between whole
//! packets. READ/WRITE/CLOSE name a handle: the handle maps to the path it
//! was opened with (learnt from the host's HANDLE reply), so a write is
//! judged once, at its OPEN, and a WRITE on a handle not opened for writing
//! is refused.
//!
//! Host → caller ([`SftpDown`], in the down task): replies are cut into
//! packets too (only whole packets are forwarded, so a refusal never lands
//! inside one) and read for what they teach: HANDLE (handle → path), NAME
//! answering `REALPATH "."` (the session's directory, against which
//! relative paths are judged), DATA (bytes read per handle).
//!
//! Per file: bytes written and read, the first `record_sftp_file_bytes`
//! recorded (stream `file-written`/`file-read`), and a SHA-256 of the whole
//! content when the transfer was sequential, in the CLOSE's statement.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use russh::server::Msg;
use russh::{ChannelWriteHalf, client};
use tokio::sync::{mpsc, oneshot};
use tollgate_codecs::sftp::{
    Extension, MAX_PACKET, Reply, Request, encode_status, frame, pflags, status,
};
use tracing::warn;

use super::{Event, SftpJudge, Stream};
use crate::config::ssh_sftp::SftpOp;
use crate::ssh::sftp_rules::{PathError, normalise};

/// Requests awaiting a reply that the relay needs to read.
const MAX_PENDING: usize = 4096;
/// Open handles tracked per channel.
const MAX_HANDLES: usize = 1024;
/// Refusals queued for the down task.
const MAX_QUEUED_REFUSALS: usize = 1024;
/// Frames smaller than this are gathered into one channel write.
const GATHER: usize = 4096;

/// What a reply to a request means to the relay.
enum Pending {
    Open {
        path: Vec<u8>,
        write: bool,
    },
    Opendir {
        path: Vec<u8>,
    },
    /// `REALPATH "."` (or `""`): the answer is the session's directory.
    Home,
    Read {
        handle: Vec<u8>,
        offset: u64,
    },
}

/// One way of a file's content: bytes seen, the digest while sequential.
struct Flow {
    bytes: u64,
    /// Where the first transfer began.
    start: u64,
    /// Where the next one must begin for the digest to hold.
    next: u64,
    hash: Option<ring::digest::Context>,
    kept: usize,
}

impl Flow {
    fn new() -> Flow {
        Flow {
            bytes: 0,
            start: 0,
            next: 0,
            hash: Some(ring::digest::Context::new(&ring::digest::SHA256)),
            kept: 0,
        }
    }

    /// Account `data` at `offset`; a copy of the part to record within `cap`.
    fn take(&mut self, offset: u64, data: &[u8], cap: usize) -> Option<Bytes> {
        if self.bytes == 0 {
            self.start = offset;
            self.next = offset;
        }
        if offset == self.next {
            if let Some(h) = self.hash.as_mut() {
                h.update(data);
            }
        } else {
            self.hash = None;
        }
        self.next = offset.saturating_add(data.len() as u64);
        self.bytes += data.len() as u64;
        let keep = cap.saturating_sub(self.kept).min(data.len());
        self.kept += keep;
        (keep > 0).then(|| Bytes::copy_from_slice(&data[..keep]))
    }

    fn describe(self, verb: &str, out: &mut String) {
        let _ = write!(out, ", {verb} {} bytes", self.bytes);
        if self.start != 0 {
            let _ = write!(out, " from offset {}", self.start);
        }
        match self.hash {
            Some(h) => {
                out.push_str(", sha256 ");
                for b in h.finish().as_ref() {
                    let _ = write!(out, "{b:02x}");
                }
            }
            None => out.push_str(", sha256 unknown (not sequential)"),
        }
        let _ = write!(out, ", first {} bytes recorded", self.kept);
    }
}

struct OpenFile {
    path: Vec<u8>,
    dir: bool,
    write: bool,
    written: Flow,
    read: Flow,
}

#[derive(Default)]
struct State {
    /// The subsystem was asked for: decode from now on.
    active: bool,
    cwd: Option<Vec<u8>>,
    pending: HashMap<u32, Pending>,
    handles: HashMap<Vec<u8>, OpenFile>,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    // A panic elsewhere cannot leave the maps half-updated in a way that
    // lets a refused request through: they only ever gain judged entries.
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The channel's two halves of the sftp relay.
pub(crate) fn pair(
    events: mpsc::Sender<Event>,
    channel: u32,
    file_cap: usize,
) -> (SftpUp, SftpDown) {
    let shared: Shared = Arc::default();
    let (refusals, refused) = mpsc::channel(MAX_QUEUED_REFUSALS);
    (
        SftpUp {
            shared: shared.clone(),
            buf: BytesMut::new(),
            gather: BytesMut::new(),
            refusals,
            events: events.clone(),
            channel,
            file_cap,
        },
        SftpDown {
            shared,
            buf: BytesMut::new(),
            refused,
            events,
            channel,
            file_cap,
        },
    )
}

/// The session ends (or the channel does): why, for the log.
pub(crate) struct End(pub String);

/// Caller → host.
pub(crate) struct SftpUp {
    shared: Shared,
    buf: BytesMut,
    gather: BytesMut,
    refusals: mpsc::Sender<Bytes>,
    events: mpsc::Sender<Event>,
    channel: u32,
    file_cap: usize,
}

enum Verdict {
    Pass,
    Refuse { id: u32, code: u32, message: String },
}

fn refuse(id: u32, message: impl Into<String>) -> Verdict {
    Verdict::Refuse {
        id,
        code: status::PERMISSION_DENIED,
        message: message.into(),
    }
}

fn show(path: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(path).into_owned();
    if s.len() > 1024 {
        let mut cut = 1024;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

impl SftpUp {
    /// The caller asked for the `sftp` subsystem on this channel.
    pub(crate) fn activate(&self) {
        lock(&self.shared).active = true;
    }

    pub(crate) fn active(&self) -> bool {
        lock(&self.shared).active
    }

    /// Relay the caller's bytes: whole requests, judged, forwarded or
    /// refused. `Err`: the channel cannot go on (malformed framing, the
    /// session is over).
    pub(crate) async fn relay_up(
        &mut self,
        data: &[u8],
        up: &ChannelWriteHalf<client::Msg>,
    ) -> Result<(), End> {
        self.buf.extend_from_slice(data);
        loop {
            let f = match frame(&mut self.buf, MAX_PACKET) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(End(format!("caller's sftp stream: {e}"))),
            };
            let verdict = match Request::decode(&f) {
                Ok(req) => self.request(req).await?,
                Err(e) => match f.id() {
                    Some(id) => Verdict::Refuse {
                        id,
                        code: status::BAD_MESSAGE,
                        message: format!("tollgate: {e}"),
                    },
                    None => return Err(End(format!("caller's sftp stream: {e}"))),
                },
            };
            match verdict {
                Verdict::Pass => {
                    let raw = f.into_raw();
                    if raw.len() < GATHER {
                        self.gather.extend_from_slice(&raw);
                    } else {
                        self.flush(up).await?;
                        up.data_bytes(raw)
                            .await
                            .map_err(|e| End(format!("upstream: {e}")))?;
                    }
                }
                Verdict::Refuse { id, code, message } => {
                    let mut out = BytesMut::new();
                    encode_status(id, code, &message, &mut out);
                    self.refusals
                        .try_send(out.freeze())
                        .map_err(|_| End("too many sftp refusals queued".into()))?;
                }
            }
        }
        self.flush(up).await
    }

    async fn flush(&mut self, up: &ChannelWriteHalf<client::Msg>) -> Result<(), End> {
        if self.gather.is_empty() {
            return Ok(());
        }
        let out = self.gather.split().freeze();
        up.data_bytes(out)
            .await
            .map_err(|e| End(format!("upstream: {e}")))
    }

    /// Ask the compio side; `Ok(None)`: allowed.
    async fn ask(&self, statement: String, judge: SftpJudge) -> Result<Option<String>, End> {
        let (answer, verdict) = oneshot::channel();
        let ev = Event::Sftp {
            statement,
            judge,
            answer,
        };
        let gone = || End("session over".into());
        self.events.send(ev).await.map_err(|_| gone())?;
        match verdict.await {
            Ok(Ok(())) => Ok(None),
            Ok(Err(message)) => Ok(Some(message)),
            Err(_) => Err(gone()),
        }
    }

    /// Judge `op` on each of `paths` (as sent); the statement names them.
    async fn judge(
        &self,
        id: u32,
        op: SftpOp,
        paths: &[&[u8]],
    ) -> Result<(Verdict, Vec<Vec<u8>>), End> {
        let cwd = lock(&self.shared).cwd.clone();
        let mut statement = format!("channel {}: sftp {}", self.channel, op.name());
        let mut normal = Vec::with_capacity(paths.len());
        let mut problem = None;
        for p in paths {
            match normalise(p, cwd.as_deref()) {
                Ok(n) => {
                    let _ = write!(statement, " {}", show(&n));
                    normal.push(n);
                }
                Err(e) => {
                    let _ = write!(statement, " {}", show(p));
                    problem.get_or_insert(match e {
                        PathError::UnknownDirectory => {
                            "tollgate: a relative sftp path before the session's directory is \
                             known (REALPATH \".\"); use an absolute path"
                        }
                        PathError::Nul => "tollgate: an sftp path with a NUL byte",
                    });
                }
            }
        }
        let judge = match problem {
            Some(why) => SftpJudge::Refused(why.to_string()),
            None => SftpJudge::Paths(op, normal.clone()),
        };
        Ok(match self.ask(statement, judge).await? {
            None => (Verdict::Pass, normal),
            Some(message) => (refuse(id, message), normal),
        })
    }

    fn pend(&self, id: u32, p: Pending) -> Verdict {
        let mut s = lock(&self.shared);
        if s.pending.len() >= MAX_PENDING && !s.pending.contains_key(&id) {
            return Verdict::Refuse {
                id,
                code: status::FAILURE,
                message: "tollgate: too many sftp requests outstanding".into(),
            };
        }
        s.pending.insert(id, p);
        Verdict::Pass
    }

    async fn request(&mut self, req: Request<'_>) -> Result<Verdict, End> {
        let (op, id, path) = match req {
            Request::Init { .. } => return Ok(Verdict::Pass),
            Request::Open {
                id,
                path,
                pflags: fl,
            } => {
                let writes = pflags::WRITE | pflags::APPEND | pflags::CREAT | pflags::TRUNC;
                let write = fl & writes != 0;
                let op = if write { SftpOp::Write } else { SftpOp::Read };
                // Opened for both: the read is judged too.
                if write && fl & pflags::READ != 0 {
                    let (v, _) = self.judge(id, SftpOp::Read, &[path]).await?;
                    if let Verdict::Refuse { .. } = v {
                        return Ok(v);
                    }
                }
                if lock(&self.shared).handles.len() >= MAX_HANDLES {
                    return Ok(Verdict::Refuse {
                        id,
                        code: status::FAILURE,
                        message: "tollgate: too many open sftp handles".into(),
                    });
                }
                let (v, mut n) = self.judge(id, op, &[path]).await?;
                return Ok(match (v, n.pop()) {
                    (Verdict::Pass, Some(path)) => self.pend(id, Pending::Open { path, write }),
                    (v, _) => v,
                });
            }
            Request::Opendir { id, path } => {
                let (v, mut n) = self.judge(id, SftpOp::List, &[path]).await?;
                return Ok(match (v, n.pop()) {
                    (Verdict::Pass, Some(path)) => self.pend(id, Pending::Opendir { path }),
                    (v, _) => v,
                });
            }
            Request::Close { handle, .. } => {
                let file = lock(&self.shared).handles.remove(handle);
                if let Some(f) = file.filter(|f| !f.dir) {
                    self.closed(f).await?;
                }
                return Ok(Verdict::Pass);
            }
            Request::Read {
                id, handle, offset, ..
            } => {
                let known = lock(&self.shared).handles.contains_key(handle);
                return Ok(if known {
                    self.pend(
                        id,
                        Pending::Read {
                            handle: handle.to_vec(),
                            offset,
                        },
                    )
                } else {
                    // The host refuses a handle it did not give.
                    Verdict::Pass
                });
            }
            Request::Write {
                id,
                handle,
                offset,
                data,
            } => return self.write(id, handle, offset, data).await,
            Request::Fstat { .. } | Request::Readdir { .. } => return Ok(Verdict::Pass),
            Request::Fsetstat { id, handle } => {
                let path = lock(&self.shared)
                    .handles
                    .get(handle)
                    .map(|f| f.path.clone());
                return Ok(match path {
                    Some(p) => self.judge(id, SftpOp::Setstat, &[&p]).await?.0,
                    None => refuse(
                        id,
                        "tollgate: FSETSTAT on a handle tollgate did not see opened",
                    ),
                });
            }
            Request::Realpath { id, path } if path.is_empty() || path == b"." => {
                let home = lock(&self.shared).cwd.is_none();
                if home {
                    // The session's directory itself: recorded, not judged
                    // (nothing can be judged relative to it before it is known).
                    let statement = format!("channel {}: sftp realpath .", self.channel);
                    if let Some(m) = self.ask(statement, SftpJudge::Record).await? {
                        return Ok(refuse(id, m));
                    }
                    return Ok(self.pend(id, Pending::Home));
                }
                (SftpOp::Stat, id, path)
            }
            Request::Lstat { id, path }
            | Request::Stat { id, path }
            | Request::Readlink { id, path }
            | Request::Realpath { id, path } => (SftpOp::Stat, id, path),
            Request::Setstat { id, path } => (SftpOp::Setstat, id, path),
            Request::Remove { id, path } => (SftpOp::Remove, id, path),
            Request::Mkdir { id, path } => (SftpOp::Mkdir, id, path),
            Request::Rmdir { id, path } => (SftpOp::Rmdir, id, path),
            Request::Rename { id, old, new } => {
                return Ok(self.judge(id, SftpOp::Rename, &[old, new]).await?.0);
            }
            Request::Symlink { id, first, second } => {
                return Ok(self.judge(id, SftpOp::Symlink, &[first, second]).await?.0);
            }
            Request::Extended { id, ext } => return self.extended(id, ext).await,
        };
        Ok(self.judge(id, op, &[path]).await?.0)
    }

    async fn extended(&mut self, id: u32, ext: Extension<'_>) -> Result<Verdict, End> {
        Ok(match ext {
            Extension::PosixRename { old, new } => {
                self.judge(id, SftpOp::Rename, &[old, new]).await?.0
            }
            Extension::Hardlink { old, new } => self.judge(id, SftpOp::Link, &[old, new]).await?.0,
            Extension::Statvfs { path } => self.judge(id, SftpOp::Stat, &[path]).await?.0,
            Extension::Lsetstat { path } => self.judge(id, SftpOp::Setstat, &[path]).await?.0,
            Extension::ExpandPath { path } => {
                // `~` and `~/x` are the session's directory; `~user` is not known.
                let home = lock(&self.shared).cwd.clone();
                match (path.strip_prefix(b"~"), home) {
                    (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with(b"/") => {
                        let mut p = h;
                        p.push(b'/');
                        p.extend_from_slice(rest);
                        self.judge(id, SftpOp::Stat, &[&p]).await?.0
                    }
                    (Some(_), _) => refuse(id, "tollgate: expand-path of ~user is not judged"),
                    (None, _) => self.judge(id, SftpOp::Stat, &[path]).await?.0,
                }
            }
            Extension::CopyData { read, write } => {
                let s = lock(&self.shared);
                let ok =
                    s.handles.contains_key(read) && s.handles.get(write).is_some_and(|f| f.write);
                drop(s);
                if ok {
                    Verdict::Pass
                } else {
                    refuse(
                        id,
                        "tollgate: copy-data between handles tollgate did not see opened",
                    )
                }
            }
            Extension::Fstatvfs { .. }
            | Extension::Fsync { .. }
            | Extension::Limits
            | Extension::HomeDirectory
            | Extension::UsersGroupsById => Verdict::Pass,
            Extension::Other { name } => {
                let name = show(name);
                let why = format!("tollgate: sftp extension {name} is not judged");
                let statement = format!("channel {}: sftp extension {name}", self.channel);
                self.ask(statement, SftpJudge::Refused(why.clone())).await?;
                Verdict::Refuse {
                    id,
                    code: status::OP_UNSUPPORTED,
                    message: why,
                }
            }
        })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: &[u8],
        offset: u64,
        data: &[u8],
    ) -> Result<Verdict, End> {
        let kept = {
            let mut s = lock(&self.shared);
            match s.handles.get_mut(handle) {
                Some(f) if f.write => f
                    .written
                    .take(offset, data, self.file_cap)
                    .map(|kept| (f.path.clone(), kept)),
                _ => {
                    return Ok(refuse(
                        id,
                        "tollgate: WRITE on a handle not opened for writing through tollgate",
                    ));
                }
            }
        };
        if let Some((path, kept)) = kept {
            record_file(
                &self.events,
                self.channel,
                Stream::FileWritten,
                &path,
                &kept,
            )
            .await?;
        }
        Ok(Verdict::Pass)
    }

    /// A file's CLOSE: its sizes and digest, recorded as a statement.
    async fn closed(&self, f: OpenFile) -> Result<(), End> {
        let mut statement = format!("channel {}: sftp close {}", self.channel, show(&f.path));
        if f.write || f.written.bytes > 0 {
            f.written.describe("written", &mut statement);
        }
        if f.read.bytes > 0 || !f.write {
            f.read.describe("read", &mut statement);
        }
        self.ask(statement, SftpJudge::Record).await.map(|_| ())
    }
}

/// File content for the recording: path length (u16), path, bytes.
async fn record_file(
    events: &mpsc::Sender<Event>,
    channel: u32,
    stream: Stream,
    path: &[u8],
    kept: &[u8],
) -> Result<(), End> {
    let path = &path[..path.len().min(u16::MAX as usize)];
    let mut rec = BytesMut::with_capacity(2 + path.len() + kept.len());
    rec.put_u16(path.len() as u16);
    rec.put_slice(path);
    rec.put_slice(kept);
    let (ack, recorded) = oneshot::channel();
    let ev = Event::Data {
        channel,
        stream,
        recorded: rec.freeze(),
        len: 0,
        ack: Some(ack),
    };
    let gone = || End("session over".into());
    events.send(ev).await.map_err(|_| gone())?;
    match recorded.await {
        Ok(true) => Ok(()),
        _ => Err(gone()),
    }
}

/// Host → caller.
pub(crate) struct SftpDown {
    shared: Shared,
    buf: BytesMut,
    refused: mpsc::Receiver<Bytes>,
    events: mpsc::Sender<Event>,
    channel: u32,
    file_cap: usize,
}

impl SftpDown {
    /// The next refusal to write to the caller.
    pub(crate) async fn refusal(&mut self) -> Option<Bytes> {
        self.refused.recv().await
    }

    /// Relay the host's bytes, whole packets only once the subsystem is
    /// decoded. `false`: the channel cannot go on.
    pub(crate) async fn relay_down(&mut self, data: Bytes, caller: &ChannelWriteHalf<Msg>) -> bool {
        if !lock(&self.shared).active {
            return caller.data_bytes(data).await.is_ok();
        }
        self.buf.extend_from_slice(&data);
        let mut out = BytesMut::new();
        loop {
            let f = match frame(&mut self.buf, MAX_PACKET) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "host's sftp stream: ending the channel");
                    return false;
                }
            };
            let file = match Reply::decode(&f) {
                Ok(r) => self.reply(r),
                Err(e) => {
                    warn!(error = %e, "host's sftp reply: ending the channel");
                    return false;
                }
            };
            if let Some((path, kept)) = file
                && record_file(&self.events, self.channel, Stream::FileRead, &path, &kept)
                    .await
                    .is_err()
            {
                return false;
            }
            let raw = f.into_raw();
            if raw.len() < GATHER {
                out.extend_from_slice(&raw);
            } else {
                if !out.is_empty() && caller.data_bytes(out.split().freeze()).await.is_err() {
                    return false;
                }
                if caller.data_bytes(raw).await.is_err() {
                    return false;
                }
            }
        }
        out.is_empty() || caller.data_bytes(out.freeze()).await.is_ok()
    }

    /// Learn from a reply; file bytes to record, if any.
    fn reply(&self, r: Reply<'_>) -> Option<(Vec<u8>, Bytes)> {
        let mut s = lock(&self.shared);
        let id = match &r {
            Reply::Version { .. } => return None,
            Reply::Status { id, .. }
            | Reply::Handle { id, .. }
            | Reply::Data { id, .. }
            | Reply::Name { id, .. }
            | Reply::Attrs { id }
            | Reply::ExtendedReply { id } => *id,
        };
        let pending = s.pending.remove(&id)?;
        match (pending, r) {
            (Pending::Open { path, write }, Reply::Handle { handle, .. }) => {
                s.handles.insert(
                    handle.to_vec(),
                    OpenFile {
                        path,
                        dir: false,
                        write,
                        written: Flow::new(),
                        read: Flow::new(),
                    },
                );
            }
            (Pending::Opendir { path }, Reply::Handle { handle, .. }) => {
                s.handles.insert(
                    handle.to_vec(),
                    OpenFile {
                        path,
                        dir: true,
                        write: false,
                        written: Flow::new(),
                        read: Flow::new(),
                    },
                );
            }
            (
                Pending::Home,
                Reply::Name {
                    first: Some(dir), ..
                },
            ) if s.cwd.is_none() && dir.first() == Some(&b'/') && !dir.contains(&0) => {
                // Only an absolute answer is a directory to judge against.
                s.cwd = Some(dir.to_vec());
            }
            (Pending::Read { handle, offset }, Reply::Data { data, .. }) => {
                let f = s.handles.get_mut(&handle)?;
                let kept = f.read.take(offset, data, self.file_cap)?;
                return Some((f.path.clone(), kept));
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_file_keeps_its_first_bytes_and_digests_all_of_a_sequential_transfer() {
        let mut f = Flow::new();
        assert_eq!(f.take(0, b"hello ", 8).as_deref(), Some(&b"hello "[..]));
        assert_eq!(f.take(6, b"world", 8).as_deref(), Some(&b"wo"[..]));
        assert_eq!(f.take(11, b"!", 8), None);
        let mut s = String::new();
        f.describe("written", &mut s);
        let want = hex(ring::digest::digest(&ring::digest::SHA256, b"hello world!").as_ref());
        assert_eq!(
            s,
            format!(", written 12 bytes, sha256 {want}, first 8 bytes recorded")
        );
        // Out of order: no digest, rather than a wrong one.
        let mut f = Flow::new();
        f.take(100, b"abc", 0);
        f.take(0, b"def", 0);
        let mut s = String::new();
        f.describe("read", &mut s);
        assert_eq!(
            s,
            ", read 6 bytes from offset 100, sha256 unknown (not sequential), first 0 bytes recorded"
        );
    }
}
