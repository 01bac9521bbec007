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
    quiet_on_closed_stdout();
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

/// `lifeboat snapshots | head -1`: when the reader of standard output goes away, `println!`
/// panics with EPIPE (Rust ignores SIGPIPE, and must: a dead ssh or dump child must be an
/// error, not a silent kill). That one panic ends the program quietly with 141, as a shell
/// reports SIGPIPE; every other panic keeps the default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        // println! says "failed printing to stdout: Broken pipe"; clap_complete's generator
        // "failed to write completion file: ... BrokenPipe". Only the main thread prints.
        let printing = msg.starts_with("failed printing to stdout")
            || msg.starts_with("failed to write completion file");
        let on_main = std::thread::current().name() == Some("main");
        if printing && on_main && (msg.contains("Broken pipe") || msg.contains("BrokenPipe")) {
            std::process::exit(141);
        }
        default(info);
    }));
}
