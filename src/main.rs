//! The `voltgate` binary; see `voltgate --help`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match voltgate::cli::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole cause chain on one line.
            eprintln!("error: {err:#}");
            tracing::error!(error = format!("{err:#}"), "voltgate failed");
            ExitCode::FAILURE
        }
    }
}
