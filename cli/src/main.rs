//! `genesys-notify`: the command-line tool.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod sim_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keeps a Genesys Cloud notification channel alive, or simulates one.
#[derive(Debug, Parser)]
#[command(name = "genesys-notify", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local Genesys Cloud simulator in the foreground.
    Sim(sim_cmd::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => sim_cmd::run(args),
    }
}
