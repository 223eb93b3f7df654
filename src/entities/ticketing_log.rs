//! The ticketing audit log (pretix `LogEntry`): who (an account or a team API
//! token) did what to which object, when, with what data.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticketing_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub organizer_id: i32,
    pub event_id: Option<i32>,
    pub user_id: Option<i32>,
    pub team_api_token_id: Option<i32>,
    /// e.g. `voltgate.event.created`.
    pub action_type: String,
    pub object_type: String,
    pub object_id: i32,
    /// JSON.
    pub data: String,
    pub datetime: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
