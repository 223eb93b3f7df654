//! The products a voucher applies to (pretix's `item`, django-program's
//! applicable ticket types and add-ons, one link); none means all.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "voucher_products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub voucher_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: i32,
    pub added_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
