//! A ticket blocked by its organizer (pretix `OrderPosition.blocked`): doors
//! refuse it with `BLOCKED` until it is unblocked. Unblocking keeps the row
//! (`blocked = false`) so offline deltas see the change.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_blocks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub position_id: i32,
    pub event_id: i32,
    pub blocked: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
