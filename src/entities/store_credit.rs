//! A store credit (django-program `Credit`): issued to a customer by a
//! refund, spent on later orders of the same event until nothing remains or
//! it expires.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The stored status; a credit past `expires` reads as expired whatever this says.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum CreditStatus {
    #[sea_orm(string_value = "available")]
    Available,
    /// Spent entirely.
    #[sea_orm(string_value = "applied")]
    Applied,
    #[sea_orm(string_value = "expired")]
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "store_credits")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: i32,
    pub event_id: i32,
    pub amount_minor: i64,
    pub remaining_minor: i64,
    pub status: CreditStatus,
    pub source_order_id: Option<i32>,
    pub source_refund_id: Option<i32>,
    /// The last order it paid for.
    pub applied_to_order_id: Option<i32>,
    pub note: String,
    pub expires: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl Model {
    /// Its status at `now`: expired once past `expires`.
    pub fn status_at(&self, now: chrono::DateTime<chrono::Utc>) -> CreditStatus {
        if self.status == CreditStatus::Available && self.expires <= now {
            CreditStatus::Expired
        } else {
            self.status
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
