//! An account's customer at a payment provider (django-program
//! `StripeCustomer`): made on the account's first payment through the
//! provider and reused after, one per account and provider.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_provider_customers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: i32,
    /// The provider's name (`stripe`, `test`).
    pub provider: String,
    /// What the provider calls the customer (`cus_…`).
    pub customer_id: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
