//! A kiosk's mobile pairing (`kiosk_pairings`): a short-lived token shown as a
//! QR code, stored as its SHA-256; `PENDING` until a customer authorizes one of
//! their reservations with it, `AUTHORIZED` until the kiosk consumes it
//! (`CONSUMED`, with the session it opened). Every move is a conditional
//! `UPDATE` on the state read, so each happens once.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum PairingState {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "authorized")]
    Authorized,
    #[sea_orm(string_value = "consumed")]
    Consumed,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "kiosk_pairings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub cabinet_id: i32,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub state: PairingState,
    pub expires_at_us: i64,
    pub user_id: Option<i32>,
    pub reservation_id: Option<i32>,
    pub session_id: Option<i32>,
    pub created_at: DateTimeUtc,
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
