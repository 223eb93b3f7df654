//! What subscription resolvers build on: a topic's events from the client's
//! `after` cursor (or from now), each with the cursor to give back, ending with
//! `SUBSCRIBER_LAGGING` and the last cursor given if the subscriber falls behind.

use std::sync::Arc;

use futures_util::{Stream, StreamExt as _};

use crate::bus::{self, Cursor, CursorError, EventBus, FollowError, Followed, Stamped, Topic};
use crate::error::{AppError, AppResult, Reason};
use crate::telemetry::names;

/// One event of the followed topic and its cursor there.
pub struct Step {
    pub event: Arc<Stamped>,
    pub cursor: String,
}

/// Follows `topic` from `after` (a cursor this server gave for that topic).
///
/// # Errors
/// `BAD_USER_INPUT` (field `after`) for a cursor this server did not write for
/// this topic; `CURSOR_EXPIRED` when the events after it are no longer retained.
pub async fn follow(
    bus: &dyn EventBus,
    topic: Topic,
    after: Option<&str>,
) -> AppResult<impl Stream<Item = Result<Step, AppError>> + Send + use<>> {
    let after = after
        .map(|text| Cursor::parse(text, topic))
        .transpose()
        .map_err(|err| match err {
            CursorError::OtherTopic => {
                AppError::bad_input("after", "the cursor belongs to another subscription")
            }
            CursorError::Malformed | CursorError::Expired => {
                AppError::bad_input("after", "not a cursor of this server")
            }
        })?;
    let followed = bus::follow(bus, topic, after).await.map_err(|err| match err {
        FollowError::Expired => {
            metrics::counter!(names::SUBSCRIPTION_CURSOR_EXPIRED).increment(1);
            AppError::refused(
            Reason::CursorExpired,
            "events after this cursor are no longer kept; refetch and subscribe without `after`",
            )
        }
        FollowError::Unavailable(cause) => AppError::internal(cause),
    })?;
    Ok(followed.map(|item| match item {
        Followed::Event(event, cursor) => Ok(Step {
            event,
            cursor: cursor.to_string(),
        }),
        Followed::Lagged(last) => Err(AppError::Lagging {
            cursor: last.map(|c| c.to_string()),
        }),
    }))
}
