//! Demo data: a few stations with cabinets, bays and registered devices.
//!
//! Device MACs are derived from bay ids (`02:56:47:xx:xx:xx`, a locally
//! administered range). Demo devices get MQTT credentials; since a password is
//! only ever shown once, `--demo` writes them to a local file (mode 0600, by
//! default `voltgate-devices.json`) that `voltgate simulate` reads.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use crate::devices::credentials;
use crate::entities::{
    BayStatus, CabinetStatus, DeviceStatus, DeviceType, FirmwareUpdateStatus, LockState,
    StationStatus, bay, cabinet, device, station,
};
use crate::mqtt::command_auth::CommandKey;
use crate::mqtt::topic::default_prefix;

/// One device's credentials as the simulator needs them.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceSecrets {
    pub username: String,
    pub password: String,
    /// 64 hex digits.
    pub command_key: String,
}

impl std::fmt::Debug for DeviceSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSecrets")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The credentials file: device secrets by username.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CredentialsFile {
    pub devices: BTreeMap<String, DeviceSecrets>,
}

impl CredentialsFile {
    /// Reads the file; a missing file is an empty one.
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{} is not a credentials file: {e}", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(anyhow::anyhow!("cannot read {}: {err}", path.display())),
        }
    }

    /// Replaces the file atomically, readable by the owner only.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        crate::mqtt::mosquitto::write_private(path, &serde_json::to_vec_pretty(self)?)
    }
}

/// Issues credentials to every device that never had any (revoked devices stay
/// revoked) and returns them.
///
/// # Errors
/// When the database fails.
pub async fn issue_missing_credentials(
    db: &impl ConnectionTrait,
) -> anyhow::Result<Vec<DeviceSecrets>> {
    let pending = device::Entity::find()
        .filter(device::Column::MqttUsername.is_null())
        .order_by_asc(device::Column::Id)
        .all(db)
        .await?;
    let mut issued = Vec::with_capacity(pending.len());
    for found in pending {
        let fresh = credentials::issue(db, found.id)
            .await
            .map_err(|e| match e {
                crate::error::AppError::Internal(cause) => cause,
                other => anyhow::anyhow!("cannot issue device credentials: {}", other.message()),
            })?;
        issued.push(DeviceSecrets {
            username: fresh.username,
            password: fresh.password,
            command_key: CommandKey(fresh.command_key).to_hex(),
        });
    }
    Ok(issued)
}

/// Issues credentials to the demo devices that have none and adds them to the
/// credentials file at `path`.
///
/// # Errors
/// When the database fails or the file cannot be written.
pub async fn provision_demo_credentials(
    db: &impl ConnectionTrait,
    path: &Path,
) -> anyhow::Result<usize> {
    let issued = issue_missing_credentials(db).await?;
    if issued.is_empty() {
        return Ok(0);
    }
    let mut file = CredentialsFile::read(path)?;
    for secrets in &issued {
        file.devices
            .insert(secrets.username.clone(), secrets.clone());
    }
    file.write(path)?;
    tracing::info!(devices = issued.len(), file = %path.display(), "demo device credentials written");
    Ok(issued.len())
}

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
        mqtt_key_generation: Set(0),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((bay, device))
}

/// Issues the kiosk credential of the first cabinet; returns the cabinet's id
/// and the secret, which only the caller sees (it is stored hashed).
///
/// # Errors
/// When there is no cabinet, or the database fails.
pub async fn demo_kiosk_credential(db: &DatabaseConnection) -> anyhow::Result<(i32, String)> {
    use sea_orm::QueryOrder as _;
    let first = cabinet::Entity::find()
        .order_by_asc(cabinet::Column::Id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no cabinet"))?;
    let issued = crate::charging::kiosks::issue(db, first.id, "demo", None, chrono::Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
    Ok((first.id, issued.secret))
}

/// All demo data, each part only where it is missing: stations with their
/// devices and a kiosk credential, a driver's reservations and a charging
/// session, an organizer selling an event, a check-in
/// list with a scanner, and the devices' credentials file. Returns what to
/// tell the person who asked, secrets included: they are shown only here.
///
/// # Errors
/// On database or file errors.
pub async fn everything(
    db: &DatabaseConnection,
    size: &DemoSize,
    mqtt_topic_root: &str,
    credentials_path: &Path,
) -> anyhow::Result<Vec<String>> {
    let mut told = Vec::new();
    let created = demo(db, size, mqtt_topic_root).await?;
    told.push(format!("{created} demo stations created"));
    // Every line after this one reports something added.
    let stations_line = told.len();
    if created > 0 {
        let (cabinet, secret) = demo_kiosk_credential(db).await?;
        told.push(format!(
            "kiosk credential of cabinet {cabinet} (shown once; sign in with kioskSignIn): {secret}"
        ));
    }
    if let Some(charging) = crate::charging::demo::seed(db).await? {
        told.push(format!(
            "driver {} (password shown once: {}) has reservation {} usable now at bay {} with code {}, {} upcoming reservations, and charging session {} in progress",
            charging.driver.username,
            charging.driver.password,
            charging.reference,
            charging.bay_number,
            charging.code,
            charging.upcoming,
            charging.session_id,
        ));
    }
    if let Some(sales) = crate::ticketing::demo::seed(db).await? {
        told.push(format!(
            "{} on sale with {} orders; vouchers {}; accounts (passwords shown once): {} {} (staff, organizer admin), {} {} (door staff)",
            sales.event_name,
            sales.orders,
            sales.voucher_codes.join(", "),
            sales.admin.username,
            sales.admin.password,
            sales.door_staff.username,
            sales.door_staff.password,
        ));
    }
    if let Some(door) = crate::checkin::demo::seed(db).await? {
        told.push(format!(
            "check-in list \"Main entrance\" and a scanner at gate {} added to {}; scanner credential (shown once): {}",
            door.gate, door.event_name, door.credential
        ));
    }
    let issued = provision_demo_credentials(db, credentials_path).await?;
    if issued > 0 {
        told.push(format!(
            "credentials of {issued} devices written to {} (keep it private)",
            credentials_path.display()
        ));
    }
    // What was just loaded is planned from statistics, not guesses; a
    // server restarted with `--demo` adds nothing and analyzes nothing.
    if created > 0 || told.len() > stations_line {
        crate::db::analyze(db).await?;
    }
    Ok(told)
}

/// Networks for unit tests.
#[cfg(test)]
pub mod testing {
    use sea_orm::DatabaseConnection;

    use super::{DemoSize, demo};

    /// Migrates `db` and seeds the demo network's one station of one cabinet
    /// of `bays` bays, each with its device; the cabinet's MQTT prefix.
    pub async fn one_cabinet(db: &DatabaseConnection, bays: u32) -> String {
        crate::db::migrate(db).await.expect("migrated");
        let size = DemoSize {
            stations: 1,
            cabinets_per_station: 1,
            bays_per_cabinet: bays,
        };
        demo(db, &size, "vg").await.expect("a network");
        use sea_orm::EntityTrait as _;
        crate::entities::cabinet::Entity::find()
            .one(db)
            .await
            .expect("query")
            .expect("a cabinet")
            .mqtt_prefix
    }

    /// Bay `bay_id` and its device.
    pub async fn bay_and_device(
        db: &DatabaseConnection,
        bay_id: i32,
    ) -> (crate::entities::bay::Model, crate::entities::device::Model) {
        use crate::entities::{bay, device};
        use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
        let bay = bay::Entity::find_by_id(bay_id)
            .one(db)
            .await
            .expect("query")
            .expect("the bay");
        let device = device::Entity::find()
            .filter(device::Column::BayId.eq(bay_id))
            .one(db)
            .await
            .expect("query")
            .expect("its device");
        (bay, device)
    }

    /// [`one_cabinet`] with the charging demo: its customers, reservations
    /// and charging sessions (one of them charging).
    pub async fn one_cabinet_charging(db: &DatabaseConnection, bays: u32) {
        one_cabinet(db, bays).await;
        crate::charging::demo::seed(db)
            .await
            .expect("seeded")
            .expect("a charging demo");
    }

    /// In [`one_cabinet_charging`]'s network: a bay none of the demo's
    /// reservations is for, and a demo customer.
    pub async fn free_bay_and_customer(db: &DatabaseConnection) -> (i32, i32) {
        use crate::entities::{bay, reservation};
        use sea_orm::{EntityTrait as _, QueryOrder as _};
        let reservations = reservation::Entity::find().all(db).await.expect("query");
        let user_id = reservations.first().expect("a demo reservation").user_id;
        let bay_id = bay::Entity::find()
            .order_by_desc(bay::Column::Id)
            .all(db)
            .await
            .expect("query")
            .into_iter()
            .map(|bay| bay.id)
            .find(|id| reservations.iter().all(|r| r.bay_id != *id))
            .expect("a bay nobody reserved");
        (bay_id, user_id)
    }

    /// A `CONFIRMED` code reservation of `bay_id` by `user_id`, its slot
    /// from ten minutes before `now` to fifty after.
    pub fn holding_now(
        code: &str,
        bay_id: i32,
        user_id: i32,
        now: chrono::DateTime<chrono::Utc>,
    ) -> crate::entities::reservation::ActiveModel {
        use crate::entities::reservation::{AccessMode, ActiveModel, ReservationStatus};
        use sea_orm::Set;
        ActiveModel {
            reference_code: Set(code.into()),
            user_id: Set(user_id),
            bay_id: Set(bay_id),
            auth_method_id: Set(None),
            auth_choice: Set(AccessMode::Code),
            starts_at_us: Set((now - chrono::TimeDelta::minutes(10)).timestamp_micros()),
            ends_at_us: Set((now + chrono::TimeDelta::minutes(50)).timestamp_micros()),
            status: Set(ReservationStatus::Confirmed),
            cancelled_at_us: Set(None),
            created_at: Set(now),
            ..Default::default()
        }
    }
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
