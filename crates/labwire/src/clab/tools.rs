//! `containerlab tools …`: ad-hoc wiring of running nodes (veth, vxlan), TX offload, and the
//! link impairments (`tools netem`, through labwire's own `tools netem`).
//!
//! Nodes are found by their registered network namespace (`/run/netns/<container name>`), which
//! labwire makes for every node of every runtime.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ToolsArgs {
    #[command(subcommand)]
    tool: Tool,
}

#[derive(Subcommand)]
enum Tool {
    /// veth operations
    Veth {
        #[command(subcommand)]
        op: VethOp,
    },
    /// VxLAN interface commands
    Vxlan {
        #[command(subcommand)]
        op: VxlanOp,
    },
    /// link impairment operations
    Netem {
        #[command(subcommand)]
        op: NetemOp,
    },
    /// disables tx checksum offload on eth0 interface of a container
    DisableTxOffload {
        /// container name to disable offload in
        #[arg(short = 'c', long, required = true)]
        container: String,
    },
}

#[derive(Subcommand)]
enum VethOp {
    /// Create a veth interface and attach its sides to the specified containers
    Create {
        /// veth endpoint A in the format of <container-name>:<interface-name> or host:<interface-name>
        #[arg(short = 'a', long = "a-endpoint", required = true)]
        a_endpoint: String,
        /// veth endpoint B
        #[arg(short = 'b', long = "b-endpoint", required = true)]
        b_endpoint: String,
        /// link mtu
        #[arg(short = 'm', long, default_value_t = 9500)]
        mtu: u32,
    },
}

#[derive(Subcommand)]
enum VxlanOp {
    /// create vxlan interface
    Create {
        /// VxLAN ID (VNI)
        #[arg(short = 'i', long, default_value_t = 10)]
        id: u32,
        /// remote VTEP IP address
        #[arg(long, required = true)]
        remote: IpAddr,
        /// parent (source) interface name for VxLAN
        #[arg(long)]
        dev: Option<String>,
        /// link to which 'attach' vxlan tunnel with tc redirect
        #[arg(short = 'l', long, required = true)]
        link: String,
        /// VxLAN MTU
        #[arg(short = 'm', long)]
        mtu: Option<u32>,
        /// VxLAN destination UDP port (alias of --dst-port)
        #[arg(long, conflicts_with = "dst_port")]
        port: Option<u16>,
        /// VxLAN destination UDP port
        #[arg(short = 'p', long, default_value_t = 14789)]
        dst_port: u16,
        /// VxLAN source UDP port (default: the kernel's range)
        #[arg(short = 's', long, default_value_t = 0)]
        src_port: u16,
    },
    /// delete vxlan interface
    Delete {
        /// delete all containerlab created VxLAN interfaces which start with this prefix
        #[arg(short = 'p', long, default_value = "vx-")]
        prefix: String,
        /// delete the VxLAN interface of this name
        #[arg(short = 'n', long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum NetemOp {
    /// set link impairments
    Set {
        /// node name (with -t/--name) or container name
        #[arg(short = 'n', long, required = true)]
        node: String,
        /// interface name or alias
        #[arg(short = 'i', long, required = true)]
        interface: String,
        #[command(flatten)]
        flags: crate::commands::tools::NetemFlags,
    },
    /// show link impairments for a node
    Show {
        #[arg(short = 'n', long, required = true)]
        node: String,
        #[arg(short = 'f', long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
    /// reset link impairments
    Reset {
        #[arg(short = 'n', long, required = true)]
        node: String,
        #[arg(short = 'i', long, required = true)]
        interface: String,
    },
}

/// The lab a `tools netem -n NODE` is about: the one `-t`/`--name` names, else the deployed lab
/// that has a node whose container (long) name is NODE.
fn netem_lab(g: &super::Global, node: &str) -> anyhow::Result<String> {
    if g.topo.is_some() || g.name.is_some() {
        return g.lab_name();
    }
    lab::linkops::lab_of_container(node)
        .ok_or_else(|| anyhow::anyhow!("no deployed lab has a node (container) named {node}; give -t or --name with a node name"))
}

pub fn run(g: &super::Global, a: ToolsArgs) -> anyhow::Result<ExitCode> {
    match a.tool {
        Tool::Veth {
            op:
                VethOp::Create {
                    a_endpoint,
                    b_endpoint,
                    mtu,
                },
        } => veth_create(&a_endpoint, &b_endpoint, mtu),
        Tool::Vxlan {
            op:
                VxlanOp::Create {
                    id,
                    remote,
                    dev,
                    link,
                    mtu,
                    port,
                    dst_port,
                    src_port,
                },
        } => {
            if src_port != 0 {
                bail!("--src-port is not supported by labwire yet (the kernel picks source ports)");
            }
            vxlan_create(
                id,
                remote,
                dev.as_deref(),
                &link,
                mtu,
                port.unwrap_or(dst_port),
            )
        }
        Tool::Vxlan {
            op: VxlanOp::Delete { prefix, name },
        } => vxlan_delete(&prefix, name.as_deref()),
        Tool::Netem { op } => {
            use crate::commands::tools::{netem_set, netem_show};
            match op {
                NetemOp::Set {
                    node,
                    interface,
                    flags,
                } => netem_set(
                    &netem_lab(g, &node)?,
                    &node,
                    &interface,
                    &flags.impairment()?,
                ),
                NetemOp::Show { node, format } => {
                    netem_show(&netem_lab(g, &node)?, Some(&node), &format)
                }
                NetemOp::Reset { node, interface } => netem_set(
                    &netem_lab(g, &node)?,
                    &node,
                    &interface,
                    &topology::Impairment::default(),
                ),
            }
        }
        Tool::DisableTxOffload { container } => disable_tx_offload(&container),
    }
}

/// A `<container>:<interface>` or `host:<interface>` endpoint: its namespace (None: the host) and
/// interface name.
fn endpoint(spec: &str) -> anyhow::Result<(Option<wire::NetNs>, String)> {
    let Some((node, iface)) = spec.split_once(':') else {
        bail!("endpoint `{spec}`: expected <container-name>:<interface-name> or host:<interface-name>");
    };
    if iface.is_empty() || iface.len() > 15 || iface.contains(['/', ':', ' ']) {
        bail!("endpoint `{spec}`: `{iface}` is not a valid interface name");
    }
    if node.starts_with("bridge") || node.starts_with("ovs-bridge") || iface.contains(':') {
        bail!("endpoint `{spec}`: bridge endpoints are not supported by labwire's tools veth yet");
    }
    if node == "host" {
        return Ok((None, iface.to_string()));
    }
    Ok((Some(node_netns(node)?), iface.to_string()))
}

/// The registered network namespace of a running node (its container name).
fn node_netns(node: &str) -> anyhow::Result<wire::NetNs> {
    topology::node::check_node_name(node)
        .map_err(|e| anyhow::anyhow!("container name `{node}`: {e}"))?;
    let path = Path::new(wire::netns::NETNS_RUN_DIR).join(node);
    wire::NetNs::open(&path).with_context(|| {
        format!(
            "container {node} not found (no network namespace {})",
            path.display()
        )
    })
}

fn veth_create(a: &str, b: &str, mtu: u32) -> anyhow::Result<ExitCode> {
    let (a_ns, a_if) = endpoint(a)?;
    let (b_ns, b_if) = endpoint(b)?;
    let mut h = wire::Handle::new().context("open netlink")?;
    let mut va = wire::VethEnd::new(&a_if);
    va.netns = a_ns.as_ref().map(|n| n.fd());
    va.mtu = Some(mtu);
    va.up = true;
    let mut vb = wire::VethEnd::new(&b_if);
    vb.netns = b_ns.as_ref().map(|n| n.fd());
    vb.mtu = Some(mtu);
    vb.up = true;
    h.add_veth(&va, &vb)
        .with_context(|| format!("create veth {a} -- {b}"))?;
    eprintln!("INFO veth interface successfully created a={a} b={b}");
    Ok(ExitCode::SUCCESS)
}

fn vxlan_create(
    vni: u32,
    remote: IpAddr,
    dev: Option<&str>,
    link: &str,
    mtu: Option<u32>,
    port: u16,
) -> anyhow::Result<ExitCode> {
    let mut h = wire::Handle::new().context("open netlink")?;
    let target = h
        .link(link)?
        .with_context(|| format!("link {link} not found in the host"))?;
    let parent = match dev {
        Some(d) => Some(
            h.link(d)?
                .with_context(|| format!("device {d} not found"))?
                .index,
        ),
        None => None,
    };
    let name: String = format!("vx-{link}").chars().take(15).collect();
    let v = wire::Vxlan {
        name: &name,
        vni,
        remote,
        local: None,
        dst_port: port,
        parent,
        mtu,
        mac: None,
        netns: None,
        up: true,
        learning: false,
    };
    h.add_vxlan(&v)
        .with_context(|| format!("create vxlan {name}"))?;
    let vx = h
        .link(&name)?
        .with_context(|| format!("vxlan {name} vanished"))?;
    if let Err(e) = h
        .set_up(target.index)
        .and_then(|_| h.stitch(vx.index, target.index))
    {
        let _ = h.delete_link(vx.index);
        return Err(anyhow::Error::new(e).context(format!("redirect {name} <-> {link}")));
    }
    eprintln!("INFO vxlan interface created link={name} vni={vni} remote={remote}");
    Ok(ExitCode::SUCCESS)
}

fn vxlan_delete(prefix: &str, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut h = wire::Handle::new().context("open netlink")?;
    let links = h.links()?;
    let doomed: Vec<&wire::Link> = links
        .iter()
        .filter(|l| l.kind.as_deref() == Some("vxlan"))
        .filter(|l| match name {
            Some(n) => l.name == n,
            None => l.name.starts_with(prefix),
        })
        .collect();
    for l in doomed {
        h.delete_link(l.index)
            .with_context(|| format!("delete {}", l.name))?;
        eprintln!("INFO Deleting VxLAN link link={}", l.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// `ethtool -K eth0 tx off` inside the container: the classic ETHTOOL_STXCSUM ioctl.
fn disable_tx_offload(container: &str) -> anyhow::Result<ExitCode> {
    let ns = node_netns(container)?;
    let done = ns
        .run_in(|| unix::disable_tx_checksum_offload("eth0"))
        .context("enter the container's network namespace")?;
    done.with_context(|| format!("disable tx checksum offload on eth0 of {container}"))?;
    eprintln!("INFO Tx checksum offload disabled for eth0 interface of {container} container");
    Ok(ExitCode::SUCCESS)
}
