//! The charging session state machine, as a pure function:
//! `RESERVED → ACCESS_VALIDATED → WAITING_PLUG → CHARGING → STOPPING → STOPPED`,
//! or `ERROR` from any state that is not final. Whatever is not listed is an
//! invalid transition: rejected (and logged by the caller), never applied.

pub use crate::entities::charging_session::SessionState;

/// What happens to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// A kiosk validated the reservation's credential.
    AccessValidated,
    /// The device finished `unlock`.
    Unlocked,
    /// The device finished `start_charge` (or reported it charges).
    ChargeStarted,
    /// The customer, the kiosk or staff asked to stop.
    StopRequested,
    /// The device finished `stop_charge`.
    Stopped,
    /// Nobody plugged in before the deadline.
    PlugTimeout,
    /// A command failed, was rejected or timed out, or the device reported an error.
    Failed,
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: SessionState,
    pub event: SessionEvent,
}

/// The state after `event` in `from`.
///
/// # Errors
/// [`InvalidTransition`] when `event` cannot happen in `from`.
pub fn next(from: SessionState, event: SessionEvent) -> Result<SessionState, InvalidTransition> {
    use SessionEvent as E;
    use SessionState as S;
    let to = match (from, event) {
        (S::Reserved, E::AccessValidated) => S::AccessValidated,
        (S::AccessValidated, E::Unlocked) => S::WaitingPlug,
        (S::WaitingPlug, E::ChargeStarted) => S::Charging,
        (S::WaitingPlug, E::PlugTimeout) => S::Error,
        // Stopping before charging still sends `stop_charge`: the device locks
        // the bay again and confirms.
        (S::AccessValidated | S::WaitingPlug | S::Charging, E::StopRequested) => S::Stopping,
        (S::Stopping, E::Stopped) => S::Stopped,
        (from, E::Failed) if !from.is_final() => S::Error,
        _ => return Err(InvalidTransition { from, event }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionEvent as E;
    use SessionState as S;
    use sea_orm::Iterable;

    const EVENTS: [SessionEvent; 7] = [
        E::AccessValidated,
        E::Unlocked,
        E::ChargeStarted,
        E::StopRequested,
        E::Stopped,
        E::PlugTimeout,
        E::Failed,
    ];

    #[test]
    fn the_happy_path_runs_from_reserved_to_stopped() {
        let mut state = S::Reserved;
        for event in [
            E::AccessValidated,
            E::Unlocked,
            E::ChargeStarted,
            E::StopRequested,
            E::Stopped,
        ] {
            state = next(state, event).expect("allowed");
        }
        assert_eq!(state, S::Stopped);
    }

    #[test]
    fn final_states_accept_nothing() {
        for from in [S::Stopped, S::Error] {
            for event in EVENTS {
                assert_eq!(next(from, event), Err(InvalidTransition { from, event }));
            }
        }
    }

    #[test]
    fn every_open_state_can_fail() {
        for from in S::iter().filter(|s| !s.is_final()) {
            assert_eq!(next(from, E::Failed), Ok(S::Error), "{from:?}");
        }
    }

    #[test]
    fn steps_cannot_be_skipped_or_repeated() {
        assert!(next(S::Reserved, E::ChargeStarted).is_err());
        assert!(
            next(S::AccessValidated, E::ChargeStarted).is_err(),
            "plugging comes after unlocking"
        );
        assert!(
            next(S::WaitingPlug, E::Unlocked).is_err(),
            "a second unlock ack"
        );
        assert!(next(S::Charging, E::ChargeStarted).is_err());
        assert!(
            next(S::Charging, E::Stopped).is_err(),
            "stop is asked for first"
        );
        assert!(
            next(S::Charging, E::PlugTimeout).is_err(),
            "only a waiting session times out"
        );
        assert!(next(S::Stopping, E::StopRequested).is_err());
        assert!(next(S::Reserved, E::StopRequested).is_err());
    }

    #[test]
    fn the_allowed_transitions_are_exactly_these() {
        let mut allowed = Vec::new();
        for from in S::iter() {
            for event in EVENTS {
                if let Ok(to) = next(from, event) {
                    allowed.push((from, event, to));
                }
            }
        }
        assert_eq!(allowed.len(), 13, "{allowed:?}");
    }
}
