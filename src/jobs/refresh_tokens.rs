//! Purges refresh tokens a day after they expire. A sign-in keeps its first
//! expiry, so by then every token of its family has expired and none can be
//! presented for reuse detection any more.

use anyhow::Context as _;
use async_trait::async_trait;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::Job;
use crate::entities::refresh_token;
use crate::services::ServiceContext;

pub struct PurgeExpired;

/// How long an expired token is kept.
const GRACE: chrono::TimeDelta = chrono::TimeDelta::days(1);

#[async_trait]
impl Job for PurgeExpired {
    fn name(&self) -> &'static str {
        "purge_expired_refresh_tokens"
    }

    fn every(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::hours(1)
    }

    async fn run(&self, services: &ServiceContext) -> anyhow::Result<()> {
        let purged = refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::ExpiresAt.lt(services.now() - GRACE))
            .exec(&services.db)
            .await
            .context("purging expired refresh tokens")?;
        tracing::debug!(
            purged = purged.rows_affected,
            "expired refresh tokens purged"
        );
        Ok(())
    }
}
