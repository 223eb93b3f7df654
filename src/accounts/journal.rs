//! The security journal (`JournalSecurite`): append-only records of authentication events.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, QueryFilter, Set};

use crate::auth::Principal;
use crate::db::{IdOrder, page_by_id_in};
use crate::entities::{SecurityLogStatus, security_log};
use crate::error::AppResult;
use crate::pagination::{Page, PageRequest};

/// Actions recorded in the journal.
pub mod action {
    pub const REGISTER: &str = "register";
    pub const LOGIN: &str = "login";
    pub const REFRESH: &str = "refresh";
    pub const REFRESH_REUSE: &str = "refresh_reuse";
    pub const LOGOUT: &str = "logout";
    pub const PASSWORD_CHANGE: &str = "password_change";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const STATUS_CHANGE: &str = "status_change";
    pub const EXPORT: &str = "export";
    pub const ACCOUNT_DELETE: &str = "account_delete";
    pub const BADGE: &str = "badge";
    pub const ACCOUNT_CREATE: &str = "account_create";
    pub const ACCOUNT_UPDATE: &str = "account_update";
    pub const ROLE_CHANGE: &str = "role_change";
}

/// The journal of one request, from one address: each entry reads as one line,
/// `journal::at(db, ip).failure(Some(id), action::LOGIN, "locked").await`.
pub struct Journal<'a, C> {
    db: &'a C,
    ip: Option<&'a str>,
}

pub fn at<'a, C: ConnectionTrait>(db: &'a C, ip: Option<&'a str>) -> Journal<'a, C> {
    Journal { db, ip }
}

impl<C: ConnectionTrait> Journal<'_, C> {
    /// Records something that happened.
    pub async fn success(&self, user_id: Option<i32>, action: &str, detail: &str) {
        record(
            self.db,
            user_id,
            action,
            self.ip,
            SecurityLogStatus::Success,
            detail,
        )
        .await;
    }

    /// Records something that was attempted and refused.
    pub async fn failure(&self, user_id: Option<i32>, action: &str, detail: &str) {
        record(
            self.db,
            user_id,
            action,
            self.ip,
            SecurityLogStatus::Failure,
            detail,
        )
        .await;
    }
}

/// Appends one event. A journal write that fails is logged, never hidden from the
/// operator, but does not fail the user's request.
pub async fn record(
    db: &impl ConnectionTrait,
    user_id: Option<i32>,
    action: &str,
    ip: Option<&str>,
    status: SecurityLogStatus,
    detail: &str,
) {
    let entry = security_log::ActiveModel {
        user_id: Set(user_id),
        action: Set(action.to_owned()),
        ip: Set(ip.map(str::to_owned)),
        status: Set(status),
        detail: Set(detail.chars().take(255).collect()),
        occurred_at: Set(chrono::Utc::now()),
        ..Default::default()
    };
    if let Err(err) = entry.insert(db).await {
        tracing::error!(error = %err, action, "cannot write the security journal");
    }
}

/// Which journal entries staff are looking for; `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct JournalFilter {
    pub user_id: Option<i32>,
    pub action: Option<String>,
    pub status: Option<SecurityLogStatus>,
    pub ip: Option<String>,
}

/// One page of the journal entries `principal` may read, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &JournalFilter,
    page: PageRequest,
) -> AppResult<Page<security_log::Model>> {
    let mut query = security_log::Entity::visible_to(principal);
    if let Some(user_id) = filter.user_id {
        query = query.filter(security_log::Column::UserId.eq(user_id));
    }
    if let Some(action) = &filter.action {
        query = query.filter(security_log::Column::Action.eq(action.trim()));
    }
    if let Some(status) = filter.status {
        query = query.filter(security_log::Column::Status.eq(status));
    }
    if let Some(ip) = &filter.ip {
        query = query.filter(security_log::Column::Ip.eq(ip.trim()));
    }
    page_by_id_in(
        db,
        query,
        security_log::Column::Id,
        IdOrder::Descending,
        page,
    )
    .await
}
