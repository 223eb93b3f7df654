//! A saved authentication method (`Authentification`): an RFID badge, a QR or one-time code. The secret is stored only as a SHA-256 hash; `display_value` is a safe hint (its last characters).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_methods")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: i32,
    pub auth_type_id: i32,
    pub value_hash: String,
    pub display_value: String,
    pub metadata: Json,
    pub expires_at: Option<DateTimeUtc>,
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl ActiveModelBehavior for ActiveModel {}
