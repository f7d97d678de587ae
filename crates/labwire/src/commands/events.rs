//! `labwire events`: print a lab's node and link state changes as they happen, one per line
//! (JSON objects with `--format json`), following the lab's events file as `tail -F` does.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

#[derive(Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub lab: super::LabRef,
    /// plain: time, lab, event, fields as key=value; json: the recorded objects, one per line
    #[arg(short, long, value_parser = ["plain", "json"], default_value = "plain")]
    pub format: String,
    /// Print the events recorded so far and exit instead of following
    #[arg(long)]
    pub no_follow: bool,
    /// Only what happens from now on (skip the events recorded so far)
    #[arg(long, conflicts_with = "no_follow")]
    pub new: bool,
}

pub fn run(a: EventsArgs) -> anyhow::Result<ExitCode> {
    let name = a.lab.resolve()?;
    lab::paths::check_lab_name(&name)?;
    let mut follower = lab::events::Follower::new(&name, !a.new);
    let print = |lines: Vec<String>| -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        for l in lines {
            if a.format == "json" {
                writeln!(out, "{l}")?;
            } else {
                writeln!(out, "{}", lab::events::human(&l))?;
            }
        }
        // Each event reaches a pipe (a test, `jq`) as it happens.
        out.flush()?;
        Ok(())
    };
    if a.no_follow {
        print(follower.poll())?;
        return Ok(ExitCode::SUCCESS);
    }
    while let Some(lines) = follower.wait(Duration::from_millis(100), &|| false) {
        print(lines)?;
    }
    Ok(ExitCode::SUCCESS)
}
