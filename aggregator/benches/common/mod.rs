//! The aggregator bench's trace and run loop, shared by the criterion bench
//! (`aggregator.rs`) and the round-by-round one (`aggregator_rounds.rs`).

use pulse_aggregator::Aggregator;
use pulse_schemas::{
    ClosedWindows, Device, Event, EventKind as K, Id, PlayerState, Target, TargetKind,
};

const SESSIONS: usize = 20_000;
const STREAMS: usize = 400;
const COUNTRIES: [&str; 20] = [
    "US", "DE", "BR", "JP", "IN", "FR", "GB", "CA", "MX", "ES", "IT", "KR", "NL", "SE", "PL", "AU",
    "AR", "TR", "ID", "PH",
];
const DURATION_MS: i64 = 300_000;
const T0: i64 = 1_764_000_000_000;
/// Events between two `advance` calls (about one flush at 50 000 events/s).
const ADVANCE_EVERY: usize = 50_000;

fn event(kind: K, ts: i64, session: usize, stream: usize) -> Event {
    Event {
        kind,
        ts,
        viewer: Id::new_unchecked(&format!("viewer-{session:08}")),
        channel: Id::new_unchecked(&format!("chan-{:04}", stream / 4)),
        target: Target {
            kind: TargetKind::Stream,
            id: Id::new_unchecked(&format!("stream-{stream:05}")),
        },
        session: kind
            .is_playback()
            .then(|| Id::new_unchecked(&format!("sess-{session:08}-a"))),
        pos: None,
        state: None,
        bitrate_kbps: Some(3_000),
        device: None,
        country: None,
        player: None,
        embed: None,
        code: (kind == K::Error).then(|| "MEDIA_ERR".into()),
        count: None,
        platform: None,
    }
}

/// A small deterministic generator (xorshift) so the mix is the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn trace() -> Vec<Event> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for s in 0..SESSIONS {
        let stream = (rng.below(STREAMS as u64 * STREAMS as u64) as f64).sqrt() as usize; // skewed popularity
        let start = T0 + rng.below(DURATION_MS as u64 / 2) as i64;
        let length = 20_000 + rng.below(DURATION_MS as u64) as i64;
        // What real players send on `viewstart` (the `qoe_minutes` groups): 5 devices,
        // 20 countries, 3 players, so a busy stream has dozens of groups.
        let mut vs = event(K::Viewstart, start, s, stream);
        vs.device = Some(Device::ALL[s % Device::ALL.len()]);
        vs.country = Some(Id::new_unchecked(COUNTRIES[(s / 5) % COUNTRIES.len()]));
        vs.player = Some(["hls.js/1.5", "shaka/4.7", "avplayer/17"][s % 3].into());
        out.push(vs);
        let mut ts = start + 200 + rng.below(3_000) as i64;
        out.push(event(K::Playing, ts, s, stream));
        let end = (start + length).min(T0 + DURATION_MS);
        while ts + 10_000 < end {
            ts += 10_000;
            let mut hb = event(K::Heartbeat, ts, s, stream);
            hb.state = Some(PlayerState::Playing);
            out.push(hb);
            match rng.below(100) {
                0..=4 => {
                    out.push(event(K::RebufferStart, ts + 1_000, s, stream));
                    out.push(event(
                        K::RebufferEnd,
                        ts + 1_000 + rng.below(4_000) as i64,
                        s,
                        stream,
                    ));
                }
                5..=6 => {
                    out.push(event(K::Pause, ts + 2_000, s, stream));
                    out.push(event(K::Playing, ts + 6_000, s, stream));
                }
                7..=11 => {
                    let mut c = event(K::Chat, ts + 3_000, s, stream);
                    c.count = Some(1 + rng.below(3) as u32);
                    out.push(c);
                }
                12 => out.push(event(K::Follow, ts + 4_000, s, stream)),
                _ => {}
            }
        }
        match rng.below(10) {
            0..=5 => out.push(event(K::Viewend, ts + 5_000, s, stream)),
            6 => out.push(event(K::Error, ts + 5_000, s, stream)),
            _ => {} // silent tab close
        }
    }
    // arrival order: event time plus up to 2 s of network/batching jitter
    let mut keyed: Vec<(i64, Event)> = out
        .into_iter()
        .map(|e| (e.ts + rng.below(2_000) as i64, e))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, e)| e).collect()
}

/// Pushes `events` (already time-shifted by [`shifted`]) into `agg`, advancing every
/// [`ADVANCE_EVERY`] events; returns the number of closed tick rows.
/// The closed windows are written into one reused buffer, as the live loop does.
/// The emptied input vector is handed back so that criterion frees its 90 MB outside
/// the timed routine (the live loop's ingest batches are small and reused).
pub fn run(agg: &mut Aggregator, lateness: i64, mut events: Vec<Event>) -> (usize, Vec<Event>) {
    let mut rows = 0;
    let mut closed = ClosedWindows::default();
    for (i, e) in events.drain(..).enumerate() {
        agg.push(e);
        if i % ADVANCE_EVERY == ADVANCE_EVERY - 1 {
            let w = agg.max_event_ts() - lateness;
            agg.advance_into(w, &mut closed);
            rows += closed.ticks.len();
        }
    }
    (rows, events)
}

pub fn shifted(events: &[Event], by: i64) -> Vec<Event> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.ts += by;
            e
        })
        .collect()
}
