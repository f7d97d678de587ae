//! The open-nos image (Debian + FRR, images/open-nos), built once into its own store (and the
//! Docker engine) and reused while its recipe is unchanged; the BGP check of the cldemo2 tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

pub use super::vm::{debian_kernel, KERNEL_DIR};

pub const IMAGE: &str = "open-nos:latest";
pub const IMAGE_DIR: &str = "/var/tmp/lwt-c2-images";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the image is built from; a change rebuilds it.
/// Copy `files` (paths under the repository's `example`) into `into`, keeping their paths.
pub fn copy_example(example: &str, files: &[&str], into: &Path) {
    let src = repo_root().join(example);
    for f in files {
        let to = into.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(f), &to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.join(f).display(), to.display()));
    }
}

pub fn recipe_stamp(dir: &Path) -> String {
    let mut s = String::new();
    for f in ["suite", "sources", "packages", "customize.sh", "build.sh"] {
        let t = std::fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(f).display()));
        s.push_str(&format!("--- {f}\n{t}"));
    }
    s
}

/// open-nos:latest in IMAGE_DIR (and, with `docker`, in the Docker engine): reused when present
/// and built from the same recipe, else built with images/open-nos/build.sh (`--docker`: also
/// `docker import`). Returns the seconds the build took (None when reused).
/// Tests of this file build the image once, one at a time.
static IMAGE_BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn ensure_image() -> Option<f64> {
    ensure_image_for(false)
}

pub fn ensure_image_for(docker: bool) -> Option<f64> {
    let _one_at_a_time = IMAGE_BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let recipe = repo_root().join("images/open-nos");
    let stamp_path = Path::new(IMAGE_DIR).join("open-nos.recipe");
    let docker_stamp_path = Path::new(IMAGE_DIR).join("open-nos.docker.recipe");
    let stamp = recipe_stamp(&recipe);
    let mut inspect = labwire();
    inspect
        .env("LABWIRE_IMAGE_DIR", IMAGE_DIR)
        .args(["image", "inspect", IMAGE]);
    let present = run_timeout(inspect, Duration::from_secs(60))
        .status
        .success();
    let same = std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp);
    let docker_ready = !docker
        || (docker_cmd(&["image", "inspect", IMAGE]).status.success()
            && std::fs::read_to_string(&docker_stamp_path).is_ok_and(|s| s == stamp));
    if present && same && docker_ready && std::env::var_os("LWT_C2_REBUILD").is_none() {
        let also = if docker { " and the Docker engine" } else { "" };
        eprintln!("open-nos: image {IMAGE} reused from {IMAGE_DIR}{also}");
        return None;
    }
    let t = Instant::now();
    let mut build = Command::new("bash");
    build.arg(recipe.join("build.sh"));
    if docker {
        build.arg("--docker");
    }
    build
        .arg(IMAGE)
        .env("LABWIRE", labwire_bin())
        .env("LABWIRE_INIT", init_bin())
        .env("LABWIRE_IMAGE_DIR", IMAGE_DIR)
        .env_remove("OPEN_NOS_TAR")
        .stdin(std::process::Stdio::null());
    let out = run_timeout(build, Duration::from_secs(900));
    assert!(
        out.status.success(),
        "images/open-nos/build.sh failed: {}",
        describe(&out)
    );
    eprint!("{}", text(&out.stdout));
    std::fs::write(&stamp_path, &stamp)
        .unwrap_or_else(|e| panic!("write {}: {e}", stamp_path.display()));
    if docker {
        std::fs::write(&docker_stamp_path, &stamp)
            .unwrap_or_else(|e| panic!("write {}: {e}", docker_stamp_path.display()));
    }
    Some(t.elapsed().as_secs_f64())
}

/// Ok when `show bgp summary json` (`out`) of `leaf` has both sessions (swp49, swp50)
/// Established in IPv4 unicast and EVPN.
pub fn sessions_established_in(leaf: &str, out: &std::process::Output) -> Result<(), String> {
    if !out.status.success() {
        return Err(format!("{leaf}: {}", describe(out)));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{leaf}: no JSON yet ({e}): {}", text(&out.stdout)))?;
    let mut problems = Vec::new();
    for af in ["ipv4Unicast", "l2VpnEvpn"] {
        for peer in ["swp49", "swp50"] {
            let state = v[af]["peers"][peer]["state"].as_str().unwrap_or("absent");
            if state != "Established" {
                problems.push(format!("{leaf} {af} {peer}: {state}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

pub fn docker_cmd(args: &[&str]) -> std::process::Output {
    let mut c = Command::new("docker");
    c.args(args).stdin(std::process::Stdio::null());
    run_timeout(c, Duration::from_secs(60))
}
