//! What several CLI test files share.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The `genesys-notify` binary under test.
pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_genesys-notify"))
}

/// `genesys-notify sim` with `args` in a process of its own, as an operator runs it, and the
/// first line it printed (its banner).
pub(crate) fn spawn_sim(args: &[&str], stderr: Stdio) -> (Child, String) {
    let mut child = bin()
        .arg("sim")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}
