//! GraphQL for kiosks: staff issue (secret shown once), list and revoke a
//! cabinet's kiosk credential; a kiosk signs in with it (`kioskSignIn`) and
//! reads its own cabinet (`terminal`).

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::graphql::Cabinet;
use super::kiosks;
use super::loaders::{BaysOfCabinet, CabinetById};
use crate::auth::guards::principal;
use crate::auth::kiosk_access::Changed;
use crate::auth::rate_limit::{Limit, ip_key};
use crate::entities::kiosk_credential;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::loader;
use crate::graphql::scalars::DateTime;
use crate::graphql::types::Bay;
use crate::services::services;

impl Kind {
    pub const KIOSK_CREDENTIAL: Self = Self::named("KioskCredential");
}

/// A cabinet's kiosk credential; the secret itself is never shown again.
pub struct KioskCredential(pub kiosk_credential::Model);

#[Object]
impl KioskCredential {
    async fn id(&self) -> ID {
        ids::encode(Kind::KIOSK_CREDENTIAL, self.0.id)
    }
    async fn cabinet_id(&self) -> ID {
        ids::encode(Kind::CABINET, self.0.cabinet_id)
    }
    /// The secret's first characters, to tell credentials apart.
    async fn hint(&self) -> &str {
        &self.0.hint
    }
    async fn label(&self) -> &str {
        &self.0.label
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When a kiosk last signed in with it.
    async fn last_used_at(&self) -> Option<DateTime> {
        self.0.last_used_at.map(Into::into)
    }
    async fn revoked_at(&self) -> Option<DateTime> {
        self.0.revoked_at.map(Into::into)
    }
    async fn active(&self) -> bool {
        self.0.revoked_at.is_none()
    }
}

/// The kiosk's view of where it stands.
pub struct Terminal {
    cabinet_id: i32,
    expires_at: i64,
}

#[Object]
impl Terminal {
    async fn cabinet(&self, ctx: &Context<'_>) -> Result<Cabinet> {
        loader(ctx)?
            .load_one(CabinetById(self.cabinet_id))
            .await?
            .map(Cabinet)
            .ok_or_else(|| AppError::not_found("cabinet").into())
    }
    /// The cabinet's bays, by number: the only bays this kiosk acts on.
    async fn bays(&self, ctx: &Context<'_>) -> Result<Vec<Bay>> {
        let rows = loader(ctx)?
            .load_one(BaysOfCabinet(self.cabinet_id))
            .await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(Bay::from)
            .collect())
    }
    /// The Ed25519 public key (base64url) that signs `terminalOfflineCache`:
    /// keep it to verify caches offline.
    async fn signing_key(&self, ctx: &Context<'_>) -> Result<String> {
        let services = services(ctx)?;
        Ok(services.signer.get(&services.db).await?.public_key())
    }
    async fn signing_key_id(&self, ctx: &Context<'_>) -> Result<String> {
        let services = services(ctx)?;
        Ok(services.signer.get(&services.db).await?.key_id())
    }
    /// When the kiosk's access token expires; sign in again before.
    async fn expires_at(&self) -> Option<DateTime> {
        chrono::DateTime::from_timestamp(self.expires_at, 0).map(Into::into)
    }
}

#[derive(Default)]
pub struct KioskQuery;

#[Object]
impl KioskQuery {
    /// Staff: a cabinet's kiosk credentials, newest first (revoked ones too).
    async fn kiosk_credentials(
        &self,
        ctx: &Context<'_>,
        cabinet_id: ID,
    ) -> Result<Vec<KioskCredential>> {
        principal(ctx).staff()?;
        let cabinet = ids::decode(&cabinet_id, Kind::CABINET, "cabinetId")?;
        let rows = kiosks::of_cabinet(&services(ctx)?.db, cabinet).await?;
        Ok(rows.into_iter().map(KioskCredential).collect())
    }

    /// A kiosk: its cabinet and bays.
    async fn terminal(&self, ctx: &Context<'_>) -> Result<Terminal> {
        super::sessions_graphql::kiosk(ctx)?;
        match principal(ctx) {
            crate::auth::Principal::Kiosk(kiosk) => Ok(Terminal {
                cabinet_id: kiosk.cabinet_id,
                expires_at: kiosk.expires_at,
            }),
            _ => Err(AppError::Forbidden.into()),
        }
    }
}

#[derive(InputObject)]
pub struct IssueKioskCredentialInput {
    pub cabinet_id: ID,
    /// Where the kiosk is, for staff (at most 100 characters).
    #[graphql(default)]
    pub label: String,
}

#[derive(SimpleObject)]
pub struct IssueKioskCredentialPayload {
    pub credential: KioskCredential,
    /// Shown once: configure the kiosk with it. Issuing again revokes it.
    pub secret: String,
}

#[derive(InputObject)]
pub struct RevokeKioskCredentialInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct RevokeKioskCredentialPayload {
    pub credential: KioskCredential,
}

#[derive(InputObject)]
pub struct KioskSignInInput {
    /// The secret staff issued for the cabinet.
    pub credential: String,
}

#[derive(SimpleObject)]
pub struct KioskSignInPayload {
    /// A bearer token for the kiosk's requests and subscriptions.
    pub access_token: String,
    pub expires_at: DateTime,
    pub cabinet_id: ID,
}

#[derive(Default)]
pub struct KioskMutation;

#[Object]
impl KioskMutation {
    /// Staff: issues the cabinet's kiosk credential, revoking the previous one.
    async fn issue_kiosk_credential(
        &self,
        ctx: &Context<'_>,
        input: IssueKioskCredentialInput,
    ) -> Result<IssueKioskCredentialPayload> {
        let staff = principal(ctx).staff()?.id;
        let cabinet = ids::decode(&input.cabinet_id, Kind::CABINET, "cabinetId")?;
        let services = services(ctx)?;
        let issued = kiosks::issue(
            &services.db,
            cabinet,
            &input.label,
            Some(staff),
            services.now(),
        )
        .await?;
        // The cabinet's previous credential was revoked with it.
        services
            .kiosk_access
            .changed(&services.bus, Changed::Cabinet(cabinet))
            .await;
        tracing::info!(
            cabinet,
            staff,
            credential = issued.credential.id,
            security = true,
            "kiosk credential issued"
        );
        Ok(IssueKioskCredentialPayload {
            credential: KioskCredential(issued.credential),
            secret: issued.secret,
        })
    }

    /// Staff: revokes a kiosk credential; the kiosk cannot sign in with it again.
    async fn revoke_kiosk_credential(
        &self,
        ctx: &Context<'_>,
        input: RevokeKioskCredentialInput,
    ) -> Result<RevokeKioskCredentialPayload> {
        let staff = principal(ctx).staff()?.id;
        let id = ids::decode(&input.id, Kind::KIOSK_CREDENTIAL, "id")?;
        let services = services(ctx)?;
        let credential = kiosks::revoke(&services.db, id, services.now()).await?;
        services
            .kiosk_access
            .changed(&services.bus, Changed::Cabinet(credential.cabinet_id))
            .await;
        tracing::info!(
            credential = id,
            staff,
            security = true,
            "kiosk credential revoked"
        );
        Ok(RevokeKioskCredentialPayload {
            credential: KioskCredential(credential),
        })
    }

    /// A kiosk: exchanges its credential for a short-lived access token.
    async fn kiosk_sign_in(
        &self,
        ctx: &Context<'_>,
        input: KioskSignInInput,
    ) -> Result<KioskSignInPayload> {
        let services = services(ctx)?;
        let ip = ctx
            .data_opt::<crate::accounts::RequestMeta>()
            .and_then(|meta| meta.ip.clone());
        let limit = Limit {
            max: services.kiosks.sign_in_per_minute.max(1),
            window: std::time::Duration::from_secs(60),
        };
        services.limiter.hit(
            &format!("kiosk-sign-in:ip:{}", ip_key(ip.as_deref())),
            limit,
        )?;
        let signed_in = kiosks::sign_in(
            &services.db,
            &services.keys,
            &input.credential,
            services.kiosks.token_ttl(),
            services.now(),
        )
        .await
        .inspect_err(|_| tracing::info!(security = true, "kiosk sign-in refused"))?;
        Ok(KioskSignInPayload {
            access_token: signed_in.token,
            expires_at: signed_in.expires_at.into(),
            cabinet_id: ids::encode(Kind::CABINET, signed_in.cabinet_id),
        })
    }
}
