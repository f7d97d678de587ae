//! Nodes from images: resolving each node's image in labwire's store, unpacking its layers once,
//! and describing the node's overlay root for the native runtime.

use std::collections::HashMap;
use std::path::PathBuf;

use runtime::node::ImageRoot;
use topology::{Lab, Node};

use crate::error::{Error, Result};

/// Make sure an image is in the store, as `image-pull-policy` says: `never` only looks, `always`
/// pulls, the default (`IfNotPresent`) pulls when missing. Registries on loopback may be plain
/// HTTP. The error names the image and how to import it.
pub(crate) fn ensure_image(
    reference: &str,
    policy: Option<&str>,
) -> std::result::Result<(), String> {
    let store = image_store()?;
    let present = store
        .resolve(reference)
        .map_err(|e| format!("image `{reference}`: {e}"))?
        .is_some();
    let pull = match policy {
        Some("never") => false,
        Some("always") => true,
        _ => !present,
    };
    // Suggested commands carry the reference quoted for a shell: it comes from the topology.
    let quoted = crate::deploy::shell_quote(reference);
    if !pull {
        return if present {
            Ok(())
        } else {
            Err(format!(
                "image `{reference}` is not in labwire's image store (image-pull-policy: never); import it with `labwire image import FILE --name {quoted}`"
            ))
        };
    }
    let host = image::normalize_reference(reference);
    let loopback =
        host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
    let opts = image::PullOptions {
        insecure: loopback,
        progress: true,
    };
    match image::pull(&store, reference, &opts) {
        Ok(_) => Ok(()),
        Err(_) if present => Ok(()),
        Err(e) => Err(format!(
            "image `{reference}` is not in labwire's image store and pulling it failed ({e:#}); import it with `labwire image import FILE --name {quoted}` or pull it with `labwire image pull {quoted}`"
        )),
    }
}

pub(crate) fn image_store() -> std::result::Result<image::Store, String> {
    image::Store::open_default().map_err(|e| format!("open the image store: {e}"))
}

/// The overlay layers and run configuration of every node that names an image; layers are
/// unpacked here (once per layer, shared by all labs).
pub(crate) fn image_roots(
    lab: &Lab,
    state_dir: &std::path::Path,
) -> Result<HashMap<String, ImageRoot>> {
    let mut out = HashMap::new();
    let wanted: Vec<&Node> = lab
        .nodes
        .iter()
        .filter(|n| n.is_workload() && n.image.is_some())
        .collect();
    if wanted.is_empty() {
        return Ok(out);
    }
    let store = image::Store::open_default().map_err(|source| Error::Image {
        op: "open the image store".into(),
        source,
    })?;
    let mut cache: HashMap<String, (image::Image, Vec<PathBuf>)> = HashMap::new();
    for n in wanted {
        let reference = n.image.as_deref().unwrap_or_default();
        if !cache.contains_key(reference) {
            let img = store
                .resolve(reference)
                .map_err(|source| Error::Image {
                    op: format!("image `{reference}`"),
                    source,
                })?
                .ok_or_else(|| Error::NotInStore {
                    reference: reference.to_string(),
                })?;
            let layers = store.layer_dirs(&img).map_err(|source| Error::Image {
                op: format!("unpack image `{reference}`"),
                source,
            })?;
            cache.insert(reference.to_string(), (img, layers));
        }
        let (img, layers) = &cache[reference];
        let node_dir = state_dir.join("nodes").join(&n.name);
        out.insert(
            n.name.clone(),
            ImageRoot {
                id: img.id.clone(),
                layers: layers.clone(),
                upper: node_dir.join("upper"),
                work: node_dir.join("work"),
                entrypoint: img.config.entrypoint.clone(),
                cmd: img.config.cmd.clone(),
                env: img.config.env.clone(),
                working_dir: img.config.working_dir.clone(),
                user: img.config.user.clone(),
            },
        );
    }
    Ok(out)
}

/// Deployed labs with a node running from image `id` (as recorded when they were deployed).
pub fn labs_using(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for name in crate::state::recorded_labs() {
        let rec = crate::state::Recorded::read(&crate::paths::lab_state_dir(&name));
        let uses = crate::destroy::teardown(&rec.entries)
            .images
            .iter()
            .any(|used| used == id);
        if uses {
            out.push(name);
        }
    }
    out
}
