//! The read-only check of ad-hoc SQL (pure: no I/O). The text is parsed with
//! `sqlparser` in the dialect of the store that will run it, and the syntax tree —
//! never the text — is checked against the rules of [`SqlRule`]. The caller runs the
//! checked tree (DataFusion plans it directly; ClickHouse gets its rendering), so what
//! runs is what was checked.

use crate::sql::{SqlRefusal, SqlRule};
use pulse_schemas::Table;
use sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Query, SetExpr, Statement, TableFactor, Visit, Visitor,
};
use sqlparser::dialect::{ClickHouseDialect, Dialect, GenericDialect};
use sqlparser::parser::Parser;
use std::collections::BTreeSet;
use std::ops::ControlFlow;

/// Which SQL dialect to parse (the store's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlDialect {
    /// DataFusion (the embedded store): its default, generic dialect.
    DataFusion,
    ClickHouse,
}

/// Functions usable in expressions that read files, URLs, other servers or
/// dictionaries (ClickHouse `file()` is also a scalar function); compared lower-cased.
const FORBIDDEN_FUNCTIONS: &[&str] = &[
    "file",
    "url",
    "s3",
    "s3cluster",
    "gcs",
    "hdfs",
    "remote",
    "remotesecure",
    "cluster",
    "clusterallreplicas",
    "input",
    "mysql",
    "postgresql",
    "jdbc",
    "odbc",
    "sqlite",
    "mongodb",
    "redis",
    "executable",
    "azureblobstorage",
    "iceberg",
    "deltalake",
    "hudi",
    "joinget",
    "read_parquet",
    "read_csv",
    "read_json",
];

/// Function-name prefixes refused for the same reason (`dictGet`, `dictGetString`, ...).
const FORBIDDEN_PREFIXES: &[&str] = &["dictget", "dicthas"];

/// Parses `sql` and checks every rule; answers the one statement to run.
pub fn check(sql: &str, dialect: SqlDialect) -> Result<Statement, SqlRefusal> {
    let parsed = match dialect {
        SqlDialect::DataFusion => parse(&GenericDialect {}, sql),
        SqlDialect::ClickHouse => parse(&ClickHouseDialect {}, sql),
    }?;
    let mut statements = parsed.into_iter();
    let (Some(statement), None) = (statements.next(), statements.next()) else {
        return Err(SqlRefusal::new(
            SqlRule::OneStatement,
            "expected exactly one statement (a single SELECT), got none or several",
        ));
    };
    let Statement::Query(query) = &statement else {
        return Err(SqlRefusal::new(
            SqlRule::ReadOnly,
            format!(
                "expected a query (SELECT, WITH … SELECT, VALUES), got a {} statement",
                statement_kind(&statement)
            ),
        ));
    };
    let _ = query;
    let mut checker = Checker { scopes: Vec::new() };
    match statement.visit(&mut checker) {
        ControlFlow::Break(refusal) => Err(refusal),
        ControlFlow::Continue(()) => Ok(statement),
    }
}

fn parse(dialect: &dyn Dialect, sql: &str) -> Result<Vec<Statement>, SqlRefusal> {
    Parser::parse_sql(dialect, sql).map_err(|e| SqlRefusal::new(SqlRule::Syntax, e.to_string()))
}

/// The first words of a statement's SQL, to name what was sent (`INSERT`, `DROP TABLE`).
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second]
            if matches!(
                second.to_ascii_uppercase().as_str(),
                "TABLE" | "VIEW" | "DATABASE" | "SCHEMA" | "EXTERNAL" | "FUNCTION" | "INDEX"
            ) =>
        {
            format!(
                "{} {}",
                first.to_ascii_uppercase(),
                second.to_ascii_uppercase()
            )
        }
        [first, ..] => first.to_ascii_uppercase(),
        [] => "empty".to_owned(),
    }
}

/// Lower-cased when unquoted (both engines fold or match them so), as written when quoted.
fn ident_key(ident: &Ident) -> String {
    match ident.quote_style {
        None => ident.value.to_ascii_lowercase(),
        Some(_) => ident.value.clone(),
    }
}

/// Walks the tree; `scopes` holds the WITH names visible in each enclosing query, so a
/// WITH name is readable like a table only inside the query that defines it.
struct Checker {
    scopes: Vec<BTreeSet<String>>,
}

impl Checker {
    fn table_name(&self, name: &ObjectName) -> ControlFlow<SqlRefusal> {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(i) => Some(ident_key(i)),
                ObjectNamePart::Function(_) => None,
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        let known = match parts.as_slice() {
            [one] => Table::from_name(one).is_some() || self.scopes.iter().any(|s| s.contains(one)),
            _ => false,
        };
        if known {
            return ControlFlow::Continue(());
        }
        let tables: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
        ControlFlow::Break(SqlRefusal::new(
            SqlRule::UnknownTable,
            format!(
                "expected one of the analytics tables ({}) or a WITH name, got {name}",
                tables.join(", ")
            ),
        ))
    }
}

impl Visitor for Checker {
    type Break = SqlRefusal;

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<SqlRefusal> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<SqlRefusal> {
        let names = query.with.iter().flat_map(|w| &w.cte_tables);
        self.scopes
            .push(names.map(|cte| ident_key(&cte.alias.name)).collect());
        if query.settings.is_some() {
            return ControlFlow::Break(SqlRefusal::new(
                SqlRule::SettingsClause,
                "a SETTINGS clause is not allowed: the limits are set by the server",
            ));
        }
        if query.format_clause.is_some() {
            return ControlFlow::Break(SqlRefusal::new(
                SqlRule::FormatClause,
                "a FORMAT clause is not allowed: choose the answer with the `format` field",
            ));
        }
        if !query.locks.is_empty() {
            return ControlFlow::Break(SqlRefusal::new(
                SqlRule::ReadOnly,
                "a locking clause (FOR UPDATE/SHARE) is not allowed in a read-only query",
            ));
        }
        match query.body.as_ref() {
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                ControlFlow::Break(SqlRefusal::new(
                    SqlRule::ReadOnly,
                    "expected a read-only query, got a data change inside it",
                ))
            }
            SetExpr::Select(select) if select.into.is_some() => {
                ControlFlow::Break(SqlRefusal::new(
                    SqlRule::ReadOnly,
                    "SELECT … INTO creates a table: not allowed in a read-only query",
                ))
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<SqlRefusal> {
        // Nested statements (inside a set expression) must be queries too.
        match statement {
            Statement::Query(_) => ControlFlow::Continue(()),
            other => ControlFlow::Break(SqlRefusal::new(
                SqlRule::ReadOnly,
                format!(
                    "expected a read-only query, got {} inside it",
                    statement_kind(other)
                ),
            )),
        }
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<SqlRefusal> {
        match factor {
            TableFactor::Table {
                name, args: None, ..
            } => self.table_name(name),
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => ControlFlow::Break(SqlRefusal::new(
                SqlRule::TableFunction,
                format!(
                    "table functions are not allowed (they can read files, URLs, S3 or other \
                     servers): got {name}(…); read the analytics tables by name"
                ),
            )),
            TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::UNNEST { .. }
            | TableFactor::Pivot { .. }
            | TableFactor::Unpivot { .. } => ControlFlow::Continue(()),
            other => ControlFlow::Break(SqlRefusal::new(
                SqlRule::TableFunction,
                format!(
                    "expected an analytics table, a subquery or a join in FROM, got the table \
                     function {}",
                    first_words(&other.to_string())
                ),
            )),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<SqlRefusal> {
        let Expr::Function(f) = expr else {
            return ControlFlow::Continue(());
        };
        let Some(ObjectNamePart::Identifier(last)) = f.name.0.last() else {
            return ControlFlow::Continue(());
        };
        let lower = last.value.to_ascii_lowercase();
        if FORBIDDEN_FUNCTIONS.contains(&lower.as_str())
            || FORBIDDEN_PREFIXES.iter().any(|p| lower.starts_with(p))
        {
            return ControlFlow::Break(SqlRefusal::new(
                SqlRule::ForbiddenFunction,
                format!(
                    "the function {} reads files, URLs, other servers or dictionaries: not \
                     allowed",
                    f.name
                ),
            ));
        }
        ControlFlow::Continue(())
    }
}

fn first_words(s: &str) -> String {
    let short: String = s.chars().take(60).collect();
    if short.len() < s.len() {
        format!("{short}…")
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(sql: &str, d: SqlDialect) -> Option<SqlRule> {
        check(sql, d).err().map(|r| r.rule)
    }

    #[test]
    fn reads_of_the_analytics_tables_pass_on_both_dialects() {
        for d in [SqlDialect::DataFusion, SqlDialect::ClickHouse] {
            for sql in [
                "SELECT 1",
                "SELECT target, sum(views) FROM stream_ticks WHERE t >= 5 GROUP BY target",
                "select count(*) from VIEWER_MINUTES",
                "WITH v AS (SELECT viewer FROM viewer_minutes) SELECT count(*) FROM v",
                "SELECT a.t FROM stream_ticks a JOIN health_ticks b ON a.t = b.t LIMIT 5",
                "SELECT * FROM (SELECT session FROM view_sessions) s",
                "SELECT 1 UNION ALL SELECT 2",
                "SELECT * FROM alerts WHERE stream IN (SELECT target FROM stream_ticks)",
                "SELECT 1;",
            ] {
                assert_eq!(rule(sql, d), None, "{sql} ({d:?})");
            }
        }
    }

    #[test]
    fn clickhouse_reads_with_final_and_its_own_functions_pass() {
        for sql in [
            "SELECT target, sum(views) FROM stream_ticks FINAL GROUP BY target",
            "SELECT uniqExact(viewer) FROM viewer_minutes WHERE minute >= 0",
            "SELECT intDiv(t, 60000) * 60000 AS m, sum(watch_ms) FROM stream_ticks GROUP BY m",
        ] {
            assert_eq!(rule(sql, SqlDialect::ClickHouse), None, "{sql}");
        }
    }

    #[test]
    fn what_clickhouse_runs_is_the_checked_tree_with_final_kept() {
        let sql = "SELECT target FROM stream_ticks FINAL WHERE t > 0";
        let checked = check(sql, SqlDialect::ClickHouse).expect("passes");
        assert_eq!(checked.to_string(), sql);
    }

    #[test]
    fn every_rule_refuses_what_it_names() {
        let cases: &[(&str, SqlRule)] = &[
            ("SELEC 1", SqlRule::Syntax),
            ("", SqlRule::OneStatement),
            ("SELECT 1; SELECT 2", SqlRule::OneStatement),
            ("SELECT 1; DROP TABLE stream_ticks", SqlRule::OneStatement),
            ("DROP TABLE stream_ticks", SqlRule::ReadOnly),
            ("INSERT INTO alerts SELECT * FROM alerts", SqlRule::ReadOnly),
            ("DELETE FROM alerts", SqlRule::ReadOnly),
            ("CREATE TABLE x (a INT)", SqlRule::ReadOnly),
            (
                "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc'",
                SqlRule::Syntax,
            ),
            ("COPY alerts TO '/tmp/x'", SqlRule::ReadOnly),
            ("SELECT * INTO newtable FROM alerts", SqlRule::ReadOnly),
            ("EXPLAIN ANALYZE SELECT 1", SqlRule::ReadOnly),
            ("SET x = 1", SqlRule::ReadOnly),
            ("SELECT * FROM system.tables", SqlRule::UnknownTable),
            (
                "SELECT * FROM information_schema.tables",
                SqlRule::UnknownTable,
            ),
            ("SELECT * FROM '/etc/passwd'", SqlRule::UnknownTable),
            (
                "SELECT * FROM generate_series(1, 3)",
                SqlRule::TableFunction,
            ),
            ("SELECT * FROM stream_ticks FOR UPDATE", SqlRule::ReadOnly),
        ];
        for &(sql, want) in cases {
            let got = rule(sql, SqlDialect::DataFusion);
            // DataFusion-only syntax may not parse in the generic dialect: still refused.
            assert!(
                got == Some(want) || (want == SqlRule::Syntax && got.is_some()),
                "{sql}: {got:?}"
            );
        }
        let ch: &[(&str, SqlRule)] = &[
            (
                "SELECT * FROM file('x.csv', 'CSV', 'a String')",
                SqlRule::TableFunction,
            ),
            (
                "SELECT * FROM url('http://x/', CSV, 'a String')",
                SqlRule::TableFunction,
            ),
            (
                "SELECT * FROM s3('http://x/b/k', 'CSV')",
                SqlRule::TableFunction,
            ),
            (
                "SELECT * FROM remote('h', default.alerts)",
                SqlRule::TableFunction,
            ),
            ("SELECT * FROM numbers(10)", SqlRule::TableFunction),
            ("SELECT file('/etc/passwd')", SqlRule::ForbiddenFunction),
            (
                "SELECT dictGetString('d', 'a', toUInt64(1))",
                SqlRule::ForbiddenFunction,
            ),
            (
                "SELECT 1 FROM alerts WHERE 1 IN (SELECT 1 FROM url('http://x', CSV, 'a UInt8'))",
                SqlRule::TableFunction,
            ),
            (
                "SELECT * FROM alerts SETTINGS readonly = 0",
                SqlRule::SettingsClause,
            ),
            (
                "SELECT * FROM alerts FORMAT TabSeparated",
                SqlRule::FormatClause,
            ),
            ("SELECT * FROM system.users", SqlRule::UnknownTable),
            (
                "SELECT 1 UNION ALL SELECT * FROM url('http://x', CSV, 'a UInt8')",
                SqlRule::TableFunction,
            ),
            (
                "WITH x AS (SELECT * FROM s3('http://x/b', 'CSV')) SELECT * FROM x",
                SqlRule::TableFunction,
            ),
        ];
        for &(sql, want) in ch {
            assert_eq!(rule(sql, SqlDialect::ClickHouse), Some(want), "{sql}");
        }
    }

    #[test]
    fn refusals_name_what_was_sent() {
        let r = check("DROP TABLE stream_ticks", SqlDialect::DataFusion).unwrap_err();
        assert!(r.message.contains("DROP TABLE"), "{}", r.message);
        let r = check("SELECT * FROM secrets", SqlDialect::ClickHouse).unwrap_err();
        assert!(r.message.contains("secrets") && r.message.contains("stream_ticks"));
    }

    #[test]
    fn a_with_name_is_a_table_only_inside_its_query() {
        let sql = "SELECT * FROM (WITH users AS (SELECT 1) SELECT * FROM users) a, users";
        assert_eq!(
            rule(sql, SqlDialect::ClickHouse),
            Some(SqlRule::UnknownTable)
        );
    }

    #[test]
    fn a_cte_name_hides_no_forbidden_table() {
        // The WITH name is allowed; what it reads is still checked.
        let r = check(
            "WITH stream_ticks AS (SELECT * FROM system.users) SELECT * FROM stream_ticks",
            SqlDialect::ClickHouse,
        );
        assert_eq!(r.err().map(|r| r.rule), Some(SqlRule::UnknownTable));
    }
}
