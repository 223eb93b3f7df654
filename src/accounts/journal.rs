//! The security journal (`JournalSecurite`): append-only records of authentication events.

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

use crate::entities::{SecurityLogStatus, security_log};

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
