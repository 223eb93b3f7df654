//! One failed try at applying a webhook event (django-program
//! `EventProcessingException`), kept for whoever investigates.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_webhook_failures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub webhook_event_id: i32,
    pub message: String,
    /// What was being done (JSON text: the attempt and the event's type).
    pub data: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
