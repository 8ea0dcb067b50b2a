//! `GET /v1/beacons` over real sockets: each kind of bad input gets the documented
//! reply while a well-behaved client on the same server loses nothing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use pulse_ingest::metrics;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn reasons(reply: &serde_json::Value) -> String {
    reply["reasons"].to_string()
}

#[tokio::test]
async fn bad_input_is_rejected_and_the_connection_stays_open() {
    let server = start(config(), None).await;
    let good = good_client(server.ws_url(), "good-bad-input", 20);
    let mut ws = connect(&server.ws_url(), None).await;
    let long_id = "v".repeat(65);
    let cases: Vec<(String, &str)> = vec![
        ("hello, not json".into(), "event object"),
        (r#"{"type":"heartbeat","ts":"#.into(), "not JSON"),
        (r#"{"type":"heartbeat","ts":"soon","viewer":"v","channel":"c","stream":"s","session":"x"}"#.into(), "`ts`"),
        (r#"{"type":"heartbeat","ts":5,"channel":"c","stream":"s","session":"x"}"#.into(), "`viewer`"),
        (r#"{"type":"heartbeat","ts":5,"viewer":"v","channel":"c","stream":"s","session":"x","sesion":"y"}"#.into(), "`sesion`"),
        (format!(r#"{{"type":"like","ts":5,"viewer":"{long_id}","channel":"c","stream":"s"}}"#), "65 characters"),
        ("42".into(), "event object"),
        (r#"{"seq":"one","events":[]}"#.into(), "`seq`"),
    ];
    for (frame, needle) in &cases {
        send_text(&mut ws, frame.clone()).await;
        let reply = next_json(&mut ws).await;
        assert_eq!(reply["type"], "rejected", "{frame} -> {reply}");
        assert_eq!(reply["count"], 1, "{reply}");
        assert!(
            reasons(&reply).contains(needle),
            "{frame}: {needle:?} not in {reply}"
        );
    }
    // Binary frames: refused, connection stays open.
    ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    let reply = next_json(&mut ws).await;
    assert_eq!(reply["type"], "rejected");
    assert!(reasons(&reply).contains("binary"), "{reply}");
    // A batch keeps its valid events and reports the refused one with its index.
    let frame = format!(
        r#"{{"seq":9,"events":[{},{{"type":"zap"}},{}]}}"#,
        ev("viewstart", NOW, "bad-1"),
        ev("playing", NOW + 1, "bad-1")
    );
    send_text(&mut ws, frame).await;
    let reply = next_json(&mut ws).await;
    assert_eq!(
        (reply["type"].as_str(), reply["count"].as_u64()),
        (Some("rejected"), Some(1)),
        "{reply}"
    );
    assert!(reasons(&reply).contains("event 1"), "{reply}");
    assert_eq!(
        next_json(&mut ws).await,
        serde_json::json!({"type":"ack","seq":9})
    );
    // Still served: a plain valid event goes through.
    send_text(&mut ws, ev("heartbeat", NOW + 2, "bad-1")).await;
    assert_eq!(server.settle_viewer("bad-1", 3).await, 3);
    let acked = good.await.unwrap();
    assert_eq!(acked, (0..20).collect::<Vec<_>>());
    assert_eq!(server.settle_viewer("good-bad-input", 200).await, 200);
    let rejected = metrics()
        .events_rejected
        .with_label_values(&["binary_frame"])
        .get();
    assert!(rejected >= 1);
}

#[tokio::test]
async fn a_batch_just_under_64_kib_keeps_its_first_thousand_items() {
    let server = start(config(), None).await;
    let good = good_client(server.ws_url(), "good-big-batch", 10);
    let mut ws = connect(&server.ws_url(), Some(TOKEN)).await;
    // 1 000 short valid events, then 700 more items: the first 1 000 are kept, the
    // rest rejected, all in one frame just under 64 KiB.
    let items: Vec<String> = (0..1000)
        .map(|_| r#"{"type":"like","ts":1,"viewer":"bb","channel":"c","stream":"s"}"#.to_string())
        .chain((0..700).map(|_| "0".to_string()))
        .collect();
    let frame = batch(items);
    assert!(
        frame.len() <= 65_536 && frame.len() > 60_000,
        "{}",
        frame.len()
    );
    send_text(&mut ws, frame).await;
    let reply = next_json(&mut ws).await;
    assert_eq!(reply["type"], "rejected");
    assert_eq!(reply["count"], 700, "{reply}");
    assert!(
        reasons(&reply).contains("batch holds 1700 events"),
        "{reply}"
    );
    assert_eq!(server.settle_viewer("bb", 1000).await, 1000);
    // The frame was one batch, handed on whole.
    assert!(
        server
            .batches
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.len() == 1000 && b[0].viewer.as_str() == "bb")
    );
    assert_eq!(good.await.unwrap().len(), 10);
    assert_eq!(server.settle_viewer("good-big-batch", 100).await, 100);
}

#[tokio::test]
async fn frames_over_64_kib_close_with_1009() {
    let server = start(config(), None).await;
    let good = good_client(server.ws_url(), "good-1009", 20);
    let before = metrics().closed.with_label_values(&["1009"]).get();
    // A 10 000-event batch (about 730 KB) and a 1 MiB frame: both close the socket.
    let ten_thousand = batch((0..10_000).map(|i| ev("heartbeat", NOW + i, "big")));
    let one_mib = format!(
        r#"{{"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s","player":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    for frame in [ten_thousand, one_mib] {
        let ws = connect(&server.ws_url(), Some(TOKEN)).await;
        let (mut tx, mut rx) = ws.split();
        // The server stops reading mid-frame, so the send may fail: read concurrently.
        let sender =
            tokio::spawn(async move { tx.send(Message::Text(frame.into())).await.is_ok() });
        let first = tokio::time::timeout(Duration::from_secs(10), rx.next())
            .await
            .expect("close in time");
        let code = match first {
            Some(Ok(Message::Close(Some(f)))) => u16::from(f.code),
            other => panic!("expected a close frame first, got {other:?}"),
        };
        assert_eq!(code, 1009);
        let _ = sender.await;
    }
    assert!(metrics().closed.with_label_values(&["1009"]).get() >= before + 2);
    assert_eq!(server.count_viewer("big"), 0);
    assert_eq!(good.await.unwrap().len(), 20);
    assert_eq!(server.settle_viewer("good-1009", 200).await, 200);
}

#[tokio::test]
async fn a_flooding_client_is_limited_then_closed_with_1008() {
    let server = start(config(), None).await;
    let good = good_client(server.ws_url(), "good-flood", 20);
    let limited_before = metrics().rate_limited.get();
    let mut ws = connect(&server.ws_url(), None).await;
    // 30 frames of 100 events at once: 500 pass (the burst), the rest is dropped, and
    // beyond 1 000 drops within 10 s the socket is closed.
    for f in 0..30 {
        let frame = batch((0..100).map(|i| ev("heartbeat", NOW + f * 100 + i, "flood")));
        if ws.send(Message::Text(frame.into())).await.is_err() {
            break;
        }
    }
    let (code, replies) = close_code(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(!replies.is_empty());
    for r in &replies {
        assert_eq!(r["type"], "rejected", "{r}");
        assert!(reasons(r).contains("rate limit"), "{r}");
    }
    let dropped: u64 = replies.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert!(dropped > 1000, "{dropped}");
    let kept = server.settle_viewer("flood", 500).await;
    // The burst, plus what 50/s refilled while the frames arrived.
    assert!((500..750).contains(&kept), "{kept}");
    // Every event of every frame the server read is either kept or reported dropped
    // (frames after the close are never read).
    assert_eq!((kept as u64 + dropped) % 100, 0, "{kept} + {dropped}");
    assert!(kept as u64 + dropped < 3000);
    assert!(metrics().rate_limited.get() >= limited_before + dropped);
    assert_eq!(good.await.unwrap().len(), 20);
    assert_eq!(server.settle_viewer("good-flood", 200).await, 200);
}

#[tokio::test]
async fn trusted_emitters_are_not_rate_limited() {
    let server = start(config(), None).await;
    let header = connect(&server.ws_url(), Some(TOKEN)).await;
    let query = connect(&format!("{}?token={TOKEN}", server.ws_url()), None).await;
    for (mut ws, viewer) in [(header, "trusted-h"), (query, "trusted-q")] {
        // 10 frames of 400 events (under 64 KiB each), sent at once.
        for seq in 0..10 {
            let events = batch((0..400).map(|i| ev("heartbeat", NOW + seq * 400 + i, viewer)));
            send_text(&mut ws, format!(r#"{{"seq":{seq},"events":{events}}}"#)).await;
        }
        for seq in 0..10 {
            assert_eq!(
                next_json(&mut ws).await,
                serde_json::json!({"type":"ack","seq":seq})
            );
        }
        assert_eq!(server.settle_viewer(viewer, 4000).await, 4000);
    }
    // A wrong token is simply not trusted.
    let mut ws = connect(&server.ws_url(), Some("wrong")).await;
    send_text(&mut ws, batch((0..600).map(|i| chat(NOW + i, "untrusted")))).await;
    let reply = next_json(&mut ws).await;
    assert_eq!(reply["count"], 100, "{reply}");
    assert_eq!(server.settle_viewer("untrusted", 500).await, 500);
}

#[tokio::test]
async fn acks_come_after_the_hand_off_and_a_full_channel_is_backpressure() {
    // Channel of one event (each batch here holds one), nobody receiving yet.
    let (clock, _) = fixed_clock(NOW);
    let (addr, mut rx) = start_raw(config(), Some(clock), 1).await;
    let mut ws = connect(&format!("ws://{addr}/v1/beacons"), None).await;
    send_text(
        &mut ws,
        format!(r#"{{"seq":1,"events":[{}]}}"#, ev("viewstart", NOW, "bp")),
    )
    .await;
    assert_eq!(
        next_json(&mut ws).await,
        serde_json::json!({"type":"ack","seq":1})
    );
    // Acked means handed on: the batch is in the channel now.
    let first = rx.try_recv().expect("acked batch is in the channel");
    assert_eq!(first.len(), 1);
    // Fill the channel, then one more: that send waits, so its ack does not come.
    send_text(
        &mut ws,
        format!(r#"{{"seq":2,"events":[{}]}}"#, ev("playing", NOW + 1, "bp")),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["seq"], 2);
    send_text(
        &mut ws,
        format!(
            r#"{{"seq":3,"events":[{}]}}"#,
            ev("heartbeat", NOW + 2, "bp")
        ),
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), ws.next())
            .await
            .is_err(),
        "no ack while the channel is full"
    );
    assert_eq!(rx.recv().await.unwrap()[0].ts, NOW + 1);
    assert_eq!(
        next_json(&mut ws).await,
        serde_json::json!({"type":"ack","seq":3})
    );
    assert_eq!(rx.recv().await.unwrap()[0].ts, NOW + 2);
    assert!(metrics().queue_depth.get() >= 0);
}

/// Frames of one burst share a clock reading, but a wait ends the burst: a frame read
/// after a hand-off that waited on a full channel gets the time it was read at.
#[tokio::test]
async fn a_frame_read_after_a_backpressure_wait_gets_a_fresh_receive_time() {
    let (clock, now) = fixed_clock(NOW);
    let cfg = pulse_ingest::IngestConfig {
        max_frame_bytes: 1 << 20,
        ..config()
    };
    let (addr, mut rx) = start_raw(cfg, Some(clock), 1).await;
    let mut ws = connect(&format!("ws://{addr}/v1/beacons"), Some(TOKEN)).await;
    // Fill the one-event channel.
    send_text(
        &mut ws,
        format!(r#"{{"seq":1,"events":[{}]}}"#, chat(NOW, "fill")),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["seq"], 1);
    // A full batch, then at once one more frame: handling that frame hands the full
    // batch on, which waits for the channel.
    let full = (0..1000).map(|_| chat(3, "early")).collect::<Vec<_>>();
    send_text(
        &mut ws,
        format!(r#"{{"seq":2,"events":[{}]}}"#, full.join(",")),
    )
    .await;
    send_text(&mut ws, chat(3, "early")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Ten minutes later, while the hand-off still waits: a session-less event far off
    // takes its receive time.
    now.store(NOW + 600_000, std::sync::atomic::Ordering::SeqCst);
    send_text(&mut ws, chat(3, "late")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut late = None;
    while late.is_none() {
        let b = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("batches keep coming")
            .expect("channel open");
        late = b.iter().find(|e| e.viewer.as_str() == "late").map(|e| e.ts);
        assert!(
            b.iter()
                .all(|e| e.viewer.as_str() != "early" || e.ts == NOW)
        );
    }
    assert_eq!(late, Some(NOW + 600_000));
}

#[tokio::test]
async fn timestamps_in_1970_and_2100_are_corrected() {
    let (clock, _) = fixed_clock(NOW);
    let server = start(config(), Some(clock)).await;
    let sessions_before = metrics()
        .skew_corrected
        .with_label_values(&["session"])
        .get();
    let events_before = metrics().skew_corrected.with_label_values(&["event"]).get();
    let mut ws = connect(&server.ws_url(), None).await;
    let y2100 = 4_102_444_800_000;
    // A player in 1970 and one in 2100: sessions shifted, spacing kept.
    send_text(
        &mut ws,
        batch([ev("viewstart", 1_000, "old"), ev("playing", 2_500, "old")]),
    )
    .await;
    send_text(
        &mut ws,
        batch([
            ev("viewstart", y2100, "future"),
            ev("playing", y2100 + 700, "future"),
        ]),
    )
    .await;
    // Engagement without a session, far off: takes the receive time.
    send_text(
        &mut ws,
        batch([
            chat(3, "chatty"),
            chat(y2100, "chatty"),
            chat(NOW - 1000, "chatty"),
        ]),
    )
    .await;
    // A player within 5 minutes is left alone.
    send_text(&mut ws, ev("viewstart", NOW - 120_000, "fine")).await;
    for (viewer, n) in [("old", 2), ("future", 2), ("chatty", 3), ("fine", 1)] {
        assert_eq!(server.settle_viewer(viewer, n).await, n);
    }
    let ts = |viewer: &str| -> Vec<i64> {
        server
            .events()
            .iter()
            .filter(|e| e.viewer.as_str() == viewer)
            .map(|e| e.ts)
            .collect()
    };
    assert_eq!(ts("old"), vec![NOW, NOW + 1_500]);
    assert_eq!(ts("future"), vec![NOW, NOW + 700]);
    assert_eq!(ts("chatty"), vec![NOW, NOW, NOW - 1000]);
    assert_eq!(ts("fine"), vec![NOW - 120_000]);
    assert!(
        metrics()
            .skew_corrected
            .with_label_values(&["session"])
            .get()
            >= sessions_before + 2
    );
    assert!(metrics().skew_corrected.with_label_values(&["event"]).get() >= events_before + 2);
}

#[tokio::test]
async fn idle_sockets_are_closed_and_shutdown_closes_with_1001() {
    let (tx, mut rx) = pulse_schemas::handoff::bounded(4);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let cfg = pulse_ingest::IngestConfig {
        idle_timeout_ms: 300,
        ..config()
    };
    let state = pulse_ingest::IngestState::new(cfg, tx)
        .unwrap()
        .with_shutdown(shutdown.clone());
    let addr = serve(state.clone()).await;
    let mut idle = connect(&format!("ws://{addr}/v1/beacons"), None).await;
    assert_eq!(close_code(&mut idle).await.0, 1000);
    let mut busy = connect(&format!("ws://{addr}/v1/beacons"), None).await;
    send_text(
        &mut busy,
        format!(r#"{{"seq":1,"events":[{}]}}"#, ev("viewstart", NOW, "sd")),
    )
    .await;
    assert_eq!(next_json(&mut busy).await["seq"], 1);
    send_text(&mut busy, ev("playing", NOW + 1, "sd")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    shutdown.cancel();
    let closing = tokio::spawn(async move { close_code(&mut busy).await.0 });
    tokio::time::timeout(Duration::from_secs(10), state.sockets_closed())
        .await
        .expect("socket tasks end after shutdown");
    assert_eq!(closing.await.unwrap(), 1001);
    // Everything the socket accepted was handed on before it closed.
    let mut handed = 0;
    while let Some(batch) = rx.try_recv() {
        handed += batch.len();
    }
    assert_eq!(handed, 2);
}

/// The socket adds its frames to the shared counter in bursts. This fails if they are
/// never added; the exact moment (before a reply) is not pinned: the socket also adds
/// them when it next waits, microseconds later, and other tests bump the same counter.
#[tokio::test]
async fn frames_read_on_a_socket_are_counted() {
    let server = start(config(), None).await;
    let before = metrics().frames.get();
    let mut ws = connect(&server.ws_url(), Some(TOKEN)).await;
    for i in 0..30 {
        send_text(&mut ws, ev("heartbeat", NOW + i, "counted-frames")).await;
    }
    // Handed on means flushed, and a flush adds the socket's frames to the counter.
    assert_eq!(server.settle_viewer("counted-frames", 30).await, 30);
    assert!(metrics().frames.get() >= before + 30);
    // A frame with nothing to hand on is counted before its rejection reply is sent.
    let before = metrics().frames.get();
    send_text(&mut ws, "hello, not json".into()).await;
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a reply in time");
    assert!(matches!(reply, Some(Ok(Message::Text(_)))), "{reply:?}");
    assert!(metrics().frames.get() > before);
}
