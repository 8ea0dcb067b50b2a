//! Full-text search of VOD titles and descriptions (`GET /api/channels/:id/vods?q=`).
//!
//! The text searched is `vods.search_text` (title + description, lower-cased; written
//! by the code that writes the title). Each backend indexes it with its own engine:
//! - **SQLite**: an FTS5 table over `vods` (external content, kept in step by
//!   triggers), tokenizer `unicode61` without diacritic folding;
//! - **Postgres**: a GIN index on `to_tsvector('simple', search_text)`.
//!
//! Both are created idempotently after the shared migrations, because their DDL has no
//! common dialect. A query is split into words (runs of letters and digits, at most 8)
//! that must all occur, each as a word prefix: `strea` finds "streaming". The same
//! split on both sides makes the two backends answer alike (the `simple` configuration
//! neither stems nor drops stop words, like `unicode61`). Punctuation in a query is a
//! separator, never syntax, so no input can break the match expression.
//!
//! SQLite's FTS table follows `vods` by rowid; `VACUUM` may renumber the rowids of a
//! table without an INTEGER PRIMARY KEY, so after a manual `VACUUM` run
//! `INSERT INTO vods_fts(vods_fts) VALUES ('rebuild')` (Pulse itself never vacuums).

use super::Backend;
use crate::QueryError;
use sqlx::{AnyPool, Executor, Row};

/// Most words of one query; more are ignored.
pub const MAX_TERMS: usize = 8;

const SQLITE_DDL: &[&str] = &[
    "CREATE VIRTUAL TABLE IF NOT EXISTS vods_fts USING fts5(search_text, content='vods', \
     content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER IF NOT EXISTS vods_fts_insert AFTER INSERT ON vods BEGIN \
     INSERT INTO vods_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS vods_fts_delete AFTER DELETE ON vods BEGIN \
     INSERT INTO vods_fts(vods_fts, rowid, search_text) VALUES ('delete', old.rowid, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS vods_fts_update AFTER UPDATE OF search_text ON vods BEGIN \
     INSERT INTO vods_fts(vods_fts, rowid, search_text) VALUES ('delete', old.rowid, old.search_text); \
     INSERT INTO vods_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END",
];

const POSTGRES_DDL: &[&str] = &["CREATE INDEX IF NOT EXISTS vods_search ON vods \
     USING GIN (to_tsvector('simple', search_text))"];

/// Creates the search index of `backend` if it is missing (a new SQLite index is filled
/// from the rows already there).
pub async fn ensure_index(pool: &AnyPool, backend: Backend) -> Result<(), QueryError> {
    match backend {
        Backend::Sqlite => {
            let existed: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'vods_fts'",
            )
            .fetch_one(pool)
            .await?
            .try_get("n")?;
            for ddl in SQLITE_DDL {
                pool.execute(*ddl).await?;
            }
            if existed == 0 {
                pool.execute("INSERT INTO vods_fts(vods_fts) VALUES ('rebuild')")
                    .await?;
            }
        }
        Backend::Postgres => {
            // Nodes starting together on one Postgres would race on CREATE INDEX IF NOT
            // EXISTS (both pass the check, one fails on the catalog's unique name), so
            // the DDL runs under a transaction-scoped advisory lock.
            let mut tx = pool.begin().await?;
            tx.execute("SELECT pg_advisory_xact_lock(7370010001)")
                .await?;
            for ddl in POSTGRES_DDL {
                tx.execute(*ddl).await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

/// The words of a query: runs of alphanumeric characters, lower-cased, at most
/// [`MAX_TERMS`].
pub fn terms(q: &str) -> Vec<String> {
    q.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_TERMS)
        .map(str::to_owned)
        .collect()
}

/// The match expression of `terms` for `backend` (bound as one parameter), or `None`
/// when the query has no word (then it filters nothing).
pub fn match_expression(backend: Backend, terms: &[String]) -> Option<String> {
    if terms.is_empty() {
        return None;
    }
    // Terms hold letters and digits only, so quoting them is all the escaping needed.
    let parts: Vec<String> = match backend {
        Backend::Sqlite => terms.iter().map(|t| format!("\"{t}\"*")).collect(),
        Backend::Postgres => terms.iter().map(|t| format!("'{t}':*")).collect(),
    };
    Some(match backend {
        Backend::Sqlite => parts.join(" AND "),
        Backend::Postgres => parts.join(" & "),
    })
}

/// The condition selecting matching VODs (alias `v`), with the one placeholder `$n`.
pub fn condition(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => {
            format!(" AND v.rowid IN (SELECT rowid FROM vods_fts WHERE vods_fts MATCH ${n})")
        }
        Backend::Postgres => {
            format!(" AND to_tsvector('simple', v.search_text) @@ to_tsquery('simple', ${n})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn words_are_runs_of_letters_and_digits() {
        assert_eq!(
            terms("  Speed-run  #42, Élan! x"),
            ["speed", "run", "42", "élan", "x"]
        );
        assert!(terms("%_\\'\"*:&|!()").is_empty());
        assert_eq!(terms("a b c d e f g h i j").len(), MAX_TERMS);
    }

    #[test]
    fn expressions_per_backend() {
        let t = terms("Mario kart");
        assert_eq!(
            match_expression(Backend::Sqlite, &t).as_deref(),
            Some("\"mario\"* AND \"kart\"*")
        );
        assert_eq!(
            match_expression(Backend::Postgres, &t).as_deref(),
            Some("'mario':* & 'kart':*")
        );
        assert_eq!(match_expression(Backend::Sqlite, &[]), None);
    }

    proptest! {
        /// Whatever a client sends, a term never carries a character that is syntax in
        /// either match language.
        #[test]
        fn no_query_syntax_survives(q in "\\PC{0,64}") {
            for t in terms(&q) {
                prop_assert!(!t.is_empty());
                prop_assert!(t.chars().all(char::is_alphanumeric), "{t:?}");
            }
        }
    }
}
