//! `labwire image`: labwire's own image store — import, pull, list, inspect, remove.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Import a rootfs tarball (like `docker import`), a `docker save` archive, or an OCI layout
    Import {
        /// The file or OCI layout directory
        file: PathBuf,
        /// Name to give the image (required for a plain rootfs tarball)
        #[arg(long)]
        name: Option<String>,
    },
    /// Pull an image from a registry (Docker Hub, any OCI/Docker registry)
    Pull {
        /// The image, as Docker names it (`debian:12`, `quay.io/frr/frr:9`, `host:5000/repo@sha256:…`)
        reference: String,
        /// Allow a plain-HTTP registry and skip TLS certificate checks
        #[arg(long)]
        insecure: bool,
    },
    /// List images
    #[command(alias = "list")]
    Ls {
        #[arg(short, long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
    /// Show an image's configuration and layers as JSON
    Inspect { reference: String },
    /// Remove an image name (refused while a deployed lab uses the image)
    Rm { reference: String },
}

fn store() -> anyhow::Result<image::Store> {
    image::Store::open_default().context("open labwire's image store")
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

pub fn run(a: ImageArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        ImageCommand::Import { file, name } => {
            let img = store()?
                .import(&file, name.as_deref())
                .with_context(|| format!("import {}", file.display()))?;
            println!(
                "imported {} ({}, {} layer{})",
                img.names.join(", "),
                short(&img.id),
                img.layers.len(),
                if img.layers.len() == 1 { "" } else { "s" }
            );
        }
        ImageCommand::Pull {
            reference,
            insecure,
        } => {
            let opts = image::PullOptions {
                insecure,
                progress: true,
            };
            let report = image::pull_report(&store()?, &reference, &opts)
                .with_context(|| format!("pull {reference}"))?;
            let img = &report.image;
            println!(
                "pulled {} ({}, {} layer{}; {} blob{} fetched, {:.1}MB, {} already present)",
                report.name,
                short(&img.id),
                img.layers.len(),
                if img.layers.len() == 1 { "" } else { "s" },
                report.fetched.len(),
                if report.fetched.len() == 1 { "" } else { "s" },
                report.bytes as f64 / 1e6,
                report.present.len()
            );
        }
        ImageCommand::Ls { format } => {
            let images = store()?.list()?;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&images)?);
            } else {
                println!(
                    "{:<48} {:<12} {:>10} {:>10}",
                    "NAME", "ID", "SIZE", "UNPACKED"
                );
                for img in &images {
                    // Not known until the layers are unpacked (at import, or first use).
                    let unpacked = img
                        .unpacked
                        .map_or_else(|| "-".to_string(), |u| format!("{:.1}MB", u as f64 / 1e6));
                    for n in &img.names {
                        println!(
                            "{n:<48} {:<12} {:>8.1}MB {unpacked:>10}",
                            short(&img.id),
                            img.size as f64 / 1e6
                        );
                    }
                }
            }
        }
        ImageCommand::Inspect { reference } => match store()?.resolve(&reference)? {
            Some(img) => println!("{}", serde_json::to_string_pretty(&img)?),
            None => {
                bail!("no image `{reference}` in labwire's image store (see `labwire image ls`)")
            }
        },
        ImageCommand::Rm { reference } => {
            let st = store()?;
            let Some(img) = st.resolve(&reference)? else {
                bail!("no image `{reference}` in labwire's image store (see `labwire image ls`)");
            };
            let users = lab::images::labs_using(&img.id);
            if !users.is_empty() {
                bail!(
                    "image `{reference}` is used by deployed lab{} {}; destroy {} first",
                    if users.len() == 1 { "" } else { "s" },
                    users.join(", "),
                    if users.len() == 1 { "it" } else { "them" }
                );
            }
            for n in st.remove(&reference)? {
                println!("removed {n}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
