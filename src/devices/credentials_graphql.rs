//! Staff API for device credentials: issue (or rotate) and revoke.
//!
//! The password and command key appear once, in the payload of the mutation
//! that issued them; nothing can show them again.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::credentials;
use super::graphql::Device;
use crate::auth::guards::principal;
use crate::graphql::ids::{self, Kind};
use crate::services::services;

#[derive(InputObject)]
pub struct IssueDeviceCredentialsInput {
    pub device_id: ID,
}

#[derive(SimpleObject)]
pub struct IssueDeviceCredentialsPayload {
    pub device: Device,
    /// MQTT username of the device.
    pub username: String,
    /// Shown once: install it on the device. Issuing again replaces it.
    pub password: String,
    /// Shown once: the key (64 hex digits) the device checks command signatures with.
    pub command_key: String,
}

#[derive(InputObject)]
pub struct RevokeDeviceCredentialsInput {
    pub device_id: ID,
}

#[derive(SimpleObject)]
pub struct RevokeDeviceCredentialsPayload {
    pub device: Device,
}

#[derive(Default)]
pub struct DeviceCredentialsMutation;

#[Object]
impl DeviceCredentialsMutation {
    /// Staff: issues MQTT credentials and a command key for a device, replacing
    /// any it had (rotation). The device must be reconfigured with them.
    async fn issue_device_credentials(
        &self,
        ctx: &Context<'_>,
        input: IssueDeviceCredentialsInput,
    ) -> Result<IssueDeviceCredentialsPayload> {
        principal(ctx).staff()?;
        let db = &services(ctx)?.db;
        let id = ids::decode(&input.device_id, Kind::DEVICE, "deviceId")?;
        let issued = credentials::issue(db, id).await?;
        tracing::info!(device = id, username = %issued.username, security = true, "device credentials issued");
        Ok(IssueDeviceCredentialsPayload {
            device: Device(issued.device),
            username: issued.username,
            password: issued.password,
            command_key: crate::mqtt::command_auth::CommandKey(issued.command_key).to_hex(),
        })
    }

    /// Staff: revokes a device's MQTT credentials; it cannot connect again until
    /// new ones are issued.
    async fn revoke_device_credentials(
        &self,
        ctx: &Context<'_>,
        input: RevokeDeviceCredentialsInput,
    ) -> Result<RevokeDeviceCredentialsPayload> {
        principal(ctx).staff()?;
        let db = &services(ctx)?.db;
        let id = ids::decode(&input.device_id, Kind::DEVICE, "deviceId")?;
        let device = credentials::revoke(db, id).await?;
        tracing::info!(device = id, security = true, "device credentials revoked");
        Ok(RevokeDeviceCredentialsPayload {
            device: Device(device),
        })
    }
}
