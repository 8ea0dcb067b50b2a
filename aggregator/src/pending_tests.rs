//! Tests of the pending buffer (`pending.rs`): commit-order keys, chunks, `each_in`.

use super::*;

#[test]
fn keys_order_like_time_then_rank() {
    let e = |ts: i64, kind| {
        let mut e = pulse_schemas::parse_event(
            r#"{"type":"viewstart","ts":1000,"viewer":"u","session":"s","stream":"st","channel":"c"}"#,
        )
        .expect("valid");
        e.ts = ts;
        e.kind = kind;
        e
    };
    use pulse_schemas::EventKind as K;
    let list = [
        e(i64::MIN, K::Viewend),
        e(-5, K::Viewstart),
        e(0, K::Viewstart),
        e(0, K::Viewend),
        e(7, K::Playing),
        e(i64::MAX, K::Viewstart),
    ];
    for w in list.windows(2) {
        assert!(order_key(&w[0]) < order_key(&w[1]), "{w:?}");
    }
    let mut p = Pending::from_events(list.to_vec());
    let mut order = Vec::new();
    p.due(i64::MIN, 7, &mut order, &mut DueBuffers::default());
    let mut got = Vec::new();
    p.each_in(&mut order, |e, pass| {
        if pass == Pass::Commit {
            got.push(e.clone())
        }
    });
    assert_eq!(got, list[..4]);
    p.drop_before(7);
    assert_eq!(p.len(), 2);
    assert_eq!(p.events().next().map(|e| e.ts), Some(7));
}

/// `identical` answers exactly what `event_order` does (−0.0 and 0.0 differ there).
#[test]
fn identical_is_event_order_equal() {
    let base = pulse_schemas::parse_event(
        r#"{"type":"heartbeat","ts":5,"viewer":"u","session":"s","stream":"st","channel":"c","state":"playing","pos":0.0}"#,
    )
    .expect("valid");
    let mut variants = vec![base.clone()];
    let mut v = base.clone();
    v.pos = Some(-0.0);
    variants.push(v);
    let mut v = base.clone();
    v.pos = None;
    variants.push(v);
    let mut v = base.clone();
    v.platform = Some("web".into());
    variants.push(v);
    let mut v = base.clone();
    v.channel = pulse_schemas::Id::new_unchecked("c2");
    variants.push(v);
    let mut v = base.clone();
    v.count = Some(2);
    variants.push(v);
    for a in &variants {
        for b in &variants {
            assert_eq!(identical(a, b), event_order(a, b) == Ordering::Equal);
        }
    }
}

/// Many chunks, arrival out of time order and stragglers far behind: every flush
/// gives exactly the due events of its stretch `[from, to)` in key order (events
/// below `from` are applied but kept: forgetting lags two flushes behind, as the
/// engine's base lags its frontier), and what stays is the rest, in arrival order,
/// through frees and compactions.
#[test]
fn chunks_commit_exactly_the_due_events_in_order() {
    let base = pulse_schemas::parse_event(
        r#"{"type":"heartbeat","ts":0,"viewer":"u","session":"s","stream":"st","channel":"c","state":"playing"}"#,
    )
    .expect("valid");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut all = Vec::new();
    for i in 0..6 * CHUNK as i64 {
        let mut e = base.clone();
        // Mostly near arrival time; one in 500 far in the future (a straggler
        // that keeps its chunk alive until much later).
        e.ts = i + rnd(300) as i64 + if rnd(500) == 0 { 20_000 } else { 0 };
        e.viewer = pulse_schemas::Id::new_unchecked(&format!("v{}", rnd(50)));
        // Events of one identity and millisecond: mostly identical, some differing
        // in a field the key does not cover (runs sorted in full or left as they are).
        if rnd(4) == 0 {
            e.pos = Some(rnd(3) as f64);
        }
        all.push(e);
    }
    let mut p = Pending::default();
    let mut bufs = DueBuffers::default();
    let mut left: Vec<Event> = Vec::new();
    let mut fed = 0;
    let mut w = 0;
    let mut applied = i64::MIN;
    while fed < all.len() || p.len() > 0 {
        for e in all.iter().skip(fed).take(1_000) {
            p.push(e.clone());
            left.push(e.clone());
        }
        fed = (fed + 1_000).min(all.len());
        w += 700;
        let mut order = Vec::new();
        p.due(applied, w, &mut order, &mut bufs);
        let mut got: Vec<Event> = Vec::new();
        // Each event (by its place in the buffer) is passed to prefetch once, then
        // committed once, at most a block later.
        let mut seen: std::collections::HashMap<usize, (usize, Option<usize>)> =
            std::collections::HashMap::new();
        let mut step = 0;
        p.each_in(&mut order, |e, pass| {
            let at = std::ptr::from_ref(e) as usize;
            match pass {
                Pass::Prefetch => {
                    assert!(seen.insert(at, (step, None)).is_none(), "prefetched twice");
                }
                Pass::Commit => {
                    let slot = seen.get_mut(&at).expect("prefetched before its commit");
                    assert!(slot.1.is_none(), "committed twice");
                    slot.1 = Some(step);
                    got.push(e.clone());
                }
            }
            step += 1;
        });
        assert_eq!(seen.len(), got.len());
        assert!(
            seen.values()
                .all(|&(p, c)| c.is_some_and(|c| c > p && c - p < 2 * BLOCK)),
            "every event committed after its prefetch, within a block"
        );
        let mut want: Vec<Event> = left
            .iter()
            .filter(|e| e.ts >= applied && e.ts < w)
            .cloned()
            .collect();
        want.sort_by(|a, b| {
            order_key(a)
                .cmp(&order_key(b))
                .then_with(|| identity_fingerprint(a).cmp(&identity_fingerprint(b)))
                .then_with(|| event_order(a, b))
        });
        assert_eq!(got, want, "due in [{applied}, {w})");
        applied = w;
        let base = w - 1_400;
        p.drop_before(base);
        left.retain(|e| e.ts >= base);
        // Stragglers hold their own size, not a chunk each.
        let held: usize = p.chunks.iter().map(|c| c.events.capacity()).sum();
        assert!(
            held <= 2 * p.len() + 3 * CHUNK,
            "{held} slots held for {} pending events in {} chunks at {w}",
            p.len(),
            p.chunks.len()
        );
        assert_eq!(p.len(), left.len());
        assert!(
            p.events().eq(left.iter()),
            "the rest, in arrival order, at {w}"
        );
    }
    assert!(p.chunks.len() <= 1, "emptied chunks are freed");
}
