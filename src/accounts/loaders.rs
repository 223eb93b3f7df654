//! DataLoader keys of accounts.

use crate::entities::{RoleName, auth_method, consent, profile, user, user_role};
use crate::error::AppError;
use crate::graphql::loaders::{DbLoader, LoadResult, many_per_key, one_per_key};
use async_graphql::dataloader::Loader;

one_per_key!(UserById: user by Id => id);
one_per_key!(ProfileOfUser: profile by UserId => user_id);
many_per_key!(
    /// Consent decisions, newest first.
    ConsentsOfUser: consent by UserId => user_id,
    super::profile::consents_newest_first()
);
many_per_key!(
    /// Active badges, newest first.
    ActiveBadgesOfUser: auth_method by UserId => user_id,
    super::badges::active_newest_first()
);

/// The roles an account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RolesOfUser(pub i32);

impl Loader<RolesOfUser> for DbLoader {
    type Value = Vec<RoleName>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[RolesOfUser]) -> LoadResult<RolesOfUser, Vec<RoleName>> {
        let ids: Vec<i32> = keys.iter().map(|k| k.0).collect();
        let held = user_role::held_by(self.db(), &ids)
            .await
            .map_err(AppError::from)?;
        Ok(held
            .into_iter()
            .map(|(id, roles)| (RolesOfUser(id), roles))
            .collect())
    }
}
