//! The multi-day trace as the system receives it: the wire events (NDJSON for
//! `pulse replay`) and the catalog records (channels, streams, VODs, clips, lifecycle).

use super::{CHANNELS, DAY0, Kind, Records, TargetKind, Trace};
use pulse::Config;
use pulse_query::catalog::streams::StreamInput;
use pulse_schemas::{Id, LifecycleChange, LifecycleSource, Principal, Role, StreamStatus};

const DEVICES: [&str; 4] = ["mobile", "desktop", "tv", "tablet"];
const COUNTRIES: [&str; 4] = ["US", "DE", "BR", "JP"];

impl Trace {
    /// The wire form, one JSON event per line.
    pub fn ndjson(&self) -> String {
        let mut out = String::with_capacity(self.events.len() * 160);
        for e in &self.events {
            let t = &self.targets[e.target];
            let mut line = format!(
                r#"{{"type":"{}","ts":{},"viewer":"v{}","channel":"{}","{}":"{}""#,
                e.kind.name(),
                e.ts,
                e.viewer,
                self.channel_of(e.target),
                t.kind.key(),
                t.id
            );
            if e.session != 0 {
                line += &format!(r#","session":"s{}""#, e.session);
            }
            if let Some(s) = e.state {
                line += &format!(r#","state":"{s}""#);
            }
            if let Some(c) = e.count {
                line += &format!(r#","count":{c}"#);
            }
            match e.kind {
                Kind::Viewstart => {
                    let n = e.session as usize;
                    line += &format!(
                        r#","device":"{}","country":"{}""#,
                        DEVICES[n % 4],
                        COUNTRIES[n / 4 % 4]
                    );
                    if t.kind != TargetKind::Stream {
                        line += &format!(r#","embed":{}"#, e.embed);
                    }
                }
                Kind::Error => line += r#","code":"E_PLAY""#,
                Kind::Share => line += r#","platform":"x""#,
                _ => {}
            }
            line += "}\n";
            out += &line;
        }
        out
    }

    /// Writes the catalog records: channels, streams with categories, VODs and clips,
    /// then the lifecycle records (after the VODs, so an ENDED archives no other one).
    pub async fn seed(&self, cfg: &Config) {
        let cat = super::super::content::catalog(cfg).await;
        let id = Id::new_unchecked;
        let admin = Principal {
            user: id("root"),
            role: Role::Admin,
        };
        for (channel, owner) in CHANNELS {
            cat.put_channel(&id(channel), channel, &id(owner))
                .await
                .expect("channel");
        }
        for s in self
            .streams
            .iter()
            .filter(|s| s.records != Records::StoreOnly)
        {
            let t = &self.targets[s.target];
            let input = StreamInput {
                channel: id(CHANNELS[t.channel].0),
                title: format!("{} title", t.id),
                category: s.category.into(),
                playback_url: String::new(),
                is_test: false,
            };
            cat.put_stream(&admin, &id(&t.id), &input)
                .await
                .expect("stream");
        }
        for v in &self.vods {
            let (vod, stream) = (&self.targets[v.target], &self.targets[v.stream]);
            sqlx::query(
                "INSERT INTO vods (id, stream, channel, title, search_text, duration_s, status, \
                 live_at, ended_at, created_at, updated_at) VALUES ($1, $2, $3, $1, $1, $4, \
                 'READY', $5, $5, $5, $5)",
            )
            .bind(&vod.id)
            .bind(&stream.id)
            .bind(self.channel_of(v.target))
            .bind(v.duration_s)
            .bind(DAY0)
            .execute(cat.pool())
            .await
            .expect("vod");
        }
        for c in &self.clips {
            let vod = c.vod.map(|v| self.targets[v].id.clone());
            sqlx::query(
                "INSERT INTO clips (id, vod, stream, channel, creator, title, start_s, end_s, \
                 source_url, status, published, created_at, updated_at) VALUES ($1, $2, $3, $4, \
                 'root', $1, 10.0, $5, '', 'READY', $6, $7, $7)",
            )
            .bind(&self.targets[c.target].id)
            .bind(vod)
            .bind(&self.targets[c.stream].id)
            .bind(self.channel_of(c.target))
            .bind(10.0 + c.len_s)
            .bind(i64::from(c.published))
            .bind(c.created_at)
            .execute(cat.pool())
            .await
            .expect("clip");
        }
        for s in &self.streams {
            let Records::Lifecycle(intervals) = &s.records else {
                continue;
            };
            let t = &self.targets[s.target];
            for &(live, end) in intervals {
                let mut changes = vec![(StreamStatus::Live, live)];
                changes.extend(end.map(|e| (StreamStatus::Ended, e)));
                for (status, ts) in changes {
                    let change = LifecycleChange {
                        stream: id(&t.id),
                        channel: id(CHANNELS[t.channel].0),
                        status,
                        ts,
                        source: LifecycleSource::Webhook,
                    };
                    cat.apply_lifecycle(&change).await.expect("lifecycle");
                }
            }
        }
        cat.close().await;
    }
}
