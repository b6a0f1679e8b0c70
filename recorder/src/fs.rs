//! The file-system seam: every file operation of the recorder goes through
//! [`FileSystem`], so tests can swap in [`SimFs`] and inject torn writes,
//! write errors, a full disk and fsync failures.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A file opened for appending.
pub trait AppendFile: Send {
    /// Appends all of `buf` or fails; a failure may leave a prefix written.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable.
    fn sync(&mut self) -> io::Result<()>;
}

/// The operations the recorder needs from a file system.
pub trait FileSystem: Send + Sync + fmt::Debug {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn exists(&self, path: &Path) -> bool;
    /// Opens `path` for appending, creating it if missing.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>>;
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Cuts `path` to `len` bytes, durably.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Writes a whole file (used for small files: keys, rewritten indexes).
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealAppend(File);

impl AppendFile for RealAppend {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(RealAppend(
            OpenOptions::new().append(true).create(true).open(path)?,
        )))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(path)?))
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut f = File::create(path)?;
        f.write_all(data)?;
        f.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

#[derive(Debug, Default, Clone)]
struct SimFile {
    data: Vec<u8>,
    synced: usize,
}

#[derive(Debug, Default)]
struct SimState {
    files: BTreeMap<PathBuf, SimFile>,
    dirs: BTreeSet<PathBuf>,
    crashed: bool,
    written: u64,
    tear_at: Option<u64>,
    enospc_at: Option<u64>,
    fail_syncs: u32,
    fail_writes: u32,
    held: bool,
    waiting: usize,
}

#[derive(Debug, Default)]
struct SimInner {
    state: Mutex<SimState>,
    changed: Condvar,
}

/// An in-memory file system that injects faults, in the style of
/// raft-engine's and commitlog's test file systems.
///
/// A "crash" (a torn write) freezes the file system: every later operation
/// fails, as if the process had died. [`SimFs::crash_image`] then gives the
/// disk as a restarted process would find it.
#[derive(Debug, Default, Clone)]
pub struct SimFs {
    inner: Arc<SimInner>,
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash")
}

impl SimFs {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panicking test thread poisons the lock; the state is still usable.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes appended so far, across all files.
    pub fn bytes_written(&self) -> u64 {
        self.lock().written
    }

    /// The write that crosses `bytes_written() + n` writes only up to it,
    /// then the process "crashes".
    pub fn tear_after(&self, n: u64) {
        let mut s = self.lock();
        s.tear_at = Some(s.written + n);
    }

    /// The write that crosses `bytes_written() + n` fails with ENOSPC, and so
    /// does every later one, writing nothing.
    pub fn enospc_after(&self, n: u64) {
        let mut s = self.lock();
        s.enospc_at = Some(s.written + n);
    }

    /// The next fsync fails (EIO).
    pub fn fail_next_sync(&self) {
        self.lock().fail_syncs += 1;
    }

    /// The next append fails (EIO) without writing.
    pub fn fail_next_write(&self) {
        self.lock().fail_writes += 1;
    }

    /// Appends block until [`SimFs::release_writes`].
    pub fn hold_writes(&self) {
        self.lock().held = true;
    }

    pub fn release_writes(&self) {
        self.lock().held = false;
        self.inner.changed.notify_all();
    }

    /// How many appends are blocked by [`SimFs::hold_writes`].
    pub fn writers_waiting(&self) -> usize {
        self.lock().waiting
    }

    pub fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// The disk a restarted process sees: every file as written so far, or
    /// only its fsynced prefix when `keep_unsynced` is false.
    pub fn crash_image(&self, keep_unsynced: bool) -> SimFs {
        let s = self.lock();
        let mut files = s.files.clone();
        if !keep_unsynced {
            for f in files.values_mut() {
                f.data.truncate(f.synced);
            }
        }
        let image = SimFs::new();
        {
            let mut t = image.lock();
            t.files = files;
            t.dirs = s.dirs.clone();
        }
        image
    }

    /// A copy of a file's contents.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        self.lock().files.get(path).map(|f| f.data.clone())
    }

    fn append(&self, path: &Path, buf: &[u8]) -> io::Result<()> {
        let mut s = self.lock();
        while s.held && !s.crashed {
            s.waiting += 1;
            s = self
                .inner
                .changed
                .wait(s)
                .unwrap_or_else(|e| e.into_inner());
            s.waiting -= 1;
        }
        if s.crashed {
            return Err(crashed());
        }
        if s.fail_writes > 0 {
            s.fail_writes -= 1;
            return Err(io::Error::other("simulated write error"));
        }
        let end = s.written + buf.len() as u64;
        if s.enospc_at.is_some_and(|at| end > at) {
            return Err(io::Error::from_raw_os_error(28));
        }
        let mut keep = buf.len();
        let tear = s.tear_at.is_some_and(|at| end > at);
        if let Some(at) = s.tear_at.filter(|_| tear) {
            keep = usize::try_from(at.saturating_sub(s.written)).unwrap_or(keep);
        }
        let file = s
            .files
            .get_mut(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        file.data.extend_from_slice(&buf[..keep]);
        s.written += keep as u64;
        if tear {
            s.crashed = true;
            return Err(crashed());
        }
        Ok(())
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if s.crashed {
            return Err(crashed());
        }
        if s.fail_syncs > 0 {
            s.fail_syncs -= 1;
            return Err(io::Error::other("simulated fsync failure"));
        }
        let file = s
            .files
            .get_mut(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        file.synced = file.data.len();
        Ok(())
    }

    fn check(&self) -> io::Result<MutexGuard<'_, SimState>> {
        let s = self.lock();
        if s.crashed { Err(crashed()) } else { Ok(s) }
    }
}

struct SimAppend {
    fs: SimFs,
    path: PathBuf,
}

impl AppendFile for SimAppend {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.fs.append(&self.path, buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.fs.sync(&self.path)
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.check()?;
        for a in dir.ancestors() {
            s.dirs.insert(a.to_path_buf());
        }
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.check()?;
        if !s.dirs.contains(dir) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let files = s.files.keys();
        let dirs = s.dirs.iter();
        Ok(files
            .chain(dirs)
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }
    fn exists(&self, path: &Path) -> bool {
        let s = self.lock();
        s.files.contains_key(path) || s.dirs.contains(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut s = self.check()?;
        if !path.parent().is_some_and(|d| s.dirs.contains(d)) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        s.files.entry(path.to_path_buf()).or_default();
        Ok(Box::new(SimAppend {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        let s = self.lock();
        let f = s
            .files
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(Box::new(io::Cursor::new(f.data.clone())))
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        let s = self.lock();
        s.files
            .get(path)
            .map(|f| f.data.len() as u64)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut s = self.check()?;
        let f = s
            .files
            .get_mut(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        f.data.truncate(len);
        f.synced = f.synced.min(len);
        Ok(())
    }
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut s = self.check()?;
        s.files.insert(
            path.to_path_buf(),
            SimFile {
                data: data.to_vec(),
                synced: data.len(),
            },
        );
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.check()?;
        let f = s
            .files
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        s.files.insert(to.to_path_buf(), f);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.check()?;
        s.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        self.check().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_write_keeps_a_prefix_and_freezes_the_disk() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let mut f = fs.open_append(Path::new("/d/a")).unwrap();
        f.append(b"hello").unwrap();
        f.sync().unwrap();
        fs.tear_after(3);
        assert!(f.append(b"world").is_err());
        assert!(f.sync().is_err());
        assert_eq!(
            fs.crash_image(true).read(Path::new("/d/a")).unwrap(),
            b"hellowor"
        );
        assert_eq!(
            fs.crash_image(false).read(Path::new("/d/a")).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn enospc_writes_nothing() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let mut f = fs.open_append(Path::new("/d/a")).unwrap();
        fs.enospc_after(4);
        assert_eq!(f.append(b"12345").unwrap_err().raw_os_error(), Some(28));
        f.append(b"1234").unwrap();
        assert_eq!(fs.read(Path::new("/d/a")).unwrap(), b"1234");
        assert_eq!(fs.list(Path::new("/d")).unwrap(), vec!["a".to_string()]);
    }
}
