//! What a door asks before it admits: the event's questions marked
//! `askDuringCheckin` that the ticket has not answered (pretix asks these at
//! check-in and stores the answers on the position), and the list's own
//! free-text questions (deprecated: asked at every entry, their answers kept
//! with the scan's record). Both are asked together, in one
//! `CheckinNeedsAnswers`.
//!
//! Which event questions apply, and how their answers are checked, is
//! `ticketing::questions`' rule, the same as at checkout. The answers are
//! stored on the position by the transaction that admits the entry, so a
//! scan that is rejected (or needs more answers) stores none. Exits ask
//! nothing; a forced scan is admitted without answers, and stores those it
//! carries when they all fit (otherwise none: the entry happened, and is not
//! lost over an answer).

use std::collections::BTreeMap;

use sea_orm::ConnectionTrait;

use super::redeem::Ticket;
use crate::entities::{checkin_list, question};
use crate::error::AppError;
use crate::ticketing::questions::{self as asked, AnswerInput, DoorAnswers};

/// The most answers by question id one scan carries.
pub const MAX_ANSWERS: usize = 50;

/// What a scan must answer before it is admitted: nothing is recorded.
#[derive(Debug, Clone)]
pub struct Missing {
    /// The texts of the list's free-text questions left unanswered, then of
    /// the event questions in `questions`.
    pub texts: Vec<String>,
    /// The event's questions the ticket has not answered, in order: the
    /// scan answers them by id (or by text), all at once.
    pub questions: Vec<question::Model>,
}

/// Checks an entry scan of `ticket` on `list` against what the door asks
/// (exits never ask; `event_asks` comes from the door cache).
///
/// # Errors
/// `BAD_USER_INPUT` on `answers` as [`asked::at_the_door`] refuses an
/// answer; on database errors.
pub async fn ask(
    db: &impl ConnectionTrait,
    list: &checkin_list::Model,
    ticket: &Ticket,
    force: bool,
    by_text: &BTreeMap<String, String>,
    by_id: &[AnswerInput],
    event_asks: bool,
) -> Result<Result<DoorAnswers, Missing>, AppError> {
    let mut texts: Vec<String> = list
        .question_list()
        .into_iter()
        .filter(|q| by_text.get(q).is_none_or(|a| a.trim().is_empty()))
        .collect();
    let door = if !event_asks && by_id.is_empty() {
        // Most events ask nothing at the door (the door cache knows). Answers
        // by id still go through the check, which refuses them.
        DoorAnswers::none_asked(ticket.position.product_id)
    } else if force {
        // The entry happened: answers that do not fit are not a reason to
        // lose it, so they are dropped rather than refused.
        match asked::at_the_door(db, list.event_id, &ticket.position, by_id, by_text).await {
            Err(AppError::BadUserInput { .. }) => {
                asked::at_the_door(db, list.event_id, &ticket.position, &[], &BTreeMap::new())
                    .await?
            }
            door => door?,
        }
    } else {
        asked::at_the_door(db, list.event_id, &ticket.position, by_id, by_text).await?
    };
    if force || (texts.is_empty() && !door.incomplete) {
        return Ok(Ok(door));
    }
    texts.extend(door.asked.iter().map(|q| q.question.clone()));
    Ok(Err(Missing {
        texts,
        questions: door.asked,
    }))
}
