//! The order closed and provisional rows leave the core in (see "row lists are sorted"
//! in lib.rs): ticks by `(t, kind, target)`, viewer minutes by `(minute, kind, target,
//! viewer)`, sessions by `(end_ts, kind, target, session)`, and QoE minutes by
//! `(minute, kind, target)` keeping each target's group order (a stable sort).
//!
//! A flush sorts tens of thousands of rows, so the comparisons must be cheap and the rows
//! (100–250 bytes) must not be moved by the sort. Each row gets an integer key: its time,
//! its kind and the first 16 bytes of its one or two ids as big-endian integers (zero
//! padded, so integer order is the strings' order on those bytes). Only keys that tie
//! are compared in full, then the rows are swapped into their places.

use pulse_schemas::{Id, QoeMinuteRow, SessionRow, Target, TargetKind, TickRow, ViewerMinuteRow};
use std::cmp::Ordering;

/// The first 16 bytes of `s` as a big-endian integer, zero padded: `prefix(a) <
/// prefix(b)` implies `a < b`, and equal prefixes say nothing (compare in full).
fn prefix(s: &str) -> u128 {
    let b = s.as_bytes();
    let mut buf = [0u8; 16];
    let n = b.len().min(16);
    buf[..n].copy_from_slice(&b[..n]);
    u128::from_be_bytes(buf)
}

/// The integer part of a row's sort key; ties are settled by the row's full comparison.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    time: i64,
    kind: TargetKind,
    first: u128,
    second: u128,
}

fn key(time: i64, kind: TargetKind, first: &Id, second: Option<&Id>) -> Key {
    Key {
        time,
        kind,
        first: prefix(first.as_str()),
        // The second id may decide only when the prefix is the whole first id (ids
        // hold no NUL, so a shorter one is all of it); otherwise two first ids that
        // share 16 bytes go to the full comparison.
        second: match second {
            Some(s) if first.as_str().len() < 16 => prefix(s.as_str()),
            _ => 0,
        },
    }
}

/// Sorts `rows` by `key` then, for equal keys, by `full` (which must extend the key's
/// order); equal rows keep their order (a stable sort, which is also fast on the nearly
/// sorted lists the core produces). Rows are swapped into place cycle by cycle: no
/// second buffer of rows (a copy of a flush's rows was page-faulted in every time).
fn sort_keyed<T>(rows: &mut [T], key: impl Fn(&T) -> Key, full: impl Fn(&T, &T) -> Ordering) {
    if rows.len() < 2 {
        return;
    }
    let mut order: Vec<(Key, u32)> = (0u32..)
        .zip(rows.iter())
        .map(|(i, r)| (key(r), i))
        .collect();
    order.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| full(&rows[a.1 as usize], &rows[b.1 as usize]))
    });
    // Position k takes the row now at `order[k].1`: follow each cycle of the
    // permutation with swaps (no second buffer of rows), marking positions done.
    for start in 0..order.len() {
        let mut k = start;
        while order[k].1 as usize != k {
            let from = order[k].1 as usize;
            order[k].1 = k as u32;
            if from == start {
                break;
            }
            rows.swap(k, from);
            k = from;
        }
    }
}

/// The integer part of a target's `(kind, id)` order (equal keys: compare in full).
pub(crate) fn target_key(t: &Target) -> (TargetKind, u128) {
    (t.kind, prefix(t.id.as_str()))
}

/// `(id, value)` pairs sorted by id (each id once), comparing integers first.
pub(crate) fn by_id<'a, T>(items: impl Iterator<Item = (&'a Id, T)>) -> Vec<(&'a Id, T)> {
    let mut list: Vec<(u128, &Id, T)> = items.map(|(id, v)| (prefix(id.as_str()), id, v)).collect();
    list.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    list.into_iter().map(|(_, id, v)| (id, v)).collect()
}

/// Sorts the row lists of one flush (closed or provisional).
pub(crate) fn sort_rows(
    ticks: &mut [TickRow],
    minutes: &mut [ViewerMinuteRow],
    qoe: &mut [QoeMinuteRow],
) {
    // One target's QoE rows of a minute come out together, in group-id (first-seen)
    // order, which is deterministic: the stable sort keeps it and compares no
    // dimension strings.
    sort_keyed(
        qoe,
        |r| key(r.minute, r.kind, &r.target, None),
        |a, b| a.target.cmp(&b.target),
    );
    sort_keyed(
        ticks,
        |r| key(r.t, r.kind, &r.target, None),
        |a, b| a.target.cmp(&b.target),
    );
    sort_keyed(
        minutes,
        |r| key(r.minute, r.kind, &r.target, Some(&r.viewer)),
        |a, b| (&a.target, &a.viewer).cmp(&(&b.target, &b.viewer)),
    );
}

/// Sorts the session rows of one flush.
pub(crate) fn sort_sessions(sessions: &mut [SessionRow]) {
    sort_keyed(
        sessions,
        |r| key(r.end_ts, r.kind, &r.target, Some(&r.session)),
        |a, b| (&a.target, &a.session).cmp(&(&b.target, &b.session)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_order_like_the_strings() {
        let words = [
            "",
            "a",
            "a-",
            "a0",
            "ab",
            "b",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
        ];
        for x in words {
            for y in words {
                if prefix(x) != prefix(y) {
                    assert_eq!(prefix(x).cmp(&prefix(y)), x.cmp(y), "{x:?} {y:?}");
                }
            }
        }
    }

    #[test]
    fn ties_fall_back_to_the_full_order_and_stay_stable() {
        let long = |s: &str| Id::new_unchecked(&format!("same-sixteen-byte{s}"));
        let mut rows: Vec<(i64, Id, u32)> = vec![
            (2, long("b"), 0),
            (1, long("b"), 1),
            (1, long("a"), 2),
            (1, long("b"), 3),
            (1, Id::new_unchecked("a"), 4),
        ];
        sort_keyed(
            &mut rows,
            |r| key(r.0, TargetKind::Stream, &r.1, None),
            |a, b| a.1.cmp(&b.1),
        );
        let got: Vec<u32> = rows.iter().map(|r| r.2).collect();
        assert_eq!(got, [4, 2, 1, 3, 0]);
    }

    #[test]
    fn a_second_id_does_not_overrule_a_first_id_longer_than_the_prefix() {
        let long = |s: &str| Id::new_unchecked(&format!("same-sixteen-byte{s}"));
        let short = Id::new_unchecked;
        // (first, second): the documented order is by first, then second.
        let mut rows = vec![
            (long("b"), short("a")),
            (long("a"), short("z")),
            (short("x"), short("b")),
            (short("x"), short("a")),
        ];
        sort_keyed(
            &mut rows,
            |r| key(0, TargetKind::Stream, &r.0, Some(&r.1)),
            |a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)),
        );
        let mut want = rows.clone();
        want.sort();
        assert_eq!(rows, want);
    }
}
