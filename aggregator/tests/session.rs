//! Every transition of the view-session state machine (METRICS.md §1).
#![allow(clippy::unwrap_used)]

mod common;

use common::{ev, heartbeat, id};
use pulse_aggregator::session::{
    Interval, REBUFFER_VIEWER_CUTOFF_MS, SessionState as S, ViewSession,
};
use pulse_schemas::{Device, EndReason, EventKind as K, PlayerState, TargetKind};

const TIMEOUT: i64 = 30_000;

fn started() -> ViewSession {
    ViewSession::begin(id("x"), &ev(K::Viewstart, 1_000, "x")).0
}

fn playing_at(ts: i64) -> ViewSession {
    let mut s = started();
    s.apply(&ev(K::Playing, ts, "x"));
    s
}

#[test]
fn viewstart_starts_a_counted_view() {
    let mut e = ev(K::Viewstart, 1_000, "x");
    e.embed = Some(true);
    e.device = Some(Device::Tv);
    let (s, step) = ViewSession::begin(id("x"), &e);
    assert_eq!(s.state, S::Starting);
    assert!(step.view && step.embed_view);
    assert_eq!(s.viewstart_ts, Some(1_000));
    assert_eq!((s.start_ts, s.last_ts), (1_000, 1_000));
    assert_eq!(step.interval, None);
    let row = s.to_row(&id("n"), TargetKind::Stream, &id("s1"), &id("c1"));
    assert!(row.counted_view && row.embed);
    assert_eq!(row.device, Some("tv"));
}

#[test]
fn starting_is_not_watch_time_and_first_playing_gives_startup() {
    let mut s = started();
    let step = s.apply(&ev(K::Playing, 1_800, "x"));
    assert_eq!(s.state, S::Playing);
    assert_eq!(step.interval, None, "starting is not watching");
    assert_eq!(step.startup_ms, Some(800));
    assert_eq!(s.startup_ms, Some(800));
    s.apply(&ev(K::Pause, 2_000, "x"));
    let step = s.apply(&ev(K::Playing, 5_000, "x"));
    assert_eq!(step.startup_ms, None, "only the first playing");
    assert_eq!(s.startup_ms, Some(800));
}

#[test]
fn playing_is_watch_time_until_the_next_event() {
    let mut s = playing_at(2_000);
    let step = s.apply(&ev(K::Pause, 7_000, "x"));
    assert_eq!(
        step.interval,
        Some(Interval {
            from: 2_000,
            to: 7_000,
            rebuffering: false
        })
    );
    assert_eq!(s.state, S::Paused);
    let step = s.apply(&heartbeat(9_000, "x", Some(PlayerState::Paused)));
    assert_eq!(step.interval, None, "paused is not watching");
    assert_eq!(s.watch_ms, 5_000);
}

#[test]
fn rebuffering_is_watch_and_rebuffer_time() {
    let mut s = playing_at(2_000);
    let step = s.apply(&ev(K::RebufferStart, 3_000, "x"));
    assert!(step.rebuffer_started);
    assert_eq!(s.state, S::Rebuffering);
    assert_eq!(s.rebuffer_since, 3_000);
    let step = s.apply(&ev(K::RebufferEnd, 4_500, "x"));
    assert_eq!(
        step.interval,
        Some(Interval {
            from: 3_000,
            to: 4_500,
            rebuffering: true
        })
    );
    assert_eq!(s.state, S::Playing);
    assert_eq!(
        (s.watch_ms, s.rebuffer_ms, s.rebuffer_count),
        (2_500, 1_500, 1)
    );
}

#[test]
fn seek_enters_playing() {
    let mut s = playing_at(2_000);
    s.apply(&ev(K::Pause, 3_000, "x"));
    s.apply(&ev(K::Seek, 4_000, "x"));
    assert_eq!(s.state, S::Playing);
    s.apply(&ev(K::RebufferStart, 5_000, "x"));
    s.apply(&ev(K::Seek, 6_000, "x"));
    assert_eq!(s.state, S::Playing);
    assert_eq!(s.watch_ms, 1_000 + 1_000 + 1_000);
}

#[test]
fn heartbeat_keeps_alive_and_changes_nothing() {
    let mut s = playing_at(2_000);
    s.apply(&ev(K::Pause, 3_000, "x"));
    let step = s.apply(&heartbeat(13_000, "x", Some(PlayerState::Playing)));
    assert_eq!(
        s.state,
        S::Paused,
        "a heartbeat of an open session does not move it"
    );
    assert_eq!(s.last_ts, 13_000);
    assert_eq!(step, Default::default());
    // a repeated viewstart is not a new view either
    let step = s.apply(&ev(K::Viewstart, 14_000, "x"));
    assert!(!step.view);
    assert_eq!(s.state, S::Paused);
}

#[test]
fn error_and_viewend_end_the_session() {
    let mut s = playing_at(2_000);
    let step = s.apply(&ev(K::Error, 5_000, "x"));
    assert!(step.failed);
    assert_eq!(step.ended, Some(EndReason::Error));
    assert_eq!(step.interval.map(|i| i.to - i.from), Some(3_000));
    assert_eq!(s.state, S::Ended);
    assert_eq!(s.end, Some((5_000, EndReason::Error)));
    let step = s.apply(&ev(K::Playing, 6_000, "x"));
    assert!(step.orphan, "an event for an ended session starts nothing");
    assert_eq!(s.watch_ms, 3_000);

    let mut s = playing_at(2_000);
    let step = s.apply(&ev(K::Viewend, 4_000, "x"));
    assert_eq!(step.ended, Some(EndReason::Viewend));
    assert!(!step.failed);
    let row = s.to_row(&id("n"), TargetKind::Vod, &id("v1"), &id("c1"));
    assert_eq!(
        (row.start_ts, row.end_ts, row.watch_ms),
        (1_000, 4_000, 2_000)
    );
    assert_eq!(row.end_reason, EndReason::Viewend);
    assert_eq!(row.startup_ms, Some(1_000));
}

#[test]
fn silence_ends_at_the_last_event() {
    let mut s = playing_at(2_000);
    assert!(
        !s.timed_out_at(2_000 + TIMEOUT, TIMEOUT),
        "30 s exactly is still alive"
    );
    assert!(s.timed_out_at(2_001 + TIMEOUT, TIMEOUT));
    s.expire();
    assert_eq!(s.state, S::Ended);
    assert_eq!(s.end, Some((2_000, EndReason::Timeout)));
    assert_eq!(s.watch_ms, 0, "the last interval is not watch time");
}

#[test]
fn first_seen_mid_way_resumes_in_the_implied_state() {
    let cases = [
        (heartbeat(5_000, "m", Some(PlayerState::Paused)), S::Paused),
        (
            heartbeat(5_000, "m", Some(PlayerState::Rebuffering)),
            S::Rebuffering,
        ),
        (
            heartbeat(5_000, "m", Some(PlayerState::Starting)),
            S::Starting,
        ),
        (
            heartbeat(5_000, "m", Some(PlayerState::Playing)),
            S::Playing,
        ),
        (heartbeat(5_000, "m", None), S::Playing),
        (ev(K::Playing, 5_000, "m"), S::Playing),
        (ev(K::RebufferEnd, 5_000, "m"), S::Playing),
        (ev(K::Seek, 5_000, "m"), S::Playing),
        (ev(K::Pause, 5_000, "m"), S::Paused),
        (ev(K::RebufferStart, 5_000, "m"), S::Rebuffering),
    ];
    for (e, want) in cases {
        let (mut s, step) = ViewSession::begin(id("m"), &e);
        assert_eq!(s.state, want, "{:?} {:?}", e.kind, e.state);
        assert!(!step.view, "not counted as a view");
        assert_eq!(s.viewstart_ts, None);
        assert_eq!(step.rebuffer_started, e.kind == K::RebufferStart);
        // no startup time without a viewstart
        let step = s.apply(&ev(K::Playing, 6_000, "m"));
        assert_eq!(step.startup_ms, None);
        let row = s.to_row(&id("n"), TargetKind::Stream, &id("s1"), &id("c1"));
        assert!(!row.counted_view);
    }
    let (s, step) = ViewSession::begin(id("m"), &ev(K::Error, 5_000, "m"));
    assert!(step.failed && s.state == S::Ended);
    let (s, step) = ViewSession::begin(id("m"), &ev(K::Viewend, 5_000, "m"));
    assert_eq!((s.state, step.ended), (S::Ended, Some(EndReason::Viewend)));
}

#[test]
fn viewer_sample_rules() {
    let s = playing_at(2_000);
    assert!(s.is_viewer_at(5_000, TIMEOUT));
    assert!(!started().is_viewer_at(1_000, TIMEOUT), "started before T");
    assert!(started().is_viewer_at(5_000, TIMEOUT), "starting counts");
    assert!(s.is_viewer_at(32_000, TIMEOUT), "event in [T − 30 s, T)");
    assert!(!s.is_viewer_at(32_001, TIMEOUT));
    let mut p = playing_at(2_000);
    p.apply(&ev(K::Pause, 3_000, "x"));
    assert!(!p.is_viewer_at(5_000, TIMEOUT), "paused does not count");
    let mut r = playing_at(2_000);
    r.apply(&ev(K::RebufferStart, 3_000, "x"));
    r.apply(&heartbeat(
        3_000 + REBUFFER_VIEWER_CUTOFF_MS - 5_000,
        "x",
        None,
    ));
    assert!(r.is_viewer_at(3_000 + REBUFFER_VIEWER_CUTOFF_MS, TIMEOUT));
    assert!(
        !r.is_viewer_at(3_001 + REBUFFER_VIEWER_CUTOFF_MS, TIMEOUT),
        "rebuffering > 5 min"
    );
    let mut e = playing_at(2_000);
    e.apply(&ev(K::Viewend, 3_000, "x"));
    assert!(!e.is_viewer_at(5_000, TIMEOUT));
}

#[test]
fn attributes_first_value_wins() {
    let mut a = ev(K::Viewstart, 1_000, "x");
    a.country = Some(id("DE"));
    let (mut s, _) = ViewSession::begin(id("x"), &a);
    let mut b = ev(K::Playing, 2_000, "x");
    b.country = Some(id("FR"));
    b.player = Some("p/1".into());
    b.device = Some(Device::Mobile);
    s.apply(&b);
    assert_eq!(s.country, Some(id("DE")));
    assert_eq!(s.player.as_deref(), Some("p/1"));
    assert_eq!(s.device, Some(Device::Mobile));
}
