//! Ticketing's background job: releases expired cart holds and expires
//! unpaid orders past their deadline. Safe with several replicas: the runner
//! claims each run once, cart positions are taken with `claim_batch` (`SKIP
//! LOCKED`) and removed by conditional `DELETE`s, orders change by conditional
//! `UPDATE`s — a unit is released only by the statement that removed its holder.

use anyhow::Context as _;
use async_trait::async_trait;

use super::{carts, orders};
use crate::jobs::Job;
use crate::services::ServiceContext;

pub struct ExpireHolds;

#[async_trait]
impl Job for ExpireHolds {
    fn name(&self) -> &'static str {
        "expire_ticketing_holds"
    }

    fn every(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(15)
    }

    async fn run(&self, services: &ServiceContext) -> anyhow::Result<()> {
        let now = services.now();
        let carts = carts::expire(&services.db, now)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .context("releasing expired cart positions")?;
        let orders = orders::expire_unpaid(&services.db, now)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .context("expiring unpaid orders")?;
        tracing::debug!(?carts, ?orders, "ticketing holds expired in these events");
        super::live::announce(services, carts.union(&orders).copied()).await;
        Ok(())
    }
}
