//! Issue 4 point 8's trace: three days of three channels (eighteen streams, and one
//! more nine days before), seven VODs and ten clips, generated from a seed. Streams have
//! audiences of dozens with raids of hundreds, heartbeats every 10 s (±1.5 s),
//! startup delays with a long tail, rebuffers (a few longer than five minutes, some
//! aligned so a tick ends exactly five minutes in), gaps of exactly the 30 s timeout, pauses
//! (some silent past the timeout), seeks, errors at start and mid-way, silent closes,
//! sessions first seen mid-way, orphan events after an end, chat (folded counts),
//! follows (some twice), and on VODs and clips embeds, likes, shares, clickthroughs.
//!
//! The catalog knows most streams with LIVE/ENDED records (one ended and restarted,
//! one still live, two crossing midnight); one has a record without lifecycle and
//! three are known to the store only. Viewers come from a pool per channel plus a pool
//! shared by all channels, so they return across streams, days and channels.
//! Events are kept as plain structs ([`Ev`]); timestamps strictly increase within a
//! session.
//!
//! Modules: [`session`] generates one view and the engagement around it; [`wire`]
//! writes the NDJSON for `pulse replay` and the catalog records; [`ledger`] is the
//! independent computation; [`world`] and [`checks`] are the test's shared parts.

pub mod checks;
pub mod ledger;
mod session;
mod wire;
pub mod world;

use session::Gen;

pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;
/// 2025-11-25 00:00 UTC: the first of the three days.
pub const DAY0: i64 = 1_764_028_800_000;
/// (channel, owner)
pub const CHANNELS: [(&str, &str); 3] =
    [("md-alpha", "ann"), ("md-beta", "ben"), ("md-gamma", "cat")];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Viewstart,
    Playing,
    Pause,
    RebufferStart,
    RebufferEnd,
    Seek,
    Heartbeat,
    Error,
    Viewend,
    Chat,
    Follow,
    Like,
    Share,
    Clickthrough,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Viewstart => "viewstart",
            Kind::Playing => "playing",
            Kind::Pause => "pause",
            Kind::RebufferStart => "rebuffer_start",
            Kind::RebufferEnd => "rebuffer_end",
            Kind::Seek => "seek",
            Kind::Heartbeat => "heartbeat",
            Kind::Error => "error",
            Kind::Viewend => "viewend",
            Kind::Chat => "chat",
            Kind::Follow => "follow",
            Kind::Like => "like",
            Kind::Share => "share",
            Kind::Clickthrough => "clickthrough",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Stream,
    Vod,
    Clip,
}

impl TargetKind {
    /// The event field and query parameter naming it.
    pub fn key(self) -> &'static str {
        match self {
            TargetKind::Stream => "stream",
            TargetKind::Vod => "vod",
            TargetKind::Clip => "clip",
        }
    }
}

pub struct Target {
    pub kind: TargetKind,
    pub id: String,
    pub channel: usize,
}

/// One raw event. `session` 0: none; `state`: a heartbeat's player state.
#[derive(Clone, Debug)]
pub struct Ev {
    pub ts: i64,
    pub kind: Kind,
    pub target: usize,
    pub viewer: u32,
    pub session: u32,
    pub state: Option<&'static str>,
    pub count: Option<u32>,
    pub embed: bool,
}

/// How the catalog knows a stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Records {
    /// LIVE/ENDED intervals (absolute ms; `None`: still live).
    Lifecycle(Vec<(i64, Option<i64>)>),
    /// A catalog record (category) without lifecycle.
    RecordOnly,
    /// No catalog record at all: the store alone knows it.
    StoreOnly,
}

pub struct StreamSpec {
    pub target: usize,
    pub category: &'static str,
    pub records: Records,
}

pub struct VodSpec {
    pub target: usize,
    pub stream: usize,
    pub duration_s: f64,
}

pub struct ClipSpec {
    pub target: usize,
    pub stream: usize,
    pub vod: Option<usize>,
    pub published: bool,
    pub len_s: f64,
    pub created_at: i64,
}

pub struct Trace {
    pub targets: Vec<Target>,
    pub streams: Vec<StreamSpec>,
    pub vods: Vec<VodSpec>,
    pub clips: Vec<ClipSpec>,
    pub events: Vec<Ev>,
    /// Start of the day holding the first event and end of the last day (exclusive).
    pub from: i64,
    pub to: i64,
    /// The server's clock.
    pub now: i64,
}

#[derive(Clone, Copy)]
enum Rec {
    Ended,
    Open,
    TwoParts,
    RecordOnly,
    StoreOnly,
}

/// (id, channel, day, start minute of the day, minutes, records, audience, raid, category)
type Row = (
    &'static str,
    usize,
    i64,
    i64,
    i64,
    Rec,
    usize,
    bool,
    &'static str,
);
#[rustfmt::skip]
const STREAMS: &[Row] = &[
    ("md-a-old", 0, -9, 600, 20, Rec::StoreOnly, 9, false, ""),
    ("md-a-d0-m", 0, 0, 540, 45, Rec::Ended, 18, false, "Chess"),
    ("md-a-d0-e", 0, 0, 1200, 80, Rec::Ended, 42, false, "Art"),
    ("md-a-d1-m", 0, 1, 540, 45, Rec::Ended, 21, false, "Chess"),
    ("md-a-d1-n", 0, 1, 780, 40, Rec::RecordOnly, 15, false, "Art"),
    ("md-a-d1-e", 0, 1, 1200, 80, Rec::Ended, 45, false, "Art"),
    ("md-a-d2-m", 0, 2, 540, 45, Rec::Ended, 18, false, "Chess"),
    ("md-a-d2-e", 0, 2, 1200, 80, Rec::Ended, 48, false, "Art"),
    ("md-b-d0-a", 1, 0, 900, 45, Rec::StoreOnly, 21, false, ""),
    ("md-b-d0-n", 1, 0, 1400, 75, Rec::Ended, 36, false, "Music"),
    ("md-b-d1-a", 1, 1, 900, 60, Rec::Ended, 30, false, "Music"),
    ("md-b-d1-b", 1, 1, 930, 60, Rec::Ended, 27, false, "Talk"),
    ("md-b-d1-n", 1, 1, 1400, 75, Rec::Ended, 36, false, "Music"),
    ("md-b-d2-a", 1, 2, 900, 45, Rec::StoreOnly, 21, false, ""),
    ("md-g-d0-r", 2, 0, 1080, 80, Rec::Ended, 68, true, "Speedrun"),
    ("md-g-d1-x", 2, 1, 720, 70, Rec::TwoParts, 24, false, "Speedrun"),
    ("md-g-d1-r", 2, 1, 1080, 80, Rec::Ended, 60, true, "Speedrun"),
    ("md-g-d2-r", 2, 2, 1080, 80, Rec::Ended, 68, true, "Speedrun"),
    ("md-g-d2-o", 2, 2, 1260, 150, Rec::Open, 21, false, "Retro"),
];

/// (VOD, stream, duration in s: the stream's, or shorter for a highlight)
const VODS: &[(&str, &str, f64)] = &[
    ("md-v-a0", "md-a-d0-e", 4800.0),
    ("md-v-a1", "md-a-d1-m", 2700.0),
    ("md-v-b0", "md-b-d0-n", 4500.0),
    ("md-v-b1", "md-b-d1-a", 3600.0),
    ("md-v-g0", "md-g-d0-r", 4800.0),
    ("md-v-g1", "md-g-d1-x", 150.0),
    ("md-v-g2", "md-g-d1-r", 4800.0),
];

/// (clip, stream, from the stream's VOD, published, length in s)
const CLIPS: &[(&str, &str, bool, bool, f64)] = &[
    ("md-k-a1", "md-a-d0-e", false, true, 30.0),
    ("md-k-a2", "md-a-d1-m", true, true, 20.0),
    ("md-k-a3", "md-a-d2-e", false, false, 45.0),
    ("md-k-b1", "md-b-d0-n", true, true, 25.0),
    ("md-k-b2", "md-b-d1-a", false, true, 60.0),
    ("md-k-b3", "md-b-d1-a", true, true, 15.0),
    ("md-k-g1", "md-g-d0-r", false, true, 30.0),
    ("md-k-g2", "md-g-d0-r", true, true, 30.0),
    ("md-k-g3", "md-g-d1-r", false, true, 10.0),
    ("md-k-g4", "md-g-d2-r", false, true, 20.0),
];

/// Generates the whole trace from `seed`.
pub fn generate(seed: u64) -> Trace {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(seed),
        events: Vec::new(),
        sessions: 0,
    };
    let mut targets = Vec::new();
    let mut streams = Vec::new();
    let to = DAY0 + 3 * DAY;
    let now = to + HOUR;
    let mut ends = Vec::new();
    for &(id, channel, day, start_min, minutes, rec, audience, raid, category) in STREAMS {
        let target = targets.len();
        targets.push(Target {
            kind: TargetKind::Stream,
            id: id.to_owned(),
            channel,
        });
        let live = DAY0 + day * DAY + start_min * MIN;
        let end = live + minutes * MIN;
        ends.push(end);
        let records = match rec {
            Rec::Ended => Records::Lifecycle(vec![(live, Some(end))]),
            Rec::Open => Records::Lifecycle(vec![(live, None)]),
            Rec::TwoParts => {
                let cut = live + minutes * MIN * 2 / 5;
                Records::Lifecycle(vec![(live, Some(cut)), (cut + 10 * MIN, Some(end))])
            }
            Rec::RecordOnly => Records::RecordOnly,
            Rec::StoreOnly => Records::StoreOnly,
        };
        streams.push(StreamSpec {
            target,
            category,
            records,
        });
        // Sessions of 30 s to ~25 min (mean ~9 min) over the stream, some starting before
        // LIVE, most leaving at the end, a few lingering up to three minutes after.
        let pool = (audience * 12) as u32;
        let n = audience * minutes as usize / 9;
        let mut plan: Vec<(i64, i64)> = (0..n)
            .map(|_| {
                let u = g.rng.f64();
                let t0 = live - 2 * MIN + g.rng.i64(0..(minutes + 1) * MIN);
                let len = 30_000 + (u * u * 25.0 * MIN as f64) as i64;
                (t0, len.min(end + g.rng.i64(0..3 * MIN) - t0).max(2_000))
            })
            .collect();
        if raid {
            // A raid: hundreds arrive within two minutes in the middle, stay 3 to 12 min.
            let at = live + minutes * MIN / 2;
            for _ in 0..audience * 4 {
                plan.push((at + g.rng.i64(0..2 * MIN), g.rng.i64(3 * MIN..12 * MIN)));
            }
        }
        for (t0, len) in plan {
            let viewer = g.viewer(channel, pool);
            let last = g.session(target, viewer, t0, len, false);
            g.engage_stream(target, viewer, t0, last);
        }
        // Lurkers: follow or chat without watching.
        for _ in 0..audience / 4 {
            let viewer = g.viewer(channel, pool);
            let at = live + g.rng.i64(0..minutes * MIN);
            let kind = if g.rng.bool() {
                Kind::Follow
            } else {
                Kind::Chat
            };
            g.push(at, kind, target, viewer, 0);
        }
    }
    let stream_index = |targets: &[Target], id: &str| {
        targets
            .iter()
            .position(|t| t.id == id)
            .expect("a stream of the table")
    };
    let mut vods = Vec::new();
    for &(id, stream, duration_s) in VODS {
        let s = stream_index(&targets, stream);
        let target = targets.len();
        let channel = targets[s].channel;
        targets.push(Target {
            kind: TargetKind::Vod,
            id: id.to_owned(),
            channel,
        });
        vods.push(VodSpec {
            target,
            stream: s,
            duration_s,
        });
        let from = ends[s] + 10 * MIN;
        for _ in 0..g.rng.usize(40..70) {
            let viewer = g.viewer(channel, 400);
            let t0 = from + g.rng.i64(0..to - 40 * MIN - from);
            let u = g.rng.f64();
            let len = 5_000 + (u * u * 20.0 * MIN as f64) as i64;
            let last = g.session(target, viewer, t0, len, true);
            g.engage_content(target, viewer, last, false);
        }
    }
    let mut clips = Vec::new();
    for &(id, stream, from_vod, published, len_s) in CLIPS {
        let s = stream_index(&targets, stream);
        let target = targets.len();
        let channel = targets[s].channel;
        targets.push(Target {
            kind: TargetKind::Clip,
            id: id.to_owned(),
            channel,
        });
        let vod = from_vod.then(|| {
            vods.iter()
                .find(|v| v.stream == s)
                .expect("the stream has a VOD")
                .target
        });
        let created_at = ends[s] + g.rng.i64(5 * MIN..60 * MIN);
        clips.push(ClipSpec {
            target,
            stream: s,
            vod,
            published,
            len_s,
            created_at,
        });
        for _ in 0..g.rng.usize(30..70) {
            let viewer = g.viewer(channel, 400);
            let t0 = created_at + g.rng.i64(0..to - 10 * MIN - created_at);
            let len = g.rng.i64(1_000..(len_s * 1_500.0) as i64);
            let last = g.session(target, viewer, t0, len, true);
            g.engage_content(target, viewer, last, true);
        }
        // Likes and shares from viewers who did not watch here (a feed, say).
        for _ in 0..g.rng.usize(0..6) {
            let viewer = g.viewer(channel, 400);
            let at = created_at + g.rng.i64(0..to - 10 * MIN - created_at);
            let kind = if g.rng.bool() {
                Kind::Like
            } else {
                Kind::Share
            };
            g.push(at, kind, target, viewer, 0);
        }
    }
    let mut events = g.events;
    events.sort_by_key(|e| e.ts);
    let first = events.first().map_or(DAY0, |e| e.ts);
    assert!(
        events.iter().all(|e| e.ts < to),
        "the trace ends before `to`"
    );
    Trace {
        targets,
        streams,
        vods,
        clips,
        events,
        from: first.div_euclid(DAY) * DAY,
        to,
        now,
    }
}

impl Trace {
    pub fn channel_of(&self, target: usize) -> &'static str {
        CHANNELS[self.targets[target].channel].0
    }
}
