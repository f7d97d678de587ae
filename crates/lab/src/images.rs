//! Nodes from images (waiting for the image store): every image is reported as unavailable.

use std::collections::HashMap;

use runtime::native;
use topology::Lab;

use crate::error::{Error, Result};

pub(crate) struct NoStore;

impl NoStore {
    pub(crate) fn resolve(&self, _r: &str) -> std::result::Result<Option<()>, String> {
        Err("labwire's image store is not available in this build".into())
    }
}

pub(crate) fn image_store() -> std::result::Result<NoStore, String> {
    Ok(NoStore)
}

pub(crate) fn image_roots(
    lab: &Lab,
    _state_dir: &std::path::Path,
) -> Result<HashMap<String, native::ImageRoot>> {
    if lab
        .nodes
        .iter()
        .any(|n| n.is_workload() && n.image.is_some())
    {
        return Err(Error::Invalid(
            "the image store is not available in this build".into(),
        ));
    }
    Ok(HashMap::new())
}
