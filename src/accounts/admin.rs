//! Staff administration of accounts.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Select, Set,
};

use super::journal::{self, action};
use super::sessions::revoke_all;
use crate::auth::tokens::random_token;
use crate::auth::{UserPrincipal, password};
use crate::entities::{SecurityLogStatus, UserStatus, user};
use crate::error::{AppError, AppResult};
use crate::graphql::pagination::{Page, PageRequest};

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub status: Option<UserStatus>,
    pub is_staff: Option<bool>,
    /// Matches the start of the username or email.
    pub search: Option<String>,
}

fn filtered(filter: &UserFilter) -> Select<user::Entity> {
    let mut query = user::Entity::find();
    if let Some(status) = filter.status {
        query = query.filter(user::Column::Status.eq(status));
    }
    if let Some(is_staff) = filter.is_staff {
        query = query.filter(user::Column::IsStaff.eq(is_staff));
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
    {
        query = query.filter(
            Condition::any()
                .add(user::Column::Username.starts_with(search.as_str()))
                .add(user::Column::Email.starts_with(search.as_str())),
        );
    }
    query
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &UserFilter,
    page: PageRequest,
) -> AppResult<Page<user::Model>> {
    crate::db::page_by_id(db, filtered(filter), user::Column::Id, page).await
}

/// Sets an account's status. Suspending or archiving ends its sessions at once.
///
/// # Errors
/// `NOT_FOUND` for unknown users; `BAD_USER_INPUT` when staff would lock themselves out.
pub async fn set_status(
    db: &DatabaseConnection,
    actor: &UserPrincipal,
    user_id: i32,
    status: UserStatus,
    ip: Option<&str>,
) -> AppResult<user::Model> {
    if actor.id == user_id && status != UserStatus::Active {
        return Err(AppError::bad_input(
            "status",
            "you cannot suspend or archive your own account",
        ));
    }
    let account = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("user"))?;
    let mut active: user::ActiveModel = account.into();
    active.status = Set(status);
    active.is_active = Set(status == UserStatus::Active);
    let account = active.update(db).await?;
    if status != UserStatus::Active {
        revoke_all(db, user_id).await?;
    }
    let detail = format!("set to {status:?} by user {}", actor.id);
    journal::record(
        db,
        Some(user_id),
        action::STATUS_CHANGE,
        ip,
        SecurityLogStatus::Success,
        &detail,
    )
    .await;
    Ok(account)
}

/// Replaces a user's password with a random temporary one, which must be changed at next sign-in.
///
/// # Errors
/// `NOT_FOUND` for unknown users.
pub async fn reset_password(
    db: &DatabaseConnection,
    actor: &UserPrincipal,
    user_id: i32,
    ip: Option<&str>,
) -> AppResult<(user::Model, String)> {
    let account = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("user"))?;
    // 20 characters of a random token, plus a digit so the policy always holds.
    let temporary = format!("{}7", &random_token()[..20]);
    let hash = password::hash(&temporary).await?;
    revoke_all(db, user_id).await?;
    let mut active: user::ActiveModel = account.into();
    active.password_hash = Set(hash);
    active.needs_password_change = Set(true);
    active.failed_attempts = Set(0);
    active.locked_until = Set(None);
    active.update(db).await?;
    let account = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("user"))?;
    let detail = format!("temporary password set by user {}", actor.id);
    journal::record(
        db,
        Some(user_id),
        action::PASSWORD_RESET,
        ip,
        SecurityLogStatus::Success,
        &detail,
    )
    .await;
    Ok((account, temporary))
}

/// Creates a staff superuser with the administrator role.
///
/// # Errors
/// `BAD_USER_INPUT` for malformed fields or a weak password, `CONFLICT` when taken.
pub async fn create_superuser(
    db: &DatabaseConnection,
    username: &str,
    email: &str,
    password: &str,
) -> AppResult<user::Model> {
    use super::registration::{self, Registration};
    let account = registration::register(
        db,
        Registration {
            username: username.to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            phone: None,
            full_name: None,
            accept_terms: true,
            accept_privacy_policy: true,
            accept_notifications: false,
        },
        None,
    )
    .await?;
    registration::assign_role(db, account.id, crate::auth::RoleName::Administrator).await?;
    let mut active: user::ActiveModel = account.into();
    active.is_staff = Set(true);
    active.is_superuser = Set(true);
    Ok(active.update(db).await?)
}

/// Counts for the administration dashboard.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub users: u64,
    pub active_users: u64,
    pub suspended_users: u64,
    pub staff: u64,
    pub stations: u64,
    pub bays: u64,
    pub devices_online: u64,
}

pub async fn overview(db: &impl ConnectionTrait) -> AppResult<Overview> {
    use crate::entities::{DeviceStatus, bay, device, station};
    let live = user::Column::DeletedAt.is_null();
    Ok(Overview {
        users: user::Entity::find().filter(live.clone()).count(db).await?,
        active_users: user::Entity::find()
            .filter(live.clone())
            .filter(user::Column::Status.eq(UserStatus::Active))
            .count(db)
            .await?,
        suspended_users: user::Entity::find()
            .filter(live.clone())
            .filter(user::Column::Status.eq(UserStatus::Suspended))
            .count(db)
            .await?,
        staff: user::Entity::find()
            .filter(live)
            .filter(user::Column::IsStaff.eq(true))
            .count(db)
            .await?,
        stations: station::Entity::find().count(db).await?,
        bays: bay::Entity::find().count(db).await?,
        devices_online: device::Entity::find()
            .filter(device::Column::Status.is_in([
                DeviceStatus::Online,
                DeviceStatus::Idle,
                DeviceStatus::Charging,
            ]))
            .count(db)
            .await?,
    })
}
