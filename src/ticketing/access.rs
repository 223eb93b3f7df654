//! Who may do what in ticketing: pretix's team permissions, for the event or
//! organizer at hand.
//!
//! A team API token carries its team's permissions and events in the
//! principal; a person's teams are read from `team_members` here, for the
//! organizer of the event at hand, on every check. Staff pass every check.
//! An event or organizer that does not exist is `FORBIDDEN` to everyone but
//! staff (`NOT_FOUND`), so a refusal does not tell which ids exist.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::auth::{Principal, TeamPermission};
use crate::entities::{event, organizer, team, team_event, team_member};
use crate::error::AppError;

/// Who acted, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in person (a team member or staff).
    Person(i32),
    /// A team's API token (`None` for a signed team credential).
    Token { team_id: i32, token_id: Option<i32> },
}

impl Actor {
    /// The account behind the action, if a person acted.
    pub fn user_id(self) -> Option<i32> {
        match self {
            Self::Person(id) => Some(id),
            Self::Token { .. } => None,
        }
    }

    /// The stored API token behind the action, if one acted.
    pub fn token_id(self) -> Option<i32> {
        match self {
            Self::Person(_) => None,
            Self::Token { token_id, .. } => token_id,
        }
    }
}

/// `permission` on `event_id`: the event and who acts.
///
/// # Errors
/// `UNAUTHENTICATED` anonymously; `FORBIDDEN` without the permission on that
/// event (or when it does not exist); `NOT_FOUND` for staff when it does not
/// exist.
pub async fn on_event(
    db: &impl ConnectionTrait,
    principal: &Principal,
    permission: TeamPermission,
    event_id: i32,
) -> Result<(event::Model, Actor), AppError> {
    let load = || async {
        event::Entity::find_by_id(event_id)
            .one(db)
            .await
            .map_err(AppError::from)
    };
    match principal {
        Principal::Anonymous => Err(AppError::Unauthenticated),
        Principal::Team(token) => {
            principal.team_may(permission, event_id)?;
            let event = load().await?.ok_or(AppError::Forbidden)?;
            if event.organizer_id != token.organizer_id {
                return Err(AppError::Forbidden);
            }
            Ok((
                event,
                Actor::Token {
                    team_id: token.team_id,
                    token_id: token.token_id,
                },
            ))
        }
        Principal::Person(_) => {
            let person = principal.person()?;
            if person.is_staff_member() {
                let event = load().await?.ok_or(AppError::not_found("event"))?;
                return Ok((event, Actor::Person(person.id)));
            }
            let event = load().await?.ok_or(AppError::Forbidden)?;
            for team in teams_of(db, person.id, event.organizer_id).await? {
                if team.permissions().contains(&permission)
                    && (team.all_events || team_has_event(db, team.id, event.id).await?)
                {
                    return Ok((event, Actor::Person(person.id)));
                }
            }
            Err(AppError::Forbidden)
        }
        Principal::Kiosk(_) | Principal::Scanner(_) => Err(AppError::Forbidden),
    }
}

/// `permission` on `organizer_id` itself (creating events, changing teams).
///
/// # Errors
/// As [`on_event`], for the organizer.
pub async fn on_organizer(
    db: &impl ConnectionTrait,
    principal: &Principal,
    permission: TeamPermission,
    organizer_id: i32,
) -> Result<(organizer::Model, Actor), AppError> {
    let load = || async {
        organizer::Entity::find_by_id(organizer_id)
            .one(db)
            .await
            .map_err(AppError::from)
    };
    match principal {
        Principal::Anonymous => Err(AppError::Unauthenticated),
        Principal::Team(token) => {
            if token.organizer_id != organizer_id || !token.permissions.contains(&permission) {
                return Err(AppError::Forbidden);
            }
            let organizer = load().await?.ok_or(AppError::Forbidden)?;
            Ok((
                organizer,
                Actor::Token {
                    team_id: token.team_id,
                    token_id: token.token_id,
                },
            ))
        }
        Principal::Person(_) => {
            let person = principal.person()?;
            if person.is_staff_member() {
                let organizer = load().await?.ok_or(AppError::not_found("organizer"))?;
                return Ok((organizer, Actor::Person(person.id)));
            }
            let allowed = teams_of(db, person.id, organizer_id)
                .await?
                .iter()
                .any(|team| team.permissions().contains(&permission));
            if !allowed {
                return Err(AppError::Forbidden);
            }
            let organizer = load().await?.ok_or(AppError::Forbidden)?;
            Ok((organizer, Actor::Person(person.id)))
        }
        Principal::Kiosk(_) | Principal::Scanner(_) => Err(AppError::Forbidden),
    }
}

/// The teams of `organizer_id` that `user_id` belongs to.
async fn teams_of(
    db: &impl ConnectionTrait,
    user_id: i32,
    organizer_id: i32,
) -> Result<Vec<team::Model>, AppError> {
    let team_ids: Vec<i32> = team_member::Entity::find()
        .select_only()
        .column(team_member::Column::TeamId)
        .filter(team_member::Column::UserId.eq(user_id))
        .into_tuple()
        .all(db)
        .await?;
    if team_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(team::Entity::find()
        .filter(team::Column::Id.is_in(team_ids))
        .filter(team::Column::OrganizerId.eq(organizer_id))
        .all(db)
        .await?)
}

async fn team_has_event(
    db: &impl ConnectionTrait,
    team_id: i32,
    event_id: i32,
) -> Result<bool, AppError> {
    Ok(team_event::Entity::find_by_id((team_id, event_id))
        .one(db)
        .await?
        .is_some())
}
