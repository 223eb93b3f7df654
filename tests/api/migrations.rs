//! The latest migrations roll back and apply again on a database in use,
//! keeping every row: a new migration's `down` is tested as soon as it is
//! added, on both backends (a rollback that rebuilds a table, as SQLite needs
//! to drop a constraint, must carry its rows across).

use std::collections::BTreeMap;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement};

use crate::helpers::{fresh_database_url, topic_root};

/// How many migrations at the end of the list are rolled back and applied again.
const ROLLED_BACK: u32 = 3;

async fn row_counts(db: &DatabaseConnection) -> BTreeMap<String, i64> {
    let backend = db.get_database_backend();
    let tables = match backend {
        DatabaseBackend::Postgres => {
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    };
    let mut counts = BTreeMap::new();
    for row in db
        .query_all_raw(Statement::from_string(backend, tables))
        .await
        .expect("tables are listed")
    {
        let name: String = row.try_get("", "name").expect("a table name");
        if name == "seaql_migrations" {
            continue;
        }
        let counted = db
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT COUNT(*) AS n FROM \"{name}\""),
            ))
            .await
            .expect("rows are counted")
            .expect("one row");
        counts.insert(name, counted.try_get::<i64>("", "n").expect("a count"));
    }
    counts
}

#[tokio::test]
async fn the_latest_migrations_roll_back_and_apply_again_keeping_every_row() {
    let url = fresh_database_url().await;
    let db = Database::connect(&url).await.expect("connects");
    Migrator::up(&db, None).await.expect("migrates");
    let credentials = std::env::temp_dir().join(format!(
        "voltgate-tests/migrations-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    let size = voltgate::seed::DemoSize {
        stations: 2,
        cabinets_per_station: 1,
        bays_per_cabinet: 3,
    };
    voltgate::seed::everything(&db, &size, &topic_root(), &credentials)
        .await
        .expect("the demo is seeded");
    std::fs::remove_file(&credentials).ok();
    let before = row_counts(&db).await;
    assert!(
        before.get("session_telemetry").copied().unwrap_or(0) > 0,
        "the demo's session has telemetry to keep: {before:?}"
    );

    Migrator::down(&db, Some(ROLLED_BACK))
        .await
        .expect("rolls back");
    let pending = Migrator::get_pending_migrations(&db).await.expect("status");
    assert_eq!(pending.len(), ROLLED_BACK as usize);
    Migrator::up(&db, None).await.expect("applies again");

    assert!(
        Migrator::get_pending_migrations(&db)
            .await
            .expect("status")
            .is_empty()
    );
    assert_eq!(row_counts(&db).await, before, "every table keeps its rows");
}
