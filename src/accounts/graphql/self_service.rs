//! The signed-in user's own account: profile, consents, badges, deletion, export.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};

use super::{UserPayload, meta};
use crate::accounts::loaders::UserById;
use crate::accounts::{badges, profile};
use crate::auth::guards::principal;
use crate::entities::{self, auth_method, consent, security_log};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::loader;
use crate::graphql::scalars::DateTime;
use crate::graphql::types::User;
use crate::services::services;

/// Allows a person to read the account's private data: its owner and staff.
pub fn owner_or_staff(ctx: &Context<'_>, user_id: i32) -> Result<(), AppError> {
    let principal = principal(ctx);
    principal.person()?;
    if principal.accounts().allows(user_id) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::ConsentType")]
pub enum ConsentType {
    /// Terms of use (`cgu`).
    Terms,
    PrivacyPolicy,
    Notifications,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::ConsentStatus")]
pub enum ConsentStatus {
    Accepted,
    Refused,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::SecurityLogStatus")]
pub enum SecurityLogStatus {
    Success,
    Failure,
}

pub struct Consent(pub consent::Model);

#[Object]
impl Consent {
    async fn consent_type(&self) -> ConsentType {
        self.0.consent_type.into()
    }
    async fn status(&self) -> ConsentStatus {
        self.0.status.into()
    }
    async fn consented_at(&self) -> DateTime {
        self.0.consented_at.into()
    }
}

/// How a saved authentication method identifies its holder.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AuthMethodKind {
    /// An RFID badge presented at a kiosk.
    #[graphql(name = "RFID")]
    Rfid,
}

/// A saved authentication method; the secret itself is never shown.
pub struct AuthMethod(pub auth_method::Model);

#[Object]
impl AuthMethod {
    async fn id(&self) -> ID {
        ids::encode(Kind::AUTH_METHOD, self.0.id)
    }
    /// Saved methods are RFID badges; QR codes and one-time codes belong to reservations.
    async fn kind(&self) -> AuthMethodKind {
        AuthMethodKind::Rfid
    }
    /// A safe hint: the last four characters.
    async fn display_value(&self) -> &str {
        &self.0.display_value
    }
    async fn label(&self) -> Option<&str> {
        self.0.metadata.get("label").and_then(|v| v.as_str())
    }
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    async fn expires_at(&self) -> Option<DateTime> {
        self.0.expires_at.map(Into::into)
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn revoked_at(&self) -> Option<DateTime> {
        self.0.revoked_at.map(Into::into)
    }
}

pub struct SecurityEvent(pub security_log::Model);

#[Object]
impl SecurityEvent {
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn status(&self) -> SecurityLogStatus {
        self.0.status.into()
    }
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }
    async fn detail(&self) -> &str {
        &self.0.detail
    }
    async fn occurred_at(&self) -> DateTime {
        self.0.occurred_at.into()
    }
    /// The account concerned; null for sign-ins to unknown accounts.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.user_id else {
            return Ok(None);
        };
        owner_or_staff(ctx, id)?;
        Ok(loader(ctx)?.load_one(UserById(id)).await?.map(User::from))
    }
}

#[derive(InputObject, Default)]
pub struct UpdateProfileInput {
    /// A new email needs `currentPassword`.
    pub email: Option<String>,
    /// Required to change the email.
    pub current_password: Option<String>,
    pub full_name: Option<String>,
    /// Empty string removes the number.
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateConsentsInput {
    pub notifications: bool,
}

#[derive(InputObject)]
pub struct DeleteAccountInput {
    pub password: String,
}

#[derive(InputObject)]
pub struct AddRfidBadgeInput {
    /// The badge UID in hexadecimal (separators allowed); stored only as a hash.
    pub uid: String,
    pub label: Option<String>,
}

#[derive(InputObject)]
pub struct DeleteAuthMethodInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct AuthMethodPayload {
    pub auth_method: AuthMethod,
}

#[derive(SimpleObject)]
pub struct DeletedPayload {
    pub ok: bool,
}

#[derive(Default)]
pub struct SelfServiceQuery;

#[Object]
impl SelfServiceQuery {
    /// Everything voltgate holds about the signed-in user, as JSON.
    async fn export_my_data(&self, ctx: &Context<'_>) -> Result<Json<serde_json::Value>> {
        let me = principal(ctx).person()?;
        let db = &services(ctx)?.db;
        let data = profile::export(db, me.id).await?;
        profile::record_export(db, me.id, meta(ctx).ip.as_deref()).await;
        Ok(Json(data))
    }
}

#[derive(Default)]
pub struct SelfServiceMutation;

#[Object]
impl SelfServiceMutation {
    /// Updates the signed-in user's account and profile.
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
    ) -> Result<UserPayload> {
        let me = principal(ctx).person()?;
        let db = &services(ctx)?.db;
        let changes = profile::ProfileChanges {
            email: input.email,
            full_name: input.full_name,
            phone: input.phone,
            locale: input.locale,
            timezone: input.timezone,
        };
        let updated = profile::update_own(
            db,
            &services(ctx)?.limiter,
            me.id,
            changes,
            input.current_password.as_deref(),
            meta(ctx).ip.as_deref(),
        )
        .await?;
        Ok(UserPayload {
            user: User::from(updated),
        })
    }

    /// Records a new notifications preference; the history keeps every decision.
    async fn update_consents(
        &self,
        ctx: &Context<'_>,
        input: UpdateConsentsInput,
    ) -> Result<Consent> {
        let me = principal(ctx).person()?;
        let db = &services(ctx)?.db;
        Ok(Consent(
            profile::set_notifications(db, me.id, input.notifications).await?,
        ))
    }

    /// Deletes the signed-in user's account: personal data is erased, records are de-identified.
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        input: DeleteAccountInput,
    ) -> Result<DeletedPayload> {
        let me = principal(ctx).person()?;
        let db = &services(ctx)?.db;
        profile::delete_own(
            db,
            &services(ctx)?.limiter,
            me.id,
            &input.password,
            meta(ctx).ip.as_deref(),
        )
        .await?;
        Ok(DeletedPayload { ok: true })
    }

    /// Saves an RFID badge for the signed-in user.
    async fn add_rfid_badge(
        &self,
        ctx: &Context<'_>,
        input: AddRfidBadgeInput,
    ) -> Result<AuthMethodPayload> {
        let me = principal(ctx).person()?;
        let db = &services(ctx)?.db;
        services(ctx)?.limiter.hit(
            &format!("badge-add:{}", me.id),
            super::BADGE_ADD_PER_ACCOUNT,
        )?;
        let saved = badges::add(
            db,
            &services(ctx)?.badge_keys,
            me.id,
            &input.uid,
            input.label.as_deref(),
            meta(ctx).ip.as_deref(),
        )
        .await?;
        Ok(AuthMethodPayload {
            auth_method: AuthMethod(saved),
        })
    }

    /// Deletes one of the signed-in user's badges.
    async fn delete_auth_method(
        &self,
        ctx: &Context<'_>,
        input: DeleteAuthMethodInput,
    ) -> Result<DeletedPayload> {
        let me = principal(ctx).person()?;
        let db = &services(ctx)?.db;
        let id = ids::decode(&input.id, Kind::AUTH_METHOD, "id")?;
        badges::delete_own(db, me.id, id, meta(ctx).ip.as_deref()).await?;
        Ok(DeletedPayload { ok: true })
    }
}
