//! `lifeboat`: the command line. It parses arguments, finds the repository and password,
//! shows progress, and maps errors to the documented exit codes; the work itself is done by
//! library calls in lifeboat-repo and lifeboat-sources.

mod cli;
mod commands;
mod context;
mod exit;
mod ui;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let progress = std::sync::Arc::new(lifeboat_repo::Progress::default());
    exit::install_signal_handler(progress.clone());
    match commands::run(cli, progress) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = exit::code_of(&e);
            if code == exit::INTERRUPTED {
                eprintln!(
                    "lifeboat: interrupted; nothing that a snapshot references was left half-written"
                );
            } else {
                eprintln!("lifeboat: {}", exit::message_of(&e));
            }
            ExitCode::from(code)
        }
    }
}
