//! Incremental reads of a growing file with a persisted checkpoint.
//!
//! A checkpoint is the file's identity (device, inode), its size and the
//! offset of the first byte not yet consumed, and a hash of its first bytes
//! (up to 4 KiB, or what was consumed if less). Before reading, the file is
//! checked against it: another inode (rotation, replacement by rename), a
//! size below the offset (truncation) or other first bytes (rewritten in
//! place) restart it from 0. Only complete lines (ending in `\n`) are
//! consumed: a partial last line is read again once it is complete.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bytes hashed at the head of a file to notice it was replaced.
pub const HEAD_BYTES: u64 = 4096;
/// Longest line read whole; a longer one is consumed in pieces (each a
/// parse error, counted).
pub const MAX_LINE: usize = 64 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub dev: u64,
    pub ino: u64,
    /// File size when last read.
    pub size: u64,
    /// First byte not consumed.
    pub offset: u64,
    /// How many head bytes `head_hash` covers (≤ 4 KiB, ≤ `offset`).
    pub head_len: u64,
    pub head_hash: String,
}

/// Why a file is read again from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Restart {
    /// Another file at the same path (rotation, rename over it).
    NewIdentity,
    /// Shorter than what was consumed.
    Truncated,
    /// Same inode, other first bytes.
    Replaced,
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

fn head_hash(file: &mut File, len: u64) -> io::Result<String> {
    let mut buf = vec![0u8; len as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut buf)?;
    Ok(hex::encode(Sha256::digest(&buf)))
}

/// An open file checked against its checkpoint.
pub struct Tail {
    file: File,
    pub cp: Checkpoint,
    pub restart: Option<Restart>,
}

impl Tail {
    /// Open `path` and check it against `cp` (a default checkpoint for a
    /// file never read). On a restart the returned checkpoint starts at 0.
    pub fn open(path: &Path, cp: &Checkpoint) -> io::Result<Tail> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let (dev, ino) = identity(&meta);
        let size = meta.len();
        let fresh = cp.offset == 0 && cp.head_len == 0;
        let restart = if fresh {
            None
        } else if (dev, ino) != (cp.dev, cp.ino) {
            Some(Restart::NewIdentity)
        } else if size < cp.offset {
            Some(Restart::Truncated)
        } else if cp.head_len > 0 && head_hash(&mut file, cp.head_len)? != cp.head_hash {
            Some(Restart::Replaced)
        } else {
            None
        };
        let cp = match restart {
            Some(_) => Checkpoint {
                dev,
                ino,
                size,
                ..Checkpoint::default()
            },
            None => Checkpoint {
                dev,
                ino,
                size,
                ..cp.clone()
            },
        };
        Ok(Tail { file, cp, restart })
    }

    /// Bytes after the checkpoint.
    pub fn pending_bytes(&self) -> u64 {
        self.cp.size.saturating_sub(self.cp.offset)
    }

    /// Read the complete lines after the checkpoint, about `max_bytes` of
    /// them (more when one line is longer). `None` at the end: nothing
    /// complete to consume. `take_unterminated` also consumes a last line
    /// without its `\n` when `accept` says it is whole (an idle file).
    pub fn next_chunk(
        &mut self,
        max_bytes: usize,
        take_unterminated: WholeLine<'_>,
    ) -> io::Result<Option<Chunk>> {
        let start = self.cp.offset;
        self.file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        let mut want = max_bytes.max(1);
        loop {
            let before = buf.len();
            (&mut self.file)
                .take((want - before) as u64)
                .read_to_end(&mut buf)?;
            let eof = buf.len() < want;
            if let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') {
                buf.truncate(last_nl + 1);
                break;
            }
            if eof {
                // No newline before the end: a partial last line.
                let whole = !buf.is_empty() && take_unterminated.is_some_and(|f| f(&buf));
                if !whole {
                    return Ok(None);
                }
                break;
            }
            if buf.len() >= MAX_LINE {
                // A line longer than any we read whole: consumed as is.
                break;
            }
            want = (want * 2).min(MAX_LINE);
            if buf.len() == before {
                return Ok(None);
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let end = start + buf.len() as u64;
        self.cp.offset = end;
        self.cp.size = self.cp.size.max(end);
        if self.cp.head_len < HEAD_BYTES {
            let len = end.min(HEAD_BYTES);
            self.cp.head_hash = head_hash(&mut self.file, len)?;
            self.cp.head_len = len;
        }
        Ok(Some(Chunk { start, buf }))
    }
}

/// Says whether an unterminated last line is whole (see [`Tail::next_chunk`]).
pub type WholeLine<'a> = Option<&'a dyn Fn(&[u8]) -> bool>;

/// Complete lines read from `start`.
pub struct Chunk {
    pub start: u64,
    pub buf: Vec<u8>,
}

impl Chunk {
    /// Each line (without its `\n`, nor a `\r` before it) and its offset;
    /// empty lines are left out.
    pub fn lines(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut pos = 0usize;
        let buf = &self.buf;
        let start = self.start;
        std::iter::from_fn(move || loop {
            if pos >= buf.len() {
                return None;
            }
            let rest = &buf[pos..];
            let len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let line_start = pos;
            pos += len + 1;
            let mut line = &rest[..len];
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some((start + line_start as u64, line));
        })
    }
}
