//! Stations, cabinets, bays and the device on each bay (seed 002: `Station`, `Borne`,
//! `Emplacement`, `Device`).

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
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

#[derive(DeriveIden)]
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

#[derive(DeriveIden)]
enum Bays {
    Table,
    Id,
    StationId,
    CabinetId,
    Number,
    Status,
    LockState,
}

#[derive(DeriveIden)]
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
        manager
            .create_index(
                Index::create()
                    .name("ix_stations_status")
                    .table(Stations::Table)
                    .col(Stations::Status)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Cabinets::Table)
                    .col(id(Cabinets::Id))
                    .col(ColumnDef::new(Cabinets::StationId).integer().not_null())
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
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_cabinets_station")
                            .from(Cabinets::Table, Cabinets::StationId)
                            .to(Stations::Table, Stations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_cabinets_station_number")
                    .table(Cabinets::Table)
                    .col(Cabinets::StationId)
                    .col(Cabinets::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_cabinets_mqtt_prefix")
                    .table(Cabinets::Table)
                    .col(Cabinets::MqttPrefix)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Bays::Table)
                    .col(id(Bays::Id))
                    .col(ColumnDef::new(Bays::StationId).integer().not_null())
                    .col(ColumnDef::new(Bays::CabinetId).integer().not_null())
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
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_bays_station")
                            .from(Bays::Table, Bays::StationId)
                            .to(Stations::Table, Stations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_bays_cabinet")
                            .from(Bays::Table, Bays::CabinetId)
                            .to(Cabinets::Table, Cabinets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_bays_cabinet_number")
                    .table(Bays::Table)
                    .col(Bays::CabinetId)
                    .col(Bays::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_bays_station")
                    .table(Bays::Table)
                    .col(Bays::StationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(id(Devices::Id))
                    .col(ColumnDef::new(Devices::BayId).integer().not_null())
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
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_devices_bay")
                            .from(Devices::Table, Devices::BayId)
                            .to(Bays::Table, Bays::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One device per bay, and one bay per physical device.
        manager
            .create_index(
                Index::create()
                    .name("ux_devices_bay")
                    .table(Devices::Table)
                    .col(Devices::BayId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_devices_mac_address")
                    .table(Devices::Table)
                    .col(Devices::MacAddress)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Devices::Table.into_iden(),
            Bays::Table.into_iden(),
            Cabinets::Table.into_iden(),
            Stations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
