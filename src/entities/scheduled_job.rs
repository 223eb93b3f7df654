//! The schedule of a background job: when it runs next and who claimed its last run.
//! One row per job; a replica runs the job only after moving `next_run_at` on in
//! one conditional `UPDATE`, so each run is claimed once across replicas.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scheduled_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// When the next run is due, in microseconds since the epoch.
    pub next_run_at: i64,
    /// The replica that claimed the last run.
    pub claimed_by: Option<String>,
    /// When the last run was claimed, in microseconds since the epoch.
    pub claimed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
