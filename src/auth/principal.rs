//! Who is making a request: a [`Principal`].
//!
//! Five kinds of caller reach the API: nobody in particular, a person signed in
//! to an account (with roles and staff flags; a technician with the stations
//! assigned to them), a kiosk (a cabinet's credential), a door scanner (an
//! event's gate) and a team API token (an organizer team's permissions).
//! Coarse checks read as sentences in resolvers (`principal.staff()?`,
//! `principal.require(RoleName::Technician)?`, `principal.kiosk_of(cabinet)?`);
//! fine checks are scoped queries on the entities, fed by [`Principal::stations`],
//! [`Principal::events`] and [`Principal::accounts`].

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use serde::{Deserialize, Serialize};

use super::scope::Scope;
use super::tokens::{Credential, TokenKeys};
use crate::entities::{CabinetStatus, RoleName, cabinet, station_assignment, user, user_role};
use crate::error::AppError;

/// A person signed in to an account, as checked against the database for this request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Person {
    pub id: i32,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub roles: Vec<RoleName>,
    /// The stations of a technician's active assignments (empty for everyone else).
    pub stations: Vec<i32>,
    /// Those of `stations` the technician only observes: they see them but
    /// do not act on them.
    pub observed: Vec<i32>,
    /// Unix time the access token expires; live subscriptions end then.
    pub expires_at: i64,
    /// The account's `token_version` the token was issued under.
    pub token_version: i32,
    /// The password is a temporary one set by staff; everything but changing it is refused.
    pub password_change_required: bool,
}

impl Person {
    /// Staff access: the staff flag, which superusers always have.
    pub fn is_staff_member(&self) -> bool {
        self.is_staff || self.is_superuser
    }

    pub fn holds(&self, role: RoleName) -> bool {
        self.roles.contains(&role)
    }
}

/// A cabinet's kiosk: it acts at its own cabinet, for the people who present
/// themselves there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kiosk {
    pub cabinet_id: i32,
    pub station_id: i32,
    /// The kiosk credential its token came from (none for tokens minted by
    /// the command line).
    pub credential_id: Option<i32>,
    pub expires_at: i64,
}

/// A door scanner of one event, at one gate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scanner {
    pub event_id: i32,
    pub gate: String,
    /// The stored scanner device behind the token, if any.
    pub device_id: Option<i32>,
    pub expires_at: i64,
}

/// What an organizer's team may do (pretix's team permissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamPermission {
    CreateEvents,
    ChangeTeams,
    ChangeOrganizerSettings,
    ManageCustomers,
    ChangeEvents,
    ChangeItems,
    ViewOrders,
    ChangeOrders,
    ViewVouchers,
    ChangeVouchers,
    CheckIn,
}

/// A team's API token: the team's permissions on its events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TeamToken {
    pub team_id: i32,
    pub organizer_id: i32,
    /// The events the team works on.
    pub events: Scope,
    pub permissions: Vec<TeamPermission>,
    pub expires_at: i64,
    /// The stored API token (`Authorization: Token …`); `None` for a signed credential.
    pub token_id: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Principal {
    #[default]
    Anonymous,
    Person(Person),
    Kiosk(Kiosk),
    Scanner(Scanner),
    Team(TeamToken),
}

impl Principal {
    /// The signed-in person.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for anonymous requests; `FORBIDDEN` for kiosks, scanners
    /// and team tokens, and for a person who must first replace a temporary password.
    pub fn person(&self) -> Result<&Person, AppError> {
        let person = self.signed_in()?;
        if person.password_change_required {
            return Err(AppError::PasswordChangeRequired);
        }
        Ok(person)
    }

    /// The signed-in person, even one who must still replace a temporary password:
    /// only for reading `me` and changing the password.
    ///
    /// # Errors
    /// As [`Principal::person`], without the temporary-password refusal.
    pub fn signed_in(&self) -> Result<&Person, AppError> {
        match self {
            Self::Person(person) => Ok(person),
            Self::Anonymous => Err(AppError::Unauthenticated),
            Self::Kiosk(_) | Self::Scanner(_) | Self::Team(_) => Err(AppError::Forbidden),
        }
    }

    /// A signed-in staff member.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for anonymous requests, `FORBIDDEN` for everyone else.
    pub fn staff(&self) -> Result<&Person, AppError> {
        let person = self.person()?;
        if person.is_staff_member() {
            Ok(person)
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// A person holding `role`; staff pass every role check but the kiosk's,
    /// which no person holds.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for anonymous requests, `FORBIDDEN` for everyone else.
    pub fn require(&self, role: RoleName) -> Result<&Person, AppError> {
        let person = self.person()?;
        let staff_passes = person.is_staff_member() && role != RoleName::Kiosk;
        if person.holds(role) || staff_passes {
            Ok(person)
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// The kiosk of `cabinet_id`.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for anonymous requests, `FORBIDDEN` for anyone else,
    /// including another cabinet's kiosk.
    pub fn kiosk_of(&self, cabinet_id: i32) -> Result<&Kiosk, AppError> {
        match self {
            Self::Kiosk(kiosk) if kiosk.cabinet_id == cabinet_id => Ok(kiosk),
            Self::Anonymous => Err(AppError::Unauthenticated),
            _ => Err(AppError::Forbidden),
        }
    }

    /// A door scanner of `event_id`.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for anonymous requests, `FORBIDDEN` for anyone else.
    pub fn scanner_at(&self, event_id: i32) -> Result<&Scanner, AppError> {
        match self {
            Self::Scanner(scanner) if scanner.event_id == event_id => Ok(scanner),
            Self::Anonymous => Err(AppError::Unauthenticated),
            _ => Err(AppError::Forbidden),
        }
    }

    /// A team token allowed `permission` on `event_id`.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for anonymous requests, `FORBIDDEN` for anyone else.
    pub fn team_may(
        &self,
        permission: TeamPermission,
        event_id: i32,
    ) -> Result<&TeamToken, AppError> {
        match self {
            Self::Team(team)
                if team.permissions.contains(&permission) && team.events.allows(event_id) =>
            {
                Ok(team)
            }
            Self::Anonymous => Err(AppError::Unauthenticated),
            _ => Err(AppError::Forbidden),
        }
    }

    /// Whether this is a staff member in good standing.
    pub fn is_staff(&self) -> bool {
        self.staff().is_ok()
    }

    /// The stations whose operation the principal may see: all for staff, the
    /// assigned ones for a technician, its own for a kiosk, none otherwise.
    pub fn stations(&self) -> Scope {
        match self {
            Self::Person(p) if p.is_staff_member() => Scope::All,
            Self::Person(p) if p.holds(RoleName::Technician) => Scope::Only(p.stations.clone()),
            Self::Kiosk(kiosk) => Scope::one(kiosk.station_id),
            _ => Scope::NONE,
        }
    }

    /// The stations whose operation the principal may act on (take alerts in
    /// charge, resolve them): [`Principal::stations`] without the ones a
    /// technician only observes.
    pub fn acting_stations(&self) -> Scope {
        match (self, self.stations()) {
            (Self::Person(p), Scope::Only(ids)) => Scope::Only(
                ids.into_iter()
                    .filter(|id| !p.observed.contains(id))
                    .collect(),
            ),
            (_, scope) => scope,
        }
    }

    /// The events the principal may work on: all for staff, the team's for a
    /// team token, its own for a scanner, none otherwise. (A person's teams
    /// arrive with ticketing.)
    pub fn events(&self) -> Scope {
        match self {
            Self::Person(p) if p.is_staff_member() => Scope::All,
            Self::Team(team) => team.events.clone(),
            Self::Scanner(scanner) => Scope::one(scanner.event_id),
            _ => Scope::NONE,
        }
    }

    /// The accounts whose private data the principal may read: all for staff,
    /// one's own for a person, none otherwise.
    pub fn accounts(&self) -> Scope {
        match self {
            Self::Person(p) if p.is_staff_member() => Scope::All,
            Self::Person(p) => Scope::one(p.id),
            _ => Scope::NONE,
        }
    }

    /// Unix time the principal's credential expires; `None` for anonymous requests.
    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Self::Anonymous => None,
            Self::Person(p) => Some(p.expires_at),
            Self::Kiosk(k) => Some(k.expires_at),
            Self::Scanner(s) => Some(s.expires_at),
            Self::Team(t) => Some(t.expires_at),
        }
    }
}

/// Resolves a bearer token into a principal. The account (or cabinet) is read on
/// every request, so suspending an account or changing its password (which
/// bumps its `token_version`) stops its tokens at once.
///
/// # Errors
/// `UNAUTHENTICATED` when the token is invalid or expired, the account cannot sign
/// in, the token predates the account's last revocation, or the cabinet of a
/// kiosk token is gone or out of service.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    token: &str,
) -> Result<Principal, AppError> {
    authenticate_with(
        db,
        keys,
        token,
        &super::kiosk_access::KioskAccess::uncached(),
    )
    .await
}

/// As [`authenticate`], reading whether a kiosk token stands through this
/// replica's `kiosks` cache (see `kiosk_access`).
///
/// # Errors
/// As [`authenticate`].
pub async fn authenticate_with(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    token: &str,
    kiosks: &super::kiosk_access::KioskAccess,
) -> Result<Principal, AppError> {
    let claims = keys.verify_access(token)?;
    let expires_at = claims.exp;
    match claims.cred {
        None => {
            let id: i32 = claims.sub.parse().map_err(|_| AppError::Unauthenticated)?;
            person(db, id, claims.ver, expires_at)
                .await
                .map(Principal::Person)
        }
        Some(Credential::Kiosk {
            cabinet,
            credential,
        }) => {
            let station_id = kiosks
                .station(db, cabinet, credential)
                .await?
                .ok_or(AppError::Unauthenticated)?;
            Ok(Principal::Kiosk(Kiosk {
                cabinet_id: cabinet,
                station_id,
                credential_id: credential,
                expires_at,
            }))
        }
        Some(Credential::Scanner {
            event,
            gate,
            device,
        }) => Ok(Principal::Scanner(Scanner {
            event_id: event,
            gate,
            device_id: device,
            expires_at,
        })),
        Some(Credential::Team {
            team,
            organizer,
            events,
            permissions,
        }) => Ok(Principal::Team(TeamToken {
            team_id: team,
            organizer_id: organizer,
            events: events.map_or(Scope::All, Scope::Only),
            permissions,
            expires_at,
            token_id: None,
        })),
    }
}

async fn person(
    db: &impl ConnectionTrait,
    id: i32,
    token_version: i32,
    expires_at: i64,
) -> Result<Person, AppError> {
    let account = user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !account.can_sign_in() || account.token_version != token_version {
        return Err(AppError::Unauthenticated);
    }
    let roles = user_role::held_by(db, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    let assigned = if roles.contains(&RoleName::Technician) {
        station_assignment::stations_of(db, id).await?
    } else {
        Vec::new()
    };
    let stations = assigned.iter().map(|(station, _)| *station).collect();
    let observed = assigned
        .iter()
        .filter(|(_, observer)| *observer)
        .map(|(station, _)| *station)
        .collect();
    Ok(Person {
        id,
        is_staff: account.is_staff,
        is_superuser: account.is_superuser,
        roles,
        stations,
        observed,
        expires_at,
        token_version,
        password_change_required: account.needs_password_change,
    })
}

/// The station of a cabinet whose kiosk may act: the cabinet exists and is
/// not inactive, and the kiosk credential the token came from is not revoked
/// (one lookup by primary key).
pub(super) async fn kiosk_station(
    db: &impl ConnectionTrait,
    cabinet_id: i32,
    credential_id: Option<i32>,
) -> Result<Option<i32>, AppError> {
    if let Some(credential_id) = credential_id {
        let live = crate::entities::kiosk_credential::Entity::find_by_id(credential_id)
            .filter(crate::entities::kiosk_credential::Column::CabinetId.eq(cabinet_id))
            .filter(crate::entities::kiosk_credential::Column::RevokedAt.is_null())
            .count(db)
            .await?;
        if live == 0 {
            return Ok(None);
        }
    }
    Ok(cabinet::Entity::find()
        .select_only()
        .column(cabinet::Column::StationId)
        .filter(cabinet::Column::Id.eq(cabinet_id))
        .filter(cabinet::Column::Status.ne(CabinetStatus::Inactive))
        .into_tuple::<i32>()
        .one(db)
        .await?)
}

/// Extracts the token of an `Authorization: Token …` value (a team API token).
pub fn team_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("token")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Extracts the token of an `Authorization: Bearer …` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether a principal's credential still stands: a person's account is not
/// suspended, deleted, or revoked by a password change since; a kiosk's cabinet
/// is still in service. Scanner and team tokens stand until they expire.
///
/// # Errors
/// On database errors.
pub async fn still_valid(
    db: &impl ConnectionTrait,
    principal: &Principal,
) -> Result<bool, AppError> {
    match principal {
        Principal::Anonymous | Principal::Scanner(_) | Principal::Team(_) => Ok(true),
        Principal::Person(person) => {
            let account = user::Entity::find_by_id(person.id).one(db).await?;
            Ok(account.is_some_and(|a| a.can_sign_in() && a.token_version == person.token_version))
        }
        Principal::Kiosk(kiosk) => Ok(kiosk_station(db, kiosk.cabinet_id, kiosk.credential_id)
            .await?
            == Some(kiosk.station_id)),
    }
}

/// Whether a technician still holds every station their principal was built
/// with, as they held it: no assignment removed, deactivated or made an
/// observer's since. True for everyone else.
///
/// # Errors
/// On database errors.
pub async fn stations_still_held(
    db: &impl ConnectionTrait,
    principal: &Principal,
) -> Result<bool, AppError> {
    let Principal::Person(person) = principal else {
        return Ok(true);
    };
    if person.stations.is_empty() || person.is_staff_member() {
        return Ok(true);
    }
    let now = station_assignment::stations_of(db, person.id).await?;
    Ok(person.stations.iter().all(|station| {
        now.iter()
            .any(|(s, observer)| s == station && (!observer || person.observed.contains(station)))
    }))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A person for tests of checks and scopes.
    pub fn person(id: i32, roles: &[RoleName], stations: &[i32]) -> Person {
        Person {
            id,
            is_staff: roles.contains(&RoleName::Administrator),
            is_superuser: false,
            roles: roles.to_vec(),
            stations: stations.to_vec(),
            observed: Vec::new(),
            expires_at: i64::MAX,
            token_version: 0,
            password_change_required: false,
        }
    }

    pub fn kiosk(cabinet_id: i32, station_id: i32) -> Principal {
        Principal::Kiosk(Kiosk {
            cabinet_id,
            station_id,
            credential_id: None,
            expires_at: i64::MAX,
        })
    }

    #[test]
    fn bearer_values_are_parsed_strictly() {
        assert_eq!(bearer("Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn staff_checks_distinguish_anonymous_from_forbidden() {
        assert!(matches!(
            Principal::Anonymous.staff(),
            Err(AppError::Unauthenticated)
        ));
        let customer = Principal::Person(person(1, &[RoleName::Customer], &[]));
        assert!(matches!(customer.staff(), Err(AppError::Forbidden)));
        assert!(customer.person().is_ok());
        assert!(matches!(kiosk(3, 2).person(), Err(AppError::Forbidden)));
    }

    #[test]
    fn role_checks_read_as_sentences() {
        let technician = Principal::Person(person(1, &[RoleName::Technician], &[4, 5]));
        let customer = Principal::Person(person(2, &[RoleName::Customer], &[]));
        let staff = Principal::Person(person(3, &[RoleName::Administrator], &[]));
        assert!(technician.require(RoleName::Technician).is_ok());
        assert!(matches!(
            customer.require(RoleName::Technician),
            Err(AppError::Forbidden)
        ));
        assert!(staff.require(RoleName::Technician).is_ok());
        assert!(staff.require(RoleName::Kiosk).is_err());
        assert!(matches!(
            Principal::Anonymous.require(RoleName::Customer),
            Err(AppError::Unauthenticated)
        ));
    }

    #[test]
    fn a_kiosk_acts_only_at_its_own_cabinet() {
        let kiosk = kiosk(3, 2);
        assert!(kiosk.kiosk_of(3).is_ok());
        assert!(matches!(kiosk.kiosk_of(4), Err(AppError::Forbidden)));
        assert!(matches!(
            Principal::Anonymous.kiosk_of(3),
            Err(AppError::Unauthenticated)
        ));
        let staff = Principal::Person(person(3, &[RoleName::Administrator], &[]));
        assert!(matches!(staff.kiosk_of(3), Err(AppError::Forbidden)));
        assert_eq!(kiosk.stations(), Scope::one(2));
        assert_eq!(kiosk.accounts(), Scope::NONE);
    }

    #[test]
    fn scopes_follow_the_principal() {
        let technician = Principal::Person(person(1, &[RoleName::Technician], &[4, 5]));
        assert_eq!(technician.stations(), Scope::Only(vec![4, 5]));
        assert_eq!(technician.accounts(), Scope::one(1));
        assert_eq!(technician.events(), Scope::NONE);
        let mut observer = person(2, &[RoleName::Technician], &[4, 5]);
        observer.observed = vec![5];
        let observer = Principal::Person(observer);
        assert_eq!(observer.stations(), Scope::Only(vec![4, 5]));
        assert_eq!(observer.acting_stations(), Scope::Only(vec![4]));
        // Assignments without the role give no scope.
        let former = Principal::Person(person(1, &[RoleName::Customer], &[4, 5]));
        assert_eq!(former.stations(), Scope::NONE);
        let staff = Principal::Person(person(3, &[RoleName::Administrator], &[]));
        assert_eq!(staff.stations(), Scope::All);
        assert_eq!(staff.acting_stations(), Scope::All);
        let scanner = Principal::Scanner(Scanner {
            event_id: 9,
            gate: "north".into(),
            device_id: None,
            expires_at: i64::MAX,
        });
        assert_eq!(scanner.events(), Scope::one(9));
        assert!(scanner.scanner_at(9).is_ok() && scanner.scanner_at(8).is_err());
        let team = Principal::Team(TeamToken {
            team_id: 1,
            organizer_id: 1,
            events: Scope::Only(vec![9]),
            permissions: vec![TeamPermission::ViewOrders],
            expires_at: i64::MAX,
            token_id: None,
        });
        assert!(team.team_may(TeamPermission::ViewOrders, 9).is_ok());
        assert!(team.team_may(TeamPermission::ChangeOrders, 9).is_err());
        assert!(team.team_may(TeamPermission::ViewOrders, 8).is_err());
    }
}
