//! A real registry for the pull tests: Debian's `docker-registry` (CNCF distribution 2.8) serving
//! on a free 127.0.0.1 port with a temporary storage directory, killed when dropped, plus a client
//! that seeds it by speaking the registry API (blob uploads, manifest PUTs).
//!
//! Included by path from the pull test binaries (`#[path = "common/registry.rs"] mod registry;`).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common::*;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A running registry on 127.0.0.1; killed when dropped.
pub struct Registry {
    child: Child,
    pub port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
    pub agent: ureq::Agent,
    /// `Authorization` header value the seeding requests send, for a registry with auth.
    pub auth: Option<String>,
}

fn ensure_registry_installed() {
    if std::path::Path::new(REGISTRY_BIN).exists() {
        return;
    }
    let out = Command::new("apt-get")
        .args(["install", "-y", "docker-registry"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output();
    let ok = matches!(&out, Ok(o) if o.status.success());
    if !ok || !std::path::Path::new(REGISTRY_BIN).exists() {
        // The package list may be stale: update once and retry.
        let _ = Command::new("apt-get").arg("update").output();
        let out = Command::new("apt-get")
            .args(["install", "-y", "docker-registry"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
        assert!(
            std::path::Path::new(REGISTRY_BIN).exists(),
            "the pull tests need Debian's docker-registry package and could not install it \
             (apt-get install -y docker-registry): {}",
            match out {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            }
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// A registry with no authentication.
    pub fn start() -> Registry {
        Registry::start_with("")
    }

    /// A registry whose config ends with `extra` (YAML for top-level sections such as `auth`).
    pub fn start_with(extra: &str) -> Registry {
        ensure_registry_installed();
        let mut last_log = String::new();
        // A port found free may be taken before the registry binds it: try a few.
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("lwt-registry-")
                .tempdir_in("/tmp")
                .unwrap();
            let port = free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    \
                     rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                    dir.path().join("storage").display()
                ),
            )
            .unwrap();
            let log = dir.path().join("registry.log");
            let log_file = std::fs::File::create(&log).unwrap();
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {REGISTRY_BIN}: {e}"));
            let mut reg = Registry {
                child,
                port,
                log,
                dir,
                agent: ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .proxy(None)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .new_agent(),
                auth: None,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = reg.child.try_wait() {
                    break;
                }
                let answer = reg.agent.get(reg.url("/v2/")).call();
                if answer.is_ok_and(|r| matches!(r.status().as_u16(), 200 | 401)) {
                    return reg;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = reg.log_text();
        }
        panic!(
            "{REGISTRY_BIN} could not be started on a 127.0.0.1 port (3 tries, 20 s each); \
             its last log:\n{last_log}"
        );
    }

    /// The registry's temporary directory (config, storage, log).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many blob GETs the registry has served for `repo`, from its access log.
    pub fn blob_gets(&self, repo: &str) -> usize {
        let needle = format!("\"GET /v2/{repo}/blobs/");
        self.log_text().matches(&needle).count()
    }

    /// Upload a blob (monolithic: POST an upload, PUT its content with the digest).
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha(data);
        let mut req = self
            .agent
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let r = req.send_empty().unwrap();
        assert_eq!(r.status(), 202, "start blob upload to {repo}");
        let location = r
            .headers()
            .get("location")
            .expect("upload location")
            .to_str()
            .unwrap()
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let mut req = self
            .agent
            .put(format!("{location}{sep}digest={digest}"))
            .header("Content-Type", "application/octet-stream");
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let mut r = req.send(data).unwrap();
        assert_eq!(
            r.status(),
            201,
            "finish blob upload {digest}: {}",
            r.body_mut().read_to_string().unwrap_or_default()
        );
        digest
    }

    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        data: &[u8],
    ) -> String {
        let mut req = self
            .agent
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("Content-Type", media_type);
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let mut r = req.send(data).unwrap();
        assert_eq!(
            r.status(),
            201,
            "put manifest {repo}:{reference}: {}",
            r.body_mut().read_to_string().unwrap_or_default()
        );
        sha(data)
    }

    /// Push a one-layer image; returns (manifest digest, config digest, layer digest).
    pub fn push_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        files: &[(&str, &[u8])],
        compress: &str,
        arch: &str,
        docker_format: bool,
    ) -> (String, String, String) {
        let tar = tar_of(files);
        let (layer, layer_type) = match compress {
            "zstd" => (zstd(&tar), LAYER_ZSTD),
            _ if docker_format => (gzip(&tar), DOCKER_LAYER_GZIP),
            _ => (gzip(&tar), LAYER_GZIP),
        };
        let mut config: serde_json::Value =
            serde_json::from_slice(&config_json(&[sha(&tar)])).unwrap();
        config["architecture"] = arch.into();
        let config = serde_json::to_vec(&config).unwrap();
        let layer_digest = self.push_blob(repo, &layer);
        let config_digest = self.push_blob(repo, &config);
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&oci_manifest(&config, &[(layer_type, &layer)])).unwrap();
        let media_type = if docker_format {
            manifest["mediaType"] = MEDIA_DOCKER_MANIFEST.into();
            manifest["config"]["mediaType"] =
                "application/vnd.docker.container.image.v1+json".into();
            MEDIA_DOCKER_MANIFEST
        } else {
            MEDIA_OCI_MANIFEST
        };
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let digest = sha(&manifest);
        self.push_manifest(repo, tag.unwrap_or(&digest), media_type, &manifest);
        (digest, config_digest, layer_digest)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
