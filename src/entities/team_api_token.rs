//! A team's API token (pretix `TeamAPIToken`): acts with its team's
//! permissions. Only the SHA-256 of the token is stored; revoking clears
//! `active`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "team_api_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub team_id: i32,
    pub name: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub active: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
