//! A customer's one-use code linking the next badge scanned at one cabinet's
//! kiosk to their account (`badge_link_codes`): stored as a SHA-256, expiring
//! (`expires_at_us`, integer microseconds), `used_at` set once by a
//! conditional `UPDATE`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "badge_link_codes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: i32,
    pub cabinet_id: i32,
    pub code_hash: String,
    pub expires_at_us: i64,
    pub used_at: Option<DateTimeUtc>,
    /// The badge it linked.
    pub auth_method_id: Option<i32>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
