//! The steps that own device commands and learn their outcome
//! ([`super::commands_log::CommandOwner`]): one entry per owner kind.

use std::sync::Arc;

use super::commands_log::CommandOwner;

pub fn owners() -> Vec<Arc<dyn CommandOwner>> {
    vec![
        Arc::new(crate::charging::sessions::SessionCommands),
        Arc::new(super::firmware::FirmwareUpdates),
    ]
}
