//! The query routes over a hand-made `TablesView` (see `fixture`). Every expectation
//! below is worked out by hand from the rows (see the comments there and here), not by
//! calling this crate's code.

mod fixture;

use fixture::{Server, T0, assert_error};
use serde_json::{Value, json};

#[tokio::test]
async fn stream_summary_has_the_exact_shape_and_numbers() {
    let s = Server::start().await;
    let (status, body) = s.get("/api/analytics/streams/s1").await;
    assert_eq!(status, 200, "{body}");
    let watch_ms = 6_000.0 + 10_000.0 + 3_000.0 + 5_000.0 + 15_000.0 + 10_000.0;
    let expected = json!({
        "stream": "s1",
        "channel": "c1",
        "status": "UNKNOWN",
        "metrics": {
            "duration_s": 75,                       // T0 .. end of tick T0+70s
            "peak_concurrent": 3,
            "avg_concurrent": 11.0 / 15.0,          // (3+2+1+3+0+2) over 15 live ticks
            "views": 4,
            "unique_viewers": 5,                    // u1..u5 (u9 is a stale provisional row)
            "watch_minutes": watch_ms / 60_000.0,
            "chat_messages": 5,
            "new_followers": 2,                     // u1, u5
            "conversion_rate": 0.4,
            "rebuffer_ratio": 1_000.0 / watch_ms,
            "rebuffer_count": 1,
            "rebuffer_frequency": 1.0 / (watch_ms / 60_000.0),
            "startup_p50_ms": 800,                  // {500, 800, 1200, 2000}
            "startup_p95_ms": 2_000,
            "startup_p99_ms": 2_000,
            "playback_failure_rate": 0.25
        }
    });
    assert_eq!(body, expected);
    // Key order is the documented one.
    let text = s
        .client
        .get(format!("{}/api/analytics/streams/s1", s.base))
        .send()
        .await
        .expect("req")
        .text()
        .await
        .expect("text");
    assert!(text.starts_with(r#"{"stream":"s1","channel":"c1","status":"UNKNOWN","metrics":{"duration_s":75,"peak_concurrent":3,"#), "{text}");

    let (status, body) = s.get("/api/analytics/streams/nope").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = s.get("/api/analytics/streams/bad%20id").await;
    assert_error(status, &body, 400, "invalid_parameter");
}

#[tokio::test]
async fn viewers_series_buckets_final_flags_and_steps() {
    let s = Server::start().await;
    let body = s
        .series(&format!(
            "metric=viewers&stream=s1&from={T0}&to={}&step=60000",
            T0 + 120_000
        ))
        .await;
    assert_eq!(
        body,
        json!({"metric": "viewers", "step_ms": 60000, "points": [
            {"t": T0, "value": 0.5, "peak": 3, "final": true},                      // 6 / 12 ticks
            {"t": T0 + 60_000, "value": 5.0 / 3.0, "peak": 3, "final": false},       // 5 / 3 live ticks
        ]})
    );
    // RFC 3339 times and a step by name give the same answer.
    let same = s.series("metric=viewers&stream=s1&from=2025-11-24T16:00:00Z&to=2025-11-24T17:02:00%2B01:00&step=1m").await;
    assert_eq!(same, body);

    let body = s
        .series(&format!(
            "metric=viewers&stream=s1&from={}&to={}&step=5000",
            T0 + 60_000,
            T0 + 80_000
        ))
        .await;
    assert_eq!(
        body["points"],
        json!([
            {"t": T0 + 60_000, "value": 3.0, "peak": 3, "final": true},
            {"t": T0 + 65_000, "value": 0.0, "peak": 0, "final": true},   // stale provisional 100 ignored
            {"t": T0 + 70_000, "value": 2.0, "peak": 2, "final": false},
            {"t": T0 + 75_000, "value": 0.0, "peak": 0, "final": false},  // after the live range
        ])
    );

    // The chart route is the same series; a channel sums its streams per tick (VODs excluded).
    let chart = s
        .get(&format!(
            "/api/analytics/charts/viewers?stream=s1&from={T0}&to={}&step=60000",
            T0 + 120_000
        ))
        .await;
    assert_eq!(chart.0, 200);
    assert_eq!(chart.1["points"][1]["value"], json!(5.0 / 3.0));
    let (status, ch) = s
        .get(&format!(
            "/api/analytics/charts/viewers?channel=c1&from={T0}&to={}&step=60000",
            T0 + 120_000
        ))
        .await;
    assert_eq!(status, 200, "{ch}");
    assert_eq!(
        ch["points"][0],
        json!({"t": T0, "value": 10.0 / 12.0, "peak": 6, "final": true})
    );
    assert_eq!(
        ch["points"][1],
        json!({"t": T0 + 60_000, "value": 5.0 / 3.0, "peak": 3, "final": false})
    );
}

#[tokio::test]
async fn other_series_metrics() {
    let s = Server::start().await;
    let range = format!("stream=s1&from={T0}&to={}&step=60000", T0 + 120_000);
    let values = |body: Value| -> Vec<Value> {
        let points = body["points"].as_array().expect("points").clone();
        for p in &points {
            assert!(p.get("peak").is_none(), "{p}");
        }
        points.iter().map(|p| p["value"].clone()).collect()
    };
    let watch0 = (6_000.0 + 10_000.0 + 3_000.0 + 5_000.0) / 60_000.0;
    let watch1 = 25_000.0 / 60_000.0;
    let cases: Vec<(&str, Vec<Value>)> = vec![
        ("views", vec![json!(3), json!(1)]),
        ("unique_viewers", vec![json!(3), json!(3)]),
        ("watch_minutes", vec![json!(watch0), json!(watch1)]),
        ("chat_messages", vec![json!(3), json!(2)]),
        ("new_followers", vec![json!(0), json!(2)]),
        ("conversion_rate", vec![json!(0.0), json!(2.0 / 3.0)]),
        (
            "rebuffer_ratio",
            vec![json!(1_000.0 / 24_000.0), json!(0.0)],
        ),
        ("rebuffer_count", vec![json!(1), json!(0)]),
        ("rebuffer_frequency", vec![json!(1.0 / watch0), json!(0.0)]),
        ("startup_p50_ms", vec![json!(1_200), json!(500)]),
        ("startup_p95_ms", vec![json!(2_000), json!(500)]),
        ("startup_p99_ms", vec![json!(2_000), json!(500)]),
        ("playback_failure_rate", vec![json!(1.0 / 3.0), json!(0.0)]),
    ];
    for (metric, want) in cases {
        let body = s.series(&format!("metric={metric}&{range}")).await;
        assert_eq!(body["metric"], metric);
        assert_eq!(body["step_ms"], 60_000);
        assert_eq!(body["points"][0]["final"], true);
        assert_eq!(body["points"][1]["final"], false);
        assert_eq!(values(body), want, "{metric}");
    }
    // Distinct viewers at 5 s come from the minute rows' slice masks: the fixture's
    // rows mark the first slice of their minute only, and n2's part was written
    // without masks (u3 counts per minute, above, but in no 5-second slice).
    let fine = s
        .series(&format!(
            "metric=unique_viewers&stream=s1&from={}&to={}&step=5000",
            T0 - 5_000,
            T0 + 10_000
        ))
        .await;
    assert_eq!(values(fine), vec![json!(0), json!(2), json!(0)]);
    // Channel views cover its streams and VODs: s1 3 + s2 1 + v1 2.
    let ch = s
        .series(&format!(
            "metric=views&channel=c1&from={T0}&to={}&step=60000",
            T0 + 60_000
        ))
        .await;
    assert_eq!(ch["points"], json!([{"t": T0, "value": 6, "final": true}]));
    let vod = s
        .series(&format!(
            "metric=views&vod=v1&from={T0}&to={}&step=1h",
            T0 + 60_000
        ))
        .await;
    assert_eq!(vod["points"][0]["value"], 2);
}

#[tokio::test]
async fn bad_parameters_get_the_error_shape() {
    let s = Server::start().await;
    let r = format!("from={T0}&to={}", T0 + 60_000);
    let cases = [
        (
            format!("metric=viewers&stream=s1&{r}&step=10000"),
            "invalid_parameter",
            "60000 (1m)",
        ),
        (
            format!("metric=nope&stream=s1&{r}"),
            "invalid_parameter",
            "viewers",
        ),
        (format!("stream=s1&{r}"), "invalid_parameter", "metric"),
        (
            format!("metric=views&{r}"),
            "invalid_parameter",
            "exactly one",
        ),
        (
            format!("metric=views&stream=s1&channel=c1&{r}"),
            "invalid_parameter",
            "exactly one",
        ),
        (
            format!("metric=views&stream=s1&from={}&to={T0}", T0 + 5),
            "invalid_parameter",
            "after",
        ),
        (
            format!("metric=views&stream=s1&from=yesterday&to={T0}"),
            "invalid_parameter",
            "RFC 3339",
        ),
        (
            format!("metric=views&stream=s1&to={T0}"),
            "invalid_parameter",
            "from",
        ),
        (
            format!(
                "metric=views&stream=s1&from={T0}&to={}&step=5s",
                T0 + 86_400_000
            ),
            "too_large",
            "100",
        ),
    ];
    for (q, code, hint) in cases {
        let (status, body) = s.get(&format!("/api/analytics/series?{q}")).await;
        assert_error(status, &body, 400, code);
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(hint), "{q}: {msg}");
    }
    let (status, body) = s
        .get(&format!("/api/analytics/charts/viewers?vod=v1&{r}"))
        .await;
    assert_error(status, &body, 400, "invalid_parameter");
}

#[tokio::test]
async fn csv_export_streams_header_and_rows() {
    let s = Server::start().await;
    let (status, ctype, text) = s
        .export(
            json!({"metrics": ["viewers", "views", "watch_minutes"], "stream": "s1", "from": T0,
                       "to": "2025-11-24T16:02:00Z", "step": "1m", "tz": "+01:00"}),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let want = format!(
        "t,time,viewers,views,watch_minutes\r\n\
         {T0},2025-11-24T17:00:00.000+01:00,0.5,3,0.4\r\n\
         {},2025-11-24T17:01:00.000+01:00,{},1,{}\r\n",
        T0 + 60_000,
        5.0_f64 / 3.0,
        25_000.0_f64 / 60_000.0
    );
    assert_eq!(text, want);

    // An IANA zone: Paris is at +01:00 in November.
    let (status, _, text) = s
        .export(
            json!({"metrics": ["views"], "stream": "s1", "from": T0, "to": T0 + 60_000,
                       "step": "1m", "tz": "Europe/Paris"}),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        text,
        format!("t,time,views\r\n{T0},2025-11-24T17:00:00.000+01:00,3\r\n")
    );

    let (status, _, text) = s.export(json!({"metrics": ["views"], "channel": "c1", "from": T0, "to": T0 + 10_000, "step": 5000})).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        text,
        format!(
            "t,time,views\r\n{T0},2025-11-24T16:00:00.000Z,5\r\n{},2025-11-24T16:00:05.000Z,1\r\n",
            T0 + 5_000
        )
    );

    for (body, code) in [
        (
            json!({"metrics": [], "stream": "s1", "from": T0, "to": T0 + 1}),
            "invalid_parameter",
        ),
        (
            json!({"metrics": ["views"], "stream": "s1", "from": T0, "to": T0 + 3_600_000, "step": 5000}),
            "too_large",
        ),
        (
            json!({"metrics": ["views"], "stream": "s1", "from": T0, "to": T0 + 1, "colour": 1}),
            "invalid_body",
        ),
        (
            json!({"metrics": ["views"], "stream": "s1", "from": T0, "to": T0 + 1, "tz": "Mars/Olympus"}),
            "invalid_parameter",
        ),
        (
            json!({"metrics": ["views", "views"], "stream": "s1", "from": T0, "to": T0 + 1}),
            "invalid_parameter",
        ),
    ] {
        let (status, _, text) = s.export(body.clone()).await;
        let v: Value = serde_json::from_str(&text).expect("json error");
        assert_error(status, &v, 400, code);
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = Server::start().await;
    assert_eq!(s.get("/healthz").await, (200, Value::String("ok".into())));
    assert_eq!(s.get("/readyz").await.0, 503);
    s.state.set_ready(true);
    assert_eq!(s.get("/readyz").await.0, 200);
    let _ = s.get("/api/analytics/streams/s1").await;
    let (status, body) = s.get("/metrics").await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap_or_default();
    assert!(
        text.contains(
            "pulse_query_requests_total{route=\"/api/analytics/streams/{id}\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("pulse_query_request_seconds_bucket"),
        "{text}"
    );
}

/// A request with `auth` as its Authorization header (`None`: no header).
async fn get_as(s: &Server, path: &str, auth: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", s.base));
    if let Some(t) = auth {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn analytics_need_a_token_of_the_channel_creator_or_an_admin() {
    use fixture::{ADMIN, CREATOR_C1, CREATOR_C2};
    let s = Server::start().await;
    let r = format!("from={T0}&to={}&step=60000", T0 + 120_000);
    let paths = [
        "/api/analytics/streams/s1".to_owned(),
        format!("/api/analytics/series?metric=views&stream=s1&{r}"),
        format!("/api/analytics/series?metric=views&vod=v1&{r}"),
        format!("/api/analytics/series?metric=views&channel=c1&{r}"),
        format!("/api/analytics/charts/viewers?stream=s1&{r}"),
    ];
    for p in &paths {
        let (status, body) = get_as(&s, p, None).await;
        assert_error(status, &body, 401, "unauthorized");
        let (status, body) = get_as(&s, p, Some("no-such-token")).await;
        assert_error(status, &body, 401, "unauthorized");
        let (status, body) = get_as(&s, p, Some(CREATOR_C2)).await;
        assert_error(status, &body, 403, "forbidden");
        let (status, body) = get_as(&s, p, Some(CREATOR_C1)).await;
        assert_eq!(status, 200, "{p}: {body}");
        let (status, admin_body) = get_as(&s, p, Some(ADMIN)).await;
        assert_eq!((status, &admin_body), (200, &body), "{p}");
        // `?token=` works where a header cannot be set (links, the demo's URLs).
        let sep = if p.contains('?') { '&' } else { '?' };
        let (status, q_body) = get_as(&s, &format!("{p}{sep}token={CREATOR_C1}"), None).await;
        assert_eq!((status, &q_body), (200, &body), "{p}");
    }
    // A creator asking about a target nobody knows learns nothing (404), an admin gets
    // the empty answer.
    let p = format!("/api/analytics/series?metric=views&stream=nope&{r}");
    assert_eq!(get_as(&s, &p, Some(CREATOR_C1)).await.0, 404);
    assert_eq!(get_as(&s, &p, Some(ADMIN)).await.0, 200);
    // The export checks the same way.
    let body = json!({"metrics":["views"],"stream":"s1","from":T0,"to":T0 + 60_000});
    for (auth, want) in [
        (None, 401),
        (Some(CREATOR_C2), 403),
        (Some(CREATOR_C1), 200),
    ] {
        let mut req = reqwest::Client::new()
            .post(format!("{}/api/analytics/export", s.base))
            .json(&body);
        if let Some(t) = auth {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        assert_eq!(req.send().await.expect("req").status().as_u16(), want);
    }
    // Channel routes: the channel itself decides.
    for p in [
        format!("/api/analytics/channels/c1?from={T0}&to={}", T0 + 120_000),
        "/api/channels/c1/top-vods".to_owned(),
        "/api/channels/c1/top-clips".to_owned(),
    ] {
        assert_eq!(get_as(&s, &p, None).await.0, 401, "{p}");
        assert_eq!(get_as(&s, &p, Some(CREATOR_C2)).await.0, 403, "{p}");
        assert_eq!(get_as(&s, &p, Some(CREATOR_C1)).await.0, 200, "{p}");
    }
    assert_eq!(get_as(&s, "/api/vods/v1/analytics", None).await.0, 401);
    assert_eq!(
        get_as(&s, "/api/vods/v1/analytics", Some(CREATOR_C2))
            .await
            .0,
        403
    );
    let (status, body) = get_as(&s, "/api/vods/v1/analytics", Some(CREATOR_C1)).await;
    assert_eq!(status, 200, "{body}");
    // Public counts need no token.
    assert_eq!(get_as(&s, "/api/clips/trending", None).await.0, 200);
}
