//! A quota (pretix `Quota`): how many of its products (for one date, if set)
//! may be sold. Its counters say how much of it is taken: `paid` and `pending`
//! order positions, positions `in_carts` and units `blocked` by vouchers for
//! their unused usages (pretix counts these as reserved). They change only by conditional
//! `UPDATE`s (see `ticketing::quotas`), so a quota is never oversold.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quotas")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    pub sub_event_id: Option<i32>,
    pub name: String,
    /// `None`: unlimited.
    pub size: Option<i32>,
    pub paid: i32,
    pub pending: i32,
    pub in_carts: i32,
    /// Units vouchers that block quota keep for their unused usages.
    pub blocked: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// pretix's availability states, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Availability {
    /// Something is left.
    Ok,
    /// Nothing is left because of cart holds or vouchers that block quota.
    Reserved,
    /// Nothing is left because of pending orders.
    Ordered,
    /// Sold out: paid orders take it all.
    Gone,
}

impl Model {
    /// What is left; `None` for an unlimited quota.
    pub fn remaining(&self) -> Option<i32> {
        self.size
            .map(|size| (size - self.paid - self.pending - self.in_carts - self.blocked).max(0))
    }

    /// pretix's state: `Ok` while something is left; otherwise what takes it.
    pub fn availability(&self) -> Availability {
        match self.size {
            None => Availability::Ok,
            Some(size) if self.paid >= size => Availability::Gone,
            Some(size) if self.paid + self.pending >= size => Availability::Ordered,
            Some(size) if self.paid + self.pending + self.in_carts + self.blocked >= size => {
                Availability::Reserved
            }
            Some(_) => Availability::Ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(size: Option<i32>, paid: i32, pending: i32, in_carts: i32) -> Model {
        blocking(size, paid, pending, in_carts, 0)
    }

    fn blocking(size: Option<i32>, paid: i32, pending: i32, in_carts: i32, blocked: i32) -> Model {
        Model {
            id: 1,
            event_id: 1,
            sub_event_id: None,
            name: "q".into(),
            size,
            paid,
            pending,
            in_carts,
            blocked,
        }
    }

    #[test]
    fn availability_names_what_takes_the_last_unit() {
        assert_eq!(quota(Some(10), 3, 3, 3).availability(), Availability::Ok);
        assert_eq!(quota(Some(10), 3, 3, 3).remaining(), Some(1));
        assert_eq!(
            quota(Some(10), 3, 3, 4).availability(),
            Availability::Reserved
        );
        assert_eq!(
            quota(Some(10), 3, 7, 0).availability(),
            Availability::Ordered
        );
        assert_eq!(quota(Some(10), 10, 0, 0).availability(), Availability::Gone);
        assert_eq!(quota(Some(0), 0, 0, 0).availability(), Availability::Gone);
        assert_eq!(quota(None, 100, 5, 5).availability(), Availability::Ok);
        assert_eq!(quota(None, 100, 5, 5).remaining(), None);
        assert_eq!(blocking(Some(10), 3, 3, 2, 1).remaining(), Some(1));
        assert_eq!(
            blocking(Some(10), 3, 3, 2, 2).availability(),
            Availability::Reserved
        );
    }
}
