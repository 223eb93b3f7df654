//! Staff operations on accounts beyond status changes and password resets.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::self_service::{
    AuthMethod, AuthMethodPayload, DeletedPayload, SecurityEvent, SecurityLogStatus,
};
use super::{RequestMeta, Role, UserPayload};
use crate::accounts::journal::{self, JournalFilter};
use crate::accounts::{admin, badges, profile, roles};
use crate::auth::guards::principal;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::types::{AdminOverview, User};
use crate::services::services;

fn ip(ctx: &Context<'_>) -> Option<String> {
    ctx.data_opt::<RequestMeta>().and_then(|m| m.ip.clone())
}

#[derive(InputObject)]
pub struct CreateUserInput {
    pub username: String,
    pub email: String,
    pub password: String,
    pub full_name: Option<String>,
    /// Staff accounts also get the administrator role.
    #[graphql(default)]
    pub is_staff: bool,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    pub user_id: ID,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    /// Also grants or revokes the administrator role.
    pub is_staff: Option<bool>,
    /// Only superusers may change this.
    pub is_superuser: Option<bool>,
}

#[derive(InputObject)]
pub struct DeleteUserInput {
    pub user_id: ID,
}

#[derive(InputObject)]
pub struct RegisterUserBadgeInput {
    pub user_id: ID,
    pub uid: String,
    pub label: Option<String>,
}

#[derive(InputObject)]
pub struct RevokeUserBadgeInput {
    pub auth_method_id: ID,
}

/// Accounts' figures on the administration dashboard, with the newest accounts
/// and security events.
#[derive(Default)]
pub struct AccountFigures;

#[Object]
impl AccountFigures {
    async fn users(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(admin::count_users(&services(ctx)?.db, admin::Accounts::All).await?)
    }
    async fn active_users(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(admin::count_users(&services(ctx)?.db, admin::Accounts::Active).await?)
    }
    async fn suspended_users(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(admin::count_users(&services(ctx)?.db, admin::Accounts::Suspended).await?)
    }
    async fn staff(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(admin::count_users(&services(ctx)?.db, admin::Accounts::Staff).await?)
    }
    /// The newest accounts.
    async fn recent_users(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        let rows = admin::recent_users(&services(ctx)?.db).await?;
        Ok(rows.into_iter().map(User::from).collect())
    }
    /// The newest security events.
    async fn recent_security_events(&self, ctx: &Context<'_>) -> Result<Vec<SecurityEvent>> {
        let rows = admin::recent_events(&services(ctx)?.db).await?;
        Ok(rows.into_iter().map(SecurityEvent).collect())
    }
}

/// A role and what it allows.
#[derive(SimpleObject)]
pub struct RoleDescription {
    pub role: Role,
    pub description: String,
}

#[derive(InputObject)]
pub struct ChangeUserRoleInput {
    pub user_id: ID,
    pub role: Role,
}

#[derive(InputObject, Default)]
pub struct SecurityEventFilterInput {
    pub user_id: Option<ID>,
    /// Exact action, e.g. `login` or `refresh_reuse`.
    pub action: Option<String>,
    pub status: Option<SecurityLogStatus>,
    pub ip: Option<String>,
}

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Staff: aggregates for the administration dashboard, with the newest
    /// accounts and security events.
    async fn admin_overview(&self, ctx: &Context<'_>) -> Result<AdminOverview> {
        principal(ctx).staff()?;
        Ok(AdminOverview::default())
    }

    /// Staff: the roles accounts can hold.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<RoleDescription>> {
        principal(ctx).staff()?;
        let db = &services(ctx)?.db;
        Ok(roles::catalog(db)
            .await?
            .into_iter()
            .map(|(role, description)| RoleDescription {
                role: role.into(),
                description,
            })
            .collect())
    }

    /// Staff: the security journal of every account (and of sign-ins to unknown
    /// ones), newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn security_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<SecurityEventFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<SecurityEvent>> {
        let principal = principal(ctx);
        principal.staff()?;
        let db = &services(ctx)?.db;
        let page = page_request(first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = JournalFilter {
            user_id: ids::decode_opt(filter.user_id.as_ref(), Kind::USER, "filter.userId")?,
            action: filter.action,
            status: filter.status.map(Into::into),
            ip: filter.ip,
        };
        let rows = journal::list(db, principal, &filter, page).await?;
        Ok(connection(page, rows, |e| e.id, SecurityEvent))
    }
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Staff: creates an account (a customer, or staff when asked).
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<UserPayload> {
        let actor = principal(ctx).staff()?.clone();
        let db = &services(ctx)?.db;
        let account = admin::create_user(
            db,
            &actor,
            admin::NewAccount {
                username: input.username,
                email: input.email,
                password: input.password,
                full_name: input.full_name,
                is_staff: input.is_staff,
            },
            ip(ctx).as_deref(),
        )
        .await?;
        Ok(UserPayload {
            user: User::from(account),
        })
    }

    /// Staff: updates an account's fields and flags. A superuser's account, and
    /// `isSuperuser`, only by superusers.
    async fn update_user(&self, ctx: &Context<'_>, input: UpdateUserInput) -> Result<UserPayload> {
        let actor = principal(ctx).staff()?.clone();
        let db = &services(ctx)?.db;
        let id = ids::decode(&input.user_id, Kind::USER, "userId")?;
        let changes = admin::AccountChanges {
            profile: profile::ProfileChanges {
                email: input.email,
                full_name: input.full_name,
                phone: input.phone,
                locale: input.locale,
                timezone: input.timezone,
            },
            is_staff: input.is_staff,
            is_superuser: input.is_superuser,
        };
        let account = admin::update_user(db, &actor, id, changes, ip(ctx).as_deref()).await?;
        Ok(UserPayload {
            user: User::from(account),
        })
    }

    /// Staff: deletes an account (anonymized; its records stay de-identified).
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        input: DeleteUserInput,
    ) -> Result<DeletedPayload> {
        let actor = principal(ctx).staff()?.clone();
        let db = &services(ctx)?.db;
        let id = ids::decode(&input.user_id, Kind::USER, "userId")?;
        admin::delete_user(db, &actor, id).await?;
        Ok(DeletedPayload { ok: true })
    }

    /// Staff: gives an account a role. The administrator role makes it staff.
    async fn grant_user_role(
        &self,
        ctx: &Context<'_>,
        input: ChangeUserRoleInput,
    ) -> Result<UserPayload> {
        change_role(ctx, input, roles::Change::Grant).await
    }

    /// Staff: takes a role away. Taking the administrator role ends staff access.
    async fn revoke_user_role(
        &self,
        ctx: &Context<'_>,
        input: ChangeUserRoleInput,
    ) -> Result<UserPayload> {
        change_role(ctx, input, roles::Change::Revoke).await
    }

    /// Staff: registers an RFID badge for a user (e.g. a replacement badge).
    async fn register_user_badge(
        &self,
        ctx: &Context<'_>,
        input: RegisterUserBadgeInput,
    ) -> Result<AuthMethodPayload> {
        let actor = principal(ctx).staff()?.clone();
        let db = &services(ctx)?.db;
        let id = ids::decode(&input.user_id, Kind::USER, "userId")?;
        let saved = admin::register_badge(
            db,
            &services(ctx)?.badge_keys,
            &actor,
            id,
            &input.uid,
            input.label.as_deref(),
            ip(ctx).as_deref(),
        )
        .await?;
        Ok(AuthMethodPayload {
            auth_method: AuthMethod(saved),
        })
    }

    /// Staff: deactivates a badge; its record stays.
    async fn revoke_user_badge(
        &self,
        ctx: &Context<'_>,
        input: RevokeUserBadgeInput,
    ) -> Result<AuthMethodPayload> {
        let actor = principal(ctx).staff()?.clone();
        let db = &services(ctx)?.db;
        let id = ids::decode(&input.auth_method_id, Kind::AUTH_METHOD, "authMethodId")?;
        admin::ensure_may_manage_badge(db, &actor, id).await?;
        let revoked = badges::revoke(db, id, actor.id, ip(ctx).as_deref()).await?;
        Ok(AuthMethodPayload {
            auth_method: AuthMethod(revoked),
        })
    }
}

async fn change_role(
    ctx: &Context<'_>,
    input: ChangeUserRoleInput,
    change: roles::Change,
) -> Result<UserPayload> {
    let actor = principal(ctx).staff()?.clone();
    let db = &services(ctx)?.db;
    let id = ids::decode(&input.user_id, Kind::USER, "userId")?;
    let account = roles::change(
        db,
        &actor,
        id,
        input.role.into(),
        change,
        ip(ctx).as_deref(),
    )
    .await?;
    Ok(UserPayload {
        user: User::from(account),
    })
}
