//! Staff administration of accounts.

use sea_orm::sea_query::{Expr, ExprTrait as _, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set, TransactionTrait,
};

use super::journal::{self, action};
use super::profile::{self, ProfileChanges};
use super::registration::{self, Registration};
use super::sessions::{outdate_access_tokens, revoke_all};
use super::{badges, roles};
use crate::auth::{Person, Principal, password};
use crate::entities::{UserStatus, auth_method, security_log, user};
use crate::error::{AppError, AppResult};
use crate::pagination::{Page, PageRequest};

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub status: Option<UserStatus>,
    pub is_staff: Option<bool>,
    /// Matches the start of the username or email.
    pub search: Option<String>,
}

/// Escapes LIKE's wildcards (and the escape character itself) with `\\`.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn filtered(principal: &Principal, filter: &UserFilter) -> Select<user::Entity> {
    let mut query = user::Entity::visible_to(principal);
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
        // `%` and `_` in the search are letters, not wildcards.
        let prefix = || LikeExpr::new(format!("{}%", escape_like(&search))).escape('\\');
        query = query.filter(
            Condition::any()
                .add(Expr::col(user::Column::Username).like(prefix()))
                .add(Expr::col(user::Column::Email).like(prefix())),
        );
    }
    query
}

/// One page of the accounts `principal` may see.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &UserFilter,
    page: PageRequest,
) -> AppResult<Page<user::Model>> {
    crate::db::page_by_id(db, filtered(principal, filter), user::Column::Id, page).await
}

/// Refuses changes to a superuser's account by staff who are not superusers
/// themselves, so staff cannot take over a superuser (by resetting its password,
/// say) to gain rights they do not have.
///
/// # Errors
/// `FORBIDDEN` when `target` is a superuser and `actor` is not.
fn ensure_may_manage(actor: &Person, target: &user::Model) -> AppResult<()> {
    if target.is_superuser && !actor.is_superuser {
        Err(AppError::Forbidden)
    } else {
        Ok(())
    }
}

/// Reads an account staff may manage: it exists, is not deleted, and passes
/// [`ensure_may_manage`].
pub(super) async fn managed(
    db: &impl ConnectionTrait,
    actor: &Person,
    user_id: i32,
) -> AppResult<user::Model> {
    let account = super::account(db, user_id).await?;
    if account.deleted_at.is_some() {
        return Err(AppError::not_found("user"));
    }
    ensure_may_manage(actor, &account)?;
    Ok(account)
}

/// Sets an account's status. Suspending or archiving ends its sessions at once.
///
/// # Errors
/// `NOT_FOUND` for unknown users; `FORBIDDEN` for a superuser's account unless the
/// actor is one; `BAD_USER_INPUT` when staff would lock themselves out.
pub async fn set_status(
    db: &DatabaseConnection,
    actor: &Person,
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
    let txn = db.begin().await?;
    let account = managed(&txn, actor, user_id).await?;
    let mut active: user::ActiveModel = account.into();
    active.status = Set(status);
    active.is_active = Set(status == UserStatus::Active);
    let account = active.update(&txn).await?;
    if status != UserStatus::Active {
        revoke_all(&txn, user_id).await?;
    }
    txn.commit().await?;
    let detail = format!("set to {status:?} by user {}", actor.id);
    journal::at(db, ip)
        .success(Some(user_id), action::STATUS_CHANGE, &detail)
        .await;
    Ok(account)
}

/// Replaces a user's password with a random temporary one, which must be changed at next sign-in.
///
/// # Errors
/// `NOT_FOUND` for unknown users; `FORBIDDEN` for a superuser's account unless the
/// actor is one.
pub async fn reset_password(
    db: &DatabaseConnection,
    actor: &Person,
    user_id: i32,
    ip: Option<&str>,
) -> AppResult<(user::Model, String)> {
    // Checked before hashing too, so a refused request costs no argon2 work; the
    // transaction below checks again against the row it changes.
    managed(db, actor, user_id).await?;
    let temporary = crate::auth::password::generate()?;
    let hash = password::hash(&temporary).await?;
    let txn = db.begin().await?;
    let account = managed(&txn, actor, user_id).await?;
    let mut active: user::ActiveModel = account.into();
    active.password_hash = Set(hash);
    active.needs_password_change = Set(true);
    active.failed_attempts = Set(0);
    active.locked_until = Set(None);
    active.update(&txn).await?;
    revoke_all(&txn, user_id).await?;
    let account = super::account(&txn, user_id).await?;
    txn.commit().await?;
    let detail = format!("temporary password set by user {}", actor.id);
    journal::at(db, ip)
        .success(Some(user_id), action::PASSWORD_RESET, &detail)
        .await;
    Ok((account, temporary))
}

/// An account created by staff.
#[derive(Debug)]
pub struct NewAccount {
    pub username: String,
    pub email: String,
    pub password: String,
    pub full_name: Option<String>,
    pub is_staff: bool,
}

/// Staff: creates an account; staff accounts also get the administrator role.
///
/// # Errors
/// `BAD_USER_INPUT` for malformed fields or a weak password, `CONFLICT` when taken.
pub async fn create_user(
    db: &DatabaseConnection,
    actor: &Person,
    new: NewAccount,
    ip: Option<&str>,
) -> AppResult<user::Model> {
    // One transaction: a staff account never exists without its staff access.
    let txn = db.begin().await?;
    let account = registration::register(
        &txn,
        Registration {
            username: new.username,
            email: new.email,
            password: new.password,
            phone: None,
            full_name: new.full_name,
            // Staff-created accounts record the required consents as accepted on
            // the user's behalf; the user can review them in their history.
            accept_terms: true,
            accept_privacy_policy: true,
            accept_notifications: false,
        },
        ip,
    )
    .await?;
    if new.is_staff {
        roles::set_staff(&txn, account.id, true).await?;
    }
    let account = super::account(&txn, account.id).await?;
    txn.commit().await?;
    journal::at(db, ip)
        .success(
            Some(account.id),
            action::ACCOUNT_CREATE,
            &format!("created by user {}", actor.id),
        )
        .await;
    Ok(account)
}

/// What staff may change on an account; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct AccountChanges {
    pub profile: ProfileChanges,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

/// Staff: updates an account's profile fields and flags in one transaction.
///
/// # Errors
/// `NOT_FOUND` for unknown users; `FORBIDDEN` for a superuser's account, or for
/// changing `is_superuser`, unless the actor is a superuser; `BAD_USER_INPUT` for
/// malformed values or when staff would remove their own staff access;
/// `CONFLICT` when the email is taken.
pub async fn update_user(
    db: &DatabaseConnection,
    actor: &Person,
    user_id: i32,
    changes: AccountChanges,
    ip: Option<&str>,
) -> AppResult<user::Model> {
    if changes.is_superuser.is_some() && !actor.is_superuser {
        return Err(AppError::Forbidden);
    }
    if actor.id == user_id
        && (changes.is_staff == Some(false) || changes.is_superuser == Some(false))
    {
        return Err(AppError::bad_input(
            "isStaff",
            "you cannot remove your own staff access",
        ));
    }
    let txn = db.begin().await?;
    managed(&txn, actor, user_id).await?;
    profile::update(&txn, user_id, changes.profile).await?;
    if let Some(is_staff) = changes.is_staff {
        roles::set_staff(&txn, user_id, is_staff).await?;
    }
    if let Some(is_superuser) = changes.is_superuser {
        roles::set_superuser(&txn, user_id, is_superuser).await?;
    }
    if changes.is_staff.is_some() || changes.is_superuser.is_some() {
        outdate_access_tokens(&txn, user_id).await?;
    }
    let account = super::account(&txn, user_id).await?;
    txn.commit().await?;
    journal::at(db, ip)
        .success(
            Some(user_id),
            action::ACCOUNT_UPDATE,
            &format!("updated by user {}", actor.id),
        )
        .await;
    Ok(account)
}

/// Staff: deletes an account (anonymized, see [`profile::anonymize`]).
///
/// # Errors
/// `NOT_FOUND` for unknown or already deleted users; `FORBIDDEN` for a
/// superuser's account unless the actor is one; `BAD_USER_INPUT` for the actor's
/// own account (which is deleted with `deleteAccount`).
pub async fn delete_user(db: &DatabaseConnection, actor: &Person, user_id: i32) -> AppResult<()> {
    if actor.id == user_id {
        return Err(AppError::bad_input(
            "userId",
            "delete your own account with deleteAccount",
        ));
    }
    managed(db, actor, user_id).await?;
    profile::anonymize(db, user_id, &format!("deleted by user {}", actor.id)).await
}

/// The owner of a badge, checked as an account staff may manage.
///
/// # Errors
/// `NOT_FOUND` for unknown badges; `FORBIDDEN` as for [`ensure_may_manage`].
pub async fn ensure_may_manage_badge(
    db: &impl ConnectionTrait,
    actor: &Person,
    auth_method_id: i32,
) -> AppResult<()> {
    let badge = auth_method::Entity::find_by_id(auth_method_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("authentication method"))?;
    managed(db, actor, badge.user_id).await.map(|_| ())
}

/// Staff: saves a badge for a user.
///
/// # Errors
/// As [`badges::add`], plus `NOT_FOUND` and `FORBIDDEN` as for [`ensure_may_manage`].
pub async fn register_badge(
    db: &DatabaseConnection,
    keys: &badges::BadgeKeys,
    actor: &Person,
    user_id: i32,
    uid: &str,
    label: Option<&str>,
    ip: Option<&str>,
) -> AppResult<auth_method::Model> {
    managed(db, actor, user_id).await?;
    badges::add(db, keys, user_id, uid, label, ip).await
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
    let txn = db.begin().await?;
    let account = registration::register(
        &txn,
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
    roles::set_superuser(&txn, account.id, true).await?;
    let account = super::account(&txn, account.id).await?;
    txn.commit().await?;
    Ok(account)
}

/// Which live (not deleted) accounts to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accounts {
    All,
    Active,
    Suspended,
    Staff,
}

/// How many live accounts there are of a kind.
pub async fn count_users(db: &impl ConnectionTrait, which: Accounts) -> AppResult<u64> {
    let live = user::Entity::find().filter(user::Column::DeletedAt.is_null());
    let query = match which {
        Accounts::All => live,
        Accounts::Active => live.filter(user::Column::Status.eq(UserStatus::Active)),
        Accounts::Suspended => live.filter(user::Column::Status.eq(UserStatus::Suspended)),
        Accounts::Staff => live.filter(user::Column::IsStaff.eq(true)),
    };
    Ok(query.count(db).await?)
}

/// How many recent records the overview lists.
const RECENT: u64 = 10;

/// The newest live accounts, newest first.
pub async fn recent_users(db: &impl ConnectionTrait) -> AppResult<Vec<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::DeletedAt.is_null())
        .order_by_desc(user::Column::Id)
        .limit(RECENT)
        .all(db)
        .await?)
}

/// The newest security events, newest first.
pub async fn recent_events(db: &impl ConnectionTrait) -> AppResult<Vec<security_log::Model>> {
    Ok(security_log::Entity::find()
        .order_by_desc(security_log::Column::Id)
        .limit(RECENT)
        .all(db)
        .await?)
}
