//! Team API tokens presented as `Authorization: Token …` (pretix's scheme).
//!
//! The token is looked up by its SHA-256 on every request, with its team, so a
//! revoked token or a changed team takes effect at once. A team that works on
//! all of its organizer's events gets those events listed in its scope: a team
//! token never reaches another organizer's event, whatever check reads it.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use super::principal::{Principal, TeamToken};
use super::scope::Scope;
use super::tokens::sha256_hex;
use crate::entities::{event, team, team_api_token, team_event};
use crate::error::AppError;

/// The principal of a team API token.
///
/// # Errors
/// `UNAUTHENTICATED` when no active token has this value; `INTERNAL` on
/// database errors.
pub async fn authenticate(db: &impl ConnectionTrait, token: &str) -> Result<Principal, AppError> {
    let stored = team_api_token::Entity::find()
        .filter(team_api_token::Column::TokenHash.eq(sha256_hex(token)))
        .filter(team_api_token::Column::Active.eq(true))
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let team = team::Entity::find_by_id(stored.team_id)
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let events: Vec<i32> = if team.all_events {
        event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .filter(event::Column::OrganizerId.eq(team.organizer_id))
            .into_tuple()
            .all(db)
            .await?
    } else {
        team_event::Entity::find()
            .select_only()
            .column(team_event::Column::EventId)
            .filter(team_event::Column::TeamId.eq(team.id))
            .into_tuple()
            .all(db)
            .await?
    };
    Ok(Principal::Team(TeamToken {
        team_id: team.id,
        organizer_id: team.organizer_id,
        events: Scope::Only(events),
        permissions: team.permissions(),
        // Stored tokens do not expire; revocation ends them, and the
        // principal is rebuilt on every request.
        expires_at: i64::MAX,
        token_id: Some(stored.id),
    }))
}
