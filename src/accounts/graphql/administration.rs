//! Staff operations on accounts beyond status changes and password resets.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};

use super::self_service::{AuthMethod, AuthMethodPayload, DeletedPayload};
use super::{RequestMeta, User, UserPayload};
use crate::accounts::{admin, badges, profile, registration};
use crate::auth::guards::principal;
use crate::entities::user;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};

fn ip(ctx: &Context<'_>) -> Option<String> {
    ctx.data_opt::<RequestMeta>().and_then(|m| m.ip.clone())
}

#[derive(InputObject)]
pub struct CreateUserInput {
    pub username: String,
    pub email: String,
    pub password: String,
    pub full_name: Option<String>,
    #[graphql(default)]
    pub is_staff: bool,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    pub user_id: ID,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub phone: Option<String>,
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

/// Aggregates for the administration dashboard. Domains that have not landed count zero.
#[derive(SimpleObject)]
pub struct AdminOverview {
    pub users: u64,
    pub active_users: u64,
    pub suspended_users: u64,
    pub staff: u64,
    pub stations: u64,
    pub bays: u64,
    pub devices_online: u64,
    pub reservations: u64,
    pub charging_sessions: u64,
    pub open_alerts: u64,
    pub orders: u64,
}

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    async fn admin_overview(&self, ctx: &Context<'_>) -> Result<AdminOverview> {
        principal(ctx).staff()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let o = admin::overview(db).await?;
        Ok(AdminOverview {
            users: o.users,
            active_users: o.active_users,
            suspended_users: o.suspended_users,
            staff: o.staff,
            stations: o.stations,
            bays: o.bays,
            devices_online: o.devices_online,
            reservations: 0,
            charging_sessions: 0,
            open_alerts: 0,
            orders: 0,
        })
    }
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Staff: creates an account (a customer, or staff when asked).
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<UserPayload> {
        let actor = principal(ctx).staff()?.clone();
        let db = ctx.data::<DatabaseConnection>()?;
        let ip = ip(ctx);
        let account = registration::register(
            db,
            registration::Registration {
                username: input.username,
                email: input.email,
                password: input.password,
                phone: None,
                full_name: input.full_name,
                // Consents are the user's to give: staff-created accounts record the
                // required ones as accepted on the user's behalf at creation.
                accept_terms: true,
                accept_privacy_policy: true,
                accept_notifications: false,
            },
            ip.as_deref(),
        )
        .await?;
        let account = if input.is_staff {
            let mut active: user::ActiveModel = account.into();
            active.is_staff = Set(true);
            active.update(db).await.map_err(AppError::from)?
        } else {
            account
        };
        tracing::info!(
            actor = actor.id,
            user = account.id,
            "account created by staff"
        );
        Ok(UserPayload {
            user: User(account),
        })
    }

    /// Staff: updates an account's fields and flags.
    async fn update_user(&self, ctx: &Context<'_>, input: UpdateUserInput) -> Result<UserPayload> {
        let actor = principal(ctx).staff()?.clone();
        let db = ctx.data::<DatabaseConnection>()?;
        let id = ids::decode(&input.user_id, Kind::User, "userId")?;
        if input.is_superuser.is_some() && !actor.is_superuser {
            return Err(AppError::Forbidden.into());
        }
        if actor.id == id && input.is_staff == Some(false) {
            return Err(
                AppError::bad_input("isStaff", "you cannot remove your own staff access").into(),
            );
        }
        let changes = profile::ProfileChanges {
            email: input.email,
            full_name: input.full_name,
            phone: input.phone,
            ..Default::default()
        };
        let account = profile::update(db, id, changes).await?;
        let account = if input.is_staff.is_some() || input.is_superuser.is_some() {
            let mut active: user::ActiveModel = account.into();
            if let Some(is_staff) = input.is_staff {
                active.is_staff = Set(is_staff);
            }
            if let Some(is_superuser) = input.is_superuser {
                active.is_superuser = Set(is_superuser);
            }
            active.update(db).await.map_err(AppError::from)?
        } else {
            account
        };
        Ok(UserPayload {
            user: User(account),
        })
    }

    /// Staff: deletes an account (anonymized; its records stay de-identified).
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        input: DeleteUserInput,
    ) -> Result<DeletedPayload> {
        let actor = principal(ctx).staff()?.clone();
        let db = ctx.data::<DatabaseConnection>()?;
        let id = ids::decode(&input.user_id, Kind::User, "userId")?;
        if actor.id == id {
            return Err(AppError::bad_input(
                "userId",
                "delete your own account with deleteAccount",
            )
            .into());
        }
        user::Entity::find_by_id(id)
            .one(db)
            .await
            .map_err(AppError::from)?
            .ok_or(AppError::not_found("user"))?;
        profile::anonymize(db, id, &format!("deleted by user {}", actor.id)).await?;
        Ok(DeletedPayload { ok: true })
    }

    /// Staff: registers an RFID badge for a user (e.g. a replacement badge).
    async fn register_user_badge(
        &self,
        ctx: &Context<'_>,
        input: RegisterUserBadgeInput,
    ) -> Result<AuthMethodPayload> {
        principal(ctx).staff()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = ids::decode(&input.user_id, Kind::User, "userId")?;
        user::Entity::find_by_id(id)
            .one(db)
            .await
            .map_err(AppError::from)?
            .ok_or(AppError::not_found("user"))?;
        let saved = badges::add(
            db,
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
        let db = ctx.data::<DatabaseConnection>()?;
        let id = ids::decode(&input.auth_method_id, Kind::AuthMethod, "authMethodId")?;
        let revoked = badges::revoke(db, id, actor.id, ip(ctx).as_deref()).await?;
        Ok(AuthMethodPayload {
            auth_method: AuthMethod(revoked),
        })
    }
}
