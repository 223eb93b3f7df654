//! Device MQTT credentials: each device gets its own broker login,
//! stored as a salted SHA-512 in Mosquitto's `$6$` format, and a generation that
//! derives its command-signing key; `server_secrets` keeps the secret that key
//! derivation starts from.

use sea_orm_migration::prelude::*;

use crate::columns::timestamp;
use crate::keys::unique_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum Devices {
    Table,
    MqttUsername,
    MqttPasswordHash,
    MqttKeyGeneration,
    MqttCredentialsIssuedAt,
}

#[derive(DeriveIden)]
enum ServerSecrets {
    Table,
    Name,
    Value,
    CreatedAt,
}

const USERNAME_INDEX: &str = "ux_devices_mqtt_username";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            ColumnDef::new(Devices::MqttUsername)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Devices::MqttPasswordHash)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Devices::MqttKeyGeneration)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Devices::MqttCredentialsIssuedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // SQLite cannot add a UNIQUE column; a unique index (`USERNAME_INDEX`)
        // does the same everywhere.
        unique_index(manager, Devices::Table, &["mqtt_username"]).await?;
        manager
            .create_table(
                Table::create()
                    .table(ServerSecrets::Table)
                    .col(
                        ColumnDef::new(ServerSecrets::Name)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ServerSecrets::Value).string().not_null())
                    .col(timestamp(ServerSecrets::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServerSecrets::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(USERNAME_INDEX)
                    .table(Devices::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Devices::MqttCredentialsIssuedAt,
            Devices::MqttKeyGeneration,
            Devices::MqttPasswordHash,
            Devices::MqttUsername,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
