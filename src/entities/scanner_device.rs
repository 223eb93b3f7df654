//! A door scanner device (pretix's check-in device): bound to an event and a
//! gate, it exchanges its credential for short-lived scanner access tokens.
//! Only the SHA-256 of the credential is stored; revoking clears `active`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scanner_devices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    pub name: String,
    pub gate: String,
    /// Hex SHA-256 of the credential.
    pub secret_hash: String,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
