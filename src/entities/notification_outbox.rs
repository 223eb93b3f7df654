//! The notification outbox: a message for a person, written in the same
//! transaction as the change it reports, delivered later by a job through the
//! configured provider (`services::Outbox`), and marked sent (`sent_at_us`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: i32,
    pub template: String,
    /// JSON text of the template's data.
    pub payload: String,
    pub created_at: DateTimeUtc,
    pub sent_at_us: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
