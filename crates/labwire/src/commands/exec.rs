//! `labwire exec`: run a command in the lab's nodes.

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use lab::exec::Select;

#[derive(Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub lab: super::LabRef,
    /// Only this node (short or long name)
    #[arg(long)]
    pub node: Option<String>,
    /// Only these nodes (comma-separated, short or long names)
    #[arg(long, value_delimiter = ',', conflicts_with = "node")]
    pub node_filter: Vec<String>,
    /// Only nodes with this label (key=value; repeat or comma-separate: all must match). The
    /// built-in labels count: clab-node-kind, clab-node-group, containerlab, …
    #[arg(long, value_delimiter = ',', conflicts_with = "node")]
    pub label: Vec<String>,
    /// The command, run with /bin/sh -c inside each node (repeat: run in order)
    #[arg(long, required = true)]
    pub cmd: Vec<String>,
    #[arg(short, long, value_parser = ["plain", "json"], default_value = "plain")]
    pub format: String,
}

pub fn run(a: ExecArgs) -> anyhow::Result<ExitCode> {
    let name = a.lab.resolve()?;
    let labels: Vec<(String, String)> = a
        .label
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(anyhow!("--label takes key=value, not `{l}`")),
        })
        .collect::<anyhow::Result<_>>()?;
    let one: Vec<String> = a.node.iter().cloned().collect();
    let select = Select::Match {
        nodes: if a.node.is_some() {
            &one
        } else {
            &a.node_filter
        },
        labels: &labels,
    };
    let mut worst = 0;
    let mut json = serde_json::Map::new();
    for cmd in &a.cmd {
        let results = lab::exec::exec(&name, &select, cmd)?;
        let many = results.len() > 1;
        for (n, out) in &results {
            worst = worst.max(out.code);
            if a.format == "json" {
                let entry = json
                    .entry(n.long_name.clone())
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let serde_json::Value::Array(list) = entry {
                    list.push(serde_json::json!({ "cmd": ["/bin/sh", "-c", cmd], "return-code": out.code, "stdout": out.stdout, "stderr": out.stderr }));
                }
            } else {
                if many {
                    println!("--- {} ---", n.name);
                }
                print!("{}", out.stdout);
                eprint!("{}", out.stderr);
            }
        }
    }
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(if worst == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(worst.clamp(1, 255) as u8)
    })
}
