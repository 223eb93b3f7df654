//! Scopes: which rows of a kind a principal may reach.
//!
//! A principal answers, per kind of row, with a [`Scope`]: every row, or only
//! some ids. Entities turn it into a query once (`station::Entity::visible_to`),
//! so a technician's stations or a team's events are applied in one place per
//! entity instead of in each resolver.

use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ColumnTrait, Condition};

/// The ids of one kind a principal may reach.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every row (staff).
    All,
    /// Only these ids; empty means none.
    Only(Vec<i32>),
}

impl Scope {
    pub const NONE: Self = Self::Only(Vec::new());

    pub fn one(id: i32) -> Self {
        Self::Only(vec![id])
    }

    /// Whether `id` is in scope.
    pub fn allows(&self, id: i32) -> bool {
        match self {
            Self::All => true,
            Self::Only(ids) => ids.contains(&id),
        }
    }

    /// The condition restricting `column` to the scope (an empty scope matches nothing).
    pub fn on(&self, column: impl ColumnTrait) -> Condition {
        match self {
            Self::All => Condition::all(),
            Self::Only(ids) if ids.is_empty() => Condition::all().add(nothing()),
            Self::Only(ids) => Condition::all().add(column.is_in(ids.iter().copied())),
        }
    }
}

fn nothing() -> SimpleExpr {
    Expr::cust("1 = 0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_allow_only_their_ids() {
        assert!(Scope::All.allows(7));
        assert!(Scope::one(7).allows(7));
        assert!(!Scope::one(7).allows(8));
        assert!(!Scope::NONE.allows(7));
    }
}
