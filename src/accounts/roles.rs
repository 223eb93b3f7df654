//! Roles held by accounts (`Role`, `UtilisateurRole`).
//!
//! Staff access is decided by the `is_staff` flag; the administrator role mirrors
//! it, so the two always change together. Kiosks authenticate with per-cabinet
//! credentials, not accounts, so the kiosk role is never granted to a person.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, TransactionTrait,
};

use super::admin::managed;
use super::journal::{self, action};
use super::sessions::outdate_access_tokens;
use crate::auth::Person;
use crate::entities::RoleName;
use crate::entities::{role, user, user_role};
use crate::error::{AppError, AppResult};

async fn role_row(db: &impl ConnectionTrait, name: RoleName) -> AppResult<role::Model> {
    role::Entity::find()
        .filter(role::Column::Name.eq(name.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("role {} is missing", name.as_str())))
}

/// Gives `user_id` a role (idempotent).
pub async fn assign(db: &impl ConnectionTrait, user_id: i32, name: RoleName) -> AppResult<()> {
    let role = role_row(db, name).await?;
    let held = user_role::Entity::find_by_id((user_id, role.id))
        .one(db)
        .await?;
    if held.is_none() {
        user_role::ActiveModel {
            user_id: Set(user_id),
            role_id: Set(role.id),
            assigned_at: Set(chrono::Utc::now()),
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Takes a role away from `user_id` (idempotent).
pub async fn remove(db: &impl ConnectionTrait, user_id: i32, name: RoleName) -> AppResult<()> {
    let role = role_row(db, name).await?;
    user_role::Entity::delete_by_id((user_id, role.id))
        .exec(db)
        .await?;
    Ok(())
}

/// The roles each of `user_ids` holds, sorted; users without roles map to an empty list.
pub async fn held_by(
    db: &impl ConnectionTrait,
    user_ids: &[i32],
) -> AppResult<HashMap<i32, Vec<RoleName>>> {
    Ok(user_role::held_by(db, user_ids).await?)
}

/// Every role with its description, by name.
pub async fn catalog(db: &impl ConnectionTrait) -> AppResult<Vec<(RoleName, String)>> {
    let mut roles: Vec<(RoleName, String)> = role::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter_map(|r| RoleName::parse(&r.name).map(|name| (name, r.description)))
        .collect();
    roles.sort_by_key(|(name, _)| name.as_str());
    Ok(roles)
}

/// Sets the staff flag and the administrator role together.
pub async fn set_staff(db: &impl ConnectionTrait, user_id: i32, is_staff: bool) -> AppResult<()> {
    user::Entity::update_many()
        .col_expr(
            user::Column::IsStaff,
            sea_orm::sea_query::Expr::value(is_staff),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    if is_staff {
        assign(db, user_id, RoleName::Administrator).await
    } else {
        remove(db, user_id, RoleName::Administrator).await
    }
}

/// Sets the superuser flag; a superuser is staff too.
pub async fn set_superuser(
    db: &impl ConnectionTrait,
    user_id: i32,
    is_superuser: bool,
) -> AppResult<()> {
    user::Entity::update_many()
        .col_expr(
            user::Column::IsSuperuser,
            sea_orm::sea_query::Expr::value(is_superuser),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    if is_superuser {
        set_staff(db, user_id, true).await?;
    }
    Ok(())
}

/// Whether a role is granted or revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Grant,
    Revoke,
}

/// Staff: grants or revokes a role. The administrator role also sets or clears
/// the staff flag. The account's access tokens are outdated, so its rights change
/// at once everywhere (the next refresh carries the new ones).
///
/// # Errors
/// `NOT_FOUND` for unknown users; `FORBIDDEN` when the target is a superuser and
/// the actor is not; `BAD_USER_INPUT` for the kiosk role or when staff would
/// remove their own administrator role.
pub async fn change(
    db: &DatabaseConnection,
    actor: &Person,
    user_id: i32,
    role: RoleName,
    change: Change,
    ip: Option<&str>,
) -> AppResult<user::Model> {
    if role == RoleName::Kiosk {
        return Err(AppError::bad_input(
            "role",
            "kiosks use cabinet credentials; the role is not given to accounts",
        ));
    }
    if actor.id == user_id && role == RoleName::Administrator && change == Change::Revoke {
        return Err(AppError::bad_input(
            "role",
            "you cannot remove your own administrator role",
        ));
    }
    let txn = db.begin().await?;
    managed(&txn, actor, user_id).await?;
    match (role, change) {
        (RoleName::Administrator, change) => {
            set_staff(&txn, user_id, change == Change::Grant).await?;
        }
        (role, Change::Grant) => assign(&txn, user_id, role).await?,
        (role, Change::Revoke) => remove(&txn, user_id, role).await?,
    }
    outdate_access_tokens(&txn, user_id).await?;
    let account = super::account(&txn, user_id).await?;
    txn.commit().await?;
    let verb = match change {
        Change::Grant => "granted",
        Change::Revoke => "revoked",
    };
    journal::at(db, ip)
        .success(
            Some(user_id),
            action::ROLE_CHANGE,
            &format!("{} {verb} by user {}", role.as_str(), actor.id),
        )
        .await;
    Ok(account)
}
