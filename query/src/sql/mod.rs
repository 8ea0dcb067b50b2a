//! Ad-hoc SQL of the data team (`POST /api/sql`, admin only): read-only queries over
//! the analytics tables, on the configured store.
//!
//! - [`policy`]: parse with `sqlparser` in the store's dialect and check the tree
//!   (exactly one statement, a query only, the analytics tables or WITH names only, no
//!   table functions, no file/URL/dictionary functions, no SETTINGS/FORMAT clause).
//! - [`embedded`]: DataFusion over the snapshot's tables, in a context of its own with a
//!   memory pool of `sql_max_memory_bytes` and DDL/DML/statements refused by DataFusion
//!   as well (`SQLOptions`).
//! - [`clickhouse`]: ClickHouse with `readonly=1`, `max_execution_time`,
//!   `max_result_rows` (throw), `max_memory_usage`; the answer comes back as
//!   `TabSeparatedWithNamesAndTypes` (which ClickHouse 18.16 writes) and is turned into
//!   Arrow batches, so both stores share [`encode`].
//! - [`encode`]: JSON, CSV, Arrow IPC stream or Parquet from Arrow batches.
//!
//! Every refusal is a [`SqlRefusal`]: a 4xx whose `code` is the rule's name.

pub mod clickhouse;
pub mod embedded;
pub mod encode;
pub mod policy;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::http::StatusCode;

/// The rules an ad-hoc query must keep; each refusal names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlRule {
    /// The text is not SQL the store's parser reads.
    Syntax,
    /// Exactly one statement.
    OneStatement,
    /// Only queries: no DDL, DML, COPY, SET, EXPLAIN, SELECT INTO, locks.
    ReadOnly,
    /// Only the analytics tables (and WITH names) may be read.
    UnknownTable,
    /// No table functions (`file()`, `url()`, `s3()`, `remote()`, `generate_series()`...).
    TableFunction,
    /// No functions that read files, URLs, other servers or dictionaries.
    ForbiddenFunction,
    /// No SETTINGS clause (the server sets the limits).
    SettingsClause,
    /// No FORMAT clause (the `format` field chooses the answer).
    FormatClause,
    /// The SQL text is longer than `sql_max_text_bytes`.
    TextLength,
    /// The answer has more rows than `sql_max_rows`.
    RowLimit,
    /// The query ran longer than `sql_timeout_ms`.
    TimeLimit,
    /// The query needed more memory than `sql_max_memory_bytes`.
    MemoryLimit,
}

impl SqlRule {
    /// The `code` of the error body.
    pub fn code(self) -> &'static str {
        match self {
            SqlRule::Syntax => "sql_syntax",
            SqlRule::OneStatement => "sql_one_statement",
            SqlRule::ReadOnly => "sql_read_only",
            SqlRule::UnknownTable => "sql_unknown_table",
            SqlRule::TableFunction => "sql_table_function",
            SqlRule::ForbiddenFunction => "sql_forbidden_function",
            SqlRule::SettingsClause => "sql_settings_clause",
            SqlRule::FormatClause => "sql_format_clause",
            SqlRule::TextLength => "sql_text_length",
            SqlRule::RowLimit => "sql_row_limit",
            SqlRule::TimeLimit => "sql_time_limit",
            SqlRule::MemoryLimit => "sql_memory_limit",
        }
    }

    /// 400 for a query that breaks a rule of the text; 422 for a well-formed query
    /// whose run went past a limit.
    pub fn status(self) -> StatusCode {
        match self {
            SqlRule::RowLimit | SqlRule::TimeLimit | SqlRule::MemoryLimit => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Why an ad-hoc query was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlRefusal {
    pub rule: SqlRule,
    pub message: String,
}

impl SqlRefusal {
    pub fn new(rule: SqlRule, message: impl Into<String>) -> Self {
        SqlRefusal {
            rule,
            message: message.into(),
        }
    }
}

/// The answer formats of `POST /api/sql`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlFormat {
    #[default]
    Json,
    Csv,
    Arrow,
    Parquet,
}

impl SqlFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            SqlFormat::Json => "application/json",
            SqlFormat::Csv => "text/csv; charset=utf-8",
            SqlFormat::Arrow => "application/vnd.apache.arrow.stream",
            SqlFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SqlFormat::Json => "json",
            SqlFormat::Csv => "csv",
            SqlFormat::Arrow => "arrow",
            SqlFormat::Parquet => "parquet",
        }
    }
}

/// The limits of one ad-hoc query (from `QueryConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqlLimits {
    pub max_rows: usize,
    pub timeout_ms: u64,
    pub max_memory_bytes: usize,
    pub target_partitions: usize,
}

impl SqlLimits {
    pub fn row_refusal(&self) -> SqlRefusal {
        SqlRefusal::new(
            SqlRule::RowLimit,
            format!(
                "the answer has more than {} rows (sql_max_rows); aggregate or add a LIMIT",
                self.max_rows
            ),
        )
    }

    pub fn time_refusal(&self) -> SqlRefusal {
        SqlRefusal::new(
            SqlRule::TimeLimit,
            format!(
                "the query ran longer than {} ms (sql_timeout_ms)",
                self.timeout_ms
            ),
        )
    }

    pub fn memory_refusal(&self, detail: &str) -> SqlRefusal {
        SqlRefusal::new(
            SqlRule::MemoryLimit,
            format!(
                "the query needed more than {} bytes of memory (sql_max_memory_bytes): {detail}",
                self.max_memory_bytes
            ),
        )
    }
}

/// The result of an ad-hoc query: its schema and batches (at most `max_rows` rows).
#[derive(Clone, Debug)]
pub struct SqlResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl SqlResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}
