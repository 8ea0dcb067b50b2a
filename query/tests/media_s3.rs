//! Media jobs against a real S3 protocol server (moto_server, started here on a free
//! port in a temp dir, with IAM authentication on so that signatures are checked):
//! a clip cut by real ffmpeg ends READY with its MP4 (uploaded in parts) and JPEG in the
//! bucket under public links; a wrong secret makes the job FAILED, after its bounded
//! retries, with the store's error as the reason; retention and clip deletion remove the
//! objects from the bucket.

mod catalog_harness;

use catalog_harness::{ADMIN, Backend, World, config, make_hls, probe_duration, probe_size};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use pulse_query::catalog::clips::NewClip;
use pulse_query::catalog::jobs::JobKind;
use pulse_query::catalog::now_ms;
use pulse_query::catalog::vods::RecordingReady;
use pulse_query::media::{MediaStore, S3Config, retention, spawn_pool};
use pulse_schemas::Id;
use pulse_schemas::access::{
    AccessControl, LifecycleChange, LifecycleSource, Principal, Role, StreamStatus,
};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const BUCKET: &str = "pulse-media";
const PUBLIC: &str = "https://media.example.test/pulse";
/// moto's smallest accepted part, lowered so that a small test clip takes several.
const MIN_PART: usize = 16 * 1024;

/// Creates an IAM user allowed `s3:*` with an access key, the bucket, then turns
/// authentication on (every later request must be signed with that key). Prints
/// "<key id> <secret>".
const BOOTSTRAP: &str = r#"
import boto3, json, sys, urllib.request
ep, bucket = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="pulse")
iam.put_user_policy(UserName="pulse", PolicyName="media", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="pulse")["AccessKey"]
boto3.client("s3", **kw).create_bucket(Bucket=bucket)
urllib.request.urlopen(urllib.request.Request(ep + "/moto-api/reset-auth", data=b"0",
    headers={"Content-Type": "text/plain"}, method="POST")).read()
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;

/// A moto_server process; killed on drop.
struct S3Server {
    child: Child,
    endpoint: String,
    key_id: String,
    secret: String,
    _dir: tempfile::TempDir,
}

impl S3Server {
    fn start() -> S3Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = catalog_harness::ports::free_port();
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("log");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .env("S3_UPLOAD_PART_MIN_SIZE", MIN_PART.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("moto_server (scripts/need-s3.sh installs it)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut server = S3Server {
            child,
            endpoint,
            key_id: String::new(),
            secret: String::new(),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                server.child.try_wait().expect("wait").is_none(),
                "moto_server exited"
            );
            assert!(Instant::now() < deadline, "moto_server did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = Command::new("python3")
            .args(["-c", BOOTSTRAP, &server.endpoint, BUCKET])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "bootstrap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace();
        server.key_id = it.next().expect("key id").to_owned();
        server.secret = it.next().expect("secret").to_owned();
        server
    }

    fn config(&self, secret: &str) -> S3Config {
        S3Config {
            bucket: BUCKET.into(),
            endpoint: self.endpoint.clone(),
            access_key_id: self.key_id.clone(),
            secret_access_key: secret.into(),
            allow_http: true,
            public_url: format!("{PUBLIC}/"),
            part_bytes: 4 * MIN_PART,
            max_retries: 1,
            retry_timeout_s: 5,
            ..S3Config::default()
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keys in the bucket, listed over S3.
async fn keys(s3: &Arc<dyn ObjectStore>) -> BTreeSet<String> {
    use futures_util::TryStreamExt;
    s3.list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list")
}

fn id(s: &str) -> Id {
    Id::parse(s).expect("id")
}

async fn wait_status(
    w: &World,
    k: &str,
    want: &str,
    secs: u64,
) -> pulse_query::catalog::clips::Clip {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let c = w.catalog.clip_row(k).await.expect("clip");
        if c.status == want {
            return c;
        }
        assert!(
            want == "FAILED" || c.status != "FAILED",
            "clip FAILED: {}",
            c.failure
        );
        assert!(Instant::now() < deadline, "clip {k} not {want}: {c:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_jobs_through_s3() {
    let server = S3Server::start();
    let good = server.config(&server.secret);
    let s3 = good.build().expect("client");
    let media =
        MediaStore::from_config(std::path::Path::new("unused"), "/media", &good).expect("store");
    let w = World::with_media(&Backend::Sqlite, config(), Some(media.clone())).await;
    let hls = make_hls(w.dir.path(), 12);

    // A READY 12 s VOD on c1.
    w.catalog
        .put_channel(&id("c1"), "c1", &id("alice"))
        .await
        .expect("channel");
    let now = now_ms();
    for (status, ts) in [
        (StreamStatus::Live, now - 80_000),
        (StreamStatus::Ended, now),
    ] {
        w.catalog
            .record_lifecycle(LifecycleChange {
                stream: id("s1"),
                channel: id("c1"),
                status,
                ts,
                source: LifecycleSource::Encoder,
            })
            .await
            .expect("lifecycle");
    }
    let rec = RecordingReady {
        hls_url: hls.display().to_string(),
        mp4_url: String::new(),
        duration_s: 12.0,
        size_bytes: 0,
        resolution: "320x240".into(),
    };
    let vod = w
        .catalog
        .recording_ready("s1", &rec)
        .await
        .expect("ready")
        .expect("vod");
    // What the recording webhook does next: the VOD thumbnail at 25 %.
    w.catalog
        .enqueue_job(JobKind::VodThumbnail, &vod.id, 3.0)
        .await
        .expect("thumbnail job");
    let alice = Principal {
        user: id("alice"),
        role: Role::Creator,
    };
    let clip_of = |start: f64, end: f64| NewClip {
        stream: None,
        vod: Some(vod.id.clone()),
        start: Some(start),
        end: Some(end),
        title: String::new(),
        description: String::new(),
    };

    // A clip off keyframes: READY, MP4 and JPEG in the bucket, links under the public base.
    let stop = CancellationToken::new();
    let pool = spawn_pool(w.catalog.clone(), media.clone(), stop.clone());
    let k = w
        .catalog
        .create_clip(&alice, &clip_of(2.5, 9.0))
        .await
        .expect("clip")
        .id;
    let ready = wait_status(&w, &k, "READY", 60).await;
    assert_eq!(ready.clip_url, format!("{PUBLIC}/clips/{k}.mp4"));
    assert_eq!(ready.thumbnail, format!("{PUBLIC}/clips/{k}.jpg"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let vthumb = loop {
        let v = w
            .catalog
            .vod_of_stream("s1")
            .await
            .expect("read")
            .expect("vod");
        if !v.thumbnail.is_empty() {
            break v.thumbnail;
        }
        if Instant::now() > deadline {
            let jobs = w.catalog.jobs_of(&vod.id).await.expect("jobs");
            let state = match jobs.first() {
                Some(j) => w.catalog.job_state(&j.0).await.expect("job"),
                None => None,
            };
            panic!("no VOD thumbnail: jobs {jobs:?}, first {state:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(vthumb, format!("{PUBLIC}/vods/{}.jpg", vod.id));
    pool.shutdown().await;
    let vthumb_key = format!("vods/{}.jpg", vod.id);
    let (mp4_key, jpg_key) = (format!("clips/{k}.mp4"), format!("clips/{k}.jpg"));
    let listed = keys(&s3).await;
    for key in [&mp4_key, &jpg_key, &vthumb_key] {
        assert!(listed.contains(key), "{key} not in the bucket: {listed:?}");
    }
    // Read back over S3 (not through our store): the MP4 lasts what was asked and was
    // uploaded in parts (a multipart ETag ends in -<parts>); the JPEGs decode at size.
    let got = s3
        .get(&ObjectPath::from(mp4_key.as_str()))
        .await
        .expect("get mp4");
    let etag = got.meta.e_tag.clone().unwrap_or_default();
    let bytes = got.bytes().await.expect("mp4 bytes");
    assert!(bytes.len() > 4 * MIN_PART, "clip of {} bytes", bytes.len());
    assert!(etag.contains('-'), "not a multipart upload: ETag {etag}");
    let mp4 = w.dir.path().join("clip.mp4");
    std::fs::write(&mp4, &bytes).expect("write");
    let d = probe_duration(&mp4);
    assert!((d - 6.5).abs() <= 0.1, "clip lasts {d} s, asked 6.5 s");
    for (key, name) in [(&jpg_key, "clip.jpg"), (&vthumb_key, "vod.jpg")] {
        let b = s3
            .get(&ObjectPath::from(key.as_str()))
            .await
            .expect("get jpg")
            .bytes()
            .await
            .expect("jpg bytes");
        let f = w.dir.path().join(name);
        std::fs::write(&f, &b).expect("write");
        assert_eq!(probe_size(&f), (320, 240), "{key}");
    }

    // A wrong secret: every attempt is refused by the server; the clip ends FAILED with
    // the store's error after media_max_attempts, and nothing of it is in the bucket.
    let bad = MediaStore::from_config(
        std::path::Path::new("unused"),
        "/media",
        &server.config("not-the-secret"),
    )
    .expect("store");
    let bad_pool = spawn_pool(w.catalog.clone(), bad, CancellationToken::new());
    let k2 = w
        .catalog
        .create_clip(&alice, &clip_of(4.0, 10.0))
        .await
        .expect("clip")
        .id;
    let failed = wait_status(&w, &k2, "FAILED", 90).await;
    assert!(
        failed.failure.contains("object store") && failed.failure.contains("SignatureDoesNotMatch"),
        "reason: {}",
        failed.failure
    );
    let jobs = w.catalog.jobs_of(&k2).await.expect("jobs");
    let (status, attempts, _) = w
        .catalog
        .job_state(&jobs[0].0)
        .await
        .expect("job")
        .expect("a job");
    assert_eq!(
        (status.as_str(), attempts),
        ("FAILED", i64::from(config().media_max_attempts))
    );
    bad_pool.shutdown().await;
    let listed = keys(&s3).await;
    assert!(!listed.iter().any(|key| key.contains(&k2)), "{listed:?}");

    // Retention removes the (test) VOD and its thumbnail object; deleting the clip
    // removes its MP4 and JPEG objects.
    sqlx::query("UPDATE vods SET created_at = $1 WHERE id = $2")
        .bind(now - 400 * 86_400_000)
        .bind(vod.id.clone())
        .execute(w.catalog.pool())
        .await
        .expect("age the VOD");
    let removed = retention::run_once(&w.catalog, &media, now_ms())
        .await
        .expect("retention");
    assert_eq!(removed, 1);
    assert!(!keys(&s3).await.contains(&vthumb_key));
    let (st, body) = w
        .call(
            reqwest::Method::DELETE,
            &format!("/api/clips/{k}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let listed = keys(&s3).await;
    assert!(
        !listed.contains(&mp4_key) && !listed.contains(&jpg_key),
        "{listed:?}"
    );
    w.shutdown().await;
}
