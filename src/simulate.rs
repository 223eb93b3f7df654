//! `voltgate simulate`: plays bay devices by the MQTT protocol, for demos and load.
//!
//! Each simulated device is its own MQTT 3.1.1 connection (as ESP32 firmware is),
//! with a Last Will announcing it offline, a retained state, telemetry while it
//! charges, and acknowledgements for the commands it receives. The devices are the
//! ones registered in the database, so the server accepts their MACs; each logs in
//! with the credentials `seed --demo` wrote, and checks every command's signature,
//! expiry and id as firmware must (`mqtt::command_auth`), answering `rejected`
//! to a command it refuses. With `--fault`, it injects faults on request
//! (overheating, smoke, a device going offline, a wrong MAC, its next command
//! failed or ignored) so every alert rule can be seen live.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder, QuerySelect};

use crate::devices::credentials::username_for;
use crate::entities::{DeviceStatus, LockState, bay, cabinet, device};
use crate::mqtt::command_auth::{CommandKey, CommandVerifier};
use crate::mqtt::payload::{self, AckStatus, CommandAck, CommandAction, StateReport, Telemetry};
use crate::mqtt::topic;
use crate::seed::{CredentialsFile, DeviceSecrets};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub bays: usize,
    /// State messages per second, across all devices.
    pub rate: f64,
    pub duration: Option<Duration>,
    pub host: String,
    pub port: u16,
    /// The devices' logins and command keys.
    pub credentials: CredentialsFile,
    /// Faults to inject, one at a time, each on a device picked at random.
    pub faults: Vec<Fault>,
    /// Time between two injected faults.
    pub fault_every: Duration,
}

/// A fault `simulate` can inject, so each alert rule can be seen live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// A temperature reading far above the limit (`OVER_TEMPERATURE`).
    Overheat,
    /// A smoke reading (`SMOKE`).
    Smoke,
    /// The device reports itself offline and then stays silent (`DEVICE_OFFLINE`).
    Offline,
    /// A state report from a MAC that is not the bay's device's (`MAC_MISMATCH`).
    WrongMac,
    /// The device's next command is accepted, then answered `failed`
    /// (`COMMAND_FAILED`).
    FailedCommand,
    /// The device's next command gets no answer at all, so the server times
    /// it out (`COMMAND_FAILED`, timed out).
    IgnoredCommand,
}

impl Fault {
    /// The messages that play this fault on `sim`'s bay: topic, payload, retained.
    fn messages(self, sim: &Sim) -> anyhow::Result<Vec<(String, Vec<u8>, bool)>> {
        let base = format!("{}/bays/{}", sim.prefix, sim.number);
        let reading = |kind: &str, value: f64, unit: &str| -> anyhow::Result<_> {
            let reading = payload::SensorReading {
                v: payload::PROTOCOL_VERSION,
                ts: Utc::now(),
                value,
                unit: unit.to_owned(),
            };
            Ok((
                format!("{base}/sensors/{kind}"),
                serde_json::to_vec(&reading)?,
                false,
            ))
        };
        Ok(match self {
            // Played when the next command comes (`Sim::command_fault`).
            Self::FailedCommand | Self::IgnoredCommand => Vec::new(),
            Self::Overheat => vec![reading("temperature", 85.0, "C")?],
            Self::Smoke => vec![reading("smoke", 1.0, "")?],
            Self::Offline => {
                let mut report = sim.report();
                report.status = DeviceStatus::Offline;
                vec![(
                    topic::state_topic(&sim.prefix, sim.number),
                    serde_json::to_vec(&report)?,
                    true,
                )]
            }
            Self::WrongMac => {
                let mut report = sim.report();
                // A locally administered address no registered device has.
                report.mac = "02:BA:D0:00:00:01".to_owned();
                vec![(
                    topic::state_topic(&sim.prefix, sim.number),
                    serde_json::to_vec(&report)?,
                    false,
                )]
            }
        })
    }
}

/// One simulated device's state.
struct Sim {
    prefix: String,
    number: i32,
    mac: String,
    secrets: DeviceSecrets,
    status: DeviceStatus,
    lock: LockState,
    plugged: bool,
    energy_kwh: f64,
    /// A charging session drives the bay (from `unlock` to `stop_charge`): its
    /// state follows the commands, not the random walk.
    in_session: bool,
    /// Gone offline by an injected fault: sends nothing more.
    silent: bool,
    /// The firmware version it runs; an `ota_update` installs another.
    firmware: String,
    /// How it will mishandle its next command, by an injected fault.
    command_fault: Option<Fault>,
}

impl Sim {
    fn report(&self) -> StateReport {
        StateReport {
            v: payload::PROTOCOL_VERSION,
            ts: Utc::now(),
            mac: self.mac.clone(),
            fw: Some(self.firmware.clone()),
            ip: Some(std::net::IpAddr::from([
                10,
                20,
                (self.number >> 8) as u8,
                self.number as u8,
            ])),
            status: self.status,
            lock: Some(self.lock),
            plugged: Some(self.plugged),
            seq: None,
        }
    }

    /// Plays a command, with its parameters: an `ota_update` installs the
    /// version it carries (the simulated download always succeeds).
    fn apply_command(&mut self, command: &payload::Command) {
        if command.action == CommandAction::OtaUpdate
            && let Some(version) = command.params.get("version").and_then(|v| v.as_str())
        {
            self.firmware = version.chars().take(64).collect();
        }
        self.apply(command.action);
    }

    /// Plays a command the way a bay and its driver do in a charging session:
    /// `unlock` opens the bay and the driver plugs in at once, `start_charge`
    /// charges, `stop_charge` ends it (unplugged, locked again).
    fn apply(&mut self, action: CommandAction) {
        match action {
            CommandAction::Unlock => {
                self.in_session = true;
                self.lock = LockState::Unlocked;
                self.status = DeviceStatus::Online;
                self.plugged = true;
                self.energy_kwh = 0.0;
            }
            CommandAction::Lock => self.lock = LockState::Locked,
            CommandAction::StartCharge => {
                self.status = DeviceStatus::Charging;
                self.lock = LockState::Locked;
            }
            CommandAction::StopCharge => {
                self.in_session = false;
                self.status = DeviceStatus::Idle;
                self.lock = LockState::Locked;
                self.plugged = false;
            }
            CommandAction::OtaUpdate | CommandAction::Reboot => self.status = DeviceStatus::Online,
        }
    }

    /// Moves to a plausible next state: arrive, plug, charge, finish, leave;
    /// in a session only the meter moves.
    fn step(&mut self, roll: u64) {
        if self.in_session {
            if self.status == DeviceStatus::Charging {
                self.energy_kwh += 0.05;
            }
            return;
        }
        (self.status, self.lock, self.plugged) = match (self.status, roll % 10) {
            (DeviceStatus::Idle | DeviceStatus::Online, 0..=5) => {
                (DeviceStatus::Charging, LockState::Locked, true)
            }
            (DeviceStatus::Charging, 0..=6) => (DeviceStatus::Charging, LockState::Locked, true),
            (DeviceStatus::Charging, _) => (DeviceStatus::Idle, LockState::Unlocked, false),
            (_, 9) => (DeviceStatus::Error, LockState::Blocked, self.plugged),
            _ => (DeviceStatus::Idle, LockState::Locked, false),
        };
        if self.status == DeviceStatus::Charging {
            self.energy_kwh += 0.05;
        } else {
            self.energy_kwh = 0.0;
        }
    }
}

/// A small deterministic random source; statistical quality does not matter here.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs the simulation until `duration` elapses or `stop` completes; returns the number of state messages sent.
///
/// # Errors
/// When no devices are registered or the broker cannot be reached.
pub async fn run(
    db: &DatabaseConnection,
    options: SimulateOptions,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<u64> {
    let rows = bay::Entity::find()
        .find_also_related(device::Entity)
        .order_by_asc(bay::Column::Id)
        .limit(options.bays as u64)
        .all(db)
        .await?;
    let cabinets = cabinet::Entity::find().all(db).await?;
    let mut sims = Vec::new();
    let mut without_credentials = 0_usize;
    for (bay, device) in rows {
        let (Some(device), Some(cabinet)) =
            (device, cabinets.iter().find(|c| c.id == bay.cabinet_id))
        else {
            continue;
        };
        let Some(secrets) = options.credentials.devices.get(&username_for(&device)) else {
            without_credentials += 1;
            continue;
        };
        sims.push(Sim {
            prefix: cabinet.mqtt_prefix.clone(),
            number: bay.number,
            secrets: secrets.clone(),
            mac: device.mac_address,
            status: DeviceStatus::Online,
            lock: bay.lock_state,
            plugged: false,
            energy_kwh: 0.0,
            in_session: false,
            silent: false,
            firmware: device
                .firmware_version
                .unwrap_or_else(|| FIRST_FIRMWARE.to_owned()),
            command_fault: None,
        });
    }
    if without_credentials > 0 {
        tracing::warn!(
            devices = without_credentials,
            "devices without credentials in the credentials file are not simulated"
        );
    }
    anyhow::ensure!(
        !sims.is_empty(),
        "no bays with devices and credentials: run `voltgate seed --demo` (or `serve --demo`) \
         first, with the same VOLTGATE_DEVICE_CREDENTIALS_FILE"
    );
    println!(
        "simulating {} devices at {} state messages/s against mqtt://{}:{}",
        sims.len(),
        options.rate,
        options.host,
        options.port
    );

    let mut devices = Vec::new();
    for sim in sims {
        devices.push(connect(sim, &options).await?);
    }

    let started = Instant::now();
    let mut random =
        XorShift(0x9E37_79B9_7F4A_7C15 ^ u64::from(started.elapsed().subsec_nanos()) | 1);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate.max(0.01)));
    let mut sent = 0_u64;
    let mut last_report = Instant::now();
    let mut faults = tokio::time::interval_at(
        tokio::time::Instant::now() + options.fault_every,
        options.fault_every.max(Duration::from_millis(100)),
    );
    let mut next_fault = 0_usize;
    tokio::pin!(stop);
    loop {
        let fault_due = tokio::select! {
            () = &mut stop => break,
            _ = ticker.tick() => false,
            _ = faults.tick(), if !options.faults.is_empty() => true,
        };
        if options.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let (client, sim) = &devices[(random.next() % devices.len() as u64) as usize];
        if fault_due {
            let fault = options.faults[next_fault % options.faults.len()];
            next_fault += 1;
            let (messages, bay) = {
                let mut sim = sim.lock().unwrap_or_else(PoisonError::into_inner);
                match fault {
                    Fault::Offline => sim.silent = true,
                    Fault::FailedCommand | Fault::IgnoredCommand => {
                        sim.command_fault = Some(fault);
                    }
                    Fault::Overheat | Fault::Smoke | Fault::WrongMac => {}
                }
                (
                    fault.messages(&sim)?,
                    format!("{}/bays/{}", sim.prefix, sim.number),
                )
            };
            for (topic, bytes, retain) in messages {
                client
                    .publish(topic, QoS::AtLeastOnce, retain, bytes)
                    .await?;
            }
            println!("fault {fault:?} injected on {bay}");
            continue;
        }
        let (state_topic, report, telemetry) = {
            let mut sim = sim.lock().unwrap_or_else(PoisonError::into_inner);
            if sim.silent {
                continue;
            }
            sim.step(random.next());
            let telemetry = (sim.status == DeviceStatus::Charging).then(|| Telemetry {
                v: payload::PROTOCOL_VERSION,
                ts: Utc::now(),
                session: None,
                current_a: 16.0,
                voltage_v: 230.0,
                energy_kwh: sim.energy_kwh,
            });
            let base = format!("{}/bays/{}", sim.prefix, sim.number);
            (
                topic::state_topic(&sim.prefix, sim.number),
                sim.report(),
                telemetry.map(|t| (format!("{base}/telemetry"), t)),
            )
        };
        client
            .publish(
                state_topic,
                QoS::AtLeastOnce,
                true,
                serde_json::to_vec(&report)?,
            )
            .await?;
        if let Some((telemetry_topic, telemetry)) = telemetry {
            client
                .publish(
                    telemetry_topic,
                    QoS::AtMostOnce,
                    false,
                    serde_json::to_vec(&telemetry)?,
                )
                .await?;
        }
        sent += 1;
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!("{sent} state messages sent");
            last_report = Instant::now();
        }
    }
    for (client, _) in &devices {
        let _ = client.disconnect().await;
    }
    println!(
        "{sent} state messages sent in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(sent)
}

type Device = (AsyncClient, Arc<Mutex<Sim>>);

/// Connects one device: Last Will, retained initial state, command subscription.
async fn connect(sim: Sim, options: &SimulateOptions) -> anyhow::Result<Device> {
    let key = CommandKey::from_hex(&sim.secrets.command_key).ok_or_else(|| {
        anyhow::anyhow!(
            "the command key of {} is not 64 hex digits",
            sim.secrets.username
        )
    })?;
    let mut verifier = CommandVerifier::new(key);
    let mut mqtt = MqttOptions::new(
        sim.secrets.username.clone(),
        options.host.clone(),
        options.port,
    );
    mqtt.set_keep_alive(Duration::from_secs(30))
        .set_credentials(sim.secrets.username.clone(), sim.secrets.password.clone());
    let mut will = sim.report();
    will.status = DeviceStatus::Offline;
    will.lock = None;
    will.plugged = None;
    let state_topic = topic::state_topic(&sim.prefix, sim.number);
    mqtt.set_last_will(LastWill::new(
        state_topic.clone(),
        serde_json::to_vec(&will)?,
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut eventloop) = AsyncClient::new(mqtt, 64);
    let command_topic = topic::command_topic(&sim.prefix, sim.number);
    let sim = Arc::new(Mutex::new(sim));
    let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
    let (responder, device) = (client.clone(), Arc::clone(&sim));
    tokio::spawn(async move {
        let mut connected_tx = Some(connected_tx);
        let mut failing = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    failing = false;
                    // Clean sessions: subscribe again after every (re)connection.
                    let _ = responder
                        .subscribe(command_topic.clone(), QoS::AtLeastOnce)
                        .await;
                    if let Some(tx) = connected_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let decoded = payload::decode_command(
                        &publish.payload,
                        payload::DEFAULT_MAX_PAYLOAD_BYTES,
                    );
                    if let Ok(command) = decoded {
                        match verifier.accept(&command, Utc::now()) {
                            Ok(()) => {
                                let fault = device
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .command_fault
                                    .take();
                                match fault {
                                    Some(Fault::IgnoredCommand) => {
                                        tracing::info!(command_id = %command.command_id, "simulated device ignores a command (injected fault)");
                                    }
                                    Some(Fault::FailedCommand) => {
                                        fail(&responder, &device, &command).await;
                                    }
                                    _ => answer(&responder, &device, &command).await,
                                }
                            }
                            Err(refusal) => {
                                tracing::warn!(command_id = %command.command_id, reason = refusal.as_str(), "simulated device refused a command");
                                reject(&responder, &device, &command, refusal.as_str()).await;
                            }
                        }
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    if !failing {
                        tracing::warn!(error = %err, "simulated device lost its broker; retrying");
                        failing = true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    tokio::time::timeout(CONNECT_TIMEOUT, connected_rx)
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cannot connect to the MQTT broker at {}:{} within {} s",
                options.host,
                options.port,
                CONNECT_TIMEOUT.as_secs()
            )
        })?;
    let initial = serde_json::to_vec(&sim.lock().unwrap_or_else(PoisonError::into_inner).report())?;
    client
        .publish(state_topic, QoS::AtLeastOnce, true, initial)
        .await?;
    Ok((client, sim))
}

/// The firmware a simulated device runs when its record names none.
const FIRST_FIRMWARE: &str = "1.4.2";

/// How long a simulated device waits for the broker to accept its connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The device's acknowledgements of `command`, in order, each with its message.
async fn acknowledge(
    client: &AsyncClient,
    device: &Mutex<Sim>,
    command: &payload::Command,
    answers: &[(AckStatus, Option<&str>)],
) {
    let ack_topic = {
        let sim = device.lock().unwrap_or_else(PoisonError::into_inner);
        format!("{}/bays/{}/ack", sim.prefix, sim.number)
    };
    for (status, message) in answers {
        let ack = CommandAck {
            v: payload::PROTOCOL_VERSION,
            ts: Utc::now(),
            command_id: command.command_id,
            action: command.action,
            status: *status,
            message: message.map(str::to_owned),
        };
        if let Ok(bytes) = serde_json::to_vec(&ack) {
            let _ = client
                .publish(ack_topic.clone(), QoS::AtLeastOnce, false, bytes)
                .await;
        }
    }
}

/// Reports a refused command as `rejected`, with the reason.
async fn reject(
    client: &AsyncClient,
    device: &Mutex<Sim>,
    command: &payload::Command,
    reason: &str,
) {
    acknowledge(
        client,
        device,
        command,
        &[(AckStatus::Rejected, Some(reason))],
    )
    .await;
}

/// Accepts a command and then reports it failed, as a jammed bay would; the
/// device's state does not change.
async fn fail(client: &AsyncClient, device: &Mutex<Sim>, command: &payload::Command) {
    let answers = [
        (AckStatus::Accepted, None),
        (AckStatus::Failed, Some("injected failure")),
    ];
    acknowledge(client, device, command, &answers).await;
}

/// Accepts a command, applies it to the simulated device and reports it done.
async fn answer(client: &AsyncClient, device: &Mutex<Sim>, command: &payload::Command) {
    let (state_topic, report) = {
        let mut sim = device.lock().unwrap_or_else(PoisonError::into_inner);
        sim.apply_command(command);
        (topic::state_topic(&sim.prefix, sim.number), sim.report())
    };
    let answers = [(AckStatus::Accepted, None), (AckStatus::Done, None)];
    acknowledge(client, device, command, &answers).await;
    if let Ok(bytes) = serde_json::to_vec(&report) {
        let _ = client
            .publish(state_topic, QoS::AtLeastOnce, true, bytes)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> Sim {
        Sim {
            prefix: "voltgate/1/1".into(),
            number: 2,
            mac: "02:56:47:00:00:01".into(),
            secrets: DeviceSecrets {
                username: "dev".into(),
                password: "pw".into(),
                command_key: "00".repeat(32),
            },
            status: DeviceStatus::Idle,
            lock: LockState::Locked,
            plugged: false,
            energy_kwh: 0.0,
            in_session: false,
            silent: false,
            firmware: FIRST_FIRMWARE.to_owned(),
            command_fault: None,
        }
    }

    #[test]
    fn an_update_installs_the_version_it_carries() {
        let mut device = sim();
        let mut params = serde_json::Map::new();
        params.insert("version".into(), "2.0.0".into());
        params.insert("url".into(), "https://fw.example.com/2.0.0.bin".into());
        device.apply_command(&payload::Command {
            v: payload::PROTOCOL_VERSION,
            ts: Utc::now(),
            command_id: uuid::Uuid::new_v4(),
            action: CommandAction::OtaUpdate,
            params,
            expires_at: 0,
            mac: String::new(),
        });
        assert_eq!(device.report().fw.as_deref(), Some("2.0.0"));
    }

    #[test]
    fn a_session_follows_its_commands_and_not_the_random_walk() {
        let mut sim = Sim {
            status: DeviceStatus::Online,
            ..sim()
        };
        sim.apply(CommandAction::Unlock);
        assert_eq!((sim.lock, sim.plugged), (LockState::Unlocked, true));
        // Rolls that would otherwise unplug it or raise an error change nothing.
        for roll in 0..50 {
            sim.step(roll);
            assert!(
                sim.plugged && sim.status == DeviceStatus::Online,
                "roll {roll}"
            );
        }
        sim.apply(CommandAction::StartCharge);
        sim.step(9);
        assert_eq!(sim.status, DeviceStatus::Charging);
        assert!(sim.energy_kwh > 0.0, "the meter runs while charging");
        sim.apply(CommandAction::StopCharge);
        assert_eq!(
            (sim.status, sim.lock, sim.plugged, sim.in_session),
            (DeviceStatus::Idle, LockState::Locked, false, false)
        );
        sim.step(0);
        assert_eq!(
            sim.status,
            DeviceStatus::Charging,
            "back to the random walk"
        );
    }

    #[test]
    fn each_fault_speaks_the_device_protocol_on_its_bay() {
        let sim = sim();
        let one = |fault: Fault| {
            let mut messages = fault.messages(&sim).unwrap_or_default();
            assert_eq!(messages.len(), 1, "{fault:?}");
            messages.remove(0)
        };
        let (topic, bytes, _) = one(Fault::Overheat);
        assert_eq!(topic, "voltgate/1/1/bays/2/sensors/temperature");
        let reading = payload::decode_sensor(&bytes, 4096).map(|r| r.value).ok();
        assert_eq!(reading, Some(85.0));
        let (topic, _, _) = one(Fault::Smoke);
        assert_eq!(topic, "voltgate/1/1/bays/2/sensors/smoke");
        let (topic, bytes, retained) = one(Fault::Offline);
        assert_eq!(topic, "voltgate/1/1/bays/2/state");
        assert!(retained, "the offline state stays, as a Last Will's would");
        let offline = payload::decode_state(&bytes, 4096).map(|r| r.status).ok();
        assert_eq!(offline, Some(DeviceStatus::Offline));
        let (_, bytes, _) = one(Fault::WrongMac);
        let mac = payload::decode_state(&bytes, 4096).map(|r| r.mac).ok();
        assert_eq!(mac.as_deref(), Some("02:BA:D0:00:00:01"));
    }
}
