//! A reservation of a bay for one person and one slot (`Reservation`).
//!
//! The window is stored as integer microseconds so overlap checks compare
//! numbers on every backend. `auth_method_id` is the credential that opens the
//! bay: the person's RFID badge, or a temporary QR/code method created with the
//! reservation (stored hashed, valid only around the slot).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Lifecycle of a reservation (`ReservationStatus`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "confirmed")]
    Confirmed,
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    #[sea_orm(string_value = "completed")]
    Completed,
}

impl ReservationStatus {
    /// The statuses that hold the bay for their window.
    pub const HOLDING: [Self; 3] = [Self::Pending, Self::Confirmed, Self::Active];

    pub fn holds_bay(self) -> bool {
        Self::HOLDING.contains(&self)
    }
}

/// How the customer opens the bay (`ReservationAuthChoice`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    #[sea_orm(string_value = "rfid")]
    Rfid,
    #[sea_orm(string_value = "qr")]
    Qr,
    #[sea_orm(string_value = "code")]
    Code,
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "reservations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub reference_code: String,
    pub user_id: i32,
    pub bay_id: i32,
    pub auth_method_id: Option<i32>,
    pub auth_choice: AccessMode,
    pub starts_at_us: i64,
    pub ends_at_us: i64,
    pub status: ReservationStatus,
    pub cancelled_at_us: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
    #[sea_orm(
        belongs_to = "super::bay::Entity",
        from = "Column::BayId",
        to = "super::bay::Column::Id",
        on_delete = "Cascade"
    )]
    Bay,
    #[sea_orm(
        belongs_to = "super::auth_method::Entity",
        from = "Column::AuthMethodId",
        to = "super::auth_method::Column::Id"
    )]
    AuthMethod,
}

impl Related<super::auth_method::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AuthMethod.def()
    }
}

impl Related<super::bay::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bay.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Entity {
    /// The reservations `principal` may read: every one for staff, one's own
    /// for a person, none for devices.
    pub fn visible_to(principal: &crate::auth::Principal) -> Select<Self> {
        Self::find().filter(principal.accounts().on(Column::UserId))
    }
}
