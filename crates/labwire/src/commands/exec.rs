//! `labwire exec`: run a command in the lab's nodes.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use lab::exec::Select;

#[derive(Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub lab: super::LabRef,
    /// Only this node (short or long name)
    #[arg(long)]
    pub node: Option<String>,
    /// Only nodes with this label (key=value)
    #[arg(long, conflicts_with = "node")]
    pub label: Option<String>,
    /// The command, run with /bin/sh -c inside each node
    #[arg(long)]
    pub cmd: String,
    #[arg(short, long, value_parser = ["plain", "json"], default_value = "plain")]
    pub format: String,
}

pub fn run(a: ExecArgs) -> anyhow::Result<ExitCode> {
    let name = a.lab.resolve()?;
    let select = match (&a.node, &a.label) {
        (Some(n), _) => Select::Node(n),
        (None, Some(l)) => match l.split_once('=') {
            Some((k, v)) => Select::Label(k, v),
            None => bail!("--label takes key=value, not `{l}`"),
        },
        (None, None) => Select::All,
    };
    let results = lab::exec::exec(&name, &select, &a.cmd)?;
    let mut worst = 0;
    if a.format == "json" {
        let mut m = serde_json::Map::new();
        for (n, out) in &results {
            m.insert(
                n.long_name.clone(),
                serde_json::json!([{ "cmd": ["/bin/sh", "-c", a.cmd], "return-code": out.code, "stdout": out.stdout, "stderr": out.stderr }]),
            );
            worst = worst.max(out.code);
        }
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        let many = results.len() > 1;
        for (n, out) in &results {
            if many {
                println!("--- {} ---", n.name);
            }
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            worst = worst.max(out.code);
        }
    }
    Ok(if worst == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(worst.clamp(1, 255) as u8)
    })
}
