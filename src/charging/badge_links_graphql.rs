//! GraphQL for badge linking: the customer's `createBadgeLinkCode` and the
//! kiosk's `terminalLinkBadge`.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::badge_links;
use crate::auth::Principal;
use crate::auth::guards::principal;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;

/// The cabinet of the calling kiosk.
pub(super) fn kiosk_cabinet(ctx: &Context<'_>) -> Result<i32, AppError> {
    match principal(ctx) {
        Principal::Kiosk(kiosk) => Ok(kiosk.cabinet_id),
        Principal::Anonymous => Err(AppError::Unauthenticated),
        _ => Err(AppError::Forbidden),
    }
}

#[derive(InputObject)]
pub struct CreateBadgeLinkCodeInput {
    /// The cabinet whose kiosk the badge will be scanned at.
    pub cabinet_id: ID,
}

/// A badge-linking code, shown this once.
#[derive(SimpleObject)]
pub struct BadgeLinkCodePayload {
    /// Type it at the kiosk, then scan the badge.
    pub code: String,
    pub expires_at: DateTime,
}

#[derive(InputObject)]
pub struct TerminalLinkBadgeInput {
    /// The customer's code.
    pub code: String,
    /// The scanned badge's UID.
    pub uid: String,
}

#[derive(SimpleObject)]
pub struct TerminalLinkBadgePayload {
    /// The linked badge's hint (its last characters), to show the customer.
    pub hint: String,
}

#[derive(Default)]
pub struct BadgeLinkMutation;

#[Object]
impl BadgeLinkMutation {
    /// The signed-in customer: a one-use code (valid 10 minutes) that links the
    /// next badge scanned with it at that cabinet's kiosk to their account.
    /// Asking again ends the previous code.
    async fn create_badge_link_code(
        &self,
        ctx: &Context<'_>,
        input: CreateBadgeLinkCodeInput,
    ) -> Result<BadgeLinkCodePayload> {
        let me = principal(ctx).person()?;
        let cabinet_id = ids::decode(&input.cabinet_id, Kind::CABINET, "cabinetId")?;
        let issued = badge_links::create(services(ctx)?, me.id, cabinet_id).await?;
        Ok(BadgeLinkCodePayload {
            expires_at: badge_links::expires_at(&issued.row).into(),
            code: issued.code,
        })
    }

    /// A kiosk: links the scanned badge to the account whose code was typed.
    async fn terminal_link_badge(
        &self,
        ctx: &Context<'_>,
        input: TerminalLinkBadgeInput,
    ) -> Result<TerminalLinkBadgePayload> {
        let cabinet_id = kiosk_cabinet(ctx)?;
        let badge = badge_links::link(services(ctx)?, cabinet_id, &input.code, &input.uid).await?;
        Ok(TerminalLinkBadgePayload {
            hint: badge.display_value,
        })
    }
}
