//! A named role (`Role`): administrator, customer, technician, kiosk, organizer.
//!
//! The stored names are [`RoleName`]s: authentication reads them to build a
//! principal and accounts grant them, both from here, so neither depends on
//! the other.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roles")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub name: String,
    pub description: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The roles a user can hold, as stored in `roles.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleName {
    Administrator,
    Customer,
    Technician,
    Kiosk,
    Organizer,
}

impl RoleName {
    pub const ALL: [Self; 5] = [
        Self::Administrator,
        Self::Customer,
        Self::Technician,
        Self::Kiosk,
        Self::Organizer,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Administrator => "administrator",
            Self::Customer => "customer",
            Self::Technician => "technician",
            Self::Kiosk => "kiosk",
            Self::Organizer => "organizer",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}
