//! A check-in list (pretix `CheckinList`): which tickets of an event a door
//! admits (all products or a chosen set, one date of a series or all), whether
//! pending orders are let in, and whether re-entry is allowed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "checkin_lists")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    /// Only tickets of this date; all dates when `None`.
    pub sub_event_id: Option<i32>,
    pub name: String,
    /// Every product admits; otherwise the ones in `checkin_list_products`.
    pub all_products: bool,
    /// Tickets of orders not yet paid are admitted.
    pub include_pending: bool,
    /// An entry is admitted even while the holder is inside.
    pub allow_multiple_entries: bool,
    /// An entry is admitted again after an exit.
    pub allow_entry_after_exit: bool,
    /// JSON array of the questions every entry must answer.
    pub questions: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The questions every entry must answer.
    pub fn question_list(&self) -> Vec<String> {
        serde_json::from_str(&self.questions).unwrap_or_default()
    }
}
