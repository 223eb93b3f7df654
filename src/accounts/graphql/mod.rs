//! GraphQL for accounts: registration, sessions, `me`, and staff administration.
//! Self-service (profile, consents, badges, export) is in `self_service`; staff
//! operations beyond status and password resets in `administration`.

pub mod administration;
pub mod self_service;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::RequestMeta;
use super::admin::{self, UserFilter};
use super::loaders::{ActiveBadgesOfUser, ConsentsOfUser, ProfileOfUser, RolesOfUser};
use super::registration::{self, Registration};
use super::sessions::{self, Session};
use crate::auth::guards::principal;
use crate::auth::rate_limit::{Limit, ip_key};
use crate::entities::RoleName;
use crate::entities::{self, user};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::loader;
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::graphql::types::User;
use crate::services::{ServiceContext, services};

/// Name of the HttpOnly cookie carrying a browser's refresh token.
pub const REFRESH_COOKIE: &str = "vg_refresh";

const REGISTER_PER_IP: Limit = Limit {
    max: 10,
    window: std::time::Duration::from_secs(3600),
};
/// Attempts to register one username or email, whoever makes them.
const REGISTER_PER_ACCOUNT: Limit = Limit {
    max: 5,
    window: std::time::Duration::from_secs(3600),
};
const RESET_PER_IP: Limit = Limit {
    max: 30,
    window: std::time::Duration::from_secs(3600),
};
const RESET_PER_ACCOUNT: Limit = Limit {
    max: 5,
    window: std::time::Duration::from_secs(3600),
};
/// Badges an account may add (each answer tells whether a UID is in use).
pub(super) const BADGE_ADD_PER_ACCOUNT: Limit = Limit {
    max: 20,
    window: std::time::Duration::from_secs(3600),
};
/// Availability checks of one username or email, whoever makes them (above the
/// per-IP limit: it stops many addresses hammering one name).
const AVAILABILITY_PER_ACCOUNT: Limit = Limit {
    max: 120,
    window: std::time::Duration::from_secs(60),
};
const AVAILABILITY_PER_IP: Limit = Limit {
    max: 60,
    window: std::time::Duration::from_secs(60),
};

impl Kind {
    pub const USER: Self = Self::named("User");
    pub const AUTH_METHOD: Self = Self::named("AuthMethod");
}

fn state<'a>(
    ctx: &'a Context<'_>,
) -> Result<(&'a DatabaseConnection, &'a ServiceContext, RequestMeta)> {
    let services = services(ctx)?;
    Ok((&services.db, services, meta(ctx)))
}

/// What the edge told about the request (address, user agent, refresh cookie),
/// stamped with the context clock's time.
pub(super) fn meta(ctx: &Context<'_>) -> RequestMeta {
    let mut meta = ctx.data_opt::<RequestMeta>().cloned().unwrap_or_default();
    meta.at = services(ctx).ok().map(ServiceContext::now);
    meta
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::UserStatus")]
pub enum UserStatus {
    Active,
    Suspended,
    Archived,
}

/// Accounts' part of a user: identity, status, profile, consents, badges,
/// journal and roles.
pub struct UserPart(pub user::Model);

#[derive(SimpleObject)]
pub struct Profile {
    pub name: String,
    pub phone: Option<String>,
    pub phone_verified: bool,
}

#[Object]
impl UserPart {
    async fn id(&self) -> ID {
        ids::encode(Kind::USER, self.0.id)
    }
    async fn username(&self) -> &str {
        &self.0.username
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn status(&self) -> UserStatus {
        self.0.status.into()
    }
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    async fn is_staff(&self) -> bool {
        self.0.is_staff
    }
    async fn is_superuser(&self) -> bool {
        self.0.is_superuser
    }
    async fn full_name(&self) -> &str {
        &self.0.full_name
    }
    async fn locale(&self) -> &str {
        &self.0.locale
    }
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }
    /// The password is temporary and must be changed before anything else.
    async fn needs_password_change(&self) -> bool {
        self.0.needs_password_change
    }
    async fn failed_attempts(&self) -> i32 {
        self.0.failed_attempts
    }
    async fn last_login(&self) -> Option<DateTime> {
        self.0.last_login.map(Into::into)
    }
    async fn date_joined(&self) -> DateTime {
        self.0.date_joined.into()
    }
    async fn profile(&self, ctx: &Context<'_>) -> Result<Option<Profile>> {
        let found = loader(ctx)?.load_one(ProfileOfUser(self.0.id)).await?;
        Ok(found.map(|p| Profile {
            name: p.name,
            phone: p.phone,
            phone_verified: p.phone_verified,
        }))
    }
    /// Consent decisions, newest first (the user and staff only).
    async fn consents(&self, ctx: &Context<'_>) -> Result<Vec<self_service::Consent>> {
        self_service::owner_or_staff(ctx, self.0.id)?;
        let rows = loader(ctx)?.load_one(ConsentsOfUser(self.0.id)).await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(self_service::Consent)
            .collect())
    }
    /// Active RFID badges (the user and staff only).
    async fn auth_methods(&self, ctx: &Context<'_>) -> Result<Vec<self_service::AuthMethod>> {
        self_service::owner_or_staff(ctx, self.0.id)?;
        let rows = loader(ctx)?.load_one(ActiveBadgesOfUser(self.0.id)).await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(self_service::AuthMethod)
            .collect())
    }
    /// Newest security events (the user and staff only).
    async fn security_journal(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, validator(minimum = 1, maximum = 100))] last: i32,
    ) -> Result<Vec<self_service::SecurityEvent>> {
        self_service::owner_or_staff(ctx, self.0.id)?;
        let db = &services(ctx)?.db;
        let events = crate::accounts::profile::journal_of(db, self.0.id, last as u64).await?;
        Ok(events
            .into_iter()
            .map(self_service::SecurityEvent)
            .collect())
    }
    /// Whether the account holds the technician role (its station scope arrives with supervision).
    async fn is_technician(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.held_roles(ctx).await?.contains(&RoleName::Technician))
    }
    /// The roles the account holds, by name.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        Ok(self
            .held_roles(ctx)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

impl UserPart {
    async fn held_roles(&self, ctx: &Context<'_>) -> Result<Vec<RoleName>> {
        Ok(loader(ctx)?
            .load_one(RolesOfUser(self.0.id))
            .await?
            .unwrap_or_default())
    }
}

/// What an account may do beyond its own data. Staff access itself is
/// `User.isStaff`; the administrator role always matches it.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::entities::RoleName")]
pub enum Role {
    /// Staff: administration of accounts and of the network.
    Administrator,
    /// Registers, reserves bays, buys tickets.
    Customer,
    /// Supervises the stations assigned to them.
    Technician,
    /// A cabinet's kiosk credential; never held by a person's account.
    Kiosk,
    /// A member of an organizer's team (ticketing).
    Organizer,
}

/// A signed-in session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Short-lived bearer token for `Authorization: Bearer …` (and `connection_init`).
    pub access_token: String,
    pub access_token_expires_at: DateTime,
    /// Single-use token for `refreshSession`; null when it was set as an HttpOnly cookie.
    pub refresh_token: Option<String>,
    pub refresh_token_expires_at: DateTime,
    pub user: User,
}

fn payload(ctx: &Context<'_>, session: Session, use_cookie: bool) -> AuthPayload {
    let refresh_token = if use_cookie {
        let max_age = (session.refresh_expires_at - meta(ctx).now())
            .num_seconds()
            .max(0);
        ctx.insert_http_header(
            "set-cookie",
            format!("{REFRESH_COOKIE}={}; Path=/graphql; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}", session.refresh_token),
        );
        None
    } else {
        Some(session.refresh_token)
    };
    AuthPayload {
        access_token: session.access_token,
        access_token_expires_at: session.access_expires_at.into(),
        refresh_token,
        refresh_token_expires_at: session.refresh_expires_at.into(),
        user: User::from(session.user),
    }
}

#[derive(InputObject)]
pub struct RegisterInput {
    pub username: String,
    pub email: String,
    pub password: String,
    pub phone: Option<String>,
    pub full_name: Option<String>,
    /// Terms of use (`cgu`); must be true.
    pub accept_terms: bool,
    /// Privacy policy; must be true.
    pub accept_privacy_policy: bool,
    #[graphql(default)]
    pub accept_notifications: bool,
    /// Browsers: receive the refresh token as an HttpOnly cookie instead of in the payload.
    #[graphql(default)]
    pub use_cookie: bool,
}

#[derive(InputObject)]
pub struct LoginInput {
    /// Username or email.
    pub login: String,
    pub password: String,
    #[graphql(default)]
    pub use_cookie: bool,
}

#[derive(InputObject)]
pub struct RefreshSessionInput {
    /// The refresh token; browsers omit it and send the cookie.
    pub refresh_token: Option<String>,
    #[graphql(default)]
    pub use_cookie: bool,
}

#[derive(InputObject)]
pub struct LogoutInput {
    pub refresh_token: Option<String>,
}

#[derive(SimpleObject)]
pub struct LogoutPayload {
    pub ok: bool,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    pub current_password: String,
    pub new_password: String,
    #[graphql(default)]
    pub use_cookie: bool,
}

#[derive(InputObject)]
pub struct SetUserStatusInput {
    pub user_id: ID,
    pub status: UserStatus,
}

#[derive(SimpleObject)]
pub struct UserPayload {
    pub user: User,
}

#[derive(InputObject)]
pub struct ResetUserPasswordInput {
    pub user_id: ID,
}

#[derive(SimpleObject)]
pub struct ResetUserPasswordPayload {
    pub user: User,
    /// Shown once: give it to the user, who must change it at next sign-in.
    pub temporary_password: String,
}

#[derive(SimpleObject)]
pub struct Availability {
    /// Null when no (valid) username was asked about.
    pub username_available: Option<bool>,
    pub email_available: Option<bool>,
}

#[derive(InputObject, Default)]
pub struct UserFilterInput {
    pub status: Option<UserStatus>,
    pub is_staff: Option<bool>,
    /// Start of a username or email.
    pub search: Option<String>,
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let me = principal(ctx).signed_in()?;
        let db = &services(ctx)?.db;
        let account = user::Entity::find_by_id(me.id)
            .one(db)
            .await
            .map_err(AppError::from)?;
        Ok(User::from(account.ok_or(AppError::Unauthenticated)?))
    }

    /// Whether a username and/or an email can still be registered.
    async fn registration_availability(
        &self,
        ctx: &Context<'_>,
        username: Option<String>,
        email: Option<String>,
    ) -> Result<Availability> {
        let (db, services, meta) = state(ctx)?;
        services.limiter.hit(
            &format!("availability:ip:{}", ip_key(meta.ip.as_deref())),
            AVAILABILITY_PER_IP,
        )?;
        for asked in [username.as_deref(), email.as_deref()]
            .into_iter()
            .flatten()
        {
            services.limiter.hit(
                &format!("availability:account:{}", asked.trim().to_lowercase()),
                AVAILABILITY_PER_ACCOUNT,
            )?;
        }
        let (username_available, email_available) =
            registration::availability(db, username.as_deref(), email.as_deref()).await?;
        Ok(Availability {
            username_available,
            email_available,
        })
    }

    /// Accounts, for staff.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        filter: Option<UserFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<User>> {
        let principal = principal(ctx);
        principal.staff()?;
        let db = &services(ctx)?.db;
        let page = page_request(first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = UserFilter {
            status: filter.status.map(Into::into),
            is_staff: filter.is_staff,
            search: filter.search,
        };
        let rows = admin::list(db, principal, &filter, page).await?;
        Ok(connection(page, rows, |u| u.id, User::from))
    }

    /// One account, for staff.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let principal = principal(ctx);
        principal.staff()?;
        let db = &services(ctx)?.db;
        let id = ids::decode(&id, Kind::USER, "id")?;
        Ok(user::Entity::visible_to(principal)
            .filter(user::Column::Id.eq(id))
            .one(db)
            .await
            .map_err(AppError::from)?
            .map(User::from))
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates a customer account and signs it in.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let (db, services, meta) = state(ctx)?;
        services.limiter.hit(
            &format!("register:ip:{}", ip_key(meta.ip.as_deref())),
            REGISTER_PER_IP,
        )?;
        for requested in [&input.username, &input.email] {
            services.limiter.hit(
                &format!("register:account:{}", requested.trim().to_lowercase()),
                REGISTER_PER_ACCOUNT,
            )?;
        }
        let use_cookie = input.use_cookie;
        let account = registration::register(
            db,
            Registration {
                username: input.username,
                email: input.email,
                password: input.password,
                phone: input.phone,
                full_name: input.full_name,
                accept_terms: input.accept_terms,
                accept_privacy_policy: input.accept_privacy_policy,
                accept_notifications: input.accept_notifications,
            },
            meta.ip.as_deref(),
        )
        .await?;
        let session = sessions::issue(db, &services.keys, account, None, &meta).await?;
        Ok(payload(ctx, session, use_cookie))
    }

    /// Signs in with a username or email and a password.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let (db, services, meta) = state(ctx)?;
        let session = sessions::login(
            db,
            &services.keys,
            &services.limiter,
            &input.login,
            &input.password,
            &meta,
        )
        .await?;
        Ok(payload(ctx, session, input.use_cookie))
    }

    /// Trades a refresh token (from the input or the cookie) for a new session; the old token is spent.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        input: RefreshSessionInput,
    ) -> Result<AuthPayload> {
        let (db, services, meta) = state(ctx)?;
        let token = input
            .refresh_token
            .or_else(|| meta.refresh_cookie.clone())
            .ok_or(AppError::Unauthenticated)?;
        let session = sessions::refresh(db, &services.keys, &token, &meta).await?;
        Ok(payload(
            ctx,
            session,
            input.use_cookie || meta.refresh_cookie.is_some(),
        ))
    }

    /// Ends the sign-in of a refresh token (from the input or the cookie) and clears the cookie.
    async fn logout(&self, ctx: &Context<'_>, input: LogoutInput) -> Result<LogoutPayload> {
        let (db, _, meta) = state(ctx)?;
        if let Some(token) = input.refresh_token.or_else(|| meta.refresh_cookie.clone()) {
            sessions::logout(db, &token, &meta).await?;
        }
        ctx.insert_http_header(
            "set-cookie",
            format!(
                "{REFRESH_COOKIE}=; Path=/graphql; HttpOnly; Secure; SameSite=Strict; Max-Age=0"
            ),
        );
        Ok(LogoutPayload { ok: true })
    }

    /// Changes the signed-in user's password; other sessions end.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> Result<AuthPayload> {
        let me = principal(ctx).signed_in()?.clone();
        let (db, services, meta) = state(ctx)?;
        let session = sessions::change_password(
            db,
            &services.keys,
            &services.limiter,
            &me,
            &input.current_password,
            &input.new_password,
            &meta,
        )
        .await?;
        Ok(payload(ctx, session, input.use_cookie))
    }

    /// Staff: activates, suspends or archives an account. Suspension ends its sessions at once.
    async fn set_user_status(
        &self,
        ctx: &Context<'_>,
        input: SetUserStatusInput,
    ) -> Result<UserPayload> {
        let actor = principal(ctx).staff()?.clone();
        let (db, _, meta) = state(ctx)?;
        let id = ids::decode(&input.user_id, Kind::USER, "userId")?;
        let account =
            admin::set_status(db, &actor, id, input.status.into(), meta.ip.as_deref()).await?;
        Ok(UserPayload {
            user: User::from(account),
        })
    }

    /// Staff: replaces a user's password with a temporary one.
    async fn reset_user_password(
        &self,
        ctx: &Context<'_>,
        input: ResetUserPasswordInput,
    ) -> Result<ResetUserPasswordPayload> {
        let actor = principal(ctx).staff()?.clone();
        let (db, services, meta) = state(ctx)?;
        let id = ids::decode(&input.user_id, Kind::USER, "userId")?;
        services.limiter.hit(
            &format!("reset:ip:{}", ip_key(meta.ip.as_deref())),
            RESET_PER_IP,
        )?;
        services
            .limiter
            .hit(&format!("reset:account:{id}"), RESET_PER_ACCOUNT)?;
        let (account, temporary_password) =
            admin::reset_password(db, &actor, id, meta.ip.as_deref()).await?;
        Ok(ResetUserPasswordPayload {
            user: User::from(account),
            temporary_password,
        })
    }
}
