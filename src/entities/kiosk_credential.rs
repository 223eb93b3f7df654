//! A cabinet's kiosk credential (`kiosk_credentials`): the SHA-256 of a 256-bit
//! random secret, shown once when staff issue it. At most one per cabinet is
//! live (`revoked_at` null, enforced by a partial unique index); `hint` is the
//! secret's first characters, so staff can tell credentials apart.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "kiosk_credentials")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub cabinet_id: i32,
    #[sea_orm(unique)]
    pub secret_hash: String,
    pub hint: String,
    pub label: String,
    pub created_by: Option<i32>,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::cabinet::Entity",
        from = "Column::CabinetId",
        to = "super::cabinet::Column::Id",
        on_delete = "Cascade"
    )]
    Cabinet,
}

impl Related<super::cabinet::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Cabinet.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
