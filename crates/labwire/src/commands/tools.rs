//! `labwire tools netem set|show|reset` (link impairments on a running lab) and `labwire tools
//! link down|up` (a link's state, as a pulled cable). The containerlab personality's `tools
//! netem` uses the same functions and output.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use topology::Impairment;

#[derive(Args)]
pub struct ToolsArgs {
    #[command(subcommand)]
    pub tool: Tool,
}

#[derive(Subcommand)]
pub enum Tool {
    /// Link impairments of a running lab (delay, jitter, loss, corruption, duplication, reorder,
    /// rate), on the sending side of one endpoint
    Netem {
        #[command(subcommand)]
        op: NetemOp,
    },
    /// Take a link down or bring it back up, as pulling and replugging its cable: both ends
    /// lose (regain) carrier
    Link {
        #[command(subcommand)]
        op: LinkOp,
    },
}

/// The impairment flags, as containerlab's `tools netem set` takes them, plus labwire's
/// duplication and reorder.
#[derive(Args, Clone, Default)]
pub struct NetemFlags {
    /// Delay, e.g. 100ms, 1.5s (0 or 0s: none)
    #[arg(long)]
    pub delay: Option<String>,
    /// Delay variation (needs --delay), e.g. 10ms
    #[arg(long)]
    pub jitter: Option<String>,
    /// Packet loss in percent (0–100)
    #[arg(long)]
    pub loss: Option<String>,
    /// Rate limit: a bare number is kbit/s (as containerlab's), or with a unit: 1Mbit, 500kbit
    #[arg(long)]
    pub rate: Option<String>,
    /// Packet corruption in percent (0–100)
    #[arg(long)]
    pub corruption: Option<String>,
    /// Packet duplication in percent (0–100)
    #[arg(long)]
    pub duplication: Option<String>,
    /// Packets sent at once, without the delay, in percent (needs --delay)
    #[arg(long)]
    pub reorder: Option<String>,
}

impl NetemFlags {
    /// The impairment the flags ask for; zero values (`--delay 0s`, `--loss 0`) are none.
    pub fn impairment(&self) -> anyhow::Result<Impairment> {
        let mut imp = Impairment::default();
        for (key, v) in [
            ("delay", &self.delay),
            ("jitter", &self.jitter),
            ("loss", &self.loss),
            ("rate", &self.rate),
            ("corruption", &self.corruption),
            ("duplication", &self.duplication),
            ("reorder", &self.reorder),
        ] {
            let Some(text) = v else { continue };
            let t = text.trim();
            // containerlab's defaults (`--rate 0`) mean no limit.
            if key == "rate" && t == "0" {
                continue;
            }
            imp.set(key, t)
                .map_err(|accepted| anyhow::anyhow!("--{key} `{t}` is not valid: {accepted}"))?;
        }
        // A zero (`--delay 0s`, `--loss 0`) is no impairment of that kind.
        for p in [&mut imp.delay_us, &mut imp.jitter_us] {
            if *p == Some(0) {
                *p = None;
            }
        }
        for p in [
            &mut imp.loss,
            &mut imp.corruption,
            &mut imp.duplication,
            &mut imp.reorder,
        ] {
            if *p == Some(0.0) {
                *p = None;
            }
        }
        if let Some(p) = imp.problem() {
            anyhow::bail!("{p}");
        }
        Ok(imp)
    }
}

#[derive(Subcommand)]
pub enum NetemOp {
    /// Set the impairments of one interface (all at once: what is not given is cleared)
    Set {
        #[command(flatten)]
        lab: super::LabRef,
        /// Node (short or long name)
        #[arg(short = 'n', long, required = true)]
        node: String,
        /// Interface (the Linux name or the one the topology writes)
        #[arg(short = 'i', long, required = true)]
        interface: String,
        #[command(flatten)]
        flags: NetemFlags,
    },
    /// Show the impairments of every link interface (of one node with -n)
    Show {
        #[command(flatten)]
        lab: super::LabRef,
        #[arg(short = 'n', long)]
        node: Option<String>,
        #[arg(short = 'f', long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
    /// Remove the impairments of one interface
    Reset {
        #[command(flatten)]
        lab: super::LabRef,
        #[arg(short = 'n', long, required = true)]
        node: String,
        #[arg(short = 'i', long, required = true)]
        interface: String,
    },
}

#[derive(Subcommand)]
pub enum LinkOp {
    /// Take the link of an endpoint down (both ends lose carrier)
    Down {
        #[command(flatten)]
        lab: super::LabRef,
        /// One end of the link, node:interface
        #[arg(long, required = true)]
        endpoint: String,
    },
    /// Bring the link of an endpoint back up
    Up {
        #[command(flatten)]
        lab: super::LabRef,
        #[arg(long, required = true)]
        endpoint: String,
    },
}

pub fn run(a: ToolsArgs) -> anyhow::Result<ExitCode> {
    match a.tool {
        Tool::Netem { op } => match op {
            NetemOp::Set {
                lab,
                node,
                interface,
                flags,
            } => netem_set(&lab.resolve()?, &node, &interface, &flags.impairment()?),
            NetemOp::Show { lab, node, format } => {
                netem_show(&lab.resolve()?, node.as_deref(), &format)
            }
            NetemOp::Reset {
                lab,
                node,
                interface,
            } => netem_set(&lab.resolve()?, &node, &interface, &Impairment::default()),
        },
        Tool::Link { op } => {
            let (lab, endpoint, up) = match op {
                LinkOp::Down { lab, endpoint } => (lab, endpoint, false),
                LinkOp::Up { lab, endpoint } => (lab, endpoint, true),
            };
            let name = lab.resolve()?;
            let (node, iface) = lab::linkops::parse_endpoint(&endpoint)?;
            let (ep, peer) = lab::linkops::set_link_state(&name, node, iface, up)?;
            let state = if up { "up" } else { "down" };
            match peer {
                Some(p) => println!("link {ep} -- {p} is {state}"),
                None => println!("link {ep} is {state}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Apply and report, as `tools netem set` does.
pub fn netem_set(lab: &str, node: &str, iface: &str, imp: &Impairment) -> anyhow::Result<ExitCode> {
    let ep = lab::linkops::set(lab, node, iface, imp)?;
    println!("{ep}: {}", imp.describe());
    Ok(ExitCode::SUCCESS)
}

/// The impairments of lab `lab` (one node's, or all), as a table or JSON keyed by node.
pub fn netem_show(lab: &str, node: Option<&str>, format: &str) -> anyhow::Result<ExitCode> {
    let rows = lab::linkops::show(lab, node)?;
    if format == "json" {
        let mut by_node = serde_json::Map::new();
        for (ep, imp) in &rows {
            let (n, iface) = ep.split_once(':').unwrap_or((ep, ""));
            let list = by_node
                .entry(n.to_string())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let serde_json::Value::Array(l) = list {
                l.push(serde_json::json!({
                    "interface": iface,
                    "delay": imp.delay_us.map(topology::impair::format_time),
                    "jitter": imp.jitter_us.map(topology::impair::format_time),
                    "loss": imp.loss,
                    "rate_kbit": imp.rate_kbit,
                    "corruption": imp.corruption,
                    "duplication": imp.duplication,
                    "reorder": imp.reorder,
                }));
            }
        }
        println!("{}", serde_json::to_string_pretty(&by_node)?);
        return Ok(ExitCode::SUCCESS);
    }
    let pct = |p: Option<f64>| p.map_or_else(|| "N/A".to_string(), |p| format!("{p:.2}%"));
    let mut table = vec![vec![
        "Endpoint".to_string(),
        "Delay".into(),
        "Jitter".into(),
        "Packet Loss".into(),
        "Rate (Kbit/s)".into(),
        "Corruption".into(),
        "Duplication".into(),
        "Reorder".into(),
    ]];
    for (ep, imp) in &rows {
        table.push(vec![
            ep.clone(),
            imp.delay_us
                .map_or_else(|| "N/A".into(), topology::impair::format_time),
            imp.jitter_us
                .map_or_else(|| "N/A".into(), topology::impair::format_time),
            pct(imp.loss),
            imp.rate_kbit
                .map_or_else(|| "N/A".into(), |r| r.to_string()),
            pct(imp.corruption),
            pct(imp.duplication),
            pct(imp.reorder),
        ]);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
