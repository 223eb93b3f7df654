//! One scan at a door, accepted or rejected (pretix `Checkin`, django-program
//! `CheckIn`): who scanned (a scanner device, a person or a team token), at
//! which gate, when the scan happened, and its outcome. The history is
//! complete: rejected and forced scans are rows too.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Entering or leaving.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
#[serde(rename_all = "snake_case")]
pub enum CheckinKind {
    #[sea_orm(string_value = "entry")]
    Entry,
    #[sea_orm(string_value = "exit")]
    Exit,
}

/// Why a scan was rejected (pretix's reasons).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// No ticket has this secret (or not on this event).
    #[sea_orm(string_value = "invalid")]
    Invalid,
    /// The order is not paid and the list does not admit pending orders.
    #[sea_orm(string_value = "unpaid")]
    Unpaid,
    /// The order or the ticket was canceled (or expired unpaid).
    #[sea_orm(string_value = "canceled")]
    Canceled,
    /// The ticket is blocked.
    #[sea_orm(string_value = "blocked")]
    Blocked,
    /// The ticket is for another date of the series.
    #[sea_orm(string_value = "invalid_time")]
    InvalidTime,
    /// The list does not admit the ticket's product.
    #[sea_orm(string_value = "product")]
    Product,
    /// The holder is inside already (or entered once, without re-entry).
    #[sea_orm(string_value = "already_redeemed")]
    AlreadyRedeemed,
    /// The secret was replaced by a newer one.
    #[sea_orm(string_value = "revoked")]
    Revoked,
    /// The ticket is valid on more than one of the lists scanned for.
    #[sea_orm(string_value = "ambiguous")]
    Ambiguous,
    /// The scan could not be processed.
    #[sea_orm(string_value = "error")]
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "checkins")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    pub list_id: i32,
    /// `None` when the scanned secret matched no ticket.
    pub position_id: Option<i32>,
    pub kind: CheckinKind,
    pub successful: bool,
    pub reason: Option<RejectReason>,
    /// Recorded as it happened offline, even where it would be rejected now.
    pub forced: bool,
    pub scanner_id: Option<i32>,
    pub user_id: Option<i32>,
    pub team_api_token_id: Option<i32>,
    pub gate: String,
    pub note: Option<String>,
    /// JSON object of the answers given to the list's questions.
    pub answers: String,
    /// Who the nonce belongs to (`scanner:<id>`, `user:<id>`, …).
    pub nonce_scope: Option<String>,
    pub nonce: Option<String>,
    /// When the scan happened (the scanner's time for uploads).
    pub datetime: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
