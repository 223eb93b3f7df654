//! Pages of rows, as services return them: keyset pagination by primary key.
//! Transport-free; GraphQL maps them to Relay connections (`graphql::pagination`).

use crate::error::AppError;

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// A validated page request: up to `first` rows after the id `after`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub first: u64,
    pub after: Option<i32>,
}

impl PageRequest {
    /// # Errors
    /// `BAD_USER_INPUT` when `first` is out of range.
    pub fn new(first: Option<i32>, after: Option<i32>) -> Result<Self, AppError> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE,
            Some(n) => u64::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_PAGE_SIZE)
                .ok_or_else(|| {
                    AppError::bad_input("first", format!("must be between 0 and {MAX_PAGE_SIZE}"))
                })?,
        };
        Ok(Self { first, after })
    }
}

/// One page of rows, and what a client needs to describe it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub total_count: u64,
}
