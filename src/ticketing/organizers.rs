//! Organizers, their events and dates, teams, members and API tokens.
//!
//! Each change checks the actor's team permission for the organizer or event
//! at hand (`access`), runs in one transaction with its audit log entry, and
//! returns the stored row.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
};
use serde_json::json;

use super::access::{self, Actor};
use super::audit::{Audited, Change};
use crate::auth::tokens::{random_token, sha256_hex};
use crate::auth::{Principal, TeamPermission};
use crate::entities::{
    event, organizer, sub_event, team, team_api_token, team_event, team_member, user,
};
use crate::error::{AppError, Reason};

/// Every permission: the organizer's first team holds them all.
pub const ALL_PERMISSIONS: [TeamPermission; 11] = [
    TeamPermission::CreateEvents,
    TeamPermission::ChangeTeams,
    TeamPermission::ManageCustomers,
    TeamPermission::ChangeOrganizerSettings,
    TeamPermission::ChangeEvents,
    TeamPermission::ChangeItems,
    TeamPermission::ViewOrders,
    TeamPermission::ChangeOrders,
    TeamPermission::CheckIn,
    TeamPermission::ViewVouchers,
    TeamPermission::ChangeVouchers,
];

/// A URL slug: lowercase letters, digits and dashes, starting with a letter or digit.
///
/// # Errors
/// `BAD_USER_INPUT` on `slug` otherwise.
pub fn parse_slug(slug: &str) -> Result<String, AppError> {
    let ok = (1..=50).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-');
    if ok {
        Ok(slug.to_owned())
    } else {
        Err(AppError::bad_input(
            "slug",
            "use 1 to 50 lowercase letters, digits and dashes",
        ))
    }
}

/// A display name of 1 to 200 characters.
///
/// # Errors
/// `BAD_USER_INPUT` on `name` otherwise.
pub fn parse_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::bad_input("name", "use 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

fn parse_currency(currency: &str) -> Result<String, AppError> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(currency.to_owned())
    } else {
        Err(AppError::bad_input(
            "currency",
            "an ISO 4217 code of three capital letters, like EUR",
        ))
    }
}

fn parse_time_zone(zone: &str) -> Result<String, AppError> {
    let ok = (1..=64).contains(&zone.len())
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
    if ok {
        Ok(zone.to_owned())
    } else {
        Err(AppError::bad_input(
            "timeZone",
            "an IANA time zone name, like Europe/Paris",
        ))
    }
}

fn slug_taken(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            AppError::refused(Reason::SlugTaken, "this slug is used already")
        }
        _ => AppError::from(err),
    }
}

/// Staff: creates an organizer with an "Administrators" team holding every
/// permission on all its events, with `admin_user_id` as its member when given.
///
/// # Errors
/// `BAD_USER_INPUT` on a bad name or slug or an unknown account;
/// `SLUG_TAKEN`; as [`Principal::staff`].
pub async fn create_organizer(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    name: &str,
    slug: &str,
    admin_user_id: Option<i32>,
) -> Result<organizer::Model, AppError> {
    let staff = principal.staff()?;
    let name = parse_name(name)?;
    let slug = parse_slug(slug)?;
    let change = Audited::begin(db, Some(Actor::Person(staff.id)), now).await?;
    let txn = change.txn();
    if let Some(id) = admin_user_id
        && user::Entity::find_by_id(id).one(txn).await?.is_none()
    {
        return Err(AppError::bad_input("adminUserId", "no such account"));
    }
    let organizer = organizer::ActiveModel {
        name: Set(name),
        slug: Set(slug),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(slug_taken)?;
    let mut admins = team::ActiveModel {
        organizer_id: Set(organizer.id),
        name: Set("Administrators".to_owned()),
        all_events: Set(true),
        created_at: Set(now),
        ..Default::default()
    };
    team::Model::grant(&mut admins, &ALL_PERMISSIONS);
    let admins = admins.insert(txn).await?;
    if let Some(user_id) = admin_user_id {
        add_member_row(txn, admins.id, user_id, now).await?;
    }
    change
        .commit(Change::on_organizer(
            organizer.id,
            "voltgate.organizer.created",
            "organizer",
            organizer.id,
            json!({ "name": organizer.name, "slug": organizer.slug, "team": admins.id }),
        ))
        .await?;
    Ok(organizer)
}

/// What an event is created or changed with.
#[derive(Debug, Clone, Default)]
pub struct EventInput {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub currency: Option<String>,
    pub date_from: Option<DateTime<Utc>>,
    pub date_to: Option<DateTime<Utc>>,
    pub presale_start: Option<DateTime<Utc>>,
    pub presale_end: Option<DateTime<Utc>>,
    pub location: Option<String>,
    pub time_zone: Option<String>,
    pub live: Option<bool>,
    pub testmode: Option<bool>,
    pub has_subevents: Option<bool>,
    pub sales_channels: Option<Vec<String>>,
    pub cart_hold_minutes: Option<i32>,
    pub last_order_modification_date: Option<DateTime<Utc>>,
}

fn apply_event_input(row: &mut event::ActiveModel, input: EventInput) -> Result<(), AppError> {
    if let Some(name) = input.name {
        row.name = Set(parse_name(&name)?);
    }
    if let Some(slug) = input.slug {
        row.slug = Set(parse_slug(&slug)?);
    }
    if let Some(currency) = input.currency {
        row.currency = Set(parse_currency(&currency)?);
    }
    if let Some(date_from) = input.date_from {
        row.date_from = Set(date_from);
    }
    if input.date_to.is_some() {
        row.date_to = Set(input.date_to);
    }
    if input.presale_start.is_some() {
        row.presale_start = Set(input.presale_start);
    }
    if input.presale_end.is_some() {
        row.presale_end = Set(input.presale_end);
    }
    if let Some(location) = input.location {
        if location.chars().count() > 500 {
            return Err(AppError::bad_input("location", "at most 500 characters"));
        }
        row.location = Set(Some(location));
    }
    if let Some(zone) = input.time_zone {
        row.time_zone = Set(parse_time_zone(&zone)?);
    }
    if let Some(live) = input.live {
        row.live = Set(live);
    }
    if let Some(testmode) = input.testmode {
        row.testmode = Set(testmode);
    }
    if let Some(has_subevents) = input.has_subevents {
        row.has_subevents = Set(has_subevents);
    }
    if let Some(channels) = input.sales_channels {
        let valid = !channels.is_empty()
            && channels.iter().all(|c| {
                (1..=32).contains(&c.len())
                    && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            });
        if !valid {
            return Err(AppError::bad_input(
                "salesChannels",
                "one or more channel names of lowercase letters and underscores",
            ));
        }
        row.sales_channels = Set(channels.join(","));
    }
    if let Some(minutes) = input.cart_hold_minutes {
        if !(1..=24 * 60).contains(&minutes) {
            return Err(AppError::bad_input(
                "cartHoldMinutes",
                "between 1 and 1440 minutes",
            ));
        }
        row.cart_hold_minutes = Set(minutes);
    }
    if input.last_order_modification_date.is_some() {
        row.last_order_modification_date = Set(input.last_order_modification_date);
    }
    Ok(())
}

/// Dates that end before they start are refused (checked on the row about to
/// be committed; the transaction rolls back).
fn check_event_dates(event: &event::Model) -> Result<(), AppError> {
    if event.date_to.is_some_and(|to| to < event.date_from) {
        return Err(AppError::bad_input("dateTo", "ends before it starts"));
    }
    if let (Some(start), Some(end)) = (event.presale_start, event.presale_end)
        && end < start
    {
        return Err(AppError::bad_input("presaleEnd", "ends before it starts"));
    }
    Ok(())
}

/// Creates an event of `organizer_id` (team permission `CreateEvents`). It
/// starts not live, so its shop is closed until it is made live.
///
/// # Errors
/// `BAD_USER_INPUT` on a missing or bad member; `SLUG_TAKEN`; as [`access::on_organizer`].
pub async fn create_event(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    organizer_id: i32,
    input: EventInput,
) -> Result<event::Model, AppError> {
    let (change, _) = Audited::on_organizer(
        db,
        principal,
        now,
        TeamPermission::CreateEvents,
        organizer_id,
    )
    .await?;
    if input.name.is_none() || input.slug.is_none() || input.currency.is_none() {
        return Err(AppError::bad_input(
            "input",
            "name, slug and currency are required",
        ));
    }
    let mut row = event::ActiveModel {
        organizer_id: Set(organizer_id),
        date_from: Set(input.date_from.unwrap_or(now)),
        date_to: Set(None),
        presale_start: Set(None),
        presale_end: Set(None),
        location: Set(None),
        time_zone: Set("UTC".to_owned()),
        live: Set(false),
        testmode: Set(false),
        has_subevents: Set(false),
        sales_channels: Set("web".to_owned()),
        cart_hold_minutes: Set(30),
        last_order_modification_date: Set(None),
        created_at: Set(now),
        ..Default::default()
    };
    apply_event_input(&mut row, input)?;
    let event = row.insert(change.txn()).await.map_err(slug_taken)?;
    check_event_dates(&event)?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.event.created",
            "event",
            event.id,
            json!({ "name": event.name, "slug": event.slug, "currency": event.currency }),
        ))
        .await?;
    Ok(event)
}

/// Changes an event's settings (team permission `ChangeEvents`).
///
/// # Errors
/// As [`create_event`], with [`access::on_event`].
pub async fn update_event(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    input: EventInput,
) -> Result<event::Model, AppError> {
    let (change, event) =
        Audited::on_event(db, principal, now, TeamPermission::ChangeEvents, event_id).await?;
    let changed = json!({
        "name": input.name, "slug": input.slug, "live": input.live,
        "testmode": input.testmode, "presale_start": input.presale_start,
        "presale_end": input.presale_end,
        "last_order_modification_date": input.last_order_modification_date,
    });
    let mut row: event::ActiveModel = event.into();
    apply_event_input(&mut row, input)?;
    let event = row.update(change.txn()).await.map_err(slug_taken)?;
    check_event_dates(&event)?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.event.changed",
            "event",
            event.id,
            changed,
        ))
        .await?;
    Ok(event)
}

/// What a date of a series is created with.
#[derive(Debug, Clone)]
pub struct SubEventInput {
    pub name: String,
    pub active: bool,
    pub is_public: bool,
    pub date_from: DateTime<Utc>,
    pub date_to: Option<DateTime<Utc>>,
    pub presale_start: Option<DateTime<Utc>>,
    pub presale_end: Option<DateTime<Utc>>,
    pub location: Option<String>,
}

impl From<&sub_event::Model> for SubEventInput {
    /// The date as it is, for a change to start from.
    fn from(row: &sub_event::Model) -> Self {
        Self {
            name: row.name.clone(),
            active: row.active,
            is_public: row.is_public,
            date_from: row.date_from,
            date_to: row.date_to,
            presale_start: row.presale_start,
            presale_end: row.presale_end,
            location: row.location.clone(),
        }
    }
}

/// The one validation of a date, for creation and changes: returns its name
/// as stored.
///
/// # Errors
/// `BAD_USER_INPUT` on the member at fault.
pub fn check_sub_event(input: &SubEventInput) -> Result<String, AppError> {
    let name = parse_name(&input.name)?;
    if input.date_to.is_some_and(|to| to < input.date_from) {
        return Err(AppError::bad_input("dateTo", "ends before it starts"));
    }
    if let (Some(start), Some(end)) = (input.presale_start, input.presale_end)
        && end < start
    {
        return Err(AppError::bad_input("presaleEnd", "ends before it starts"));
    }
    if input
        .location
        .as_ref()
        .is_some_and(|l| l.chars().count() > 500)
    {
        return Err(AppError::bad_input("location", "at most 500 characters"));
    }
    Ok(name)
}

/// Adds a date to an event series (team permission `ChangeEvents`); the event
/// becomes a series.
///
/// # Errors
/// `BAD_USER_INPUT` on a bad name or dates; as [`access::on_event`].
pub async fn create_sub_event(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    input: SubEventInput,
) -> Result<sub_event::Model, AppError> {
    let (change, event) =
        Audited::on_event(db, principal, now, TeamPermission::ChangeEvents, event_id).await?;
    let name = check_sub_event(&input)?;
    let date = sub_event::ActiveModel {
        event_id: Set(event.id),
        name: Set(name),
        active: Set(input.active),
        is_public: Set(input.is_public),
        date_from: Set(input.date_from),
        date_to: Set(input.date_to),
        presale_start: Set(input.presale_start),
        presale_end: Set(input.presale_end),
        location: Set(input.location),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(change.txn())
    .await?;
    if !event.has_subevents {
        let mut row: event::ActiveModel = event.clone().into();
        row.has_subevents = Set(true);
        row.update(change.txn()).await?;
    }
    change
        .commit(Change::on_event(
            &event,
            "voltgate.subevent.added",
            "subevent",
            date.id,
            json!({ "name": date.name, "date_from": date.date_from }),
        ))
        .await?;
    Ok(date)
}

/// What a team is created with.
#[derive(Debug, Clone)]
pub struct TeamInput {
    pub name: String,
    pub all_events: bool,
    pub event_ids: Vec<i32>,
    pub permissions: Vec<TeamPermission>,
}

impl TeamInput {
    /// The team as it is (with its events), for a change to start from.
    pub fn of(team: &team::Model, event_ids: Vec<i32>) -> Self {
        Self {
            name: team.name.clone(),
            all_events: team.all_events,
            event_ids,
            permissions: team.permissions(),
        }
    }
}

/// The one validation of a team of `organizer_id`, for creation and changes:
/// returns its name as stored and its events, each once, in id order.
///
/// # Errors
/// `BAD_USER_INPUT` on a bad name or an event of another organizer.
pub async fn check_team(
    db: &impl ConnectionTrait,
    organizer_id: i32,
    input: &TeamInput,
) -> Result<(String, Vec<i32>), AppError> {
    let name = parse_name(&input.name)?;
    let mut events = input.event_ids.clone();
    events.sort_unstable();
    events.dedup();
    let found = event::Entity::find()
        .filter(event::Column::Id.is_in(events.clone()))
        .filter(event::Column::OrganizerId.eq(organizer_id))
        .all(db)
        .await?;
    if found.len() != events.len() {
        return Err(AppError::bad_input(
            "eventIds",
            "every event must belong to the organizer",
        ));
    }
    Ok((name, events))
}

/// Links a team to events, in the caller's transaction.
pub(super) async fn link_events(
    db: &impl ConnectionTrait,
    team_id: i32,
    event_ids: &[i32],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    for event_id in event_ids {
        team_event::ActiveModel {
            team_id: Set(team_id),
            event_id: Set(*event_id),
            added_at: Set(now),
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Creates a team of `organizer_id` (team permission `ChangeTeams`).
///
/// # Errors
/// `BAD_USER_INPUT` on a bad name or an event of another organizer; as
/// [`access::on_organizer`].
pub async fn create_team(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    organizer_id: i32,
    input: TeamInput,
) -> Result<team::Model, AppError> {
    let (change, _) = Audited::on_organizer(
        db,
        principal,
        now,
        TeamPermission::ChangeTeams,
        organizer_id,
    )
    .await?;
    let txn = change.txn();
    let (name, events) = check_team(txn, organizer_id, &input).await?;
    let mut row = team::ActiveModel {
        organizer_id: Set(organizer_id),
        name: Set(name),
        all_events: Set(input.all_events),
        created_at: Set(now),
        ..Default::default()
    };
    team::Model::grant(&mut row, &input.permissions);
    let team = row.insert(txn).await?;
    link_events(txn, team.id, &events, now).await?;
    change
        .commit(Change::on_organizer(
            organizer_id,
            "voltgate.team.created",
            "team",
            team.id,
            json!({
                "name": team.name, "all_events": team.all_events, "events": events,
                "permissions": input.permissions,
            }),
        ))
        .await?;
    Ok(team)
}

/// Opens a change of `team_id` (team permission `ChangeTeams` on its organizer).
pub(super) async fn team_for_change(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    team_id: i32,
) -> Result<(Audited, team::Model), AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    // A team that does not exist is refused like one the caller may not change.
    let team = team::Entity::find_by_id(team_id).one(change.txn()).await?;
    let organizer_id = team.as_ref().map_or(0, |t| t.organizer_id);
    change
        .check_organizer(principal, TeamPermission::ChangeTeams, organizer_id)
        .await?;
    let team = team.ok_or(AppError::not_found("team"))?;
    Ok((change, team))
}

async fn add_member_row(
    db: &impl ConnectionTrait,
    team_id: i32,
    user_id: i32,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    team_member::Entity::insert(team_member::ActiveModel {
        team_id: Set(team_id),
        user_id: Set(user_id),
        added_at: Set(now),
    })
    .on_conflict_do_nothing()
    .exec(db)
    .await?;
    Ok(())
}

/// Adds an account to a team (team permission `ChangeTeams`); adding a member
/// twice changes nothing.
///
/// # Errors
/// `BAD_USER_INPUT` on an unknown account; as [`access::on_organizer`].
pub async fn add_team_member(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    team_id: i32,
    user_id: i32,
) -> Result<team::Model, AppError> {
    let (change, team) = team_for_change(db, principal, now, team_id).await?;
    if user::Entity::find_by_id(user_id)
        .one(change.txn())
        .await?
        .is_none()
    {
        return Err(AppError::bad_input("userId", "no such account"));
    }
    add_member_row(change.txn(), team.id, user_id, now).await?;
    change
        .commit(Change::on_organizer(
            team.organizer_id,
            "voltgate.team.member.added",
            "team",
            team.id,
            json!({ "user": user_id }),
        ))
        .await?;
    Ok(team)
}

/// Locks the organizer's row until the transaction ends, so changes to its
/// teams' permissions and members are checked one after the other (two
/// concurrent changes never both remove "the other" team manager).
/// SQLite's single writer serializes them already.
///
/// # Errors
/// On database errors.
pub(super) async fn lock_organizer(
    db: &impl ConnectionTrait,
    organizer_id: i32,
) -> Result<(), AppError> {
    crate::db::find_locked(db, organizer::Entity::find_by_id(organizer_id)).await?;
    Ok(())
}

/// Refuses a change that would leave the organizer without a team that holds
/// `ChangeTeams` and has a member (pretix's rule): nobody could change the
/// teams any more.
///
/// # Errors
/// `WOULD_LOCK_OUT`; on database errors.
pub(super) async fn keeps_team_managers(
    db: &impl ConnectionTrait,
    organizer_id: i32,
) -> Result<(), AppError> {
    let managers: Vec<i32> = team::Entity::find()
        .select_only()
        .column(team::Column::Id)
        .filter(team::Column::OrganizerId.eq(organizer_id))
        .filter(team::Column::CanChangeTeams.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    let members = team_member::Entity::find()
        .filter(team_member::Column::TeamId.is_in(managers))
        .count(db)
        .await?;
    if members == 0 {
        return Err(AppError::refused(
            Reason::WouldLockOut,
            "no team with the permission to change teams and a member would be left",
        ));
    }
    Ok(())
}

/// Removes an account from a team (team permission `ChangeTeams`).
///
/// # Errors
/// As [`add_team_member`]; `WOULD_LOCK_OUT` when it is the last member of
/// the last team that may change teams.
pub async fn remove_team_member(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    team_id: i32,
    user_id: i32,
) -> Result<team::Model, AppError> {
    let (change, team) = team_for_change(db, principal, now, team_id).await?;
    lock_organizer(change.txn(), team.organizer_id).await?;
    team_member::Entity::delete_by_id((team.id, user_id))
        .exec(change.txn())
        .await?;
    keeps_team_managers(change.txn(), team.organizer_id).await?;
    change
        .commit(Change::on_organizer(
            team.organizer_id,
            "voltgate.team.member.removed",
            "team",
            team.id,
            json!({ "user": user_id }),
        ))
        .await?;
    Ok(team)
}

/// Issues an API token for a team (team permission `ChangeTeams`): the token
/// itself is returned once; only its SHA-256 is stored.
///
/// # Errors
/// `BAD_USER_INPUT` on a bad name; as [`access::on_organizer`].
pub async fn create_team_token(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    team_id: i32,
    name: &str,
) -> Result<(team_api_token::Model, String), AppError> {
    let (change, team) = team_for_change(db, principal, now, team_id).await?;
    let name = parse_name(name)?;
    let token = random_token()?;
    let stored = team_api_token::ActiveModel {
        team_id: Set(team.id),
        name: Set(name),
        token_hash: Set(sha256_hex(&token)),
        active: Set(true),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(change.txn())
    .await?;
    change
        .commit(Change::on_organizer(
            team.organizer_id,
            "voltgate.team.token.created",
            "team",
            team.id,
            json!({ "token": stored.id, "name": stored.name }),
        ))
        .await?;
    Ok((stored, token))
}

/// Revokes a team API token (team permission `ChangeTeams` on its team's
/// organizer); it stops working at once.
///
/// # Errors
/// `NOT_FOUND` for staff when the token does not exist; as [`access::on_organizer`].
pub async fn revoke_team_token(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    token_id: i32,
) -> Result<team_api_token::Model, AppError> {
    let stored = team_api_token::Entity::find_by_id(token_id).one(db).await?;
    let team_id = stored.as_ref().map_or(0, |t| t.team_id);
    let (change, team) = team_for_change(db, principal, now, team_id).await?;
    let stored = stored.ok_or(AppError::not_found("team API token"))?;
    let mut row: team_api_token::ActiveModel = stored.into();
    row.active = Set(false);
    let stored = row.update(change.txn()).await?;
    change
        .commit(Change::on_organizer(
            team.organizer_id,
            "voltgate.team.token.revoked",
            "team",
            team.id,
            json!({ "token": stored.id }),
        ))
        .await?;
    Ok(stored)
}

/// A live event by its organizer's slug and its own, as the shop shows it;
/// events that are not live are shown only to their teams' members with
/// `ChangeEvents`.
///
/// # Errors
/// `NOT_FOUND` when there is no such event visible to the caller.
pub async fn shop_event(
    db: &impl ConnectionTrait,
    principal: &Principal,
    organizer_slug: &str,
    event_slug: &str,
) -> Result<event::Model, AppError> {
    let not_found = || AppError::not_found("event");
    let organizer = organizer::Entity::find()
        .filter(organizer::Column::Slug.eq(organizer_slug))
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    let event = event::Entity::find()
        .filter(event::Column::OrganizerId.eq(organizer.id))
        .filter(event::Column::Slug.eq(event_slug))
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    if event.live
        || access::on_event(db, principal, TeamPermission::ChangeEvents, event.id)
            .await
            .is_ok()
    {
        Ok(event)
    } else {
        Err(not_found())
    }
}

/// The dates of an event series, by start.
///
/// # Errors
/// On database errors.
pub async fn sub_events_of(
    db: &impl ConnectionTrait,
    event_id: i32,
) -> Result<Vec<sub_event::Model>, AppError> {
    Ok(sub_event::Entity::find()
        .filter(sub_event::Column::EventId.eq(event_id))
        .order_by_asc(sub_event::Column::DateFrom)
        .all(db)
        .await?)
}
