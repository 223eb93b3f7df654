//! A ticketed event (pretix `Event`, django-program's conference, the olympic
//! `evenement`): its slug is unique per organizer.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub organizer_id: i32,
    pub name: String,
    pub slug: String,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    pub date_from: DateTimeUtc,
    pub date_to: Option<DateTimeUtc>,
    pub presale_start: Option<DateTimeUtc>,
    pub presale_end: Option<DateTimeUtc>,
    pub location: Option<String>,
    /// IANA time zone name, e.g. `Europe/Paris`.
    pub time_zone: String,
    /// Shop open to the public.
    pub live: bool,
    /// Orders are test orders.
    pub testmode: bool,
    pub has_subevents: bool,
    /// Comma-separated sales channel names (`web`, `box_office`, …).
    pub sales_channels: String,
    /// How long a cart position holds quota.
    pub cart_hold_minutes: i32,
    /// Until when buyers may change their orders' answers (pretix
    /// `last_order_modification_date`); the event's start when `None`.
    pub last_order_modification_date: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// Whether presale is open at `now` (pretix `presale_is_running`).
    pub fn presale_is_running(&self, now: DateTimeUtc) -> bool {
        self.presale_start.is_none_or(|start| start <= now) && !self.presale_has_ended(now)
    }

    /// Whether presale is over at `now` (pretix `presale_has_ended`).
    pub fn presale_has_ended(&self, now: DateTimeUtc) -> bool {
        self.presale_end.is_some_and(|end| end <= now)
    }
}
