//! Schema migrations on PostgreSQL: refinery's embedded `migrations/postgres/` (the same version
//! numbers as `migrations/sqlite/`), run on a dedicated connection that holds
//! `pg_advisory_lock(MIGRATION_LOCK)` for the whole run. Nodes starting together on an empty
//! database therefore apply each migration once: the first takes the lock and migrates, the
//! others wait and find nothing left to apply. The lock is session-level, so it dies with the
//! connection if a node crashes mid-run.
//!
//! Owns the migration run only; never runs on a pooled connection.

use crate::directory::DbError;

use super::pool::connect_one;

mod embedded {
    refinery::embed_migrations!("src/directory/migrations/postgres");
}

/// The advisory lock key every signalbox node takes while migrating (any fixed bigint; this one
/// spells nothing and collides with nothing else signalbox locks, whose keys are hashes of
/// idempotency scopes in another key space: `pg_advisory_lock(int, int)` is not used).
pub const MIGRATION_LOCK: i64 = 7_061_206_391;

/// Connects to `url`, takes the migration lock, applies every pending migration and releases
/// the lock; returns how many migrations this call applied.
pub async fn migrate(url: &str) -> Result<usize, DbError> {
    let mut client = connect_one(url).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = embedded::migrations::runner().run_async(&mut client).await;
    // Released explicitly so a pooled reuse of this session is impossible; dropping the client
    // ends the session (and the lock with it) in any case.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let report = result?;
    unlocked?;
    Ok(report.applied_migrations().len())
}

/// How many migrations are embedded (what an empty database gets).
pub fn migration_count() -> usize {
    embedded::migrations::runner().get_migrations().len()
}
