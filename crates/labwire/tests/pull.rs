//! End-to-end tests of images pulled from a real registry: Debian's `docker-registry` (CNCF
//! distribution) serving plain HTTP on a free 127.0.0.1 port, seeded by this test over the registry
//! API (blob uploads, a manifest PUT) with a busybox image whose Cmd is `sleep 1000`. Then:
//! `labwire image pull --insecure` and `image ls`; a deploy with an empty image store that pulls
//! the image itself (loopback registries may be plain HTTP), runs it, and destroys cleanly; and
//! `image-pull-policy: never` refused before anything is touched. Nothing but 127.0.0.1 is
//! contacted.
//!
//! Every test has its own registry, temp directory and image store (`LABWIRE_IMAGE_DIR`); the labs
//! are `lwt-p…` on their own management networks (bridges `lwtm-p…`, 10.25x.0.0/24,
//! fd00:25x::/64). They run as root and need /usr/bin/docker-registry (scripts/test installs it)
//! and /bin/busybox (busybox-static). Run `cargo build` (same profile and target directory) first:
//! labwire-init must sit next to the labwire binary.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::store::*;
use common::*;
use serde_json::{json, Value};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The repository and tag the image is pushed as (under `127.0.0.1:PORT/`).
const REPO: &str = "lwt/bb";
const TAG: &str = "1";

// ---------------------------------------------------------------------------------------------
// A registry on 127.0.0.1
// ---------------------------------------------------------------------------------------------

/// A running `docker-registry` on 127.0.0.1 with its storage, config and log in `dir`; killed
/// and its directory removed when dropped.
struct Registry {
    child: Child,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
    agent: ureq::Agent,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free 127.0.0.1 port")
        .local_addr()
        .expect("local address")
        .port()
}

impl Registry {
    /// Start one in `/tmp/lwt-preg-<test>-<pid>`; fails when the registry is not installed or does
    /// not answer `/v2/` within 20 s (three ports tried).
    fn start(test: &str) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: the pull tests need Debian's docker-registry package \
             (apt-get install -y docker-registry; scripts/test installs it)"
        );
        let dir = PathBuf::from(format!("/tmp/lwt-preg-{test}-{}", std::process::id()));
        let mut last_log = String::new();
        // A port found free may be taken before the registry binds it: try a few.
        for _ in 0..3 {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create the registry directory");
            let port = free_port();
            let config = dir.join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    \
                     rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                    dir.join("storage").display()
                ),
            )
            .expect("write the registry config");
            let log = dir.join("registry.log");
            let log_file = std::fs::File::create(&log).expect("create the registry log");
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone the log file"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {REGISTRY_BIN}: {e}"));
            let mut reg = Registry {
                child,
                port,
                dir: dir.clone(),
                log,
                agent: ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .proxy(None)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .new_agent(),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = reg.child.try_wait() {
                    break;
                }
                let answer = reg.agent.get(reg.url("/v2/")).call();
                if answer.is_ok_and(|r| r.status() == 200) {
                    return reg;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = reg.log_text();
            // Dropping `reg` kills it and removes the directory; the next try starts afresh.
        }
        panic!(
            "{REGISTRY_BIN} could not be started on a 127.0.0.1 port (3 tries, 20 s each); \
             its last log:\n{last_log}"
        );
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `127.0.0.1:PORT/lwt/bb:1`
    fn reference(&self) -> String {
        format!("{}/{REPO}:{TAG}", self.host())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many requests of `method` on `/v2/<repo>/<what>/` the registry has logged.
    fn requests(&self, method: &str, what: &str) -> usize {
        let needle = format!("\"{method} /v2/{REPO}/{what}/");
        self.log_text().matches(&needle).count()
    }

    /// Upload a blob (POST an upload, PUT its content with the digest); its digest.
    fn push_blob(&self, data: &[u8]) -> String {
        let digest = format!("sha256:{}", sha256_hex(data));
        let r = self
            .agent
            .post(self.url(&format!("/v2/{REPO}/blobs/uploads/")))
            .send_empty()
            .expect("start a blob upload");
        assert_eq!(r.status(), 202, "start a blob upload to {REPO}");
        let location = r
            .headers()
            .get("location")
            .expect("the upload has a location")
            .to_str()
            .expect("the location is text")
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let mut r = self
            .agent
            .put(format!("{location}{sep}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .send(data)
            .expect("upload a blob");
        assert_eq!(
            r.status(),
            201,
            "finish the upload of {digest}: {}",
            r.body_mut().read_to_string().unwrap_or_default()
        );
        digest
    }

    /// Push the busybox image (one gzip layer, OCI manifest, Cmd `sleep 1000`) as `lwt/bb:1`,
    /// built in `scratch`; its manifest digest.
    fn push_busybox(&self, scratch: &Path) -> String {
        let root = scratch.join("rootfs");
        busybox_rootfs(&root, "pull");
        let tar = scratch.join("rootfs.tar");
        tar_dir(&root, &tar);
        let mut c = Command::new("gzip");
        c.args(["-n", "-c"]).arg(&tar);
        let layer = run_ok(c).stdout;
        let diff_id = format!(
            "sha256:{}",
            sha256_hex(&std::fs::read(&tar).expect("read the layer tar"))
        );
        let config = serde_json::to_vec(&json!({
            "architecture": host_arch(),
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["sleep", "1000"],
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .expect("serialise the config");
        let layer_digest = self.push_blob(&layer);
        let config_digest = self.push_blob(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": LAYER_GZIP, "digest": layer_digest, "size": layer.len()}],
        }))
        .expect("serialise the manifest");
        let mut r = self
            .agent
            .put(self.url(&format!("/v2/{REPO}/manifests/{TAG}")))
            .header("Content-Type", MEDIA_OCI_MANIFEST)
            .send(&manifest[..])
            .expect("put the manifest");
        assert_eq!(
            r.status(),
            201,
            "put manifest {REPO}:{TAG}: {}",
            r.body_mut().read_to_string().unwrap_or_default()
        );
        format!("sha256:{}", sha256_hex(&manifest))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Labs and labwire image commands
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// 1. `labwire image pull --insecure`, then `image ls` lists it
// ---------------------------------------------------------------------------------------------

#[test]
fn image_pull_from_loopback_registry_is_listed() {
    let lab = store_lab("pull-cli", "lwt-p1", 251, &[], "  nodes: {}\n");
    let reg = Registry::start("pull-cli");
    let manifest = reg.push_busybox(&lab.dir);
    let reference = reg.reference();
    assert!(image_list(&lab).is_empty(), "the test's store is not empty");

    // Without --insecure a plain-HTTP registry is refused, and the error says what to do.
    let out = image_cmd(&lab, &["pull", &reference]);
    assert!(
        !out.status.success(),
        "pull from a plain-HTTP registry without --insecure succeeded: {}",
        describe(&out)
    );
    assert!(
        text(&out.stderr).contains("--insecure"),
        "the refusal does not mention --insecure: {}",
        describe(&out)
    );
    assert!(
        image_list(&lab).is_empty(),
        "a refused pull stored an image"
    );

    let out = image_ok(&lab, &["pull", &reference, "--insecure"]);
    assert!(
        text(&out.stdout).contains("pulled"),
        "pull printed {}",
        describe(&out)
    );
    assert_eq!(
        reg.requests("GET", "blobs"),
        2,
        "the pull fetched the config and the layer once each:\n{}",
        reg.log_text()
    );

    let images = image_list(&lab);
    let img = listed(&images, &reference)
        .unwrap_or_else(|| panic!("image ls does not list {reference}: {images:#?}"));
    assert_eq!(img["manifest"], manifest.as_str(), "{img}");
    assert_eq!(img["layers"].as_array().map(Vec::len), Some(1), "{img}");
    let out = image_ok(&lab, &["inspect", &reference]);
    let ins: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("image inspect printed no JSON ({e}): {}", describe(&out)));
    assert_eq!(ins["config"]["cmd"], json!(["sleep", "1000"]), "{ins}");
}

// ---------------------------------------------------------------------------------------------
// 2. A deploy with an empty store pulls the image itself; the nodes run it; destroy cleans up
// ---------------------------------------------------------------------------------------------

#[test]
fn deploy_pulls_missing_image_and_runs_it() {
    let reg = Registry::start("pull-deploy");
    let reference = reg.reference();
    let body = format!(
        "  nodes:\n\
         \x20   a: {{kind: linux, image: \"{reference}\"}}\n\
         \x20   b: {{kind: linux, image: \"{reference}\"}}\n\
         \x20 links:\n\
         \x20   - endpoints: [\"a:eth1\", \"b:eth1\"]\n\
         \x20     ipv4: [10.252.9.1/24, 10.252.9.2/24]\n"
    );
    let lab = store_lab("pull-deploy", "lwt-p2", 252, &["a", "b"], &body);
    let manifest = reg.push_busybox(&lab.dir);
    assert!(image_list(&lab).is_empty(), "the test's store is not empty");

    lab.deploy();
    // Pulled once for both nodes.
    assert_eq!(
        reg.requests("GET", "blobs"),
        2,
        "deploy fetched the config and the layer once each:\n{}",
        reg.log_text()
    );
    let images = image_list(&lab);
    let img = listed(&images, &reference)
        .unwrap_or_else(|| panic!("deploy did not store {reference}: {images:#?}"));
    assert_eq!(img["manifest"], manifest.as_str(), "{img}");

    // The nodes run the image and talk over their link.
    lab.assert_ping("a", "10.252.9.2");
    lab.assert_ping("b", "10.252.9.1");
    assert!(lab
        .exec_ok("a", "cat /etc/passwd")
        .starts_with("root:x:0:0:"));
    // The image's Cmd runs in each node.
    for node in ["a", "b"] {
        let r = poll(Duration::from_secs(5), || {
            let ps = lab.exec_ok(node, "ps -o args");
            if ps.lines().any(|l| l.trim() == "sleep 1000") {
                Ok(())
            } else {
                Err(ps)
            }
        });
        if let Err(ps) = r {
            panic!(
                "lab {}: node {node} does not run the image's Cmd `sleep 1000`; ps:\n{ps}",
                lab.name
            );
        }
    }

    destroy_and_check(&lab);
    // The pulled image stays.
    assert!(
        listed(&image_list(&lab), &reference).is_some(),
        "destroy removed the pulled image"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. image-pull-policy: never with an empty store is refused before anything is touched
// ---------------------------------------------------------------------------------------------

#[test]
fn pull_policy_never_refuses_a_missing_image() {
    let reg = Registry::start("pull-never");
    let reference = reg.reference();
    let body = format!(
        "  nodes:\n\
         \x20   a: {{kind: linux, image: \"{reference}\", image-pull-policy: never}}\n\
         \x20   b: {{kind: linux, image: \"{reference}\", image-pull-policy: never}}\n"
    );
    let lab = store_lab("pull-never", "lwt-p3", 253, &["a", "b"], &body);
    reg.push_busybox(&lab.dir);

    let out = lab.try_deploy();
    assert!(
        !out.status.success(),
        "deploy with image-pull-policy: never and an empty store succeeded: {}",
        describe(&out)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains(&reference),
        "the error does not name the image: {err}"
    );
    assert!(
        err.contains("labwire image import"),
        "the error does not name the import command: {err}"
    );
    assert_eq!(
        reg.requests("GET", "manifests") + reg.requests("HEAD", "manifests"),
        0,
        "image-pull-policy: never contacted the registry:\n{}",
        reg.log_text()
    );
    assert!(image_list(&lab).is_empty(), "a refused deploy pulled");
    assert!(
        !lab.state_dir().exists(),
        "a refused deploy created {}",
        lab.state_dir().display()
    );
    assert!(
        !lab.lab_dir().exists(),
        "a refused deploy created {}",
        lab.lab_dir().display()
    );
    let left = leftovers_in(
        &lab.state_root(),
        &lab.name,
        &lab.expected_host_objects().into_iter().collect(),
    );
    assert!(left.is_empty(), "a refused deploy left {left:#?}");
}
