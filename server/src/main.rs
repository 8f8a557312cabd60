//! The `signalbox` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = signalbox::cli::Cli::parse();
    match signalbox::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signalbox: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
