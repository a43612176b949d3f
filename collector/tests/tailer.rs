//! Checkpoint logic: append, partial line completed later, truncation,
//! replacement, rotation, non-UTF-8, long lines.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::io::Write;
use std::path::Path;

use agentops_collector::tailer::{Checkpoint, Restart, Tail};

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// Read everything complete; the lines and the new checkpoint.
type Lines = Vec<(u64, Vec<u8>)>;

fn read_all(path: &Path, cp: &Checkpoint) -> (Lines, Checkpoint, Option<Restart>) {
    let mut t = Tail::open(path, cp).unwrap();
    let restart = t.restart;
    let mut out = Vec::new();
    while let Some(chunk) = t.next_chunk(16, None).unwrap() {
        for (off, l) in chunk.lines() {
            out.push((off, l.to_vec()));
        }
    }
    (out, t.cp.clone(), restart)
}

fn texts(v: &[(u64, Vec<u8>)]) -> Vec<String> {
    v.iter()
        .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
        .collect()
}

#[test]
fn append_and_partial_line_completed_later() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.jsonl");
    append(&p, b"{\"a\":1}\n{\"b\":2}\n{\"c\":");
    let (lines, cp, r) = read_all(&p, &Checkpoint::default());
    assert_eq!(r, None);
    assert_eq!(texts(&lines), ["{\"a\":1}", "{\"b\":2}"]);
    assert_eq!(lines[1].0, 8);
    assert_eq!(cp.offset, 16);
    // Nothing new: nothing read, the partial line is not consumed.
    let (lines, cp2, _) = read_all(&p, &cp);
    assert!(lines.is_empty());
    assert_eq!(cp2.offset, 16);
    // The writer finishes the line and adds another.
    append(&p, b"3}\r\n\n{\"d\":4}\n");
    let (lines, cp3, r) = read_all(&p, &cp2);
    assert_eq!(r, None);
    assert_eq!(texts(&lines), ["{\"c\":3}", "{\"d\":4}"]);
    assert_eq!(lines[0].0, 16);
    assert_eq!(cp3.offset, std::fs::metadata(&p).unwrap().len());
}

#[test]
fn truncation_restarts_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.jsonl");
    append(&p, b"{\"a\":1}\n{\"b\":2}\n");
    let (_, cp, _) = read_all(&p, &Checkpoint::default());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&p, b"{\"z\":0}\n");
    let (lines, cp2, r) = read_all(&p, &cp);
    assert_eq!(r, Some(Restart::Truncated));
    assert_eq!(texts(&lines), ["{\"z\":0}"]);
    assert_eq!(cp2.offset, 8);
}

#[test]
fn rewritten_in_place_is_noticed_by_the_head_hash() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.jsonl");
    append(&p, b"{\"a\":1}\n");
    let (_, cp, _) = read_all(&p, &Checkpoint::default());
    // Same inode, same or larger size, other first bytes.
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"{\"x\":9}\n{\"y\":8}\n", 0).unwrap();
    let (lines, _, r) = read_all(&p, &cp);
    assert_eq!(r, Some(Restart::Replaced));
    assert_eq!(texts(&lines), ["{\"x\":9}", "{\"y\":8}"]);
}

#[test]
fn replaced_by_rename_is_a_new_identity() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.jsonl");
    append(&p, b"{\"a\":1}\n{\"b\":2}\n");
    let (_, cp, _) = read_all(&p, &Checkpoint::default());
    let tmp = dir.path().join("new");
    append(&tmp, b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    std::fs::rename(&tmp, &p).unwrap();
    let (lines, _, r) = read_all(&p, &cp);
    assert_eq!(r, Some(Restart::NewIdentity));
    assert_eq!(lines.len(), 3);
}

#[test]
fn growing_small_file_keeps_its_identity() {
    // The head hash covers what was consumed, so appending to a file under
    // 4 KiB is not a replacement.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.jsonl");
    let mut cp = Checkpoint::default();
    let mut total = 0;
    for i in 0..600 {
        append(&p, format!("{{\"n\":{i}}}\n").as_bytes());
        let (lines, next, r) = read_all(&p, &cp);
        assert_eq!(r, None, "append {i}");
        assert_eq!(lines.len(), 1);
        total += 1;
        cp = next;
    }
    assert_eq!(total, 600);
    assert_eq!(cp.head_len, 4096);
}

#[test]
fn non_utf8_and_long_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.jsonl");
    let long = format!("{{\"t\":\"{}\"}}", "x".repeat(100_000));
    append(&p, b"\xff\xfe\x00garbage\n");
    append(&p, long.as_bytes());
    append(&p, b"\n{\"ok\":1}\n");
    let (lines, cp, _) = read_all(&p, &Checkpoint::default());
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].1, b"\xff\xfe\x00garbage");
    assert_eq!(lines[1].1.len(), long.len());
    assert_eq!(texts(&lines)[2], "{\"ok\":1}");
    assert_eq!(cp.offset, std::fs::metadata(&p).unwrap().len());
}

#[test]
fn unterminated_last_line_taken_only_when_whole_and_asked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.jsonl");
    append(&p, b"{\"a\":1}\n{\"b\":2}");
    let whole = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).is_ok();
    let mut t = Tail::open(&p, &Checkpoint::default()).unwrap();
    let c = t.next_chunk(1 << 20, Some(&whole)).unwrap().unwrap();
    assert_eq!(c.lines().count(), 1);
    let c = t.next_chunk(1 << 20, Some(&whole)).unwrap().unwrap();
    assert_eq!(
        c.lines().map(|(_, l)| l.to_vec()).collect::<Vec<_>>(),
        [b"{\"b\":2}".to_vec()]
    );
    assert!(t.next_chunk(1 << 20, Some(&whole)).unwrap().is_none());
    // A cut line is never taken.
    append(&p, b"\n{\"c\":");
    let mut t = Tail::open(&p, &t.cp).unwrap();
    assert_eq!(t.restart, None);
    assert!(t.next_chunk(1 << 20, Some(&whole)).unwrap().is_some()); // the bare "\n"
    assert!(t.next_chunk(1 << 20, Some(&whole)).unwrap().is_none());
}

#[test]
fn file_being_written_while_read() {
    // A writer appends lines in small pieces while the reader tails: every
    // line is read exactly once, whole.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.jsonl");
    std::fs::write(&p, b"").unwrap();
    let wp = p.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..2000 {
            let line = format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "p".repeat(i % 50));
            let (a, b) = line.as_bytes().split_at(line.len() / 2);
            append(&wp, a);
            append(&wp, b);
        }
    });
    let mut cp = Checkpoint::default();
    let mut seen = Vec::new();
    loop {
        let done = writer.is_finished();
        let (lines, next, r) = read_all(&p, &cp);
        assert_eq!(r, None);
        for (_, l) in lines {
            let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
            seen.push(v["n"].as_u64().unwrap());
        }
        cp = next;
        if done {
            let (rest, _, _) = read_all(&p, &cp);
            assert!(rest.is_empty());
            break;
        }
    }
    writer.join().unwrap();
    assert_eq!(seen, (0..2000).collect::<Vec<u64>>());
}
