//! Stations, cabinets, bays and the device on each bay (seed 002: `Station`, `Borne`,
//! `Emplacement`, `Device`).

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{drop_tables, foreign_key, index, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum Stations {
    Table,
    Id,
    Name,
    LocationText,
    Latitude,
    Longitude,
    Status,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Cabinets {
    Table,
    Id,
    StationId,
    Number,
    Name,
    MqttPrefix,
    Status,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Bays {
    Table,
    Id,
    StationId,
    CabinetId,
    Number,
    Status,
    LockState,
}

#[derive(DeriveIden, Clone)]
enum Devices {
    Table,
    Id,
    BayId,
    DeviceType,
    FirmwareVersion,
    ExpectedFirmwareVersion,
    FirmwareUpdateStatus,
    OtaUpdateUrl,
    OtaTargetVersion,
    OtaRequestedAt,
    OtaCompletedAt,
    OtaLastError,
    IpAddress,
    SlotId,
    HardwareMac,
    MacAddress,
    LastSeen,
    Status,
    Plugged,
    StateOrderUs,
    StateSeq,
    LastCommandId,
    LastCommandAction,
    LastCommandStatus,
    LastCommandMessage,
    LastCommandAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Stations::Table)
                    .col(id(Stations::Id))
                    .col(ColumnDef::new(Stations::Name).string_len(120).not_null())
                    .col(
                        ColumnDef::new(Stations::LocationText)
                            .string_len(255)
                            .not_null()
                            .default(""),
                    )
                    .col(ColumnDef::new(Stations::Latitude).double())
                    .col(ColumnDef::new(Stations::Longitude).double())
                    .col(
                        ColumnDef::new(Stations::Status)
                            .string_len(16)
                            .not_null()
                            .default("active"),
                    )
                    .col(timestamp(Stations::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(manager, Stations::Table, &["status"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Cabinets::Table)
                    .col(id(Cabinets::Id))
                    .col(reference(Cabinets::StationId))
                    .col(ColumnDef::new(Cabinets::Number).integer().not_null())
                    .col(
                        ColumnDef::new(Cabinets::Name)
                            .string_len(120)
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(Cabinets::MqttPrefix)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Cabinets::Status)
                            .string_len(16)
                            .not_null()
                            .default("active"),
                    )
                    .col(timestamp(Cabinets::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Cabinets::Table,
                        Cabinets::StationId,
                        Stations::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Cabinets::Table, &["station_id", "number"]).await?;
        unique_index(manager, Cabinets::Table, &["mqtt_prefix"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Bays::Table)
                    .col(id(Bays::Id))
                    .col(reference(Bays::StationId))
                    .col(reference(Bays::CabinetId))
                    .col(ColumnDef::new(Bays::Number).integer().not_null())
                    .col(
                        ColumnDef::new(Bays::Status)
                            .string_len(16)
                            .not_null()
                            .default("available"),
                    )
                    .col(
                        ColumnDef::new(Bays::LockState)
                            .string_len(16)
                            .not_null()
                            .default("locked"),
                    )
                    .foreign_key(&mut foreign_key(
                        Bays::Table,
                        Bays::StationId,
                        Stations::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Bays::Table,
                        Bays::CabinetId,
                        Cabinets::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Bays::Table, &["cabinet_id", "number"]).await?;
        index(manager, Bays::Table, &["station_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(id(Devices::Id))
                    .col(reference(Devices::BayId))
                    .col(
                        ColumnDef::new(Devices::DeviceType)
                            .string_len(16)
                            .not_null()
                            .default("esp32"),
                    )
                    .col(ColumnDef::new(Devices::FirmwareVersion).string_len(64))
                    .col(ColumnDef::new(Devices::ExpectedFirmwareVersion).string_len(64))
                    .col(
                        ColumnDef::new(Devices::FirmwareUpdateStatus)
                            .string_len(24)
                            .not_null()
                            .default("unknown"),
                    )
                    .col(ColumnDef::new(Devices::OtaUpdateUrl).string_len(500))
                    .col(ColumnDef::new(Devices::OtaTargetVersion).string_len(64))
                    .col(ColumnDef::new(Devices::OtaRequestedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Devices::OtaCompletedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Devices::OtaLastError).text())
                    .col(ColumnDef::new(Devices::IpAddress).string_len(45))
                    .col(ColumnDef::new(Devices::SlotId).integer().not_null())
                    .col(ColumnDef::new(Devices::HardwareMac).string_len(17))
                    .col(
                        ColumnDef::new(Devices::MacAddress)
                            .string_len(17)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Devices::LastSeen).timestamp_with_time_zone())
                    .col(
                        ColumnDef::new(Devices::Status)
                            .string_len(16)
                            .not_null()
                            .default("provisioned"),
                    )
                    .col(
                        ColumnDef::new(Devices::Plugged)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Devices::StateOrderUs).big_integer())
                    .col(ColumnDef::new(Devices::StateSeq).big_integer())
                    .col(ColumnDef::new(Devices::LastCommandId).string_len(36))
                    .col(ColumnDef::new(Devices::LastCommandAction).string_len(24))
                    .col(ColumnDef::new(Devices::LastCommandStatus).string_len(16))
                    .col(ColumnDef::new(Devices::LastCommandMessage).text())
                    .col(ColumnDef::new(Devices::LastCommandAt).timestamp_with_time_zone())
                    .col(timestamp(Devices::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Devices::Table,
                        Devices::BayId,
                        Bays::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        // One device per bay, and one bay per physical device.
        unique_index(manager, Devices::Table, &["bay_id"]).await?;
        unique_index(manager, Devices::Table, &["mac_address"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            vec![
                Devices::Table.into_iden(),
                Bays::Table.into_iden(),
                Cabinets::Table.into_iden(),
                Stations::Table.into_iden(),
            ],
        )
        .await
    }
}
