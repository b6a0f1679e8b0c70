//! Requests (client → server) and replies (server → client), decoded from
//! a [`Frame`]'s bytes. Paths and handles are the bytes as sent: SFTP v3
//! paths are not required to be UTF-8.

use super::{Fields, Frame, SftpError, kind};

/// A client's packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    Init {
        version: u32,
    },
    Open {
        id: u32,
        path: &'a [u8],
        pflags: u32,
    },
    Close {
        id: u32,
        handle: &'a [u8],
    },
    Read {
        id: u32,
        handle: &'a [u8],
        offset: u64,
        len: u32,
    },
    Write {
        id: u32,
        handle: &'a [u8],
        offset: u64,
        data: &'a [u8],
    },
    Lstat {
        id: u32,
        path: &'a [u8],
    },
    Fstat {
        id: u32,
        handle: &'a [u8],
    },
    Setstat {
        id: u32,
        path: &'a [u8],
    },
    Fsetstat {
        id: u32,
        handle: &'a [u8],
    },
    Opendir {
        id: u32,
        path: &'a [u8],
    },
    Readdir {
        id: u32,
        handle: &'a [u8],
    },
    Remove {
        id: u32,
        path: &'a [u8],
    },
    Mkdir {
        id: u32,
        path: &'a [u8],
    },
    Rmdir {
        id: u32,
        path: &'a [u8],
    },
    Realpath {
        id: u32,
        path: &'a [u8],
    },
    Stat {
        id: u32,
        path: &'a [u8],
    },
    Rename {
        id: u32,
        old: &'a [u8],
        new: &'a [u8],
    },
    Readlink {
        id: u32,
        path: &'a [u8],
    },
    /// The two paths in wire order. OpenSSH's client and server send the
    /// link's target first and the link's own path second (the reverse of
    /// the draft); a gateway judging both need not care which is which.
    Symlink {
        id: u32,
        first: &'a [u8],
        second: &'a [u8],
    },
    Extended {
        id: u32,
        ext: Extension<'a>,
    },
}

/// An `SSH_FXP_EXTENDED` request, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension<'a> {
    /// `posix-rename@openssh.com`.
    PosixRename { old: &'a [u8], new: &'a [u8] },
    /// `hardlink@openssh.com`.
    Hardlink { old: &'a [u8], new: &'a [u8] },
    /// `statvfs@openssh.com`.
    Statvfs { path: &'a [u8] },
    /// `fstatvfs@openssh.com`.
    Fstatvfs { handle: &'a [u8] },
    /// `fsync@openssh.com`.
    Fsync { handle: &'a [u8] },
    /// `lsetstat@openssh.com`.
    Lsetstat { path: &'a [u8] },
    /// `expand-path@openssh.com`: like REALPATH, `~` expanded.
    ExpandPath { path: &'a [u8] },
    /// `copy-data`: server-side copy between two open handles.
    CopyData { read: &'a [u8], write: &'a [u8] },
    /// `limits@openssh.com`.
    Limits,
    /// `home-directory`: a user's home (a name, not a path).
    HomeDirectory,
    /// `users-groups-by-id@openssh.com`.
    UsersGroupsById,
    /// Any other name.
    Other { name: &'a [u8] },
}

/// A server's packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    Version {
        version: u32,
    },
    Status {
        id: u32,
        code: u32,
        message: &'a [u8],
    },
    Handle {
        id: u32,
        handle: &'a [u8],
    },
    Data {
        id: u32,
        data: &'a [u8],
    },
    /// `count` names; `first` is the first one's file name (a REALPATH
    /// answer has exactly one: the resolved path).
    Name {
        id: u32,
        count: u32,
        first: Option<&'a [u8]>,
    },
    Attrs {
        id: u32,
    },
    ExtendedReply {
        id: u32,
    },
}

impl<'a> Request<'a> {
    /// Decode a client's packet.
    pub fn decode(f: &'a Frame) -> Result<Request<'a>, SftpError> {
        let k = f.kind();
        let mut r = Fields::new(k, f.body());
        if k == kind::INIT {
            let version = r.u32("version")?;
            // Extension pairs may follow (none in v3 clients we know).
            r.rest();
            return Ok(Request::Init { version });
        }
        let id = r.u32("id")?;
        let req = match k {
            kind::OPEN => {
                let path = r.string("path")?;
                let pflags = r.u32("pflags")?;
                r.rest(); // ATTRS
                Request::Open { id, path, pflags }
            }
            kind::CLOSE => Request::Close {
                id,
                handle: r.string("handle")?,
            },
            kind::READ => Request::Read {
                id,
                handle: r.string("handle")?,
                offset: r.u64("offset")?,
                len: r.u32("len")?,
            },
            kind::WRITE => Request::Write {
                id,
                handle: r.string("handle")?,
                offset: r.u64("offset")?,
                data: r.string("data")?,
            },
            kind::LSTAT => Request::Lstat {
                id,
                path: r.string("path")?,
            },
            kind::FSTAT => Request::Fstat {
                id,
                handle: r.string("handle")?,
            },
            kind::SETSTAT => {
                let path = r.string("path")?;
                r.rest();
                Request::Setstat { id, path }
            }
            kind::FSETSTAT => {
                let handle = r.string("handle")?;
                r.rest();
                Request::Fsetstat { id, handle }
            }
            kind::OPENDIR => Request::Opendir {
                id,
                path: r.string("path")?,
            },
            kind::READDIR => Request::Readdir {
                id,
                handle: r.string("handle")?,
            },
            kind::REMOVE => Request::Remove {
                id,
                path: r.string("path")?,
            },
            kind::MKDIR => {
                let path = r.string("path")?;
                r.rest();
                Request::Mkdir { id, path }
            }
            kind::RMDIR => Request::Rmdir {
                id,
                path: r.string("path")?,
            },
            kind::REALPATH => {
                let path = r.string("path")?;
                // Later protocol versions add a control byte and paths.
                r.rest();
                Request::Realpath { id, path }
            }
            kind::STAT => Request::Stat {
                id,
                path: r.string("path")?,
            },
            kind::RENAME => Request::Rename {
                id,
                old: r.string("oldpath")?,
                new: r.string("newpath")?,
            },
            kind::READLINK => Request::Readlink {
                id,
                path: r.string("path")?,
            },
            kind::SYMLINK => Request::Symlink {
                id,
                first: r.string("path")?,
                second: r.string("path")?,
            },
            kind::EXTENDED => {
                let name = r.string("extension")?;
                let ext = extension(name, &mut r)?;
                r.rest();
                Request::Extended { id, ext }
            }
            _ => {
                return Err(SftpError::WrongSide {
                    kind: k,
                    side: "request",
                });
            }
        };
        r.end()?;
        Ok(req)
    }

    /// The request id (`None` for INIT).
    pub fn id(&self) -> Option<u32> {
        match self {
            Request::Init { .. } => None,
            Request::Open { id, .. }
            | Request::Close { id, .. }
            | Request::Read { id, .. }
            | Request::Write { id, .. }
            | Request::Lstat { id, .. }
            | Request::Fstat { id, .. }
            | Request::Setstat { id, .. }
            | Request::Fsetstat { id, .. }
            | Request::Opendir { id, .. }
            | Request::Readdir { id, .. }
            | Request::Remove { id, .. }
            | Request::Mkdir { id, .. }
            | Request::Rmdir { id, .. }
            | Request::Realpath { id, .. }
            | Request::Stat { id, .. }
            | Request::Rename { id, .. }
            | Request::Readlink { id, .. }
            | Request::Symlink { id, .. }
            | Request::Extended { id, .. } => Some(*id),
        }
    }
}

fn extension<'a>(name: &'a [u8], r: &mut Fields<'a>) -> Result<Extension<'a>, SftpError> {
    Ok(match name {
        b"posix-rename@openssh.com" => Extension::PosixRename {
            old: r.string("oldpath")?,
            new: r.string("newpath")?,
        },
        b"hardlink@openssh.com" => Extension::Hardlink {
            old: r.string("oldpath")?,
            new: r.string("newpath")?,
        },
        b"statvfs@openssh.com" => Extension::Statvfs {
            path: r.string("path")?,
        },
        b"fstatvfs@openssh.com" => Extension::Fstatvfs {
            handle: r.string("handle")?,
        },
        b"fsync@openssh.com" => Extension::Fsync {
            handle: r.string("handle")?,
        },
        b"lsetstat@openssh.com" => Extension::Lsetstat {
            path: r.string("path")?,
        },
        b"expand-path@openssh.com" => Extension::ExpandPath {
            path: r.string("path")?,
        },
        b"copy-data" => {
            let read = r.string("read-handle")?;
            r.u64("read-offset")?;
            r.u64("read-length")?;
            let write = r.string("write-handle")?;
            r.u64("write-offset")?;
            Extension::CopyData { read, write }
        }
        b"limits@openssh.com" => Extension::Limits,
        b"home-directory" => Extension::HomeDirectory,
        b"users-groups-by-id@openssh.com" => Extension::UsersGroupsById,
        _ => Extension::Other { name },
    })
}

impl<'a> Reply<'a> {
    /// Decode a server's packet.
    pub fn decode(f: &'a Frame) -> Result<Reply<'a>, SftpError> {
        let k = f.kind();
        let mut r = Fields::new(k, f.body());
        if k == kind::VERSION {
            let version = r.u32("version")?;
            // Extension name/data pairs follow.
            r.rest();
            return Ok(Reply::Version { version });
        }
        let id = r.u32("id")?;
        let reply = match k {
            kind::STATUS => {
                let code = r.u32("code")?;
                // Version 3 servers may leave message and language out.
                let message = if r.rest.is_empty() {
                    &[][..]
                } else {
                    r.string("message")?
                };
                r.rest();
                Reply::Status { id, code, message }
            }
            kind::HANDLE => Reply::Handle {
                id,
                handle: r.string("handle")?,
            },
            kind::DATA => {
                let data = r.string("data")?;
                // OpenSSH may add an end-of-file flag.
                r.rest();
                Reply::Data { id, data }
            }
            kind::NAME => {
                let count = r.u32("count")?;
                let first = if count > 0 {
                    Some(r.string("filename")?)
                } else {
                    None
                };
                r.rest();
                Reply::Name { id, count, first }
            }
            kind::ATTRS => {
                r.rest();
                Reply::Attrs { id }
            }
            kind::EXTENDED_REPLY => {
                r.rest();
                Reply::ExtendedReply { id }
            }
            _ => {
                return Err(SftpError::WrongSide {
                    kind: k,
                    side: "reply",
                });
            }
        };
        r.end()?;
        Ok(reply)
    }
}
