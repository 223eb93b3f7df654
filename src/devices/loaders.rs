//! DataLoader keys of devices.

use crate::entities::device;
use crate::graphql::loaders::one_per_key;

one_per_key!(
    /// The device installed on a bay.
    DeviceOfBay: device by BayId => bay_id
);
