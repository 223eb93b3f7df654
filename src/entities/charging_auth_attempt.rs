//! One authentication attempt at a kiosk (the `Authentification` history):
//! which bay, which method, whether it matched a reservation. Failed attempts
//! are what the per-kiosk and per-bay limits count (`created_at_us`, integer
//! microseconds); the credential itself is never stored.

use sea_orm::entity::prelude::*;

use super::reservation::AccessMode;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "charging_auth_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub cabinet_id: i32,
    pub bay_id: i32,
    /// The reservation it opened, or for a failure the one the bay held then.
    pub reservation_id: Option<i32>,
    pub user_id: Option<i32>,
    pub session_id: Option<i32>,
    pub method: AccessMode,
    pub succeeded: bool,
    pub created_at: DateTimeUtc,
    pub created_at_us: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
