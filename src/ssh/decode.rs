//! `tollgate recordings export` for SSH sessions: each data record starts
//! with the channel id (big-endian u32) and the stream (0 stdin, 1 stdout,
//! 2 stderr); the export shows them as `ssh.channel`, `ssh.stream` and the
//! bytes as text (`ssh.data`, cut at 4 KiB; invalid UTF-8 replaced); a pty
//! request (stream `pty`) as `ssh.cols`, `ssh.rows`, `ssh.term`, a window
//! change (stream `resize`) as `ssh.cols`, `ssh.rows`. Exec commands and
//! their verdicts are the session's command records, and so are sftp
//! operations; a file's first bytes (streams `file-written` and
//! `file-read`) add its path as `ssh.sftp.path`.

use serde_json::{Map, Value, json};
use tollgate_recorder::{Decoder, Direction};

use super::{RECORD_HEADER, Stream};

const MAX_VALUE: usize = 4096;

#[derive(Default)]
pub struct SshDecoder;

impl Decoder for SshDecoder {
    fn decode(
        &mut self,
        _session: u64,
        _direction: Direction,
        data: &[u8],
        fields: &mut Map<String, Value>,
    ) {
        let (Some(head), Some(body)) = (data.get(..RECORD_HEADER), data.get(RECORD_HEADER..))
        else {
            return;
        };
        let channel = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let Some(stream) = Stream::from_u8(head[4]) else {
            return;
        };
        fields.insert("ssh.channel".into(), json!(channel));
        fields.insert("ssh.stream".into(), json!(stream.name()));
        if matches!(stream, Stream::Pty | Stream::Resize) {
            if let Some((cols, rows, term)) = super::pty::parse_pty_record(body) {
                fields.insert("ssh.cols".into(), json!(cols));
                fields.insert("ssh.rows".into(), json!(rows));
                if stream == Stream::Pty {
                    fields.insert("ssh.term".into(), json!(term));
                }
            }
            return;
        }
        let body = match stream {
            Stream::FileWritten | Stream::FileRead => {
                let Some((path, rest)) = body.split_first_chunk::<2>().and_then(|(n, rest)| {
                    let n = usize::from(u16::from_be_bytes(*n));
                    Some((rest.get(..n)?, rest.get(n..)?))
                }) else {
                    return;
                };
                fields.insert(
                    "ssh.sftp.path".into(),
                    Value::String(String::from_utf8_lossy(path).into_owned()),
                );
                rest
            }
            Stream::Stdin | Stream::Stdout | Stream::Stderr => body,
            // Returned above.
            Stream::Pty | Stream::Resize => return,
        };
        let text = &body[..body.len().min(MAX_VALUE)];
        fields.insert(
            "ssh.data".into(),
            Value::String(String::from_utf8_lossy(text).into_owned()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_stream_and_text() {
        let mut f = Map::new();
        let mut rec = vec![0, 0, 0, 3, 2];
        rec.extend_from_slice(b"oops\n");
        SshDecoder.decode(1, Direction::TargetToClient, &rec, &mut f);
        assert_eq!(f["ssh.channel"], json!(3));
        assert_eq!(f["ssh.stream"], json!("stderr"));
        assert_eq!(f["ssh.data"], json!("oops\n"));
        let mut f = Map::new();
        SshDecoder.decode(1, Direction::TargetToClient, &[0, 1], &mut f);
        assert!(f.is_empty());
        let mut f = Map::new();
        let mut rec = vec![0, 0, 0, 0, 5, 0, 4];
        rec.extend_from_slice(b"/a/bhello");
        SshDecoder.decode(1, Direction::ClientToTarget, &rec, &mut f);
        assert_eq!(f["ssh.stream"], json!("file-written"));
        assert_eq!(f["ssh.sftp.path"], json!("/a/b"));
        assert_eq!(f["ssh.data"], json!("hello"));
        // A path length past the record: only the channel and stream.
        let mut f = Map::new();
        SshDecoder.decode(
            1,
            Direction::ClientToTarget,
            &[0, 0, 0, 0, 6, 0, 9, b'/'],
            &mut f,
        );
        assert!(!f.contains_key("ssh.data"));
    }
}
