//! Demo data: a few stations with cabinets, bays and registered devices.
//!
//! Device MACs are derived from bay ids (`02:56:47:xx:xx:xx`, a locally
//! administered range), so `voltgate simulate` can play the devices from the
//! database alone.

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, Set,
    TransactionTrait,
};

use crate::entities::{
    BayStatus, CabinetStatus, DeviceStatus, DeviceType, FirmwareUpdateStatus, LockState,
    StationStatus, bay, cabinet, device, station,
};
use crate::mqtt::topic::default_prefix;

/// How much demo data to create.
#[derive(Debug, Clone, Copy)]
pub struct DemoSize {
    pub stations: u32,
    pub cabinets_per_station: u32,
    pub bays_per_cabinet: u32,
}

impl Default for DemoSize {
    fn default() -> Self {
        Self {
            stations: 3,
            cabinets_per_station: 2,
            bays_per_cabinet: 4,
        }
    }
}

const PLACES: [(&str, &str, f64, f64); 6] = [
    ("Arena Nord", "12 rue du Stade, Lille", 50.6119, 3.1305),
    (
        "Palais des Congrès",
        "2 place de la Porte Maillot, Paris",
        48.8785,
        2.2830,
    ),
    (
        "Halle Tony Garnier",
        "20 place Docteurs Mérieux, Lyon",
        45.7317,
        4.8223,
    ),
    (
        "Zénith Sud",
        "Avenue Albert Einstein, Montpellier",
        43.6004,
        3.9125,
    ),
    ("Parc Expo Est", "Rue Fénelon, Strasbourg", 48.5921, 7.7523),
    (
        "Dock Atlantique",
        "Quai de la Fosse, Nantes",
        47.2080,
        -1.5660,
    ),
];

/// The MAC registered for the device of bay `bay_id`.
pub fn demo_mac(bay_id: i32) -> String {
    let id = bay_id as u32;
    format!(
        "02:56:47:{:02X}:{:02X}:{:02X}",
        (id >> 16) & 0xff,
        (id >> 8) & 0xff,
        id & 0xff
    )
}

/// Creates demo data unless the database already has stations; returns how many stations it created.
///
/// # Errors
/// When the database refuses the inserts; nothing is written then.
pub async fn demo(
    db: &DatabaseConnection,
    size: &DemoSize,
    topic_root: &str,
) -> anyhow::Result<u32> {
    let txn = db.begin().await?;
    if station::Entity::find().count(&txn).await? > 0 {
        tracing::info!("database already has stations; demo data not added");
        return Ok(0);
    }
    for s in 0..size.stations {
        let (name, location, lat, lon) = PLACES[s as usize % PLACES.len()];
        let name = if s as usize >= PLACES.len() {
            format!("{name} {}", s + 1)
        } else {
            name.to_owned()
        };
        let station = station::ActiveModel {
            name: Set(name),
            location_text: Set(location.to_owned()),
            latitude: Set(Some(lat)),
            longitude: Set(Some(lon)),
            status: Set(StationStatus::Active),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        for c in 1..=size.cabinets_per_station as i32 {
            let cabinet = cabinet::ActiveModel {
                station_id: Set(station.id),
                number: Set(c),
                name: Set(format!("Borne {c}")),
                mqtt_prefix: Set(default_prefix(topic_root, station.id, c)),
                status: Set(CabinetStatus::Active),
                created_at: Set(chrono::Utc::now()),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            for b in 1..=size.bays_per_cabinet as i32 {
                add_bay(&txn, &cabinet, b).await?;
            }
        }
    }
    txn.commit().await?;
    tracing::info!(stations = size.stations, "demo data created");
    Ok(size.stations)
}

/// Adds bay `number` to `cabinet`, with a registered, never-seen device.
///
/// # Errors
/// When the bay number is taken in that cabinet, or the database fails.
pub async fn add_bay(
    db: &impl ConnectionTrait,
    cabinet: &cabinet::Model,
    number: i32,
) -> anyhow::Result<(bay::Model, device::Model)> {
    let bay = bay::ActiveModel {
        station_id: Set(cabinet.station_id),
        cabinet_id: Set(cabinet.id),
        number: Set(number),
        status: Set(BayStatus::Available),
        lock_state: Set(LockState::Locked),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let device = device::ActiveModel {
        bay_id: Set(bay.id),
        device_type: Set(DeviceType::Esp32),
        expected_firmware_version: Set(Some("1.4.2".to_owned())),
        firmware_update_status: Set(FirmwareUpdateStatus::Unknown),
        slot_id: Set(number),
        mac_address: Set(demo_mac(bay.id)),
        status: Set(DeviceStatus::Provisioned),
        plugged: Set(false),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((bay, device))
}

#[cfg(test)]
mod tests {
    use super::demo_mac;
    use crate::mqtt::payload::normalize_mac;

    #[test]
    fn demo_macs_are_unique_normalized_macs() {
        assert_eq!(demo_mac(1), "02:56:47:00:00:01");
        assert_eq!(demo_mac(0x01_02_03), "02:56:47:01:02:03");
        assert_eq!(normalize_mac(&demo_mac(777)), Some(demo_mac(777)));
    }
}
