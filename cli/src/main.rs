//! `genesys-notify`: the command-line tool.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod check;
mod demo;
mod metrics;
mod secret_file;
mod sim_cmd;
mod tail;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
    #[command(after_help = DEMO_HELP)]
    Demo(demo::DemoArgs),
    /// Check an organisation, credentials and topics end to end: token, channel,
    /// subscriptions, socket; one line per finding (exit 0 usable, 3 login, 4 permission or
    /// configuration).
    #[command(after_help = CHECK_HELP)]
    Check(check::CheckArgs),
    /// Stream notifications to stdout as JSON lines; lifecycle on stderr.
    #[command(after_help = TAIL_HELP)]
    Tail(tail::TailArgs),
    /// Run the local Genesys Cloud simulator in the foreground.
    #[command(after_help = sim_cmd::after_help())]
    Sim(sim_cmd::SimArgs),
    /// Print a shell completion script to stdout, e.g.
    /// `genesys-notify completions bash > /etc/bash_completion.d/genesys-notify`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, e.g. `genesys-notify man | man -l -`.
    Man,
}

const DEMO_HELP: &str = "\
The demo runs for 90 s by default (--duration, at least 20s). It starts the simulator in
this process with short token and channel lives (so renewals happen), runs one session
against it, and injects in turn: a maintenance close, an abrupt drop, a half-open socket, and
tokens revoked while the token endpoint answers 429.

Its last line is the verdict:
  demo published=N delivered=N lost_in_gaps=N lost_outside_gaps=0 duplicates=0 gaps=N
lost_in_gaps counts events inside gaps the session reported; lost_outside_gaps and
duplicates must be 0, and the exit code is 0 only when they are.

Example:
  genesys-notify demo --duration 30s";

const CHECK_HELP: &str = "\
The first thing to run against a real organisation. It takes the same flags and credential
variables as tail, goes through the whole path once and closes cleanly:
  a token (which grant), a channel, the subscriptions (each topic permitted, or refused with
  the service's reason), the socket, and its answer to a ping.

Exit codes:
  0  everything is usable
  2  usage: a flag, a topic or the credentials are wrong (the message says which)
  3  login: the credentials or the refresh token were refused
  4  permission or configuration: a topic refused, a certificate not trusted, a redirect,
     or not live within --timeout

Example:
  export GENESYS_CLIENT_ID=... GENESYS_CLIENT_SECRET=...
  genesys-notify check --region eu_west_1 --topic v2.users.<user-id>.presence";

const TAIL_HELP: &str = "\
Credentials come from the environment:
  GENESYS_CLIENT_ID + GENESYS_CLIENT_SECRET   client credentials (a service)
  ... + GENESYS_REFRESH_TOKEN                 the refresh-token grant (a user's login);
                                              or --refresh-token-file FILE, kept up to date
  GENESYS_ACCESS_TOKEN                        a static token, used until it expires

stdout carries nothing but notifications, exactly as received, one JSON object per line.
stderr carries lifecycle lines: status, gaps (re-read those stretches), rejected topics and
warnings.

Exit codes:
  0  stopped by a signal (Ctrl-C, SIGTERM), --max-events reached, or the reader of stdout
     went away (a closed pipe); a quiet topic never ends tail, however long it stays quiet
  1  an unexpected end (a bug: please report it)
  2  usage: a flag, a topic or the credentials are wrong (the message says which)
  3  login required: the credentials or the refresh token were refused; with a refresh
     token, write a new one into the file (or GENESYS_REFRESH_TOKEN) and start again
  4  the service's answers can never work (a redirect, a foreign connectUri): configuration
  5  a notification could not be written to stdout or --output (a full disk, an I/O error);
     the message names the file

Examples:
  export GENESYS_CLIENT_ID=... GENESYS_CLIENT_SECRET=...
  genesys-notify tail --region eu_west_1 --topic v2.users.<user-id>.presence
  genesys-notify tail --region api.mypurecloud.ie --topic v2.routing.queues.<queue-id>.conversations --log-format json
  genesys-notify tail --api-base http://127.0.0.1:8080 --topic v2.users.demo.presence   # the simulator";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Check(args) => check::run(args),
        Command::Sim(args) => sim_cmd::run(args),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "genesys-notify", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            let man = clap_mangen::Man::new(Cli::command());
            match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                // The reader stopped early (`| head`): nothing to report.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the man page: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
