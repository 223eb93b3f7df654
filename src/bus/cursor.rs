//! Cursors: where a subscriber is in a topic's stream of events.
//!
//! Every event delivered under a topic has a [`Position`] in that topic's
//! history, increasing in delivery order. The position has the shape of a Redis
//! stream id (milliseconds, then a sequence within the millisecond), so both
//! buses use the same type, and the Redis bus uses the ids Redis assigns. A
//! [`Cursor`] is what clients hold: the position plus the topic and the
//! *epoch* of the history it belongs to. A history that starts again (a new
//! process for the in-process bus, a Redis that lost its data) has a new epoch,
//! so a cursor of the old one is recognised as expired instead of being
//! compared with positions it has nothing to do with.

use std::fmt;
use std::str::FromStr;

use super::Topic;

/// An event's place in one topic's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub ms: u64,
    pub seq: u64,
}

impl Position {
    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// The next position for an event appended at `now_ms`: later than `self`
    /// even when the clock stands still or steps back.
    pub fn next_at(self, now_ms: u64) -> Self {
        if now_ms > self.ms {
            Self::new(now_ms, 0)
        } else {
            Self::new(self.ms, self.seq + 1)
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for Position {
    type Err = ();

    /// Parses `ms-seq`, the form Redis gives stream ids in.
    fn from_str(text: &str) -> Result<Self, ()> {
        let (ms, seq) = text.split_once('-').ok_or(())?;
        Ok(Self::new(
            ms.parse().map_err(drop)?,
            seq.parse().map_err(drop)?,
        ))
    }
}

/// A client's place in one topic's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub epoch: String,
    pub topic: Topic,
    pub position: Position,
}

/// Why a cursor a client sent cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorError {
    /// Not a cursor this server wrote.
    Malformed,
    /// A cursor of another topic than the one subscribed to.
    OtherTopic,
    /// Events after it are no longer retained (or the history started again):
    /// the client must refetch the state and subscribe without a cursor.
    Expired,
}

impl Cursor {
    /// Reads a cursor a client sent back for `topic`.
    ///
    /// # Errors
    /// [`CursorError::Malformed`] for anything this server did not write,
    /// [`CursorError::OtherTopic`] for a cursor of another topic.
    pub fn parse(text: &str, topic: Topic) -> Result<Self, CursorError> {
        // Cursors are short; a long string is not one and is not parsed further.
        if text.len() > 96 {
            return Err(CursorError::Malformed);
        }
        let mut parts = text.splitn(3, '.');
        let (Some(epoch), Some(topic_key), Some(position)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(CursorError::Malformed);
        };
        if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CursorError::Malformed);
        }
        let position = position.parse().map_err(|()| CursorError::Malformed)?;
        let written_for = Topic::from_key(topic_key).ok_or(CursorError::Malformed)?;
        if written_for != topic {
            return Err(CursorError::OtherTopic);
        }
        Ok(Self {
            epoch: epoch.to_owned(),
            topic,
            position,
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.epoch, self.topic.key(), self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_through_their_text() {
        let cursor = Cursor {
            epoch: "a1b2".into(),
            topic: Topic::StationBays(12),
            position: Position::new(1_733_123_000_123, 4),
        };
        let text = cursor.to_string();
        assert_eq!(text, "a1b2.s12.1733123000123-4");
        assert_eq!(Cursor::parse(&text, Topic::StationBays(12)), Ok(cursor));
    }

    #[test]
    fn a_cursor_of_another_topic_is_refused() {
        assert_eq!(
            Cursor::parse("a1.b7.10-0", Topic::Bay(8)),
            Err(CursorError::OtherTopic)
        );
        assert!(Cursor::parse("a1.all.10-0", Topic::AllBays).is_ok());
    }

    #[test]
    fn anything_else_is_malformed() {
        for text in [
            "",
            "a1",
            "a1.s1",
            "a1.s1.10",
            "a1.s1.x-0",
            "a1.s1.10-",
            ".s1.10-0",
            "a-1.s1.10-0",
            "a1.z1.10-0",
            "a1.s.10-0",
            "a1.s1.18446744073709551616-0",
            &"a".repeat(200),
        ] {
            assert_eq!(
                Cursor::parse(text, Topic::StationBays(1)),
                Err(CursorError::Malformed),
                "{text:?}"
            );
        }
    }

    #[test]
    fn positions_increase_even_when_the_clock_does_not() {
        let first = Position::new(100, 0);
        assert_eq!(first.next_at(101), Position::new(101, 0));
        assert_eq!(first.next_at(100), Position::new(100, 1));
        assert_eq!(
            first.next_at(50),
            Position::new(100, 1),
            "clock stepped back"
        );
        assert!(first.next_at(50) > first);
    }
}
