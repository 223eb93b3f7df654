//! A role held by a user (`UtilisateurRole`).

use std::collections::HashMap;

use sea_orm::entity::prelude::*;

use super::role::{self, RoleName};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_roles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub role_id: i32,
    pub assigned_at: DateTimeUtc,
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

/// The roles each of `user_ids` holds, sorted by name; users without roles map
/// to an empty list.
///
/// # Errors
/// On database errors.
pub async fn held_by(
    db: &impl ConnectionTrait,
    user_ids: &[i32],
) -> Result<HashMap<i32, Vec<RoleName>>, DbErr> {
    let mut held: HashMap<i32, Vec<RoleName>> =
        user_ids.iter().map(|id| (*id, Vec::new())).collect();
    let links = Entity::find()
        .filter(Column::UserId.is_in(user_ids.iter().copied()))
        .all(db)
        .await?;
    if links.is_empty() {
        return Ok(held);
    }
    // The roles table holds a handful of rows: read it whole rather than join.
    let names: HashMap<i32, RoleName> = role::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter_map(|r| RoleName::parse(&r.name).map(|name| (r.id, name)))
        .collect();
    for link in links {
        if let Some(name) = names.get(&link.role_id) {
            held.entry(link.user_id).or_default().push(*name);
        }
    }
    for roles in held.values_mut() {
        roles.sort_by_key(|r| r.as_str());
    }
    Ok(held)
}
