//! Database connection and migrations.

use std::time::Duration;

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, Statement};

use crate::config::{DatabaseSettings, redact};

/// Connects to the configured database.
///
/// SQLite runs in WAL mode with one pooled connection: SQLite has a single writer
/// anyway, and one connection avoids `database is locked` under concurrent writes.
///
/// # Errors
/// When the database cannot be reached; the message names the URL without its password.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    connect_with(settings, false).await
}

/// Connects for a long-running server. A SQLite file database checkpoints its WAL
/// on a side connection, off the request path: an automatic checkpoint would run
/// (and fsync) inside whichever commit crossed the threshold, a ~10 ms stall for
/// that request. The returned guard stops the checkpoints when dropped.
///
/// # Errors
/// As [`connect`].
pub async fn connect_for_serving(
    settings: &DatabaseSettings,
) -> anyhow::Result<(DatabaseConnection, Option<WalCheckpointer>)> {
    let url = &settings.database_url;
    let background = is_sqlite_file(url);
    let db = connect_with(settings, background).await?;
    let checkpointer = if background {
        Some(WalCheckpointer::start(url)?)
    } else {
        None
    };
    Ok((db, checkpointer))
}

/// A pool of read-only connections beside the writer of a SQLite file, for
/// hot read paths (scans at the doors): in WAL mode readers never wait for
/// the one writer, and see every commit made before they begin. `None` for
/// PostgreSQL, whose pool already reads concurrently, and in-memory SQLite.
///
/// # Errors
/// When the database cannot be opened.
pub async fn connect_readers(
    settings: &DatabaseSettings,
) -> anyhow::Result<Option<DatabaseConnection>> {
    let url = &settings.database_url;
    if !is_sqlite_file(url) {
        return Ok(None);
    }
    let mut options = pool_options(url);
    options
        .max_connections(settings.db_readers.max(1))
        .min_connections(1)
        .map_sqlx_sqlite_opts(|opts| {
            opts.read_only(true)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    Database::connect(options)
        .await
        .map(Some)
        .with_context(|| format!("cannot open readers of the database at {}", redact(url)))
}

/// The write lanes' own connections on PostgreSQL (see
/// `DatabaseSettings::db_lane_connections`); `None` on SQLite, whose lanes
/// commit on its one writer.
///
/// # Errors
/// When the database cannot be reached.
pub async fn connect_lanes(
    settings: &DatabaseSettings,
) -> anyhow::Result<Option<DatabaseConnection>> {
    let url = &settings.database_url;
    if is_sqlite(url) {
        return Ok(None);
    }
    let mut options = pool_options(url);
    options.max_connections(settings.db_lane_connections.max(1));
    Database::connect(options)
        .await
        .map(Some)
        .with_context(|| format!("cannot connect the write lanes to {}", redact(url)))
}

async fn connect_with(
    settings: &DatabaseSettings,
    background_checkpoints: bool,
) -> anyhow::Result<DatabaseConnection> {
    let url = &settings.database_url;
    let mut options = pool_options(url);
    if is_sqlite(url) {
        options
            .max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(move |opts| {
                let opts = opts
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true);
                if background_checkpoints {
                    opts.pragma("wal_autocheckpoint", "0")
                } else {
                    opts
                }
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

/// Gathers the planner's statistics after a bulk load (PostgreSQL's
/// `ANALYZE`). Until a table has statistics PostgreSQL guesses its size and
/// selectivities, and may plan a lookup by unique keys as a scan of whole
/// tables; autovacuum gathers them some time after the load, or never where
/// it is off. SQLite plans by its indexes without statistics: nothing to do.
///
/// # Errors
/// On database errors.
pub async fn analyze(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() == DbBackend::Postgres {
        use sea_orm::ConnectionTrait as _;
        db.execute_unprepared("ANALYZE")
            .await
            .context("gathering the planner's statistics")?;
    }
    Ok(())
}

/// What every pool of the server shares: bounded waits, no statement logging.
fn pool_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    options
}

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// A SQLite database on disk, as opposed to an in-memory one.
fn is_sqlite_file(url: &str) -> bool {
    is_sqlite(url) && !url.contains(":memory:") && !url.contains("mode=memory")
}

/// Checkpoints a SQLite WAL every [`WalCheckpointer::INTERVAL`] on its own
/// connection. A passive checkpoint never blocks the writer, so commits only
/// append to the WAL.
pub struct WalCheckpointer {
    task: tokio::task::JoinHandle<()>,
}

impl WalCheckpointer {
    const INTERVAL: Duration = Duration::from_secs(1);

    fn start(url: &str) -> anyhow::Result<Self> {
        use sea_orm::sqlx::ConnectOptions as _;
        use sea_orm::sqlx::sqlite::SqliteConnectOptions;
        use std::str::FromStr as _;

        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid SQLite URL {}", redact(url)))?
            .busy_timeout(Duration::from_secs(5));
        let task = tokio::spawn(async move {
            let mut connection = None;
            let mut tick = tokio::time::interval(Self::INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if connection.is_none() {
                    match options.connect().await {
                        Ok(c) => connection = Some(c),
                        Err(error) => {
                            tracing::warn!(%error, "WAL checkpointer cannot connect");
                            continue;
                        }
                    }
                }
                let Some(c) = connection.as_mut() else {
                    continue;
                };
                if let Err(error) = sea_orm::sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(c)
                    .await
                {
                    tracing::warn!(%error, "WAL checkpoint failed; reconnecting");
                    connection = None;
                }
            }
        });
        Ok(Self { task })
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// "Load or `NOT_FOUND`", for any query of one row.
pub trait FindOr<E: sea_orm::EntityTrait> {
    /// The row, or `NOT_FOUND` naming `entity`.
    ///
    /// # Errors
    /// `NOT_FOUND` when there is no row; `INTERNAL` on database errors.
    fn one_or_not_found<C: sea_orm::ConnectionTrait>(
        self,
        db: &C,
        entity: &'static str,
    ) -> impl std::future::Future<Output = crate::error::AppResult<E::Model>> + Send;
}

impl<E: sea_orm::EntityTrait> FindOr<E> for sea_orm::Select<E>
where
    E::Model: Send + Sync,
{
    async fn one_or_not_found<C: sea_orm::ConnectionTrait>(
        self,
        db: &C,
        entity: &'static str,
    ) -> crate::error::AppResult<E::Model> {
        self.one(db)
            .await?
            .ok_or(crate::error::AppError::not_found(entity))
    }
}

/// Which way a keyset page runs through the ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdOrder {
    /// Oldest first (creation order).
    Ascending,
    /// Newest first, as journals are read.
    Descending,
}

/// One page of `query` in id order, keyset-paginated after `page.after`, with the
/// total count of rows matching `query`.
pub async fn page_by_id<E>(
    db: &impl sea_orm::ConnectionTrait,
    query: sea_orm::Select<E>,
    id: E::Column,
    page: crate::pagination::PageRequest,
) -> crate::error::AppResult<crate::pagination::Page<E::Model>>
where
    E: sea_orm::EntityTrait,
    E::Model: Sync,
{
    page_by_id_in(db, query, id, IdOrder::Ascending, page).await
}

/// [`page_by_id`] in either order.
pub async fn page_by_id_in<E>(
    db: &impl sea_orm::ConnectionTrait,
    query: sea_orm::Select<E>,
    id: E::Column,
    order: IdOrder,
    page: crate::pagination::PageRequest,
) -> crate::error::AppResult<crate::pagination::Page<E::Model>>
where
    E: sea_orm::EntityTrait,
    E::Model: Sync,
{
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
    let total_count = query.clone().count(db).await?;
    let mut query = match order {
        IdOrder::Ascending => query.order_by_asc(id),
        IdOrder::Descending => query.order_by_desc(id),
    };
    if let Some(after) = page.after {
        query = match order {
            IdOrder::Ascending => query.filter(id.gt(after)),
            IdOrder::Descending => query.filter(id.lt(after)),
        };
    }
    // One extra row tells whether another page follows.
    let mut items = query.limit(page.first + 1).all(db).await?;
    let has_next_page = items.len() as u64 > page.first;
    items.truncate(page.first as usize);
    Ok(crate::pagination::Page {
        items,
        has_next_page,
        total_count,
    })
}

/// From how many rows on a statement takes them as one JSON parameter rather
/// than an `OR` or `CASE` arm each. Below it the arms are few and each is an
/// index lookup; from it on, a statement whose text grows with the rows costs
/// more to send and plan than the rows cost, while the planner, which cannot
/// see how many rows the JSON holds (it assumes 100), may scan whole tables
/// for a handful of them.
pub const SET_PARAMETER_FROM: usize = 64;

/// Whether a statement of `rows` rows on `backend` takes them as one JSON
/// parameter ([`with_json_rows`]): on PostgreSQL, from [`SET_PARAMETER_FROM`] on.
pub fn takes_json_rows(backend: DbBackend, rows: usize) -> bool {
    backend == DbBackend::Postgres && rows >= SET_PARAMETER_FROM
}

/// A PostgreSQL statement whose one parameter, `$1`, is `rows` as a JSON array.
pub fn with_json_rows(sql: &str, rows: impl Iterator<Item = serde_json::Value>) -> Statement {
    let rows = serde_json::Value::Array(rows.collect()).to_string();
    Statement::from_sql_and_values(DbBackend::Postgres, sql, [rows.into()])
}

/// The rows of `E` whose `(first, second)`, a composite unique key, is one
/// of `pairs`; on SQLite possibly also rows that combine a first and a second
/// of different pairs, which callers tell apart by matching the pair. Each
/// column comes with its PostgreSQL type.
///
/// SQLite reads `first IN (…) AND second IN (…)` through the key's index.
/// PostgreSQL estimates each `IN` value of a column without statistics at
/// 0.5 % of the rows, so a batch's few dozen values read as a large share of
/// the table and it is scanned whole: every batch reads a growing table from
/// end to end until the next `ANALYZE` (never, where autovacuum is off).
/// There the pairs are one JSON parameter ([`pairs_statement`]).
pub async fn find_by_pairs<E, A, B>(
    db: &impl sea_orm::ConnectionTrait,
    first: (E::Column, &str),
    second: (E::Column, &str),
    pairs: &[(A, B)],
) -> Result<Vec<E::Model>, sea_orm::DbErr>
where
    E: sea_orm::EntityTrait,
    A: Into<sea_orm::Value> + serde::Serialize + Clone,
    B: Into<sea_orm::Value> + serde::Serialize + Clone,
{
    use sea_orm::{ColumnTrait as _, IdenStatic as _, QueryFilter as _};
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    if db.get_database_backend() == DbBackend::Postgres {
        let statement = pairs_statement(
            E::default().table_name(),
            (first.0.as_str(), first.1),
            (second.0.as_str(), second.1),
            pairs
                .iter()
                .map(|(a, b)| serde_json::json!({ "a": a, "b": b })),
        );
        return E::find().from_raw_sql(statement).all(db).await;
    }
    E::find()
        .filter(first.0.is_in(pairs.iter().map(|(a, _)| a.clone())))
        .filter(second.0.is_in(pairs.iter().map(|(_, b)| b.clone())))
        .all(db)
        .await
}

/// [`find_by_pairs`]' PostgreSQL statement over `table`, each column given
/// with its type, the pairs as `{"a": …, "b": …}` objects. A plain join on the
/// pairs is no better than the `IN` lists: planned while the table is small,
/// it hashes the pairs against a scan of the table, and the prepared
/// statement keeps that plan as the table grows. Each pair's lookup is
/// therefore a `LATERAL` subquery with `LIMIT 1` (the key is unique), which
/// is never flattened into a join and whose only sensible plan is the index.
fn pairs_statement(
    table: &str,
    (first, first_type): (&str, &str),
    (second, second_type): (&str, &str),
    pairs: impl Iterator<Item = serde_json::Value>,
) -> Statement {
    let sql = format!(
        r#"SELECT t.* FROM json_to_recordset($1::json) AS k("a" {first_type}, "b" {second_type})
        CROSS JOIN LATERAL (SELECT * FROM "{table}" WHERE "{first}" = k."a" AND "{second}" = k."b" LIMIT 1) t"#
    );
    with_json_rows(&sql, pairs)
}

/// Rows per multi-row `INSERT` of [`insert_skipping_conflicts`], well under
/// SQLite's bound on parameters.
pub const INSERT_CHUNK: usize = 500;

/// Inserts `rows` in multi-row statements of [`INSERT_CHUNK`] rows, skipping
/// each row whose `key` (a unique index) is stored already, and returns the
/// `returning` columns of the rows inserted.
///
/// # Errors
/// Database failures.
pub async fn insert_skipping_conflicts<E>(
    db: &impl sea_orm::ConnectionTrait,
    rows: Vec<E::ActiveModel>,
    key: &[E::Column],
    returning: &[E::Column],
) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr>
where
    E: sea_orm::EntityTrait,
{
    use sea_orm::QueryTrait as _;
    use sea_orm::sea_query::{OnConflict, Query};
    let mut inserted = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(INSERT_CHUNK).collect();
        let mut insert = E::insert_many(chunk)
            .on_conflict(
                OnConflict::columns(key.iter().copied())
                    .do_nothing()
                    .to_owned(),
            )
            .into_query();
        insert.returning(Query::returning().columns(returning.iter().copied()));
        inserted.extend(db.query_all(&insert).await?);
    }
    Ok(inserted)
}

/// `CASE WHEN key = k1 THEN v1 WHEN key = k2 THEN v2 … ELSE otherwise END`:
/// one column's new value for each row of a multi-row `UPDATE`.
pub fn per_row<C: sea_orm::ColumnTrait>(
    key: C,
    values: Vec<(i32, sea_orm::Value)>,
    otherwise: sea_orm::sea_query::Expr,
) -> sea_orm::sea_query::Expr {
    use sea_orm::sea_query::{Expr, ExprTrait as _};
    let mut values = values.into_iter();
    let Some((first_key, first_value)) = values.next() else {
        return otherwise;
    };
    values
        .fold(
            Expr::case(Expr::col(key).eq(first_key), first_value),
            |case, (k, v)| case.case(Expr::col(key).eq(k), v),
        )
        .finally(otherwise)
        .into()
}

/// The row `query` finds, locked for the rest of the transaction on
/// PostgreSQL (`FOR UPDATE`). Deletions read their row this way first: the
/// lock waits for transactions that are inserting rows referencing it (a
/// foreign key check holds `FOR KEY SHARE` until their commit) and makes new
/// ones wait, so the checks that follow see every such row. SQLite's single
/// writer serializes the transactions instead.
///
/// # Errors
/// On database errors.
pub async fn find_locked<E, C>(
    db: &C,
    query: sea_orm::Select<E>,
) -> Result<Option<E::Model>, sea_orm::DbErr>
where
    E: sea_orm::EntityTrait,
    C: sea_orm::ConnectionTrait,
{
    use sea_orm::QuerySelect as _;
    let query = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => query.lock_exclusive(),
        _ => query,
    };
    query.one(db).await
}

/// Databases for unit tests.
#[cfg(test)]
pub mod testing {
    use sea_orm::{ConnectOptions, ConnectionTrait as _, Database, DatabaseConnection};

    /// A new empty database, on the PostgreSQL server of `DATABASE_URL` when
    /// it names one, otherwise SQLite in memory (one connection).
    pub async fn any_database() -> DatabaseConnection {
        let server = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| url.starts_with("postgres"));
        let Some(server) = server else {
            let mut options = ConnectOptions::new("sqlite::memory:");
            options.max_connections(1).min_connections(1);
            return Database::connect(options).await.expect("a database");
        };
        let admin = Database::connect(&server).await.expect("the server");
        let name = format!("voltgate_unit_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("a database");
        let mut url = url::Url::parse(&server).expect("a URL");
        url.set_path(&name);
        Database::connect(url.as_str())
            .await
            .expect("the new database")
    }

    /// How many sessions of `db`'s PostgreSQL database wait for a lock
    /// (another transaction's).
    pub async fn sessions_waiting_for_a_lock(db: &DatabaseConnection) -> i64 {
        let waiting = sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT COUNT(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        let row = db
            .query_one_raw(waiting)
            .await
            .expect("query")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("a count")
    }

    /// Returns once a session of `db`'s PostgreSQL database waits for a
    /// lock, so a test can commit the transaction holding it after the
    /// waiter has taken its turn; fails after 10 s.
    pub async fn until_a_session_waits_for_a_lock(db: &DatabaseConnection) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while sessions_waiting_for_a_lock(db).await == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no session waited for a lock"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait as _, Statement};

    use super::*;

    async fn pragma(db: &DatabaseConnection, name: &str) -> i64 {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("PRAGMA {name}"),
            ))
            .await
            .expect("pragma runs")
            .expect("pragma returns a row");
        row.try_get_by_index::<i64>(0).expect("an integer")
    }

    /// The first column of every row `sql` returns, as text.
    async fn texts(db: &DatabaseConnection, sql: &str) -> Vec<String> {
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("query runs");
        rows.iter()
            .map(|row| row.try_get_by_index(0).expect("text"))
            .collect()
    }

    /// The rebuild that leaves SQLite's telemetry with its session's key only
    /// keeps every row and id; `down` gives the three keys back, and the four
    /// indexes the migration after it replaced.
    #[tokio::test]
    async fn telemetry_keeps_its_rows_when_sqlite_rebuilds_it_with_one_key() {
        use migration::{Migrator, MigratorTrait as _};
        let dir = std::env::temp_dir().join(format!("voltgate-rebuild-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("rebuild.db");
        // One connection: the pragma below holds for every statement after it.
        let mut options = pool_options(&format!("sqlite://{}?mode=rwc", file.display()));
        options.max_connections(1);
        let db = sea_orm::Database::connect(options).await.expect("connects");
        let migrations = Migrator::migrations();
        let rebuild = migrations
            .iter()
            .position(|m| m.name() == "m20261211_010000_telemetry_keys")
            .expect("the rebuild is a migration");
        let before_rebuild = u32::try_from(rebuild).expect("few");
        let from_rebuild = u32::try_from(migrations.len() - rebuild).expect("few");
        Migrator::up(&db, Some(before_rebuild))
            .await
            .expect("migrates");
        // Rows whose session, device and bay do not exist: the rows alone matter here.
        db.execute_unprepared("PRAGMA foreign_keys = OFF")
            .await
            .expect("pragma");
        db.execute_unprepared(
            "INSERT INTO session_telemetry (id, session_id, device_id, bay_id, current_a, voltage_v, \
             energy_kwh, ts, ts_us, received_at) VALUES \
             (41, 7, 8, 9, 16.5, 230.0, 1.25, '2026-12-05T00:00:00Z', 1, '2026-12-05T00:00:00Z'), \
             (42, 7, 8, 9, 16.0, 231.0, 1.5, '2026-12-05T00:00:01Z', 2, '2026-12-05T00:00:01Z')",
        )
        .await
        .expect("samples");
        let keys = || {
            texts(
                &db,
                "SELECT \"table\" FROM pragma_foreign_key_list('session_telemetry') ORDER BY 1",
            )
        };
        assert_eq!(keys().await, ["bays", "charging_sessions", "devices"]);

        Migrator::up(&db, None).await.expect("rebuilds");
        assert_eq!(keys().await, ["charging_sessions"]);
        let kept = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT id, energy_kwh FROM session_telemetry ORDER BY id",
            ))
            .await
            .expect("rows");
        let kept: Vec<(i64, f64)> = kept
            .iter()
            .map(|row| {
                (
                    row.try_get_by_index(0).expect("id"),
                    row.try_get_by_index(1).expect("energy"),
                )
            })
            .collect();
        assert_eq!(kept, [(41, 1.25), (42, 1.5)]);
        let indexes = texts(
            &db,
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'session_telemetry' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .await;
        // Rebuilt with its four indexes, which a later migration replaces with one.
        assert_eq!(indexes, ["ux_session_telemetry_session_id_ts_us_device_id"]);
        // A new sample takes the next id, not one of the kept ones.
        db.execute_unprepared(
            "INSERT INTO session_telemetry (session_id, device_id, bay_id, current_a, voltage_v, \
             energy_kwh, ts, ts_us, received_at) VALUES \
             (7, 8, 9, 15.0, 229.0, 1.75, '2026-12-05T00:00:02Z', 3, '2026-12-05T00:00:02Z')",
        )
        .await
        .expect("a new sample");
        let newest = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT MAX(id) FROM session_telemetry",
            ))
            .await
            .expect("max")
            .expect("a row");
        assert_eq!(newest.try_get_by_index::<i64>(0).expect("id"), 43);

        Migrator::down(&db, Some(from_rebuild))
            .await
            .expect("rolls back");
        assert_eq!(keys().await, ["bays", "charging_sessions", "devices"]);
        let indexes = texts(
            &db,
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'session_telemetry' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .await;
        assert_eq!(
            indexes,
            [
                "ix_session_telemetry_bay_id_id",
                "ix_session_telemetry_session_id_ts_us",
                "ix_session_telemetry_ts_us",
                "ux_session_telemetry_device_id_ts_us",
            ]
        );
        db.close().await.ok();
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Commits only append to the WAL; the side connection copies the pages back
    /// into the database file, which therefore grows without any commit doing it.
    #[tokio::test]
    async fn a_served_sqlite_database_is_checkpointed_off_the_commit_path() {
        let dir = std::env::temp_dir().join(format!("voltgate-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("wal.db");
        let settings = DatabaseSettings {
            database_url: format!("sqlite://{}?mode=rwc", file.display()),
            db_max_connections: 1,
            db_readers: 1,
            db_lane_connections: 1,
        };
        let (db, checkpointer) = connect_for_serving(&settings).await.expect("connects");
        assert!(checkpointer.is_some());
        assert_eq!(pragma(&db, "wal_autocheckpoint").await, 0);

        db.execute_unprepared("CREATE TABLE filler (payload BLOB NOT NULL)")
            .await
            .expect("create");
        let size_before = std::fs::metadata(&file).map_or(0, |m| m.len());
        for _ in 0..200 {
            db.execute_unprepared("INSERT INTO filler VALUES (zeroblob(4000))")
                .await
                .expect("insert");
        }
        // 200 rows of ~4 KB: at least 800 KB once checkpointed into the file.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let size = std::fs::metadata(&file).map_or(0, |m| m.len());
            if size > size_before + 700_000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the database file stayed at {size} bytes: no checkpoint ran"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(checkpointer);
        db.close().await.ok();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn only_file_databases_get_a_checkpointer() {
        assert!(is_sqlite_file("sqlite://voltgate.db?mode=rwc"));
        assert!(!is_sqlite_file("sqlite::memory:"));
        assert!(!is_sqlite_file("sqlite://x?mode=memory"));
        assert!(!is_sqlite_file("postgres://postgres@127.0.0.1/voltgate"));
    }

    /// A composite key's pairs read exactly those rows, each by the key's
    /// index: even as planned once for an empty table that was never
    /// analyzed, which is the plan a prepared statement keeps as it grows
    /// (`a IN (…) AND b IN (…)`, or a plain join, then scan the whole table).
    #[tokio::test]
    async fn pairs_are_read_by_the_key_however_the_table_grew() {
        let Some(server) = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| url.starts_with("postgres"))
        else {
            // PostgreSQL's form only; SQLite keeps the portable `IN` lists.
            return;
        };
        // One connection: the temporary table and the setting are its session's.
        let mut options = pool_options(&server);
        options.max_connections(1);
        let db = sea_orm::Database::connect(options).await.expect("connects");
        for sql in [
            "CREATE TEMP TABLE pairs (id serial PRIMARY KEY, scope text NOT NULL, nonce text NOT NULL, UNIQUE (scope, nonce))",
            "SET plan_cache_mode = force_generic_plan",
        ] {
            db.execute_unprepared(sql).await.expect("set up");
        }
        let columns = (("scope", "text"), ("nonce", "text"));
        let pairs_of = |pairs: Vec<(String, String)>| {
            let rows = pairs
                .into_iter()
                .map(|(a, b)| serde_json::json!({ "a": a, "b": b }));
            pairs_statement("pairs", columns.0, columns.1, rows)
        };

        let many = (1..=60)
            .map(|g| (format!("s{}", g % 50), format!("n{g}")))
            .collect();
        let statement = pairs_of(many);
        let explain = Statement {
            sql: format!("EXPLAIN {}", statement.sql),
            ..statement
        };
        let plan: Vec<String> = db
            .query_all_raw(explain)
            .await
            .expect("explained")
            .iter()
            .map(|row| row.try_get_by_index(0).expect("text"))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("Index Scan"), "{plan}");
        assert!(!plan.contains("Seq Scan on pairs"), "{plan}");

        db.execute_unprepared(
            "INSERT INTO pairs (scope, nonce) SELECT 's' || (g % 50), 'n' || g FROM generate_series(1, 5000) g",
        )
        .await
        .expect("rows");
        // Stored pairs, and a scope and a nonce that are stored, but not together.
        let wanted = [("s1", "n1"), ("s2", "n2"), ("s1", "n2")];
        let wanted = wanted.iter().map(|(a, b)| ((*a).into(), (*b).into()));
        let mut found: Vec<String> = db
            .query_all_raw(pairs_of(wanted.collect()))
            .await
            .expect("query runs")
            .iter()
            .map(|row| {
                let scope: String = row.try_get("", "scope").expect("scope");
                let nonce: String = row.try_get("", "nonce").expect("nonce");
                format!("{scope}/{nonce}")
            })
            .collect();
        found.sort();
        assert_eq!(found, ["s1/n1", "s2/n2"]);
    }
}
