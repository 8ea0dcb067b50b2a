//! Catalog list/search latency with many VODs (issue 6 benchmark).
//!
//! `cargo run --release -p pulse-query --example catalog_bench -- [VODS] [QUERIES] [URL]`
//! fills a fresh catalog (SQLite in a temp dir unless URL is given) with VODS (default
//! 100 000) READY public VODs over 10 channels and measures newest-first pages, deep
//! pages, watched order and word searches through `Catalog::list_vods`, printing p50/p99.

use pulse_query::catalog::vods::{VodQuery, VodSort};
use pulse_query::catalog::{CatalogConfig, Secrets, open::open};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let vods: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let queries: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(500);
    let dir = std::env::temp_dir().join(format!("pulse-catalog-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("c.sqlite").display()));
    let catalog = open(&url, CatalogConfig::default(), Secrets::default())
        .await
        .expect("open");
    let pool = catalog.pool();
    let words = [
        "speedrun",
        "chatting",
        "cooking",
        "music",
        "retro",
        "tournament",
        "art",
        "coding",
    ];
    let t = Instant::now();
    let now = pulse_query::catalog::now_ms();
    for ch in 0..10 {
        let owner = format!("u{ch}");
        sqlx::query("INSERT INTO users (id, name, created_at, updated_at) VALUES ($1, '', 0, 0)")
            .bind(owner.clone())
            .execute(pool)
            .await
            .expect("user");
        sqlx::query("INSERT INTO channels (id, name, owner, created_at, updated_at) VALUES ($1, '', $2, 0, 0)")
            .bind(format!("c{ch}"))
            .bind(owner)
            .execute(pool)
            .await
            .expect("channel");
    }
    let mut tx = pool.begin().await.expect("tx");
    for i in 0..vods {
        let ch = format!("c{}", i % 10);
        let title = format!("{} session {i}", words[(i as usize * 7) % words.len()]);
        let created = now - (vods - i) * 60_000;
        sqlx::query(
            "INSERT INTO streams (id, channel, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(format!("s{i}"))
        .bind(ch.clone())
        .bind(created)
        .execute(&mut *tx)
        .await
        .expect("stream");
        sqlx::query(
            "INSERT INTO vods (id, stream, channel, title, search_text, status, view_count, live_at, ended_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'READY', $6, $7, $7, $7, $7)",
        )
        .bind(format!("v{i}"))
        .bind(format!("s{i}"))
        .bind(ch)
        .bind(title.clone())
        .bind(title.to_lowercase())
        .bind((i * 7919) % 10_000)
        .bind(created)
        .execute(&mut *tx)
        .await
        .expect("vod");
        if i % 10_000 == 9_999 {
            tx.commit().await.expect("commit");
            tx = pool.begin().await.expect("tx");
        }
    }
    tx.commit().await.expect("commit");
    println!(
        "inserted {vods} VODs in {:.1} s ({url})",
        t.elapsed().as_secs_f64()
    );
    let cases: Vec<(&str, VodQuery)> = vec![
        ("newest page 1", q(1, VodSort::Newest, None)),
        ("newest page 500", q(500, VodSort::Newest, None)),
        ("watched page 1", q(1, VodSort::Watched, None)),
        ("trending page 1", q(1, VodSort::Trending, None)),
        ("search 1 word", q(1, VodSort::Newest, Some("speedrun"))),
        (
            "search 2 words",
            q(1, VodSort::Newest, Some("retro session 12")),
        ),
    ];
    for (name, query) in cases {
        let mut lat = Vec::with_capacity(queries);
        for n in 0..queries {
            let channel = format!("c{}", n % 10);
            let t = Instant::now();
            let (items, total) = catalog
                .list_vods(None, &channel, &query)
                .await
                .expect("list");
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box((items, total));
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "{name:>18}: p50 {:7.2} ms  p99 {:7.2} ms  ({queries} queries)",
            p(0.5),
            p(0.99)
        );
    }
    catalog.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn q(page: u32, sort: VodSort, text: Option<&str>) -> VodQuery {
    VodQuery {
        page,
        per_page: 12,
        sort,
        from: None,
        to: None,
        q: text.map(str::to_owned),
    }
}
