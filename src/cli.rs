//! The command line: `serve` (the default), `migrate`, `seed`, `schema`, `simulate`,
//! `mqtt mosquitto-auth`.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use migration::{Migrator, MigratorTrait};

use crate::config::{DatabaseSettings, DeviceCredentialsFile, LogFormat, ServeSettings};
use crate::{App, accounts, app, db, graphql, seed, simulate, telemetry};

// No `Debug` on the command line: it holds passwords and secrets.
#[derive(Parser)]
#[command(
    name = "voltgate",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Settings of `serve`, which runs when no subcommand is given.
    #[command(flatten)]
    serve: ServeSettings,

    /// Log output format.
    #[arg(
        long,
        env = "VOLTGATE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(Box<ServeSettings>),
    /// Manage the database schema.
    Migrate {
        /// What to do with the migrations.
        #[arg(value_enum, default_value = "up")]
        action: MigrateAction,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Add data to the database.
    Seed {
        /// Demo stations, cabinets, bays and devices (skipped when stations exist).
        #[arg(long, required = true)]
        demo: bool,
        /// Number of stations.
        #[arg(long, default_value_t = 3)]
        stations: u32,
        /// Cabinets per station.
        #[arg(long, default_value_t = 2)]
        cabinets: u32,
        /// Bays per cabinet.
        #[arg(long, default_value_t = 4)]
        bays: u32,
        /// First topic level of the cabinets' MQTT prefixes.
        #[arg(long, env = "VOLTGATE_MQTT_TOPIC_ROOT", default_value = "voltgate")]
        mqtt_topic_root: String,
        #[command(flatten)]
        credentials_file: DeviceCredentialsFile,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// MQTT broker helpers.
    #[command(subcommand)]
    Mqtt(MqttCommand),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Administrative helpers.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Play bay devices over MQTT against a running server's broker.
    Simulate {
        /// Number of devices to play (the first bays of the database).
        #[arg(long, default_value_t = 10)]
        bays: usize,
        /// State messages per second, across all devices.
        #[arg(long, default_value_t = 2.0)]
        rate: f64,
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// Faults to inject, in turn, each on a random device (repeat the
        /// flag or separate with commas): overheat, smoke, offline, wrong-mac,
        /// failed-command, ignored-command.
        #[arg(long = "fault", value_enum, value_delimiter = ',')]
        faults: Vec<simulate::Fault>,
        /// Seconds between two injected faults.
        #[arg(long, default_value_t = 10)]
        fault_every_secs: u64,
        /// Broker to publish to; defaults to the embedded broker's address.
        #[arg(long, env = "MQTT_URL", hide_env_values = true)]
        mqtt_url: Option<String>,
        /// Address of the embedded broker of a server running with defaults.
        #[arg(
            long,
            env = "VOLTGATE_EMBEDDED_MQTT_ADDR",
            default_value = "127.0.0.1:1883"
        )]
        embedded_mqtt_addr: std::net::SocketAddr,
        #[command(flatten)]
        credentials_file: DeviceCredentialsFile,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

#[derive(Subcommand)]
enum MqttCommand {
    /// Write a password file, an ACL file and a configuration with which Mosquitto
    /// enforces every device's credentials and topics. Run it again after issuing
    /// or revoking credentials, then send Mosquitto SIGHUP to reload the files.
    MosquittoAuth {
        /// Directory the files go to (`passwd`, `acl`, `mosquitto.conf`).
        #[arg(long)]
        dir: std::path::PathBuf,
        /// The server's broker URL; its user name and password become the server's login.
        #[arg(long, env = "MQTT_URL", hide_env_values = true)]
        mqtt_url: String,
        /// Listener the generated configuration declares.
        #[arg(long, default_value = "0.0.0.0:1883")]
        listen: std::net::SocketAddr,
        /// Mosquitto's `max_packet_size`; the server's client must accept at least this.
        #[arg(long, env = "VOLTGATE_MQTT_MAX_PACKET_BYTES", default_value_t = 256 * 1024)]
        max_packet_bytes: u32,
        /// First topic level of the cabinets' MQTT prefixes.
        #[arg(long, env = "VOLTGATE_MQTT_TOPIC_ROOT", default_value = "voltgate")]
        mqtt_topic_root: String,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a staff superuser, e.g. the first administrator of a new install.
    /// Missing values are asked for on the terminal.
    CreateSuperuser {
        /// Username of the new superuser.
        #[arg(long, env = "VOLTGATE_SUPERUSER_USERNAME")]
        username: Option<String>,
        /// Email of the new superuser.
        #[arg(long, env = "VOLTGATE_SUPERUSER_EMAIL")]
        email: Option<String>,
        /// Prefer the environment variable or the prompt: flags end up in shell history.
        #[arg(long, env = "VOLTGATE_SUPERUSER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Print a kiosk credential for a cabinet (its database id). Taking the
    /// cabinet out of service (status inactive) ends it at once.
    KioskCredential {
        #[arg(long)]
        cabinet: i32,
        /// Days the credential stays valid (1 to 365).
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// The servers' signing secret.
        #[arg(long, env = "VOLTGATE_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MigrateAction {
    /// Apply pending migrations.
    Up,
    /// Roll back the last migration.
    Down,
    /// List applied and pending migrations.
    Status,
    /// Drop everything and re-apply all migrations.
    Fresh,
}

/// Parses the command line and runs the chosen command.
///
/// # Errors
/// Whatever the command fails with; `main` prints it with its causes.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logging(cli.log_format);
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(settings)) => serve(*settings).await,
        Some(Command::Migrate { action, database }) => {
            let db = db::connect(&database).await?;
            match action {
                MigrateAction::Up => Migrator::up(&db, None).await?,
                MigrateAction::Down => Migrator::down(&db, Some(1)).await?,
                MigrateAction::Status => Migrator::status(&db).await?,
                MigrateAction::Fresh => Migrator::fresh(&db).await?,
            }
            Ok(())
        }
        Some(Command::Seed {
            demo: _,
            stations,
            cabinets,
            bays,
            mqtt_topic_root,
            credentials_file,
            database,
        }) => {
            let db = db::connect(&database).await?;
            db::migrate(&db).await?;
            let size = seed::DemoSize {
                stations,
                cabinets_per_station: cabinets,
                bays_per_cabinet: bays,
            };
            for line in
                seed::everything(&db, &size, &mqtt_topic_root, &credentials_file.path).await?
            {
                println!("{line}");
            }
            Ok(())
        }
        Some(Command::Mqtt(MqttCommand::MosquittoAuth {
            dir,
            mqtt_url,
            listen,
            max_packet_bytes,
            mqtt_topic_root,
            database,
        })) => {
            let url = url::Url::parse(&mqtt_url)
                .map_err(|e| anyhow::anyhow!("MQTT_URL is not a URL: {e}"))?;
            let server = app::url_credentials(&url).ok_or_else(|| {
                anyhow::anyhow!(
                    "MQTT_URL must carry the server's login: mqtt://user:password@host:1883"
                )
            })?;
            let db = db::connect(&database).await?;
            db::migrate(&db).await?;
            let devices = crate::devices::credentials::broker_accounts(&db).await?;
            let dir = std::path::absolute(&dir)?;
            let files = crate::mqtt::mosquitto::render(
                &crate::mqtt::mosquitto::MosquittoAuth {
                    devices: &devices,
                    server: &server,
                    topic_root: &mqtt_topic_root,
                    listen,
                    max_packet_bytes,
                },
                &dir,
            )?;
            let conf = crate::mqtt::mosquitto::write(&dir, &files)?;
            println!(
                "{} device logins written; run `mosquitto -c {}` or include it, and send SIGHUP after changes",
                devices.len(),
                conf.display()
            );
            Ok(())
        }
        Some(Command::Admin(AdminCommand::CreateSuperuser {
            username,
            email,
            password,
            database,
        })) => {
            let username = match username {
                Some(value) => value,
                None => prompt("Username: ")?,
            };
            let email = match email {
                Some(value) => value,
                None => prompt("Email: ")?,
            };
            let password = match password {
                Some(value) => value,
                None => prompt_secret("Password: ")?,
            };
            let db = db::connect(&database).await?;
            db::migrate(&db).await?;
            let account = accounts::admin::create_superuser(&db, &username, &email, &password)
                .await
                .map_err(|err| anyhow::anyhow!(err.message()))?;
            println!("superuser {} created", account.username);
            Ok(())
        }
        Some(Command::Admin(AdminCommand::KioskCredential {
            cabinet,
            days,
            jwt_secret,
            database,
        })) => {
            use sea_orm::EntityTrait as _;
            let db = db::connect(&database).await?;
            crate::entities::cabinet::Entity::find_by_id(cabinet)
                .one(&db)
                .await?
                .ok_or_else(|| anyhow::anyhow!("there is no cabinet {cabinet}"))?;
            let ttl = chrono::TimeDelta::days(days.clamp(1, 365));
            let keys = crate::auth::tokens::TokenKeys::new(jwt_secret.as_bytes(), &[], ttl, ttl)?;
            let (token, expires) = keys
                .issue_credential(
                    crate::auth::tokens::Credential::Kiosk {
                        cabinet,
                        credential: None,
                    },
                    ttl,
                    chrono::Utc::now(),
                )
                .map_err(|err| anyhow::anyhow!(err.message()))?;
            eprintln!("kiosk credential for cabinet {cabinet}, valid until {expires}:");
            println!("{token}");
            Ok(())
        }
        Some(Command::Schema) => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Some(Command::Simulate {
            bays,
            rate,
            duration,
            faults,
            fault_every_secs,
            mqtt_url,
            embedded_mqtt_addr,
            credentials_file,
            database,
        }) => {
            anyhow::ensure!(
                rate > 0.0 && rate.is_finite(),
                "--rate must be a positive number"
            );
            let (host, port) = match mqtt_url.as_deref() {
                Some(url) if !url.eq_ignore_ascii_case("none") => {
                    let url = url::Url::parse(url)
                        .with_context(|| format!("MQTT_URL is not a URL: {url}"))?;
                    (
                        url.host_str().unwrap_or("127.0.0.1").to_owned(),
                        url.port().unwrap_or(1883),
                    )
                }
                _ => (
                    embedded_mqtt_addr.ip().to_string(),
                    embedded_mqtt_addr.port(),
                ),
            };
            let db = db::connect(&database).await?;
            let options = simulate::SimulateOptions {
                bays,
                rate,
                duration: duration.map(Duration::from_secs),
                host,
                port,
                credentials: seed::CredentialsFile::read(&credentials_file.path)?,
                faults,
                fault_every: Duration::from_secs(fault_every_secs.max(1)),
            };
            simulate::run(&db, options, app::shutdown_signal()).await?;
            Ok(())
        }
    }
}

fn prompt(label: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    print!("{label}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    anyhow::ensure!(
        std::io::stdin().read_line(&mut line)? > 0,
        "no input for {}",
        label.trim_end_matches(": ")
    );
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Like [`prompt`], without echoing what is typed when stdin is a terminal.
fn prompt_secret(label: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    let terminal = std::io::stdin().is_terminal();
    // `stty` reads the terminal from its stdin, which it inherits.
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .status();
    };
    if terminal {
        echo(false);
    }
    let answer = prompt(label);
    if terminal {
        echo(true);
        println!();
    }
    answer
}

async fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    let app = App::build(settings).await?;
    app.run_until(app::shutdown_signal()).await
}
