//! Database connection and migrations.

use std::time::Duration;

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::{DatabaseSettings, redact};

/// Connects to the configured database.
///
/// SQLite runs in WAL mode with one pooled connection: SQLite has a single writer
/// anyway, and one connection avoids `database is locked` under concurrent writes.
///
/// # Errors
/// When the database cannot be reached; the message names the URL without its password.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let url = &settings.database_url;
    let mut options = ConnectOptions::new(url.clone());
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if is_sqlite(url) {
        options
            .max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            });
    } else {
        options.max_connections(settings.db_max_connections);
    }
    Database::connect(options)
        .await
        .with_context(|| format!("cannot connect to the database at {}", redact(url)))
}

/// Applies every pending migration.
///
/// # Errors
/// When a migration fails; the transaction of that migration is rolled back.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("applying database migrations")
}

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// One page of `query` in id order, keyset-paginated after `page.after`, with the
/// total count of rows matching `query`.
pub async fn page_by_id<E>(
    db: &impl sea_orm::ConnectionTrait,
    query: sea_orm::Select<E>,
    id: E::Column,
    page: crate::graphql::pagination::PageRequest,
) -> crate::error::AppResult<crate::graphql::pagination::Page<E::Model>>
where
    E: sea_orm::EntityTrait,
    E::Model: Sync,
{
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
    let total_count = query.clone().count(db).await?;
    let mut query = query.order_by_asc(id);
    if let Some(after) = page.after {
        query = query.filter(id.gt(after));
    }
    // One extra row tells whether another page follows.
    let mut items = query.limit(page.first + 1).all(db).await?;
    let has_next_page = items.len() as u64 > page.first;
    items.truncate(page.first as usize);
    Ok(crate::graphql::pagination::Page {
        items,
        has_next_page,
        total_count,
    })
}
