//! The last invoice number given per organizer and prefix; the next one is
//! taken by an `UPDATE` of this row in the transaction storing the invoice.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoice_numbers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organizer_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub prefix: String,
    pub last_number: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
