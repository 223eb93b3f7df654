//! One security-relevant event (`JournalSecurite`). Kept when the account is deleted, with the user unlinked.

use sea_orm::entity::prelude::*;

use super::SecurityLogStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "security_logs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: Option<i32>,
    pub action: String,
    pub ip: Option<String>,
    pub status: SecurityLogStatus,
    pub detail: String,
    pub occurred_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    User,
}

impl ActiveModelBehavior for ActiveModel {}

impl Entity {
    /// The journal entries `principal` may read: all for staff, a person's own otherwise (entries of unknown accounts only for staff).
    pub fn visible_to(principal: &crate::auth::Principal) -> Select<Self> {
        Self::find().filter(principal.accounts().on(Column::UserId))
    }
}
