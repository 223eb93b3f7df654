//! Ticketing's background job: releases expired cart holds, expires unpaid
//! orders past their deadline and releases what vouchers whose validity
//! ended still keep of their quotas. Safe with several replicas: the runner
//! claims each run once, cart positions are taken with `claim_batch` (`SKIP
//! LOCKED`) and removed by conditional `DELETE`s, orders change by conditional
//! `UPDATE`s — a unit is released only by the statement that removed its holder.

use anyhow::Context as _;
use async_trait::async_trait;

use super::{carts, orders, vouchers};
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
        let blocks = vouchers::release_ended_blocks(&services.db, now)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .context("releasing the quota of ended vouchers")?;
        tracing::debug!(
            ?carts,
            ?orders,
            ?blocks,
            "ticketing holds expired in these events"
        );
        let changed = carts.iter().chain(&orders).chain(&blocks).copied();
        super::live::announce(services, changed.collect::<std::collections::BTreeSet<_>>()).await;
        Ok(())
    }
}
