//! Types several domains extend, assembled from each domain's part.
//!
//! A domain never adds a field to another domain's type: it writes its own part
//! (an `#[Object]` over the same row) and the part is merged here. Charging
//! therefore never imports devices, and accounts never counts stations. A new
//! domain adds its parts to these lists and nothing else outside its folder.

use async_graphql::MergedObject;

use crate::accounts::graphql::UserPart;
use crate::accounts::graphql::administration::AccountFigures;
use crate::charging::graphql::{BayPart, ChargingFigures, StationPart};
use crate::devices::graphql::{BayDevicePart, DeviceFigures};
use crate::entities::{bay, station, user};
use crate::ticketing::graphql::UserTicketingPart;

/// A charging station and its public location.
#[derive(MergedObject)]
pub struct Station(StationPart);

impl From<station::Model> for Station {
    fn from(row: station::Model) -> Self {
        Self(StationPart(row))
    }
}

/// A numbered charging bay within a cabinet.
#[derive(MergedObject)]
pub struct Bay(BayPart, BayDevicePart);

impl From<bay::Model> for Bay {
    fn from(row: bay::Model) -> Self {
        let device = BayDevicePart { bay_id: row.id };
        Self(BayPart(row), device)
    }
}

/// An account. Fields beyond the profile summary are visible to the user and to staff.
#[derive(MergedObject)]
pub struct User(UserPart, UserTicketingPart);

impl From<user::Model> for User {
    fn from(row: user::Model) -> Self {
        let orders = UserTicketingPart { user_id: row.id };
        Self(UserPart(row), orders)
    }
}

/// Aggregates for the administration dashboard, each domain's figures from its
/// own part. Figures of domains that have not landed count zero.
#[derive(MergedObject, Default)]
pub struct AdminOverview(
    AccountFigures,
    ChargingFigures,
    DeviceFigures,
    crate::supervision::graphql::SupervisionFigures,
    PendingFigures,
);

/// Figures of domains still to come; each moves to its domain's part when it lands.
#[derive(Default)]
pub struct PendingFigures;

#[async_graphql::Object]
impl PendingFigures {
    async fn orders(&self) -> u64 {
        0
    }
}
