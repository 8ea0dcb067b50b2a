//! ffmpeg and ffprobe: keyframe times, cuts (stream copy when both ends fall on
//! keyframes, re-encode otherwise) and JPEG thumbnails. Every child is killed when its
//! future is dropped (a stopped worker leaves no ffmpeg behind).

use crate::QueryError;
use std::path::Path;
use tokio::process::Command;

/// How a cut was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    StreamCopy,
    Reencode,
}

pub(crate) async fn run(program: &str, args: &[String]) -> Result<Vec<u8>, QueryError> {
    let out = Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| QueryError::Media(format!("running {program}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        return Err(QueryError::Media(format!(
            "{program} failed ({}): {tail}",
            out.status
        )));
    }
    Ok(out.stdout)
}

/// Keyframe times (s, from the start of `src`) known without decoding: the segment
/// starts of a local HLS playlist (HLS segments begin with a keyframe). For any other
/// source the list is empty, so the cut is re-encoded (always exact, only slower).
pub async fn keyframes(src: &str) -> Result<Vec<f64>, QueryError> {
    if !src.ends_with(".m3u8") || src.contains("://") {
        return Ok(Vec::new());
    }
    let text = tokio::fs::read_to_string(src)
        .await
        .map_err(|e| QueryError::Media(format!("reading {src}: {e}")))?;
    Ok(segment_starts(&text))
}

/// The start time of every segment of a media playlist (pure).
pub fn segment_starts(playlist: &str) -> Vec<f64> {
    let mut starts = Vec::new();
    let mut t = 0.0;
    for line in playlist.lines() {
        if let Some(rest) = line.trim().strip_prefix("#EXTINF:") {
            let d: f64 = rest
                .split(',')
                .next()
                .and_then(|d| d.trim().parse().ok())
                .unwrap_or(0.0);
            starts.push(t);
            t += d;
        }
    }
    starts.push(t);
    starts
}

/// Whether both ends of [start, end) fall on keyframes (within 1 ms), or `end` is the
/// source's end (pure).
pub fn cut_mode(keyframes: &[f64], start: f64, end: f64) -> CutMode {
    let on_key = |t: f64| keyframes.iter().any(|k| (k - t).abs() < 0.001);
    if on_key(start) && on_key(end) {
        CutMode::StreamCopy
    } else {
        CutMode::Reencode
    }
}

/// Cuts [start, end) of `src` into the MP4 `out`.
pub async fn cut(
    ffmpeg: &str,
    src: &str,
    start: f64,
    end: f64,
    mode: CutMode,
    out: &Path,
) -> Result<(), QueryError> {
    let mut args: Vec<String> = vec![
        "-y".into(),
        "-v".into(),
        "error".into(),
        "-ss".into(),
        format!("{start:.3}"),
        "-i".into(),
        src.into(),
        "-t".into(),
        format!("{:.3}", end - start),
    ];
    match mode {
        CutMode::StreamCopy => args.extend(["-c".into(), "copy".into()]),
        CutMode::Reencode => args.extend(
            [
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "128k",
            ]
            .iter()
            .map(|s| s.to_string()),
        ),
    }
    args.extend([
        "-movflags".into(),
        "+faststart".into(),
        "-f".into(),
        "mp4".into(),
    ]);
    args.push(out.display().to_string());
    run(ffmpeg, &args).await.map(|_| ())
}

/// Writes the frame at `at` seconds of `src` as the JPEG `out`, at the source's size.
pub async fn thumbnail(ffmpeg: &str, src: &str, at: f64, out: &Path) -> Result<(), QueryError> {
    let args: Vec<String> = vec![
        "-y".into(),
        "-v".into(),
        "error".into(),
        "-ss".into(),
        format!("{at:.3}"),
        "-i".into(),
        src.into(),
        "-frames:v".into(),
        "1".into(),
        "-q:v".into(),
        "3".into(),
        "-f".into(),
        "image2".into(),
        out.display().to_string(),
    ];
    run(ffmpeg, &args).await.map(|_| ())
}

/// Duration (s) of a media file or playlist.
pub async fn duration(ffprobe: &str, src: &str) -> Result<f64, QueryError> {
    let args: Vec<String> = [
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
        src,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run(ffprobe, &args).await?;
    let text = String::from_utf8_lossy(&out);
    text.trim().parse::<f64>().map_err(|_| {
        QueryError::Media(format!(
            "ffprobe: expected a duration, got {:?}",
            text.trim()
        ))
    })
}

/// Width and height of the first video stream of `src`.
pub async fn frame_size(ffprobe: &str, src: &str) -> Result<(u32, u32), QueryError> {
    let args: Vec<String> = [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height",
        "-of",
        "csv=p=0:s=x",
        src,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run(ffprobe, &args).await?;
    let text = String::from_utf8_lossy(&out);
    let mut parts = text.trim().split('x').map(|p| p.trim().parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(w)), Some(Ok(h))) => Ok((w, h)),
        _ => Err(QueryError::Media(format!(
            "ffprobe: expected WxH, got {:?}",
            text.trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_segment_starts() {
        let p = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000000,\na.ts\n#EXTINF:2.000000,\nb.ts\n#EXTINF:1.500000,\nc.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(segment_starts(p), vec![0.0, 2.0, 4.0, 5.5]);
    }

    #[test]
    fn copy_only_on_keyframes() {
        let keys = [0.0, 2.0, 4.0, 6.0];
        assert_eq!(cut_mode(&keys, 2.0, 6.0), CutMode::StreamCopy);
        assert_eq!(cut_mode(&keys, 2.5, 6.0), CutMode::Reencode);
        assert_eq!(cut_mode(&keys, 2.0, 5.0), CutMode::Reencode);
        assert_eq!(cut_mode(&[], 2.0, 5.0), CutMode::Reencode);
    }
}
