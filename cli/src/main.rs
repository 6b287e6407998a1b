//! `genesys-notify`: the command-line tool.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod demo;
mod secret_file;
mod sim_cmd;
mod tail;

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
    /// Watch a live session survive token expiry, rollover, maintenance, drops and a 429
    /// against the built-in simulator (no account needed).
    Demo(demo::DemoArgs),
    /// Stream notifications to stdout as JSON lines; lifecycle on stderr.
    Tail(tail::TailArgs),
    /// Run the local Genesys Cloud simulator in the foreground.
    Sim(sim_cmd::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Sim(args) => sim_cmd::run(args),
    }
}
