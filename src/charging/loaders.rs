//! DataLoader keys of the charging topology.

use sea_orm::{EntityTrait as _, QueryOrder as _};

use crate::entities::{bay, cabinet, station};
use crate::graphql::loaders::{many_per_key, one_per_key};

one_per_key!(StationById: station by Id => id);
one_per_key!(CabinetById: cabinet by Id => id);
many_per_key!(
    /// A station's cabinets, by number.
    CabinetsOfStation: cabinet by StationId => station_id,
    cabinet::Entity::find().order_by_asc(cabinet::Column::Number)
);
many_per_key!(
    /// A cabinet's bays, by number.
    BaysOfCabinet: bay by CabinetId => cabinet_id,
    bay::Entity::find().order_by_asc(bay::Column::Number)
);
many_per_key!(
    /// A station's bays, by cabinet then number.
    BaysOfStation: bay by StationId => station_id,
    bay::Entity::find()
        .order_by_asc(bay::Column::CabinetId)
        .order_by_asc(bay::Column::Number)
);
one_per_key!(BayById: bay by Id => id);
