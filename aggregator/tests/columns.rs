//! Every column of stream_ticks, view_sessions and viewer_minutes, and the engine's
//! rules: closing, lateness, orphans, bounds, provisional rows, snapshot/restore.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Rows, cfg, engage, ev, heartbeat, id, on, run_all};
use pulse_aggregator::{Admission, Aggregator, AggregatorConfig, decode_hist};
use pulse_schemas::{EndReason, EventKind as K, PlayerState};

#[test]
fn viewers_are_sampled_at_each_tick_end() {
    // viewstart 1 s, playing 2 s, heartbeats every 10 s up to 42 s, viewend at 45 s.
    let mut evs = vec![ev(K::Viewstart, 1_000, "a"), ev(K::Playing, 2_000, "a")];
    for ts in [12_000, 22_000, 32_000, 42_000] {
        evs.push(heartbeat(ts, "a", Some(PlayerState::Playing)));
    }
    evs.push(ev(K::Viewend, 45_000, "a"));
    let (rows, _) = run_all(cfg(), evs);
    for t in (0..45_000).step_by(5_000) {
        assert_eq!(rows.tick("s1", t).map(|r| r.viewers), Some(1), "tick {t}");
    }
    // T = 45 000 is not > 45 000's viewend... the session ended at 45 000 < T = 50 000.
    assert!(rows.tick("s1", 45_000).is_none_or(|r| r.viewers == 0));
    assert_eq!(rows.sum(|r| r.watch_ms), 43_000);
    assert_eq!(rows.sum(|r| r.events), 7);
    assert_eq!(rows.sum(|r| r.views), 1);
}

#[test]
fn a_silent_session_counts_for_30_s_then_stops_and_its_tail_is_not_watch_time() {
    let evs = vec![ev(K::Viewstart, 1_000, "a"), ev(K::Playing, 2_000, "a")];
    let (rows, agg) = run_all(cfg(), evs);
    // alive at T while 2 000 ≥ T − 30 000, i.e. T ≤ 32 000: ticks 0 .. 25 000.
    let with_viewers: Vec<i64> = rows
        .ticks
        .iter()
        .filter(|r| r.viewers > 0)
        .map(|r| r.t)
        .collect();
    assert_eq!(with_viewers, vec![0, 5_000, 10_000, 15_000, 20_000, 25_000]);
    assert_eq!(rows.sum(|r| r.watch_ms), 0);
    let s = rows.session("a").unwrap();
    assert_eq!(
        (s.end_reason, s.end_ts, s.watch_ms),
        (EndReason::Timeout, 2_000, 0)
    );
    assert_eq!(agg.stats().sessions, 0);
}

#[test]
fn watch_and_rebuffer_time_split_at_tick_boundaries() {
    let evs = vec![
        ev(K::Viewstart, 3_000, "a"),
        ev(K::Playing, 4_000, "a"),
        ev(K::RebufferStart, 9_000, "a"),
        ev(K::RebufferEnd, 11_500, "a"),
        ev(K::Pause, 12_000, "a"),
        ev(K::Viewend, 14_000, "a"),
    ];
    let (rows, _) = run_all(cfg(), evs);
    let t0 = rows.tick("s1", 0).unwrap();
    let t1 = rows.tick("s1", 5_000).unwrap();
    let t2 = rows.tick("s1", 10_000).unwrap();
    assert_eq!(
        (t0.watch_ms, t1.watch_ms, t2.watch_ms),
        (1_000, 5_000, 2_000)
    );
    assert_eq!(
        (t0.rebuffer_ms, t1.rebuffer_ms, t2.rebuffer_ms),
        (0, 1_000, 1_500)
    );
    assert_eq!((t1.rebuffer_count, t2.rebuffer_count), (1, 0));
    assert_eq!((t0.views, t0.startups), (1, 1));
    assert_eq!(t0.events + t1.events + t2.events, 6);
    let s = rows.session("a").unwrap();
    assert_eq!(
        (s.watch_ms, s.rebuffer_ms, s.rebuffer_count, s.startup_ms),
        (8_000, 2_500, 1, Some(1_000))
    );
    assert_eq!(
        (s.start_ts, s.end_ts, s.end_reason, s.counted_view),
        (3_000, 14_000, EndReason::Viewend, true)
    );
}

#[test]
fn startups_failures_and_embed_views() {
    let mut embedded = ev(K::Viewstart, 1_000, "b");
    embedded.embed = Some(true);
    let evs = vec![
        ev(K::Viewstart, 1_000, "a"),
        embedded,
        ev(K::Playing, 1_250, "a"),
        ev(K::Playing, 3_000, "b"),
        ev(K::Viewstart, 2_000, "c"),
        ev(K::Error, 6_000, "c"),
    ];
    let (rows, _) = run_all(cfg(), evs);
    let t0 = rows.tick("s1", 0).unwrap();
    assert_eq!(
        (t0.views, t0.embed_views, t0.startups, t0.failures),
        (3, 1, 2, 0)
    );
    let h = decode_hist(&t0.startup_hist).unwrap();
    assert_eq!(h.len(), 2);
    assert!(h.equivalent(h.min(), 250) && h.equivalent(h.max(), 2_000));
    let t1 = rows.tick("s1", 5_000).unwrap();
    assert_eq!((t1.failures, t1.startups), (1, 0));
    assert!(t1.startup_hist.is_empty());
    let c = rows.session("c").unwrap();
    assert_eq!((c.end_reason, c.startup_ms), (EndReason::Error, None));
    assert!(rows.session("b").unwrap().embed);
}

#[test]
fn engagement_columns_and_viewer_minutes() {
    let mut chat = engage(K::Chat, 1_000, "u1");
    chat.count = Some(3);
    let evs = vec![
        chat,
        engage(K::Chat, 2_000, "u1"),
        engage(K::Follow, 3_000, "u1"),
        engage(K::Like, 4_000, "u2"),
        engage(K::Share, 6_000, "u2"),
        engage(K::Clickthrough, 7_000, "u3"),
        engage(K::Chat, 61_000, "u1"),
    ];
    let (rows, agg) = run_all(cfg(), evs);
    let t0 = rows.tick("s1", 0).unwrap();
    assert_eq!(
        (
            t0.chat_messages,
            t0.follows,
            t0.likes,
            t0.events,
            t0.viewers
        ),
        (4, 1, 1, 4, 0)
    );
    let t1 = rows.tick("s1", 5_000).unwrap();
    assert_eq!((t1.shares, t1.clickthroughs, t1.events), (1, 1, 2));
    assert_eq!(
        agg.stats().sessions,
        0,
        "engagement events start no session"
    );
    let vm: Vec<_> = rows
        .viewer_minutes
        .iter()
        .map(|r| {
            (
                r.minute,
                r.viewer.as_str(),
                r.events,
                r.followed,
                r.chat_messages,
            )
        })
        .collect();
    assert_eq!(
        vm,
        vec![
            (0, "u1", 3, true, 4),
            (0, "u2", 2, false, 0),
            (0, "u3", 1, false, 0),
            (60_000, "u1", 1, false, 1)
        ]
    );
    assert!(
        rows.viewer_minutes
            .iter()
            .all(|r| r.node.as_str() == "local" && r.channel.as_str() == "c1")
    );
}

#[test]
fn paused_and_long_rebuffering_sessions_are_not_viewers() {
    let mut evs = vec![
        ev(K::Viewstart, 1_000, "p"),
        ev(K::Playing, 1_500, "p"),
        ev(K::Pause, 2_000, "p"),
    ];
    evs.push(heartbeat(12_000, "p", Some(PlayerState::Paused)));
    evs.push(ev(K::Viewend, 14_000, "p"));
    evs.push(on(ev(K::Viewstart, 0, "r"), "s2"));
    evs.push(on(ev(K::RebufferStart, 1_000, "r"), "s2"));
    for ts in (10_000..=400_000).step_by(10_000) {
        evs.push(on(heartbeat(ts, "r", Some(PlayerState::Rebuffering)), "s2"));
    }
    let (rows, _) = run_all(cfg(), evs);
    assert_eq!(rows.tick("s1", 0).unwrap().viewers, 0, "paused at T = 5 s");
    assert!(rows.tick("s1", 5_000).is_none_or(|r| r.viewers == 0));
    // rebuffering since 1 000: counted while T − 1 000 ≤ 300 000
    assert_eq!(rows.tick("s2", 295_000).unwrap().viewers, 1);
    assert_eq!(rows.tick("s2", 300_000).unwrap().viewers, 0);
    let r = rows.session("r").unwrap();
    assert_eq!(r.rebuffer_ms, r.watch_ms);
    assert_eq!(r.watch_ms, 399_000);
}

#[test]
fn orphans_are_counted_and_start_nothing() {
    let evs = vec![
        ev(K::Viewstart, 1_000, "a"),
        ev(K::Playing, 2_000, "a"),
        ev(K::Viewend, 3_000, "a"),
        heartbeat(4_000, "a", None),
        ev(K::Viewstart, 10_000, "b"),
        ev(K::Playing, 11_000, "b"),
        ev(K::Playing, 50_000, "b"), // 39 s of silence: b ended at 11 000
        ev(K::Error, 51_000, "b"),
    ];
    let (rows, agg) = run_all(cfg(), evs);
    assert_eq!(agg.stats().orphans, 3);
    assert_eq!(rows.sessions.len(), 2);
    assert_eq!(rows.sum(|r| r.failures), 0, "an orphan error is no failure");
    assert_eq!(
        rows.sum(|r| r.events),
        8,
        "orphans are still events of the target"
    );
    assert_eq!(rows.sum(|r| r.views), 2);
    assert_eq!(rows.session("b").unwrap().end_ts, 11_000);
}

#[test]
fn mid_way_sessions_are_not_views_but_watch() {
    let evs = vec![
        heartbeat(1_000, "m", None),
        heartbeat(11_000, "m", None),
        ev(K::Viewend, 12_000, "m"),
    ];
    let (rows, _) = run_all(cfg(), evs);
    assert_eq!(rows.sum(|r| r.views), 0);
    assert_eq!(rows.sum(|r| r.watch_ms), 11_000);
    assert!(!rows.session("m").unwrap().counted_view);
}

#[test]
fn late_events_are_counted_and_dropped() {
    let mut agg = Aggregator::new(cfg());
    assert_eq!(
        agg.push(ev(K::Viewstart, 100_000, "a")),
        Admission::Accepted
    );
    agg.advance(90_000);
    assert_eq!(agg.push(ev(K::Viewstart, 89_999, "b")), Admission::Late);
    assert_eq!(agg.push(ev(K::Viewstart, 90_000, "c")), Admission::Accepted);
    agg.advance(80_000); // never moves back
    assert_eq!(agg.watermark(), 90_000);
    let s = agg.stats();
    assert_eq!((s.events, s.late, s.pending), (3, 1, 2));
}

#[test]
fn windows_close_only_when_the_watermark_passes_end_plus_timeout() {
    let mut agg = Aggregator::new(cfg());
    agg.push(ev(K::Viewstart, 1_000, "a"));
    agg.push(ev(K::Playing, 2_000, "a"));
    agg.push(heartbeat(12_000, "a", None));
    let c = agg.advance(34_999);
    assert!(c.ticks.is_empty());
    assert_eq!(c.closed_through, 0);
    let c = agg.advance(35_000);
    assert_eq!(c.ticks.iter().map(|r| r.t).collect::<Vec<_>>(), vec![0]);
    assert_eq!(c.closed_through, 5_000);
    let c = agg.advance(45_000);
    assert_eq!(
        c.ticks.iter().map(|r| r.t).collect::<Vec<_>>(),
        vec![5_000, 10_000]
    );
    assert_eq!(c.ticks[0].watch_ms, 5_000);
    assert_eq!(c.ticks[1].watch_ms, 2_000);
    assert_eq!(
        c.sessions.len(),
        1,
        "silent since 12 000: ended by the sample at T = 45 000"
    );
    assert_eq!(c.sessions[0].end_ts, 12_000);
    // the viewer-minute [0, 60 s) closes at 90 s
    assert!(c.viewer_minutes.is_empty());
    let c = agg.advance(90_000);
    assert_eq!(c.viewer_minutes.len(), 1);
    assert_eq!(c.viewer_minutes[0].events, 3);
    assert_eq!(agg.stats().targets, 0, "nothing left open");
}

#[test]
fn provisional_shows_open_windows_without_changing_anything() {
    let evs = vec![
        ev(K::Viewstart, 1_000, "a"),
        ev(K::Playing, 2_000, "a"),
        heartbeat(12_000, "a", None),
    ];
    let mut a = Aggregator::new(cfg());
    let mut b = Aggregator::new(cfg());
    for e in &evs {
        a.push(e.clone());
        b.push(e.clone());
    }
    let p = a.provisional(13_000);
    let watch: i64 = p.ticks.iter().map(|r| r.watch_ms).sum();
    assert_eq!(watch, 10_000, "pending events included");
    assert_eq!(
        p.ticks.iter().find(|r| r.t == 0).map(|r| r.viewers),
        Some(1)
    );
    assert_eq!(p.viewer_minutes.len(), 1);
    let _ = a.provisional(20_000);
    let mut ra = Rows::default();
    ra.add(&a.finish());
    let mut rb = Rows::default();
    rb.add(&b.finish());
    assert_eq!(ra, rb);
    assert_eq!(a.stats(), b.stats());
}

/// The viewer-minute and QoE rows of open minutes (provisional) are the rows those
/// minutes close with: every event of a session counted once, in its 5-second slice,
/// and its watch time once, whether the engine added them to the minute at once or
/// held them with the session (`pulse_aggregator::stage`), including two sessions of
/// one viewer, an event of a session carrying another viewer, and a session that ends
/// inside the minute.
#[test]
fn provisional_viewer_minutes_are_the_rows_that_close() {
    let mut evs = vec![
        ev(K::Viewstart, 1_000, "a"),
        ev(K::Playing, 2_000, "a"),
        ev(K::Viewstart, 3_000, "b"),
        ev(K::Playing, 4_000, "b"),
    ];
    // Session "b" is the second session of viewer v-a.
    for e in evs.iter_mut().skip(2) {
        e.viewer = id("v-a");
    }
    for ts in (12_000..=72_000).step_by(10_000) {
        evs.push(heartbeat(ts, "a", Some(PlayerState::Playing)));
        let mut b = heartbeat(ts + 500, "b", Some(PlayerState::Playing));
        b.viewer = id("v-a");
        evs.push(b);
    }
    let mut foreign = heartbeat(33_000, "a", Some(PlayerState::Playing));
    foreign.viewer = id("v-other");
    evs.push(foreign);
    let mut end = ev(K::Viewend, 44_000, "b");
    end.viewer = id("v-a");
    evs.push(end);
    evs.push(engage(K::Chat, 45_000, "v-a"));
    let mut a = Aggregator::new(cfg());
    for e in &evs {
        a.push(e.clone());
    }
    let key = |r: &pulse_schemas::ViewerMinuteRow| {
        (
            r.minute,
            r.viewer.to_string(),
            r.events,
            r.chat_messages,
            r.seen_mask,
        )
    };
    // Viewer samples go on after 80 000 (the sessions time out later): not compared.
    let qoe = |r: &pulse_schemas::QoeMinuteRow| (r.minute, r.views, r.watch_ms, r.rebuffer_ms);
    let p = a.provisional(80_000);
    let mut open: Vec<_> = p.viewer_minutes.iter().map(key).collect();
    open.sort();
    let mut open_qoe: Vec<_> = p.qoe_minutes.iter().map(qoe).collect();
    open_qoe.sort();
    let mut rows = Rows::default();
    rows.add(&a.finish());
    let mut closed: Vec<_> = rows.viewer_minutes.iter().map(key).collect();
    closed.sort();
    assert_eq!(open, closed);
    let mut closed_qoe: Vec<_> = rows.qoe_minutes.iter().map(qoe).collect();
    closed_qoe.sort();
    assert_eq!(open_qoe, closed_qoe);
    // a watches 2 000 → 72 000, b 4 000 → 44 000.
    let watched: i64 = closed_qoe.iter().map(|r| r.2).sum();
    assert_eq!(watched, 70_000 + 40_000);
    // Minute 0 of v-a: a's 2 + 5 heartbeats (the one at 33 000 is v-other's), b's 2 +
    // 5 heartbeats (its heartbeat at 52 500 follows its end: an orphan, still an
    // event of the viewer) and its viewend, the chat.
    let v_a_0 = closed.iter().find(|r| r.0 == 0 && r.1 == "v-a").cloned();
    assert_eq!(
        v_a_0.map(|r| (r.2, r.3)),
        Some((2 + 5 + 2 + 4 + 1 + 1 + 1, 1))
    );
}

/// A minute closes while a session that holds events of it back is still alive (its
/// later events carry another viewer, so none of them moves its stage on): what it
/// holds joins the minute before the minute's rows are written.
#[test]
fn a_minute_closing_under_a_live_session_gets_what_the_session_holds() {
    let mut evs = vec![
        ev(K::Viewstart, 1_000, "a"),
        ev(K::Playing, 2_000, "a"),
        heartbeat(11_000, "a", Some(PlayerState::Playing)),
        heartbeat(21_000, "a", Some(PlayerState::Playing)),
    ];
    for ts in (31_000..=131_000).step_by(10_000) {
        let mut e = heartbeat(ts, "a", Some(PlayerState::Playing));
        e.viewer = id("v-x");
        evs.push(e);
    }
    let (rows, _) = run_all(cfg(), evs);
    let mut vm: Vec<_> = rows
        .viewer_minutes
        .iter()
        .map(|r| (r.minute, r.viewer.to_string(), r.events))
        .collect();
    vm.sort();
    assert_eq!(
        vm,
        vec![
            (0, "v-a".to_owned(), 4),
            (0, "v-x".to_owned(), 3),
            (60_000, "v-x".to_owned(), 6),
            (120_000, "v-x".to_owned(), 2),
        ]
    );
    let mut watch: Vec<_> = rows
        .qoe_minutes
        .iter()
        .map(|r| (r.minute, r.watch_ms))
        .collect();
    watch.sort();
    assert_eq!(
        watch,
        vec![(0, 58_000), (60_000, 60_000), (120_000, 11_000)]
    );
}

#[test]
fn provisional_within_stops_short_only_when_the_frontier_lags() {
    // One viewer from 1 s, a heartbeat every 2 s up to 40 s; `cfg()` ticks are 5 s,
    // the margin starts at 100 ms.
    let mut evs = vec![ev(K::Viewstart, 1_000, "a"), ev(K::Playing, 1_500, "a")];
    evs.extend((2..=20).map(|i| heartbeat(i * 2_000, "a", Some(PlayerState::Playing))));
    let mut a = Aggregator::new(cfg());
    for e in &evs {
        a.push(e.clone());
    }
    // `now` well past the newest event, as for a quiet stream.
    let now = 48_000;
    let newest = |p: &pulse_aggregator::sinks::Provisional| {
        p.ticks.iter().max_by_key(|r| r.t).map(|r| (r.t, r.viewers))
    };
    // The watermark, and so the frontier, at 1 s: the exact rows reach `now` (the tick
    // ending at 45 000 sampled: one viewer).
    a.advance(1_000);
    let exact = a.provisional(now);
    assert_eq!(newest(&exact), Some((40_000, 1)));
    // Lagging: events before 1 000 + 100 + 3 950 = 5 050 only, the tick end at 5 000
    // sampled (a bound without the margin would stop at 4 950, before it).
    let near = a.provisional_within(now, 3_950);
    assert_eq!(newest(&near), Some((0, 1)));
    let watch: i64 = near.ticks.iter().map(|r| r.watch_ms).sum();
    assert_eq!(watch, 2_500, "playing from 1 500 to the heartbeat at 4 000");
    // Stopping mid-tick (6 100): the tick from 5 000 holds the heartbeat at 6 000 but
    // its end is not sampled, so it is left out rather than shown with 0 viewers.
    let mid = a.provisional_within(now, 5_000);
    assert_eq!(newest(&mid), Some((0, 1)));
    assert!(
        mid.ticks.iter().all(|r| r.t + 5_000 <= 6_100),
        "{:?}",
        mid.ticks
    );
    // Caught up (the frontier a margin behind the newest event, 40 000): nothing is
    // left past the bound, and the tick ends up to `now` are sampled all the same.
    a.move_ahead(now);
    assert_eq!(a.provisional_within(now, 200), exact);
    assert_eq!(a.provisional(now), exact);
}

#[test]
fn bounds_drop_and_count() {
    let config = AggregatorConfig {
        max_pending_events: 2,
        max_sessions: 1,
        ..cfg()
    };
    let mut agg = Aggregator::new(config.clone());
    assert_eq!(agg.push(ev(K::Viewstart, 1_000, "a")), Admission::Accepted);
    assert_eq!(agg.push(ev(K::Viewstart, 1_000, "b")), Admission::Accepted);
    assert_eq!(agg.push(ev(K::Viewstart, 1_000, "c")), Admission::Dropped);
    let c = agg.finish();
    let s = agg.stats();
    assert_eq!((s.dropped_pending_full, s.dropped_max_sessions), (1, 1));
    assert_eq!(c.ticks.iter().map(|r| r.views).sum::<i64>(), 1);
    assert_eq!(
        c.ticks.iter().map(|r| r.events).sum::<i64>(),
        1,
        "a dropped event counts nowhere"
    );
    assert_eq!(c.sessions.len(), 1);
}

#[test]
fn same_millisecond_order_is_fixed() {
    // viewend and playing at the same ms: playing first, then viewend, whatever the arrival.
    let a = vec![
        ev(K::Viewstart, 1_000, "a"),
        ev(K::Viewend, 2_000, "a"),
        ev(K::Playing, 2_000, "a"),
    ];
    let mut b = a.clone();
    b.reverse();
    let (ra, _) = run_all(cfg(), a);
    let (rb, sb) = run_all(cfg(), b);
    assert_eq!(ra, rb);
    assert_eq!(sb.stats().orphans, 0);
    assert_eq!(ra.session("a").unwrap().startup_ms, Some(1_000));
}

#[test]
fn snapshot_restore_resumes_exactly() {
    let mut evs = Vec::new();
    for (i, s) in ["a", "b", "c"].iter().enumerate() {
        let o = i as i64 * 700;
        evs.push(ev(K::Viewstart, 1_000 + o, s));
        evs.push(ev(K::Playing, 2_000 + o, s));
        for k in 1..8 {
            evs.push(heartbeat(2_000 + o + k * 10_000, s, None));
        }
        evs.push(ev(K::RebufferStart, 50_000 + o, s));
        evs.push(ev(K::RebufferEnd, 53_000 + o, s));
        evs.push(engage(K::Chat, 54_000 + o, s));
    }
    evs.sort_by_key(|e| e.ts);
    let (whole, _) = run_all(cfg(), evs.clone());

    let mut agg = Aggregator::new(cfg());
    let mut rows = Rows::default();
    let (first, second) = evs.split_at(evs.len() / 2);
    for e in first {
        agg.push(e.clone());
    }
    rows.add(&agg.advance(first.last().unwrap().ts - 10_000));
    let bytes = agg.snapshot().unwrap();
    let mut agg = Aggregator::restore(cfg(), &bytes).unwrap();
    assert!(agg.stats().pending > 0 && agg.stats().sessions > 0);
    for e in second {
        agg.push(e.clone());
    }
    rows.add(&agg.finish());
    assert_eq!(rows.sorted(), whole);

    let other = AggregatorConfig {
        tick_ms: 1_000,
        ..cfg()
    };
    assert!(Aggregator::restore(other, &bytes).is_err());
    assert!(Aggregator::restore(cfg(), b"{}").is_err());
}

#[test]
fn rows_carry_node_kind_target_and_channel() {
    let config = AggregatorConfig {
        node_id: id("n7"),
        ..cfg()
    };
    let mut e = ev(K::Viewstart, 1_000, "a");
    e.target.kind = pulse_schemas::TargetKind::Clip;
    e.target.id = id("clip9");
    e.channel = id("chan");
    let (rows, _) = run_all(config, vec![e]);
    let t = &rows.ticks[0];
    assert_eq!(
        (
            t.node.as_str(),
            t.kind,
            t.target.as_str(),
            t.channel.as_str()
        ),
        ("n7", pulse_schemas::TargetKind::Clip, "clip9", "chan")
    );
    let s = &rows.sessions[0];
    assert_eq!(
        (s.node.as_str(), s.target.as_str(), s.viewer.as_str()),
        ("n7", "clip9", "v-a")
    );
}

#[test]
fn ahead_lag_says_how_far_a_move_ahead_would_go() {
    let mut a = Aggregator::new(cfg());
    for i in 0..20 {
        a.push(heartbeat(1_000 + i * 500, "a", Some(PlayerState::Playing)));
    }
    // Newest event 10 500; the frontier goes to min(now, newest) + 1 − margin (100 ms).
    assert_eq!(a.ahead_lag(5_000), 4_901);
    assert_eq!(a.ahead_lag(60_000), 10_401);
    // One 50 ms step, then the whole way.
    assert!(!a.move_ahead_step(60_000, 50));
    assert_eq!(a.ahead_lag(60_000), 10_351);
    a.move_ahead(60_000);
    assert_eq!(a.ahead_lag(60_000), 0);
    assert!(!a.rewind_pending());
    // A straggler behind the frontier: the next move starts with a rewind.
    a.push(heartbeat(5_000, "b", Some(PlayerState::Playing)));
    assert!(a.rewind_pending());
    a.move_ahead(60_000);
    assert!(!a.rewind_pending());
    // The rewind widened the margin to the lateness (2 × 5 401, at most 10 000); a
    // move that reaches the front decays it by 1/32, which moves the front up by 312.
    assert_eq!(a.ahead_lag(60_000), 312);
    a.move_ahead(60_000);
    assert_eq!(a.ahead_lag(60_000), 302);
    // The watermark counts as reached ground too.
    a.advance(20_000);
    assert_eq!(a.ahead_lag(60_000), 0);
}
