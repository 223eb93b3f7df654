//! Who is making a request.

use sea_orm::{ConnectionTrait, EntityTrait};

use super::tokens::TokenKeys;
use crate::entities::user;
use crate::error::AppError;

/// Roles a user can hold (the `roles` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleName {
    Administrator,
    Customer,
    Technician,
    Kiosk,
    Organizer,
}

impl RoleName {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Administrator => "administrator",
            Self::Customer => "customer",
            Self::Technician => "technician",
            Self::Kiosk => "kiosk",
            Self::Organizer => "organizer",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Administrator,
            Self::Customer,
            Self::Technician,
            Self::Kiosk,
            Self::Organizer,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// A signed-in user, as checked against the database for this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPrincipal {
    pub id: i32,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub roles: Vec<RoleName>,
    /// Unix time the access token expires; live subscriptions end then.
    pub expires_at: i64,
    /// The account's `token_version` the token was issued under.
    pub token_version: i32,
    /// The password is a temporary one set by staff; everything but changing it is refused.
    pub password_change_required: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Principal {
    #[default]
    Anonymous,
    User(UserPrincipal),
}

impl Principal {
    /// The signed-in user.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for anonymous requests.
    pub fn user(&self) -> Result<&UserPrincipal, AppError> {
        let user = self.signed_in()?;
        if user.password_change_required {
            return Err(AppError::PasswordChangeRequired);
        }
        Ok(user)
    }

    /// The signed-in user, even one who must still replace a temporary password:
    /// only for reading `me` and changing the password.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for anonymous requests.
    pub fn signed_in(&self) -> Result<&UserPrincipal, AppError> {
        match self {
            Self::User(user) => Ok(user),
            Self::Anonymous => Err(AppError::Unauthenticated),
        }
    }

    /// The signed-in staff member.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for anonymous requests, `FORBIDDEN` for non-staff users.
    pub fn staff(&self) -> Result<&UserPrincipal, AppError> {
        let user = self.user()?;
        if user.is_staff || user.is_superuser {
            Ok(user)
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// Resolves a bearer token into a principal. The user is read on every request,
/// so suspending an account or changing its password (which bumps its
/// `token_version`) stops its tokens at once.
///
/// # Errors
/// `UNAUTHENTICATED` when the token is invalid or expired, the account cannot sign
/// in, or the token predates the account's last revocation.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    token: &str,
) -> Result<UserPrincipal, AppError> {
    let claims = keys.verify_access(token)?;
    let id: i32 = claims.sub.parse().map_err(|_| AppError::Unauthenticated)?;
    let account = user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !account.can_sign_in() || account.token_version != claims.ver {
        return Err(AppError::Unauthenticated);
    }
    let roles = crate::accounts::roles::held_by(db, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(UserPrincipal {
        id,
        is_staff: account.is_staff,
        is_superuser: account.is_superuser,
        roles,
        expires_at: claims.exp,
        token_version: claims.ver,
        password_change_required: account.needs_password_change,
    })
}

/// Extracts the token of an `Authorization: Bearer …` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether a signed-in principal's account still accepts its token (not suspended,
/// deleted, or revoked by a password change since).
pub async fn still_valid(
    db: &impl ConnectionTrait,
    principal: &UserPrincipal,
) -> Result<bool, AppError> {
    let account = user::Entity::find_by_id(principal.id).one(db).await?;
    Ok(account.is_some_and(|a| a.can_sign_in() && a.token_version == principal.token_version))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let customer = Principal::User(UserPrincipal {
            id: 1,
            is_staff: false,
            is_superuser: false,
            roles: vec![RoleName::Customer],
            expires_at: 0,
            token_version: 0,
            password_change_required: false,
        });
        assert!(matches!(customer.staff(), Err(AppError::Forbidden)));
        assert!(customer.user().is_ok());
    }
}
