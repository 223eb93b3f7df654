//! The one error type services return, and its mapping to GraphQL errors.
//!
//! Policy: every error a client sees carries a stable `extensions.code`. Expected
//! failures (bad input, missing rows, conflicts) say what went wrong; anything
//! unexpected becomes [`AppError::Internal`], which is logged with its whole cause
//! chain and shown to clients only as `INTERNAL`, so no SQL or stack detail leaks.
//!
//! Domain refusals also carry a machine-readable `extensions.reason` (a
//! [`Reason`]: `SOLD_OUT`, `SLOT_TAKEN`, …) so clients can branch on the cause
//! without parsing messages. Reasons are defined once, below, each with the code
//! it comes with, and listed in `docs/errors.md` (a test keeps the two equal).

use async_graphql::ErrorExtensions as _;

/// Stable, client-facing error codes (`extensions.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    RateLimited,
    Internal,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
        }
    }
}

/// Why a domain operation was refused (`extensions.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The username is registered already (`CONFLICT`).
    UsernameTaken,
    /// The email is registered already (`CONFLICT`).
    EmailTaken,
    /// The badge is registered to an account already (`CONFLICT`).
    BadgeTaken,
    /// A temporary password must be changed first (`FORBIDDEN`).
    PasswordChangeRequired,
    /// Nothing is left of the product or quota (`CONFLICT`).
    SoldOut,
    /// The bay or time slot is taken (`CONFLICT`).
    SlotTaken,
    /// The bay cannot be used now: out of service, offline or occupied (`CONFLICT`).
    BayUnavailable,
    /// The ticket or code was used already (`CONFLICT`).
    AlreadyRedeemed,
    /// The hold or reservation has expired, or the time for a change is over (`CONFLICT`).
    Expired,
    /// The object's state does not allow this change (`CONFLICT`).
    InvalidTransition,
    /// A subscriber fell too far behind its subscription's events and was
    /// dropped; it subscribes again (`RATE_LIMITED`).
    SubscriberLagging,
    /// The subscription's `after` cursor is older than the events retained
    /// for it (or from before a restart of the event history): refetch the
    /// state and subscribe without it (`CONFLICT`).
    CursorExpired,
    /// The slug is used already by another organizer, or another event of the organizer (`CONFLICT`).
    SlugTaken,
    /// The product, event or date is not on sale now (`CONFLICT`).
    NotOnSale,
    /// The voucher code is used already in this event (`CONFLICT`).
    CodeTaken,
    /// The bay has a device registered already (`CONFLICT`).
    BayHasDevice,
    /// Another device is registered with this MAC address (`CONFLICT`).
    MacTaken,
    /// The account has a technician profile already (`CONFLICT`).
    TechnicianExists,
    /// The technician is assigned to the station already (`CONFLICT`).
    AlreadyAssigned,
    /// The technician only observes the station: they see it, they do not act on it (`FORBIDDEN`).
    ObserverOnly,
    /// The station assignment a live subscription relied on was removed or
    /// deactivated; the subscription ends (`FORBIDDEN`).
    AssignmentRevoked,
    /// The bay's device has no link or refused the command's transport (`CONFLICT`).
    DeviceUnreachable,
    /// The credential presented at a kiosk opens no reservation of that bay now (`FORBIDDEN`).
    InvalidCredential,
    /// The payment provider could not be reached or refused the request (`CONFLICT`).
    ProviderUnavailable,
    /// Orders, carts or vouchers use what was to be deleted (`CONFLICT`).
    InUse,
    /// The change would leave nobody able to change the organizer's teams (`CONFLICT`).
    WouldLockOut,
}

impl Reason {
    pub const ALL: [Self; 26] = [
        Self::UsernameTaken,
        Self::EmailTaken,
        Self::BadgeTaken,
        Self::PasswordChangeRequired,
        Self::SoldOut,
        Self::SlotTaken,
        Self::BayUnavailable,
        Self::AlreadyRedeemed,
        Self::Expired,
        Self::InvalidTransition,
        Self::SubscriberLagging,
        Self::CursorExpired,
        Self::SlugTaken,
        Self::NotOnSale,
        Self::CodeTaken,
        Self::BayHasDevice,
        Self::MacTaken,
        Self::TechnicianExists,
        Self::AlreadyAssigned,
        Self::ObserverOnly,
        Self::AssignmentRevoked,
        Self::DeviceUnreachable,
        Self::InvalidCredential,
        Self::ProviderUnavailable,
        Self::InUse,
        Self::WouldLockOut,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UsernameTaken => "USERNAME_TAKEN",
            Self::EmailTaken => "EMAIL_TAKEN",
            Self::BadgeTaken => "BADGE_TAKEN",
            Self::PasswordChangeRequired => "PASSWORD_CHANGE_REQUIRED",
            Self::SoldOut => "SOLD_OUT",
            Self::SlotTaken => "SLOT_TAKEN",
            Self::BayUnavailable => "BAY_UNAVAILABLE",
            Self::AlreadyRedeemed => "ALREADY_REDEEMED",
            Self::Expired => "EXPIRED",
            Self::InvalidTransition => "INVALID_TRANSITION",
            Self::SubscriberLagging => "SUBSCRIBER_LAGGING",
            Self::CursorExpired => "CURSOR_EXPIRED",
            Self::SlugTaken => "SLUG_TAKEN",
            Self::NotOnSale => "NOT_ON_SALE",
            Self::CodeTaken => "CODE_TAKEN",
            Self::BayHasDevice => "BAY_HAS_DEVICE",
            Self::MacTaken => "MAC_TAKEN",
            Self::TechnicianExists => "TECHNICIAN_EXISTS",
            Self::AlreadyAssigned => "ALREADY_ASSIGNED",
            Self::ObserverOnly => "OBSERVER_ONLY",
            Self::AssignmentRevoked => "ASSIGNMENT_REVOKED",
            Self::DeviceUnreachable => "DEVICE_UNREACHABLE",
            Self::InvalidCredential => "INVALID_CREDENTIAL",
            Self::ProviderUnavailable => "PROVIDER_UNAVAILABLE",
            Self::InUse => "IN_USE",
            Self::WouldLockOut => "WOULD_LOCK_OUT",
        }
    }

    /// The `extensions.code` a refusal for this reason carries.
    pub const fn code(self) -> ErrorCode {
        match self {
            Self::PasswordChangeRequired
            | Self::ObserverOnly
            | Self::AssignmentRevoked
            | Self::InvalidCredential => ErrorCode::Forbidden,
            Self::SubscriberLagging => ErrorCode::RateLimited,
            Self::UsernameTaken
            | Self::EmailTaken
            | Self::BadgeTaken
            | Self::SoldOut
            | Self::SlotTaken
            | Self::BayUnavailable
            | Self::AlreadyRedeemed
            | Self::Expired
            | Self::InvalidTransition
            | Self::CursorExpired
            | Self::SlugTaken
            | Self::NotOnSale
            | Self::CodeTaken
            | Self::BayHasDevice
            | Self::MacTaken
            | Self::TechnicianExists
            | Self::AlreadyAssigned
            | Self::DeviceUnreachable
            | Self::ProviderUnavailable
            | Self::InUse
            | Self::WouldLockOut => ErrorCode::Conflict,
        }
    }
}

/// A service failure. It deliberately does not implement `Display`: async-graphql
/// converts any `Display` type into an error without a code, and every error that
/// reaches a client must go through the mapping below.
#[derive(Debug)]
pub enum AppError {
    Unauthenticated,
    Forbidden,
    NotFound {
        entity: &'static str,
    },
    BadUserInput {
        field: &'static str,
        message: String,
    },
    Conflict(String),
    /// A domain refusal with its machine-readable reason.
    Refused {
        reason: Reason,
        message: String,
    },
    RateLimited,
    /// The database gave up on the request's transaction for a reason that
    /// goes away when it is tried again (a deadlock, a serialization failure,
    /// a lock or a connection not had in time): `RATE_LIMITED`, not
    /// `INTERNAL`, so that clients retry.
    Busy,
    /// A subscription fell behind its events and ends; `cursor` is the last
    /// one it delivered, to resume from (`SUBSCRIBER_LAGGING`).
    Lagging {
        cursor: Option<String>,
    },
    /// The account has a temporary password that must be changed first (`FORBIDDEN`).
    PasswordChangeRequired,
    Internal(anyhow::Error),
}

impl AppError {
    pub fn not_found(entity: &'static str) -> Self {
        Self::NotFound { entity }
    }

    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field,
            message: message.into(),
        }
    }

    pub fn refused(reason: Reason, message: impl Into<String>) -> Self {
        Self::Refused {
            reason,
            message: message.into(),
        }
    }

    /// The reason of a domain refusal, if this is one.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Self::Refused { reason, .. } => Some(*reason),
            Self::PasswordChangeRequired => Some(Reason::PasswordChangeRequired),
            Self::Lagging { .. } => Some(Reason::SubscriberLagging),
            _ => None,
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// The message shown to clients; never the cause of an internal error.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated => "authentication required".to_owned(),
            Self::Forbidden => "not allowed".to_owned(),
            Self::NotFound { entity } => format!("{entity} not found"),
            Self::BadUserInput { message, .. }
            | Self::Conflict(message)
            | Self::Refused { message, .. } => message.clone(),
            Self::RateLimited => "too many requests, retry later".to_owned(),
            Self::Busy => "the server is busy; retry in a moment".to_owned(),
            Self::Lagging { .. } => LAGGING_MESSAGE.to_owned(),
            Self::PasswordChangeRequired => "change your temporary password first".to_owned(),
            Self::Internal(_) => "internal error".to_owned(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Forbidden | Self::PasswordChangeRequired => ErrorCode::Forbidden,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::BadUserInput { .. } => ErrorCode::BadUserInput,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Refused { reason, .. } => reason.code(),
            Self::RateLimited | Self::Busy | Self::Lagging { .. } => ErrorCode::RateLimited,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        if is_transient(&err) {
            tracing::warn!(error = %err, "database busy; the client is told to retry");
            return Self::Busy;
        }
        Self::Internal(err.into())
    }
}

/// Whether the database refused `err`'s statement for a reason that passes:
/// on PostgreSQL a deadlock (`40P01`), a serialization failure (`40001`) or
/// a lock not had in time (`55P03`); on SQLite the database busy or locked
/// (`SQLITE_BUSY`, `SQLITE_LOCKED` and their extended codes); on either, no
/// pooled connection free in time.
pub fn is_transient(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};
    let cause = match err {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout) => return true,
        DbErr::Query(RuntimeErr::SqlxError(cause))
        | DbErr::Exec(RuntimeErr::SqlxError(cause))
        | DbErr::Conn(RuntimeErr::SqlxError(cause)) => cause,
        _ => return false,
    };
    if matches!(cause.as_ref(), sea_orm::sqlx::Error::PoolTimedOut) {
        return true;
    }
    let Some(database) = cause.as_database_error() else {
        return false;
    };
    let Some(code) = database.code() else {
        return false;
    };
    if database
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // SQLite's primary code is the extended one's low byte.
        return code
            .parse::<u32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6));
    }
    matches!(code.as_ref(), "40P01" | "40001" | "55P03")
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        if let AppError::Internal(cause) = &err {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let code = err.code().as_str();
        let field = match &err {
            AppError::BadUserInput { field, .. } => Some(*field),
            _ => None,
        };
        let reason = err.reason();
        let cursor = match &err {
            AppError::Lagging { cursor } => cursor.clone(),
            _ => None,
        };
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
            if let Some(reason) = reason {
                ext.set("reason", reason.as_str());
            }
            if let Some(cursor) = &cursor {
                ext.set("cursor", cursor.as_str());
            }
        })
    }
}

/// What a lagging subscriber is told, wherever it fell behind.
pub const LAGGING_MESSAGE: &str = "this subscription fell too far behind its events; subscribe again with `after` set to extensions.cursor";

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement the database refuses because another transaction holds
    /// what it needs is answered `RATE_LIMITED`, to be retried; a statement
    /// that can never succeed stays `INTERNAL`.
    #[tokio::test]
    async fn a_lock_not_had_in_time_asks_the_client_to_retry() {
        use sea_orm::{ConnectionTrait as _, Database, TransactionTrait as _};
        let server = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| url.starts_with("postgres"));
        // A file, so that two connections share it; none waits for a lock.
        let file = std::env::temp_dir().join(format!("voltgate-busy-{}.db", uuid::Uuid::new_v4()));
        let db = match &server {
            Some(_) => crate::db::testing::any_database().await,
            None => {
                let mut options =
                    sea_orm::ConnectOptions::new(format!("sqlite://{}?mode=rwc", file.display()));
                options.max_connections(2).min_connections(2);
                Database::connect(options).await.expect("a database")
            }
        };
        let postgres = server.is_some();
        db.execute_unprepared("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
            .await
            .expect("a table");
        db.execute_unprepared("INSERT INTO counters VALUES (1, 0)")
            .await
            .expect("a row");
        let holder = db.begin().await.expect("a transaction");
        holder
            .execute_unprepared("UPDATE counters SET n = n + 1 WHERE id = 1")
            .await
            .expect("the row is held");
        let waiter = db.begin().await.expect("another transaction");
        waiter
            .execute_unprepared(if postgres {
                "SET LOCAL lock_timeout = '20ms'"
            } else {
                "PRAGMA busy_timeout = 0"
            })
            .await
            .expect("no waiting");
        let refused = waiter
            .execute_unprepared("UPDATE counters SET n = n + 1 WHERE id = 1")
            .await
            .expect_err("the row is held by the other transaction");
        assert!(is_transient(&refused), "{refused:?}");
        let answered = AppError::from(refused);
        assert_eq!(answered.code(), ErrorCode::RateLimited);
        assert!(!answered.message().contains("counters"));
        drop(waiter);
        holder.rollback().await.expect("rolled back");

        let broken = db
            .execute_unprepared("UPDATE no_such_table SET n = 1")
            .await
            .expect_err("no such table");
        assert!(!is_transient(&broken));
        assert_eq!(AppError::from(broken).code(), ErrorCode::Internal);
        std::fs::remove_file(&file).ok();
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err: async_graphql::Error =
            AppError::internal(anyhow::anyhow!("relation \"bays\" does not exist")).into();
        assert_eq!(err.message, "internal error");
        let ext = format!("{:?}", err.extensions);
        assert!(ext.contains("INTERNAL"), "{ext}");
        assert!(!ext.contains("bays"), "{ext}");
    }

    #[test]
    fn refusals_carry_their_reason_and_its_code() {
        let err: async_graphql::Error = AppError::refused(Reason::SoldOut, "nothing left").into();
        let ext = format!("{:?}", err.extensions);
        assert!(
            ext.contains("CONFLICT") && ext.contains("SOLD_OUT"),
            "{ext}"
        );
        let err: async_graphql::Error = AppError::PasswordChangeRequired.into();
        let ext = format!("{:?}", err.extensions);
        assert!(
            ext.contains("FORBIDDEN") && ext.contains("PASSWORD_CHANGE_REQUIRED"),
            "{ext}"
        );
    }

    #[test]
    fn every_reason_is_documented() {
        let docs = include_str!("../docs/errors.md");
        for reason in Reason::ALL {
            let row = format!("| `{}` | `{}` |", reason.as_str(), reason.code().as_str());
            assert!(docs.contains(&row), "docs/errors.md lacks the row {row}");
        }
    }

    #[test]
    fn bad_input_names_the_field() {
        let err: async_graphql::Error = AppError::bad_input("first", "must be at most 100").into();
        let ext = format!("{:?}", err.extensions);
        assert!(
            ext.contains("BAD_USER_INPUT") && ext.contains("first"),
            "{ext}"
        );
    }
}
