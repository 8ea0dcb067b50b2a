//! Ad-hoc SQL on the embedded store: DataFusion in a context of its own per query.
//!
//! The context sees exactly the analytics tables, each a view of the snapshot's
//! relation (Parquet files ∪ recent batches ∪ open provisional windows, as the routes
//! read them), registered under the table's plain name; the part tables behind them
//! are not visible. Its `RuntimeEnv` has a memory pool of `sql_max_memory_bytes`: the
//! operators' memory and the collected answer are both reserved from it, so a query
//! past it is refused (`sql_memory_limit`) rather than growing the process. The
//! pool is a hard limit: spilling to disk is disabled. The
//! checked statement is planned as it is (no second parse), and `SQLOptions` refuses
//! DDL, DML and statements again at plan level.

use crate::error::QueryError;
use crate::sql::{SqlLimits, SqlRefusal, SqlResult};
use crate::store::embedded::EmbeddedSnapshot;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use futures_util::StreamExt;
use pulse_schemas::Table;
use sqlparser::ast::Statement;
use std::sync::Arc;

/// Runs one checked statement on `snap` within `limits` (the caller applies the time limit).
pub async fn run(
    snap: &EmbeddedSnapshot,
    statement: Statement,
    limits: &SqlLimits,
) -> Result<SqlResult, QueryError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.max_memory_bytes, 1.0)
        // No spilling: the limit is a limit, and ad-hoc queries write nothing to disk.
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .map_err(QueryError::from)?;
    let config = SessionConfig::new()
        .with_target_partitions(limits.target_partitions.max(1))
        .with_information_schema(false);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    for &table in Table::ALL {
        let view = snap
            .context()
            .sql(&format!("SELECT * FROM {}", snap.relation(table)))
            .await?
            .into_view();
        ctx.register_table(table.name(), view)?;
    }
    let plan = ctx
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
        .await
        .map_err(|e| classify(e, limits))?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| {
            SqlRefusal::new(
                crate::sql::SqlRule::ReadOnly,
                e.strip_backtrace().to_string(),
            )
        })?;
    let df = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(|e| classify(e, limits))?;
    let plan = df
        .create_physical_plan()
        .await
        .map_err(|e| classify(e, limits))?;
    // Every operator's output consumes Tokio's cooperative budget, so a CPU-bound
    // operator (a cross join feeding an aggregate) yields often enough for the time
    // limit to stop it: a dropped query stops at its next yield, not at its end.
    let plan = plan
        .transform_up(|node| {
            let wrapped: Arc<dyn ExecutionPlan> = Arc::new(CooperativeExec::new(node));
            Ok(Transformed::yes(wrapped))
        })?
        .data;
    let mut stream = execute_stream(plan, ctx.task_ctx()).map_err(|e| classify(e, limits))?;
    let schema = stream.schema();
    let pool = ctx.runtime_env().memory_pool.clone();
    let reservation = MemoryConsumer::new("pulse sql answer").register(&pool);
    let (mut rows, mut batches) = (0usize, Vec::new());
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| classify(e, limits))?;
        rows += batch.num_rows();
        if rows > limits.max_rows {
            return Err(limits.row_refusal().into());
        }
        reservation
            .try_grow(batch.get_array_memory_size())
            .map_err(|e| limits.memory_refusal(&e.strip_backtrace()))?;
        batches.push(batch);
    }
    Ok(SqlResult { schema, batches })
}

/// A DataFusion error of a user's query: memory → `sql_memory_limit` (422); I/O and
/// internal failures → 500; anything else (unknown column, bad cast, ...) is the
/// query's fault → 400 naming `sql`.
fn classify(e: DataFusionError, limits: &SqlLimits) -> QueryError {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(m) => limits.memory_refusal(m).into(),
        DataFusionError::IoError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::ParquetError(_)
        | DataFusionError::Internal(_) => QueryError::Store(e.strip_backtrace()),
        _ => QueryError::invalid("sql", e.strip_backtrace()),
    }
}
