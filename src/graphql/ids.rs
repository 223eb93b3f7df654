//! Opaque global IDs: `base64url("<Type>:<id>")`.
//!
//! Clients treat IDs as opaque strings; the type inside lets one `ID` argument be
//! checked against the kind of object it must name.

use async_graphql::ID;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::AppError;

/// A kind of object with global IDs: its GraphQL type name. Each domain
/// declares its own kinds next to its types (`impl Kind { pub const STATION … }`),
/// so a new domain adds kinds without editing this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind(&'static str);

impl Kind {
    pub const fn named(type_name: &'static str) -> Self {
        Self(type_name)
    }

    const fn name(self) -> &'static str {
        self.0
    }
}

pub fn encode(kind: Kind, id: i32) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{id}", kind.name())))
}

/// [`decode`] for an optional argument: `None` stays `None`.
///
/// # Errors
/// As [`decode`].
pub fn decode_opt(
    id: Option<&ID>,
    kind: Kind,
    field: &'static str,
) -> Result<Option<i32>, AppError> {
    id.map(|id| decode(id, kind, field)).transpose()
}

/// Decodes an ID that must name an object of `kind`.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` when the ID is malformed or names another kind.
pub fn decode(id: &ID, kind: Kind, field: &'static str) -> Result<i32, AppError> {
    let invalid = || AppError::bad_input(field, format!("not a valid {} ID", kind.name()));
    let bytes = URL_SAFE_NO_PAD.decode(id.as_str()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (name, raw) = text.split_once(':').ok_or_else(invalid)?;
    if name != kind.name() {
        return Err(invalid());
    }
    raw.parse::<i32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_per_kind() {
        let id = encode(Kind::BAY, 42);
        assert_eq!(decode(&id, Kind::BAY, "bayId").ok(), Some(42));
        assert!(
            decode(&id, Kind::STATION, "stationId").is_err(),
            "a Bay ID is not a Station ID"
        );
    }

    #[test]
    fn garbage_is_bad_input() {
        for raw in [
            "",
            "42",
            "!!!",
            &URL_SAFE_NO_PAD.encode("Bay:-1"),
            &URL_SAFE_NO_PAD.encode("Bay:x"),
        ] {
            let err = decode(&ID(raw.to_owned()), Kind::BAY, "bayId").err();
            assert!(
                matches!(err, Some(AppError::BadUserInput { field: "bayId", .. })),
                "{raw:?}"
            );
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        const KINDS: [Kind; 6] = [
            Kind::STATION,
            Kind::CABINET,
            Kind::BAY,
            Kind::DEVICE,
            Kind::USER,
            Kind::AUTH_METHOD,
        ];

        fn is_coded_bad_input(result: &Result<i32, AppError>) -> bool {
            match result {
                Ok(id) => *id > 0,
                Err(err) => matches!(err, AppError::BadUserInput { field: "id", .. }),
            }
        }

        proptest! {
            #[test]
            fn any_string_decodes_to_a_positive_id_or_bad_input(raw in ".*", kind in 0..6_usize) {
                let result = decode(&ID(raw), KINDS[kind], "id");
                prop_assert!(is_coded_bad_input(&result));
            }

            #[test]
            fn any_encoded_bytes_decode_to_a_positive_id_or_bad_input(
                bytes in proptest::collection::vec(any::<u8>(), 0..64),
                kind in 0..6_usize,
            ) {
                let result = decode(&ID(URL_SAFE_NO_PAD.encode(bytes)), KINDS[kind], "id");
                prop_assert!(is_coded_bad_input(&result));
            }

            #[test]
            fn every_positive_id_round_trips(id in 1..=i32::MAX, kind in 0..6_usize) {
                prop_assert_eq!(decode(&encode(KINDS[kind], id), KINDS[kind], "id").ok(), Some(id));
            }
        }
    }
}
