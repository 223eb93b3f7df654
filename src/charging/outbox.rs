//! The notification outbox: services write a row in the transaction of the
//! change it reports ([`queue`]); the `DeliverNotifications` job hands unsent
//! rows to the configured provider (`services::Outbox`, which by default only
//! logs: nothing pretends to have sent a message) and marks them sent,
//! blanking any secret the payload carried ([`SECRET_FIELD`]). A row
//! is claimed by one replica (`jobs::claim_batch`), so each is delivered once.

use anyhow::Context as _;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};

use crate::entities::notification_outbox;
use crate::error::AppResult;
use crate::services::{Notification, ServiceContext};

/// The templates services write; the provider receives these names.
pub mod template {
    pub const RESERVATION_CANCELLED: &str = "reservation_cancelled";
    pub const RESERVATION_CODE: &str = "reservation_code";
    pub const RESERVATION_EXPIRED: &str = "reservation_expired";
    pub const RESERVATION_ACCESS_REVOKED: &str = "reservation_access_revoked";
    /// Supervision's: an alert raised, and an open alert seen again.
    pub const ALERT_RAISED: &str = "alert_raised";
    pub const ALERT_REPEATED: &str = "alert_repeated";

    pub const ALL: [&str; 6] = [
        RESERVATION_CANCELLED,
        RESERVATION_CODE,
        RESERVATION_EXPIRED,
        RESERVATION_ACCESS_REVOKED,
        ALERT_RAISED,
        ALERT_REPEATED,
    ];
}

/// The payload field that carries a secret (a reservation's access code):
/// blanked once the message is handed to the provider, so no plain code stays
/// at rest longer than its delivery.
pub const SECRET_FIELD: &str = "code";

/// Queues a message for `user_id` in the caller's transaction.
///
/// # Errors
/// On database errors.
pub async fn queue(
    db: &impl ConnectionTrait,
    user_id: i32,
    template: &'static str,
    data: &serde_json::Value,
) -> AppResult<()> {
    notification_outbox::ActiveModel {
        user_id: Set(user_id),
        template: Set(template.to_owned()),
        payload: Set(data.to_string()),
        created_at: Set(chrono::Utc::now()),
        sent_at_us: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Delivers queued notifications.
pub struct DeliverNotifications;

const BATCH: u64 = 100;

#[async_trait::async_trait]
impl crate::jobs::Job for DeliverNotifications {
    fn name(&self) -> &'static str {
        "deliver_notifications"
    }

    fn every(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(2)
    }

    async fn run(&self, services: &ServiceContext) -> anyhow::Result<()> {
        let txn = services.db.begin().await?;
        let rows = crate::jobs::claim_batch(
            &txn,
            notification_outbox::Entity::find()
                .filter(notification_outbox::Column::SentAtUs.is_null())
                .order_by_asc(notification_outbox::Column::Id),
            BATCH,
        )
        .await
        .context("claiming notifications")?;
        let sent_at = services.now().timestamp_micros();
        for row in rows {
            let template = template::ALL
                .into_iter()
                .find(|t| *t == row.template)
                .unwrap_or("unknown");
            let data: serde_json::Value =
                serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null);
            let mut kept = data.clone();
            if let Some(fields) = kept.as_object_mut() {
                fields.remove(SECRET_FIELD);
            }
            services
                .outbox
                .enqueue(Notification {
                    user_id: row.user_id,
                    template,
                    data,
                })
                .await;
            notification_outbox::Entity::update(notification_outbox::ActiveModel {
                id: Set(row.id),
                sent_at_us: Set(Some(sent_at)),
                payload: Set(kept.to_string()),
                ..Default::default()
            })
            .exec(&txn)
            .await
            .context("marking a notification sent")?;
        }
        txn.commit().await?;
        Ok(())
    }
}
