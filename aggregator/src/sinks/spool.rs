//! The ClickHouse sink's bounded on-disk queue: one file per flush, drained in order.
//!
//! Each file (`<seq:020>.spool` in the spool directory) holds the inserts of one flush
//! as frames `[u32 sql length][sql][u64 rows][u64 data length][RowBinary data]`. A file
//! is written under a temporary name, synced and renamed, so a crash leaves either a
//! whole file or none. Files are removed only after ClickHouse acknowledged every insert
//! they hold; on start the directory is re-read and draining resumes at the oldest file.
//!
//! The queue is bounded in bytes: a flush that does not fit is refused (the caller
//! counts and logs it); nothing else grows.

use crate::AggregatorError;
use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One insert: the statement and its RowBinary rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// `INSERT INTO t (…) FORMAT RowBinary`.
    pub sql: String,
    pub rows: u64,
    pub data: Vec<u8>,
}

/// The spool directory and its index (oldest file first).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    files: VecDeque<(u64, u64)>,
    bytes: u64,
    next_seq: u64,
}

fn io(path: &Path, source: std::io::Error) -> AggregatorError {
    AggregatorError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, picking up files left by an earlier run.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, AggregatorError> {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name
                .strip_suffix(".spool")
                .and_then(|s| s.parse::<u64>().ok())
            {
                let len = entry.metadata().map_err(|e| io(&entry.path(), e))?.len();
                files.push((seq, len));
            } else if name.ends_with(".tmp") {
                // A write cut short by a crash: never acknowledged to anyone.
                let _ = fs::remove_file(entry.path());
            }
        }
        files.sort_unstable();
        let bytes = files.iter().map(|&(_, l)| l).sum();
        let next_seq = files.last().map_or(1, |&(s, _)| s + 1);
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            files: files.into(),
            bytes,
            next_seq,
        })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.spool"))
    }

    /// Bytes held on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Files (flushes) waiting.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Appends one flush durably. `Ok(false)` when it does not fit under the bound
    /// (nothing is written then).
    pub fn push(&mut self, frames: &[Frame]) -> Result<bool, AggregatorError> {
        let mut buf = Vec::new();
        for f in frames {
            buf.extend_from_slice(&(f.sql.len() as u32).to_le_bytes());
            buf.extend_from_slice(f.sql.as_bytes());
            buf.extend_from_slice(&f.rows.to_le_bytes());
            buf.extend_from_slice(&(f.data.len() as u64).to_le_bytes());
            buf.extend_from_slice(&f.data);
        }
        let len = buf.len() as u64;
        if self.bytes + len > self.max_bytes {
            return Ok(false);
        }
        let seq = self.next_seq;
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let mut file = fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        file.write_all(&buf).map_err(|e| io(&tmp, e))?;
        file.sync_data().map_err(|e| io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        self.next_seq += 1;
        self.files.push_back((seq, len));
        self.bytes += len;
        Ok(true)
    }

    /// The oldest files, as many as fit in `max_rows` rows (at least one), with the
    /// sequence number of the last one read.
    pub fn peek(&self, max_rows: u64) -> Result<Option<(u64, Vec<Frame>)>, AggregatorError> {
        let mut out = Vec::new();
        let mut rows = 0;
        let mut last = None;
        for &(seq, _) in &self.files {
            let frames = self.read(seq)?;
            let n: u64 = frames.iter().map(|f| f.rows).sum();
            if last.is_some() && rows + n > max_rows {
                break;
            }
            rows += n;
            out.extend(frames);
            last = Some(seq);
        }
        Ok(last.map(|l| (l, out)))
    }

    fn read(&self, seq: u64) -> Result<Vec<Frame>, AggregatorError> {
        let path = self.path(seq);
        let bytes = fs::read(&path).map_err(|e| io(&path, e))?;
        let bad = || AggregatorError::Runtime(format!("spool file {} is corrupt", path.display()));
        let mut frames = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let (len, r) = take_u32(rest).ok_or_else(bad)?;
            let (sql, r) = split(r, len as usize).ok_or_else(bad)?;
            let (rows, r) = take_u64(r).ok_or_else(bad)?;
            let (dlen, r) = take_u64(r).ok_or_else(bad)?;
            let (data, r) = split(r, usize::try_from(dlen).map_err(|_| bad())?).ok_or_else(bad)?;
            frames.push(Frame {
                sql: String::from_utf8(sql.to_vec()).map_err(|_| bad())?,
                rows,
                data: data.to_vec(),
            });
            rest = r;
        }
        Ok(frames)
    }

    /// Removes every file up to and including `seq` (their inserts are acknowledged).
    pub fn ack(&mut self, seq: u64) -> Result<(), AggregatorError> {
        while let Some(&(s, len)) = self.files.front() {
            if s > seq {
                break;
            }
            let path = self.path(s);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path, e)),
            }
            self.files.pop_front();
            self.bytes -= len;
        }
        Ok(())
    }
}

fn split(b: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (b.len() >= n).then(|| b.split_at(n))
}
fn take_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (h, r) = split(b, 4)?;
    Some((u32::from_le_bytes(h.try_into().ok()?), r))
}
fn take_u64(b: &[u8]) -> Option<(u64, &[u8])> {
    let (h, r) = split(b, 8)?;
    Some((u64::from_le_bytes(h.try_into().ok()?), r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(sql: &str, rows: u64) -> Frame {
        Frame {
            sql: sql.into(),
            rows,
            data: vec![rows as u8; rows as usize],
        }
    }

    #[test]
    fn drains_in_order_survives_reopen_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 200).unwrap();
        assert!(s.push(&[frame("a", 10), frame("p", 1)]).unwrap());
        assert!(s.push(&[frame("b", 20)]).unwrap());
        assert!(s.push(&[frame("c", 30)]).unwrap());
        // Full: the next flush is refused and nothing is written.
        assert!(!s.push(&[frame("d", 100)]).unwrap());
        assert_eq!(s.len(), 3);
        let bytes = s.bytes();

        let mut s = Spool::open(dir.path(), 200).unwrap();
        assert_eq!((s.len(), s.bytes()), (3, bytes));
        let (last, frames) = s.peek(31).unwrap().unwrap();
        assert_eq!(last, 2);
        assert_eq!(frames, vec![frame("a", 10), frame("p", 1), frame("b", 20)]);
        s.ack(last).unwrap();
        // One file bigger than the row bound still comes out alone.
        let (last, frames) = s.peek(1).unwrap().unwrap();
        assert_eq!((last, frames), (3, vec![frame("c", 30)]));
        s.ack(last).unwrap();
        assert!(s.is_empty() && s.bytes() == 0);
        assert!(s.peek(10).unwrap().is_none());
        // Numbering continues after the last file ever written.
        assert!(s.push(&[frame("e", 1)]).unwrap());
        assert_eq!(
            Spool::open(dir.path(), 200)
                .unwrap()
                .peek(9)
                .unwrap()
                .unwrap()
                .0,
            4
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1000).unwrap();
        assert!(s.push(&[frame("a", 3)]).unwrap());
        std::fs::write(dir.path().join(format!("{:020}.spool", 1)), [9, 0, 0]).unwrap();
        assert!(s.peek(10).is_err());
    }
}
