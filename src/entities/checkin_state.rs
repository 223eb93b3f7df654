//! Where a ticket stands on a check-in list: inside or not, and how many
//! entries were admitted. Entries change it only by an insert or a conditional
//! `UPDATE`, so concurrent scans of one ticket admit it once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "checkin_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub list_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position_id: i32,
    /// The ticket's product, for counts per product.
    pub product_id: i32,
    pub inside: bool,
    pub entries: i32,
    pub last_entry_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    /// What `inside` was before the last change, read back by the statement
    /// that made it to keep the counters (`checkin_count`) right.
    pub previously_inside: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
