//! Smart cut of a local HLS VOD (MPEG-TS segments): the whole segments inside the clip
//! are stream-copied (each begins with a keyframe), only the partial GOPs at the two
//! edges are re-encoded (x264), and the audio of the whole range is re-encoded in one
//! piece (cheap, and free of gaps or overlaps at the joins). The three video parts are
//! joined by the concat demuxer and muxed with the audio into the MP4.
//!
//! Times are ffmpeg's input times (what `-ss` means, and what the re-encode path cuts
//! at): they count from the earliest stream's start, usually the audio's, so a segment's
//! keyframe sits at its playlist start plus the video's lead over that start (ffprobe).
//! A plan exists only when at least one whole segment lies inside the range and the
//! playlist is a plain one (no byte ranges, fMP4 init section or encryption); otherwise
//! the caller re-encodes the whole range, as before.

use super::ffmpeg::run;
use crate::QueryError;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One media segment of a playlist (pure data).
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Start (s) from the playlist's start, the sum of the EXTINF durations before it.
    pub start: f64,
    pub duration: f64,
    pub uri: String,
}

/// What to cut how: re-encode `head` and `tail` (input times), copy `middle` segments.
#[derive(Clone, Debug, PartialEq)]
pub struct CutPlan {
    pub head: Option<(f64, f64)>,
    pub middle: Range<usize>,
    pub tail: Option<(f64, f64)>,
}

/// A plan with the local files of its copied segments.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub plan: CutPlan,
    pub files: Vec<PathBuf>,
}

/// A cut point closer than this to a keyframe counts as on it: an edge this short would
/// hold at most one frame (30 fps), or none at all (the range [0, lead) of a VOD's
/// start), so the copied segment's keyframe stands in for it. The audio is cut at the
/// exact points whatever the video does, so the clip's duration is exact.
const ON_KEY_S: f64 = 0.034;

/// The segments of a media playlist, or none when it uses features the smart cut does
/// not handle (byte ranges, an init section, encryption) (pure).
pub fn segments(playlist: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut t = 0.0;
    let mut pending: Option<f64> = None;
    for line in playlist.lines().map(str::trim) {
        if line.starts_with("#EXT-X-BYTERANGE")
            || line.starts_with("#EXT-X-MAP")
            || (line.starts_with("#EXT-X-KEY") && !line.contains("METHOD=NONE"))
        {
            return Vec::new();
        }
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let d = rest.split(',').next().and_then(|d| d.trim().parse().ok());
            match d {
                Some(d) if d > 0.0 => pending = Some(d),
                _ => return Vec::new(),
            }
        } else if !line.is_empty()
            && !line.starts_with('#')
            && let Some(d) = pending.take()
        {
            out.push(Segment {
                start: t,
                duration: d,
                uri: line.to_owned(),
            });
            t += d;
        }
    }
    out
}

/// Plans the cut of [start, end) (input times) over `segs`, whose keyframes are at
/// `segment.start + lead`; `None` when no whole segment lies inside (pure).
pub fn plan(segs: &[Segment], lead: f64, start: f64, end: f64) -> Option<CutPlan> {
    if !start.is_finite() || !end.is_finite() || start >= end {
        return None;
    }
    let key = |i: usize| segs[i].start + lead;
    let first = (0..segs.len()).find(|&i| key(i) >= start - ON_KEY_S)?;
    let mut last = first;
    while last < segs.len() && key(last) + segs[last].duration <= end + ON_KEY_S {
        last += 1;
    }
    if last == first {
        return None;
    }
    let k1 = key(first);
    let k2 = key(last - 1) + segs[last - 1].duration;
    Some(CutPlan {
        head: (k1 - start > ON_KEY_S).then_some((start, k1)),
        middle: first..last,
        tail: (end - k2 > ON_KEY_S).then_some((k2, end)),
    })
}

/// The video stream's start minus the input's start, from ffprobe's compact output
/// (`stream|codec_type=video|start_time=…` and `format|start_time=…` lines) (pure).
pub fn lead_of(probe: &str) -> Option<f64> {
    let field = |line: &str, key: &str| -> Option<f64> {
        line.split('|')
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse().ok())
    };
    let mut video = None;
    let mut format = None;
    for line in probe.lines() {
        if line.starts_with("stream|") && line.contains("codec_type=video") && video.is_none() {
            video = field(line, "start_time=");
        } else if line.starts_with("format|") {
            format = field(line, "start_time=");
        }
    }
    let lead = video? - format?;
    (lead.is_finite() && lead >= 0.0).then_some(lead)
}

/// A plan for cutting [start, end) of `src`, when it is a local playlist of TS segments
/// that all exist; `None` otherwise (the caller re-encodes).
pub async fn prepare(
    ffprobe: &str,
    src: &str,
    start: f64,
    end: f64,
) -> Result<Option<Prepared>, QueryError> {
    if !src.ends_with(".m3u8") || src.contains("://") {
        return Ok(None);
    }
    let text = tokio::fs::read_to_string(src)
        .await
        .map_err(|e| QueryError::Media(format!("reading {src}: {e}")))?;
    let segs = segments(&text);
    if segs.is_empty() {
        return Ok(None);
    }
    let args: Vec<String> = [
        "-v",
        "error",
        "-show_entries",
        "stream=codec_type,start_time:format=start_time",
        "-of",
        "compact",
        src,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let probe = run(ffprobe, &args).await?;
    let Some(lead) = lead_of(&String::from_utf8_lossy(&probe)) else {
        return Ok(None);
    };
    let Some(plan) = plan(&segs, lead, start, end) else {
        return Ok(None);
    };
    let dir = Path::new(src).parent().unwrap_or(Path::new("."));
    let mut files = Vec::with_capacity(plan.middle.len());
    for seg in &segs[plan.middle.clone()] {
        let ok_name =
            seg.uri.ends_with(".ts") && !seg.uri.contains("://") && !seg.uri.contains('|');
        let file = dir.join(&seg.uri);
        if !ok_name || !tokio::fs::try_exists(&file).await.unwrap_or(false) {
            return Ok(None);
        }
        files.push(file);
    }
    Ok(Some(Prepared { plan, files }))
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Re-encodes the video of [from, to) of `src` into the TS file `out`.
async fn edge(ffmpeg: &str, src: &str, from: f64, to: f64, out: &Path) -> Result<(), QueryError> {
    let mut args = strings(&["-y", "-v", "error", "-ss"]);
    args.push(format!("{from:.6}"));
    args.extend(strings(&["-i", src, "-t"]));
    args.push(format!("{:.6}", to - from));
    args.extend(strings(&[
        "-map", "0:v:0", "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-pix_fmt",
        "yuv420p", "-f", "mpegts",
    ]));
    args.push(out.display().to_string());
    run(ffmpeg, &args).await.map(|_| ())
}

/// Copies the video of whole TS segments into the TS file `out`.
async fn middle(ffmpeg: &str, files: &[PathBuf], out: &Path) -> Result<(), QueryError> {
    let joined: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut args = strings(&["-y", "-v", "error", "-i"]);
    args.push(format!("concat:{}", joined.join("|")));
    args.extend(strings(&["-map", "0:v:0", "-c", "copy", "-f", "mpegts"]));
    args.push(out.display().to_string());
    run(ffmpeg, &args).await.map(|_| ())
}

/// Cuts [start, end) of `src` along `prep` into the MP4 `out`, with temp files in `dir`.
pub async fn cut(
    ffmpeg: &str,
    src: &str,
    prep: &Prepared,
    start: f64,
    end: f64,
    dir: &Path,
    out: &Path,
) -> Result<(), QueryError> {
    let (head, mid, tail) = (dir.join("head.ts"), dir.join("mid.ts"), dir.join("tail.ts"));
    let head_job = async {
        match prep.plan.head {
            Some((a, b)) => edge(ffmpeg, src, a, b, &head).await,
            None => Ok(()),
        }
    };
    let tail_job = async {
        match prep.plan.tail {
            Some((a, b)) => edge(ffmpeg, src, a, b, &tail).await,
            None => Ok(()),
        }
    };
    tokio::try_join!(head_job, middle(ffmpeg, &prep.files, &mid), tail_job)?;
    let mut list = String::new();
    let parts = [
        (prep.plan.head.is_some(), &head),
        (true, &mid),
        (prep.plan.tail.is_some(), &tail),
    ];
    for (_, part) in parts.iter().filter(|(used, _)| *used) {
        let p = part.display().to_string().replace('\'', r"'\''");
        list.push_str(&format!("file '{p}'\n"));
    }
    let list_file = dir.join("parts.txt");
    tokio::fs::write(&list_file, list)
        .await
        .map_err(|e| QueryError::Media(format!("writing {}: {e}", list_file.display())))?;
    let mut args = strings(&["-y", "-v", "error", "-f", "concat", "-safe", "0", "-i"]);
    args.push(list_file.display().to_string());
    args.push("-ss".into());
    args.push(format!("{start:.6}"));
    args.push("-t".into());
    args.push(format!("{:.6}", end - start));
    args.extend(strings(&[
        "-i",
        src,
        "-map",
        "0:v:0",
        "-map",
        "1:a:0?",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ]));
    args.push(out.display().to_string());
    run(ffmpeg, &args).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn two_s(n: usize) -> Vec<Segment> {
        (0..n)
            .map(|i| Segment {
                start: 2.0 * i as f64,
                duration: 2.0,
                uri: format!("s{i}.ts"),
            })
            .collect()
    }

    #[test]
    fn parses_segments_and_refuses_what_it_cannot_copy() {
        let p = "#EXTM3U\n#EXTINF:2.0,\na.ts\n#EXTINF:1.5,\nb.ts\n#EXT-X-ENDLIST\n";
        let s = segments(p);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[1].start, s[1].duration, s[1].uri.as_str()),
            (2.0, 1.5, "b.ts")
        );
        assert!(segments("#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\na.m4s\n").is_empty());
        assert!(segments("#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXTINF:2,\na.ts\n").is_empty());
        assert_eq!(
            segments("#EXT-X-KEY:METHOD=NONE\n#EXTINF:2,\na.ts\n").len(),
            1
        );
    }

    #[test]
    fn plans_edges_around_whole_segments() {
        let s = two_s(30);
        let p = plan(&s, 0.023, 20.5, 50.5).expect("plan");
        assert_eq!(p.middle, 11..25);
        assert_eq!(p.head, Some((20.5, 22.023)));
        let (a, b) = p.tail.expect("tail");
        assert!((a - 50.023).abs() < 1e-9 && b == 50.5);
        // On keyframes: nothing to re-encode.
        let p = plan(&s, 0.0, 4.0, 10.0).expect("plan");
        assert_eq!((p.head, p.middle, p.tail), (None, 2..5, None));
        // No whole segment inside: no plan.
        assert_eq!(plan(&s, 0.0, 4.5, 7.5), None);
        assert_eq!(plan(&s, 0.0, 9.0, 3.0), None);
    }

    #[test]
    fn lead_from_probe_output() {
        let out = "stream|codec_type=video|start_time=1.466667\nstream|codec_type=audio|start_time=1.443444\nformat|start_time=1.443444\n";
        let l = lead_of(out).expect("lead");
        assert!((l - 0.023223).abs() < 1e-9);
        assert_eq!(lead_of("format|start_time=1.0\n"), None);
    }

    proptest! {
        /// The parts cover [start, end) exactly, in order, and copied segments lie inside.
        #[test]
        fn parts_tile_the_range(a in 0.0f64..50.0, len in 0.1f64..30.0, lead in 0.0f64..0.1) {
            let s = two_s(40);
            let (start, end) = (a, a + len);
            if let Some(p) = plan(&s, lead, start, end) {
                let k1 = s[p.middle.start].start + lead;
                let k2 = s[p.middle.end - 1].start + lead + 2.0;
                prop_assert!(k1 >= start - ON_KEY_S && k2 <= end + ON_KEY_S);
                let from = p.head.map_or(k1, |(h0, h1)| { assert_eq!(h1, k1); h0 });
                let to = p.tail.map_or(k2, |(t0, t1)| { assert!((t0 - k2).abs() < 1e-9); t1 });
                prop_assert!((from - start).abs() <= ON_KEY_S && (to - end).abs() <= ON_KEY_S);
            } else {
                // No plan only when no whole segment fits.
                prop_assert!(s.iter().all(|g| g.start + lead < start - ON_KEY_S
                    || g.start + lead + g.duration > end + ON_KEY_S));
            }
        }
    }
}
