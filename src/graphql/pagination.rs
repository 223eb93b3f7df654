//! Relay connections over the services' keyset pages ([`crate::pagination`]).

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields};
use async_graphql::{OutputType, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::AppError;
pub use crate::pagination::{Page, PageRequest};

/// A position in a list ordered by id: `base64url("cursor:<id>")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdCursor(pub i32);

impl CursorType for IdCursor {
    type Error = &'static str;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| "invalid cursor")?;
        let text = String::from_utf8(bytes).map_err(|_| "invalid cursor")?;
        text.strip_prefix("cursor:")
            .and_then(|n| n.parse().ok())
            .map(IdCursor)
            .ok_or("invalid cursor")
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("cursor:{}", self.0))
    }
}

/// The page a connection field's `first` and `after` arguments ask for.
///
/// # Errors
/// `BAD_USER_INPUT` when `first` is out of range or `after` is not a cursor.
pub fn page_request(first: Option<i32>, after: Option<&str>) -> Result<PageRequest, AppError> {
    let after = after
        .map(|s| {
            IdCursor::decode_cursor(s)
                .map(|c| c.0)
                .map_err(|_| AppError::bad_input("after", "not a valid cursor"))
        })
        .transpose()?;
    PageRequest::new(first, after)
}

/// A Relay connection, as every list field returns.
pub type IdConnection<N> = Connection<IdCursor, N, ConnectionFields, EmptyFields>;

/// Turns a page of rows into a connection of `node`s, each with its row's id as cursor.
pub fn connection<T, N: OutputType>(
    request: PageRequest,
    page: Page<T>,
    id_of: impl Fn(&T) -> i32,
    node: impl Fn(T) -> N,
) -> IdConnection<N> {
    let mut connection = Connection::with_additional_fields(
        request.after.is_some(),
        page.has_next_page,
        ConnectionFields {
            total_count: page.total_count,
        },
    );
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|row| Edge::new(IdCursor(id_of(&row)), node(row))),
    );
    connection
}

/// Extra fields of every connection.
#[derive(SimpleObject)]
pub struct ConnectionFields {
    /// Number of items matching the filter, across all pages.
    pub total_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = IdCursor(17).encode_cursor();
        assert_eq!(IdCursor::decode_cursor(&cursor), Ok(IdCursor(17)));
        assert!(IdCursor::decode_cursor("17").is_err());
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(
            page_request(None, None).map(|p| p.first).ok(),
            Some(crate::pagination::DEFAULT_PAGE_SIZE)
        );
        assert!(page_request(Some(101), None).is_err());
        assert!(page_request(Some(-1), None).is_err());
        assert!(page_request(Some(5), Some("nope")).is_err());
    }
}
