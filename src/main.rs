//! The `voltgate` binary; see `voltgate --help`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

/// mimalloc's thread-local heaps instead of glibc's arenas: a request's many
/// small allocations and frees no longer contend on the arenas' locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
