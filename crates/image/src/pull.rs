//! Pulling images from a registry (Docker Registry HTTP API v2, OCI distribution) into the store.
//!
//! A pull resolves the reference's manifest (following an image index or Docker manifest list to
//! the host's `linux/<arch>` entry), fetches the config and layer blobs the store does not hold yet
//! (so an interrupted pull resumes blob by blob), lets [`Store::put_blob`] check every digest, then
//! stores the manifest and names it. Layers are unpacked later, by [`Store::layer_dirs`].
//!
//! Authentication: every request goes out anonymously first; a `401` with a `Bearer` challenge
//! fetches a token from the realm it names (with the credentials of `~/.docker/config.json`, or
//! `$DOCKER_CONFIG/config.json`, when it has some for the registry) and retries, a `Basic`
//! challenge retries with those credentials. HTTPS by default; [`PullOptions::insecure`] skips
//! certificate checks and falls back to plain HTTP when HTTPS gets no answer.

use std::cell::RefCell;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ureq::http::Response;
use ureq::Body;

use crate::digest::{digest_hex, sha256_of};
use crate::error::{Error, Result};
use crate::oci::{
    host_architecture, ConfigFile, Descriptor, Index, Manifest, MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
};
use crate::reference::{is_valid_reference, normalize_reference};
use crate::store::{Image, Store, MAX_JSON};

const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Every manifest type a pull understands, for the `Accept` header.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest or index accepted from a registry.
const MAX_MANIFEST: u64 = 4 << 20;

/// How to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Allow plain HTTP (tried when HTTPS gets no answer) and skip TLS certificate checks.
    pub insecure: bool,
    /// Show a progress line per blob on stderr, when stderr is a terminal.
    pub progress: bool,
}

/// What a pull did, besides naming the image.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The image, as the store now names it.
    pub image: Image,
    /// The normalised name it was given.
    pub name: String,
    /// Blobs (config and layers) downloaded by this pull.
    pub fetched: Vec<String>,
    /// Blobs the store already held, so not downloaded.
    pub present: Vec<String>,
    /// Bytes downloaded for blobs.
    pub bytes: u64,
}

/// Pull `reference` (Docker-style: `debian:12`, `quay.io/frr/frr:9`, `127.0.0.1:5000/a/b@sha256:…`)
/// into `store`, and name it by its normalised reference.
pub fn pull(store: &Store, reference: &str, opts: &PullOptions) -> Result<Image> {
    pull_report(store, reference, opts).map(|r| r.image)
}

/// [`pull`], also telling which blobs were downloaded and which were already in the store.
pub fn pull_report(store: &Store, reference: &str, opts: &PullOptions) -> Result<PullReport> {
    let target = Target::parse(reference)?;
    let mut client = Client::new(&target, opts);
    let (raw, digest) = client.resolve_manifest(&target)?;
    let manifest: Manifest = serde_json::from_slice(&raw).map_err(|source| Error::Json {
        what: format!("manifest {digest} from registry {}", target.registry),
        source,
    })?;
    if manifest.layers.is_empty() {
        return Err(client.unusable(format!("manifest {digest} lists no layers")));
    }
    for layer in &manifest.layers {
        check_layer_media_type(&client, layer)?;
    }

    let mut report = PullReport {
        image: empty_image(),
        name: target.name.clone(),
        fetched: Vec::new(),
        present: Vec::new(),
        bytes: 0,
    };
    let show = opts.progress && io::stderr().is_terminal();
    let blobs = std::iter::once(&manifest.config).chain(&manifest.layers);
    for desc in blobs {
        digest_hex(&desc.digest)?;
        if store.has_blob(&desc.digest) {
            report.present.push(desc.digest.clone());
            continue;
        }
        report.bytes += client.fetch_blob(store, desc, show)?;
        report.fetched.push(desc.digest.clone());
    }

    // The config must describe exactly these layers, or the image could never be unpacked.
    let config_raw = store.read_blob(&manifest.config.digest)?;
    let config: ConfigFile = serde_json::from_slice(&config_raw).map_err(|source| Error::Json {
        what: format!("config {}", manifest.config.digest),
        source,
    })?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(client.unusable(format!(
            "config {} lists {} diff_ids for the {} layers of manifest {digest}",
            manifest.config.digest,
            config.rootfs.diff_ids.len(),
            manifest.layers.len()
        )));
    }

    store.put_blob(&digest, &mut &raw[..])?;
    report.image = store.tag_normalized(&target.name, &digest)?;
    Ok(report)
}

fn empty_image() -> Image {
    Image {
        id: String::new(),
        manifest: String::new(),
        names: Vec::new(),
        size: 0,
        unpacked: None,
        created: None,
        config: Default::default(),
        layers: Vec::new(),
        diff_ids: Vec::new(),
    }
}

/// Refuse layers the store cannot unpack (encrypted, or not a tar at all) before fetching any.
fn check_layer_media_type(client: &Client, layer: &Descriptor) -> Result<()> {
    let mt = layer.media_type.as_str();
    let ok = mt.is_empty()
        || matches!(
            mt,
            "application/vnd.oci.image.layer.v1.tar"
                | "application/vnd.oci.image.layer.v1.tar+gzip"
                | "application/vnd.oci.image.layer.v1.tar+zstd"
                | "application/vnd.oci.image.layer.nondistributable.v1.tar"
                | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
                | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
                | "application/vnd.docker.image.rootfs.diff.tar"
                | "application/vnd.docker.image.rootfs.diff.tar.gzip"
                | "application/vnd.docker.image.rootfs.diff.tar.zstd"
                | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        );
    if ok {
        Ok(())
    } else {
        Err(client.unusable(format!(
            "layer {} has media type {mt}, which labwire cannot unpack (tar, tar+gzip or tar+zstd)",
            layer.digest
        )))
    }
}

/// A parsed reference: where to ask, and what to call the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The registry as the reference names it (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The host (and port) the API is served on (`registry-1.docker.io` for `docker.io`).
    pub host: String,
    /// The repository (`library/debian`).
    pub repository: String,
    /// The tag or `sha256:` digest to fetch.
    pub reference: String,
    /// The normalised name to give the image.
    pub name: String,
}

impl Target {
    pub(crate) fn parse(reference: &str) -> Result<Target> {
        let bad = || Error::InvalidReference(reference.to_string());
        let r = reference.trim();
        if !is_valid_reference(r) {
            return Err(bad());
        }
        let name = normalize_reference(r);
        let (repo_tag, digest) = match name.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (name.as_str(), None),
        };
        if let Some(d) = digest {
            digest_hex(d)?;
        }
        let (registry, rest) = repo_tag.split_once('/').ok_or_else(bad)?;
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|c| !c.is_empty())
            && repository
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
        let tag_ok = tag.is_none_or(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
        if !repo_ok || !tag_ok || registry.is_empty() {
            return Err(bad());
        }
        let host = if registry == "docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            registry.to_string()
        };
        let reference = match (digest, tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        Ok(Target {
            registry: registry.to_string(),
            host,
            repository: repository.to_string(),
            reference,
            name,
        })
    }

    /// `repo:tag` or `repo@digest`, as error messages name what was asked for.
    fn display(&self, reference: &str) -> String {
        if reference.starts_with("sha256:") {
            format!("{}@{reference}", self.repository)
        } else {
            format!("{}:{reference}", self.repository)
        }
    }
}

/// Whether `host` (with an optional port) is this machine.
fn is_loopback(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    h == "localhost"
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A registry client for one repository: scheme, credentials and the current token.
struct Client {
    agent: ureq::Agent,
    registry: String,
    host: String,
    repository: String,
    insecure: bool,
    scheme: &'static str,
    /// Whether plain HTTP may still be tried (insecure, and HTTPS has not answered yet).
    may_fall_back: bool,
    /// The `Authorization` header value in use.
    auth: Option<String>,
    /// Base64 `user:password` for this registry, from the Docker config.
    credentials: Option<String>,
}

impl Client {
    fn new(target: &Target, opts: &PullOptions) -> Client {
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_resolve(Some(Duration::from_secs(30)))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .max_redirects(8)
            .user_agent(concat!("labwire/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&target.host) {
            // A proxy from the environment cannot reach this machine's loopback.
            cfg = cfg.proxy(None);
        }
        if opts.insecure {
            cfg = cfg.tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            );
        }
        Client {
            agent: cfg.build().new_agent(),
            registry: target.registry.clone(),
            host: target.host.clone(),
            repository: target.repository.clone(),
            insecure: opts.insecure,
            scheme: "https",
            may_fall_back: opts.insecure,
            auth: None,
            credentials: docker_credentials(&target.registry),
        }
    }

    fn unusable(&self, reason: String) -> Error {
        Error::Registry {
            registry: self.registry.clone(),
            reason,
        }
    }

    fn status_error(&self, status: u16, what: &str) -> Error {
        let hint = match status {
            401 | 403 if self.credentials.is_none() => {
                "; log in first (credentials are read from ~/.docker/config.json `auths`)"
            }
            401 | 403 => "; check the credentials in ~/.docker/config.json",
            404 if what.starts_with("manifest") => " (no such repository or tag)",
            _ => "",
        };
        Error::RegistryStatus {
            registry: self.registry.clone(),
            status,
            what: what.to_string(),
            hint: hint.to_string(),
        }
    }

    fn request_error(&self, what: &str, e: ureq::Error) -> Error {
        let plain_hint = if !self.insecure && is_loopback(&self.host) {
            " (a plain-HTTP registry needs --insecure)"
        } else {
            ""
        };
        Error::RegistryRequest {
            registry: self.registry.clone(),
            what: format!("{what}: no answer over {}{plain_hint}", self.scheme),
            source: Box::new(e),
        }
    }

    /// GET `path` on the registry, authenticating on a 401 and retrying once.
    fn get(&mut self, path: &str, accept: Option<&str>, what: &str) -> Result<Response<Body>> {
        let mut authenticated = false;
        loop {
            let url = format!("{}://{}{path}", self.scheme, self.host);
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(a) = &self.auth {
                req = req.header("Authorization", a);
            }
            let resp = match req.call() {
                Ok(r) => r,
                Err(e) if self.scheme == "https" && self.may_fall_back && is_transport(&e) => {
                    self.scheme = "http";
                    self.may_fall_back = false;
                    continue;
                }
                Err(e) => return Err(self.request_error(what, e)),
            };
            self.may_fall_back = false;
            if resp.status().as_u16() == 401 && !authenticated {
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                self.authenticate(&challenge, what)?;
                authenticated = true;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Answer a `WWW-Authenticate` challenge: set the `Authorization` header to use from now on.
    fn authenticate(&mut self, challenge: &str, what: &str) -> Result<()> {
        let (scheme, params) = parse_challenge(challenge);
        let param = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => match &self.credentials {
                Some(c) => {
                    self.auth = Some(format!("Basic {c}"));
                    Ok(())
                }
                None => Err(self.status_error(401, what)),
            },
            "bearer" => {
                let Some(realm) = param("realm") else {
                    return Err(self.unusable(format!(
                        "401 for {what} with a Bearer challenge naming no realm"
                    )));
                };
                let realm = realm.to_string();
                if !(realm.starts_with("https://")
                    || (realm.starts_with("http://") && (self.insecure || is_loopback(&self.host))))
                {
                    return Err(self.unusable(format!(
                        "token realm `{realm}` is not an https:// URL (plain HTTP needs --insecure)"
                    )));
                }
                let scope = param("scope")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let mut query = Vec::new();
                if let Some(service) = param("service") {
                    query.push(format!("service={}", url_encode(service)));
                }
                query.push(format!("scope={}", url_encode(&scope)));
                let sep = if realm.contains('?') { '&' } else { '?' };
                let url = format!("{realm}{sep}{}", query.join("&"));
                let token = self.fetch_token(&url, &realm, what)?;
                self.auth = Some(format!("Bearer {token}"));
                Ok(())
            }
            _ => Err(self.status_error(401, what)),
        }
    }

    fn fetch_token(&self, url: &str, realm: &str, what: &str) -> Result<String> {
        let token_what = format!("token for {what} from {realm}");
        let mut req = self.agent.get(url);
        if let Some(c) = &self.credentials {
            req = req.header("Authorization", format!("Basic {c}"));
        }
        let mut resp = req.call().map_err(|e| self.request_error(&token_what, e))?;
        if resp.status().as_u16() != 200 {
            return Err(self.status_error(resp.status().as_u16(), &token_what));
        }
        let raw = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| self.request_error(&token_what, e))?;
        let body: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|source| Error::Json {
                what: token_what.clone(),
                source,
            })?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| self.unusable(format!("{token_what}: the answer holds no token")))
    }

    /// Fetch the manifest `target` names, following an index to this host's platform. Returns
    /// the manifest's bytes and digest.
    fn resolve_manifest(&mut self, target: &Target) -> Result<(Vec<u8>, String)> {
        let mut reference = target.reference.clone();
        for _ in 0..3 {
            let what = format!("manifest {}", target.display(&reference));
            let path = format!("/v2/{}/manifests/{reference}", self.repository);
            let mut resp = self.get(&path, Some(MANIFEST_ACCEPT), &what)?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(self.status_error(status, &what));
            }
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .unwrap_or_default()
                .trim()
                .to_string();
            let raw = resp
                .body_mut()
                .with_config()
                .limit(MAX_MANIFEST)
                .read_to_vec()
                .map_err(|e| self.request_error(&what, e))?;
            let digest = sha256_of(&raw);
            if reference.starts_with("sha256:") && digest != reference {
                return Err(Error::DigestMismatch {
                    what: format!("{what} from registry {}", self.registry),
                    expected: reference,
                    actual: digest,
                });
            }
            let json: serde_json::Value =
                serde_json::from_slice(&raw).map_err(|source| Error::Json {
                    what: format!("{what} from registry {}", self.registry),
                    source,
                })?;
            let media_type = json
                .get("mediaType")
                .and_then(|m| m.as_str())
                .filter(|m| !m.is_empty())
                .unwrap_or(&content_type)
                .to_string();
            let is_index = media_type == MEDIA_OCI_INDEX
                || media_type == MEDIA_DOCKER_LIST
                || (json.get("manifests").is_some() && json.get("config").is_none());
            if is_index {
                let index: Index = serde_json::from_slice(&raw).map_err(|source| Error::Json {
                    what: format!("{what} from registry {}", self.registry),
                    source,
                })?;
                reference = self.pick_platform(&index, &what)?;
                continue;
            }
            let is_manifest = media_type == MEDIA_OCI_MANIFEST
                || media_type == MEDIA_DOCKER_MANIFEST
                || (json.get("config").is_some() && json.get("layers").is_some());
            if !is_manifest || json.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
                return Err(self.unusable(format!(
                    "{what} has media type `{media_type}`, which labwire cannot use (wanted an \
                     OCI or Docker schema 2 manifest, or an index of them)"
                )));
            }
            return Ok((raw, digest));
        }
        Err(self.unusable(format!(
            "manifest {} nests image indexes too deeply",
            target.display(&target.reference)
        )))
    }

    /// The digest of the `linux/<host arch>` entry of an index.
    fn pick_platform(&self, index: &Index, what: &str) -> Result<String> {
        let arch = host_architecture();
        let fits = |d: &&Descriptor| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        };
        // Prefer the plain variant for arm64 (v8), else take the first that fits.
        let pick = index
            .manifests
            .iter()
            .filter(fits)
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.variant.as_deref().is_none_or(|v| v == "v8"))
            })
            .or_else(|| index.manifests.iter().find(fits));
        match pick {
            Some(d) => {
                digest_hex(&d.digest)?;
                Ok(d.digest.clone())
            }
            None => {
                let available: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref())
                    .map(|p| match &p.variant {
                        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                        None => format!("{}/{}", p.os, p.architecture),
                    })
                    .collect();
                Err(self.unusable(format!(
                    "{what} has no linux/{arch} image (it has: {})",
                    if available.is_empty() {
                        "no platforms listed".to_string()
                    } else {
                        available.join(", ")
                    }
                )))
            }
        }
    }

    /// Download one blob into the store (which checks its digest). Returns the bytes read.
    fn fetch_blob(&mut self, store: &Store, desc: &Descriptor, show: bool) -> Result<u64> {
        let what = format!("blob {} of {}", desc.digest, self.repository);
        let path = format!("/v2/{}/blobs/{}", self.repository, desc.digest);
        let resp = self.get(&path, None, &what)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(self.status_error(status, &what));
        }
        let total = if desc.size > 0 {
            desc.size
        } else {
            resp.body().content_length().unwrap_or(0)
        };
        let body = resp.into_body().into_reader();
        // A server sending more than the descriptor says is cut off (and the digest then fails).
        let limit = if desc.size > 0 { desc.size } else { u64::MAX };
        let failure = Rc::new(RefCell::new(None));
        let mut reader = BlobReader {
            inner: body.take(limit),
            failure: failure.clone(),
            progress: show.then(|| Progress::new(&desc.digest, total)),
            done: 0,
        };
        let result = store.put_blob(&desc.digest, &mut reader);
        if let Some(p) = &mut reader.progress {
            p.finish(reader.done, result.is_ok());
        }
        let done = reader.done;
        if let Some(e) = failure.borrow_mut().take() {
            // The download broke, not the store: say so.
            return Err(Error::RegistryRequest {
                registry: self.registry.clone(),
                what: format!("reading {what} (after {done} bytes)"),
                source: Box::new(e),
            });
        }
        result?;
        Ok(done)
    }
}

/// Whether a ureq error means no HTTP answer came at all (so plain HTTP may be worth a try).
fn is_transport(e: &ureq::Error) -> bool {
    !matches!(
        e,
        ureq::Error::StatusCode(_) | ureq::Error::BadUri(_) | ureq::Error::Http(_)
    )
}

/// Reads a blob's body, counting bytes, keeping the first read error, and updating progress.
struct BlobReader<R> {
    inner: R,
    failure: Rc<RefCell<Option<io::Error>>>,
    progress: Option<Progress>,
    done: u64,
}

impl<R: Read> Read for BlobReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.done += n as u64;
                if let Some(p) = &mut self.progress {
                    p.update(self.done);
                }
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.failure.borrow_mut().get_or_insert(copy);
                Err(e)
            }
        }
    }
}

/// One line on stderr per blob: `sha256:0123456789ab  12.3 MB / 45.6 MB`, redrawn at most ten
/// times a second.
struct Progress {
    label: String,
    total: u64,
    last: Option<Instant>,
}

impl Progress {
    fn new(digest: &str, total: u64) -> Progress {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        Progress {
            label: hex[..hex.len().min(12)].to_string(),
            total,
            last: None,
        }
    }

    fn line(&self, done: u64) -> String {
        if self.total > 0 {
            format!(
                "{}  {} / {} ({:.0}%)",
                self.label,
                human(done),
                human(self.total),
                done as f64 * 100.0 / self.total as f64
            )
        } else {
            format!("{}  {}", self.label, human(done))
        }
    }

    fn update(&mut self, done: u64) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{}", self.line(done));
        let _ = err.flush();
    }

    fn finish(&mut self, done: u64, ok: bool) {
        let mut err = io::stderr().lock();
        let state = if ok { "done" } else { "failed" };
        let _ = writeln!(err, "\r\x1b[K{}  {state}", self.line(done));
    }
}

fn human(n: u64) -> String {
    if n >= 1 << 30 {
        format!("{:.2} GB", n as f64 / (1u64 << 30) as f64)
    } else if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} kB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// Split `Bearer realm="…",service="…",scope="…"` into the scheme and its parameters.
pub(crate) fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, mut rest) = match header.split_once(char::is_whitespace) {
        Some((s, r)) => (s.to_string(), r.trim_start()),
        None => (header.to_string(), ""),
    };
    let mut params = Vec::new();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((key, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme, params)
}

/// Percent-encode a query parameter value.
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Docker config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty())?;
    Some(PathBuf::from(home).join(".docker/config.json"))
}

/// Base64 `user:password` for `registry` from the Docker config's `auths`, if it has some.
fn docker_credentials(registry: &str) -> Option<String> {
    let path = docker_config_path()?;
    let file = std::fs::File::open(path).ok()?;
    let mut data = Vec::new();
    file.take(MAX_JSON).read_to_end(&mut data).ok()?;
    credentials_from_config(&data, registry)
}

pub(crate) fn credentials_from_config(data: &[u8], registry: &str) -> Option<String> {
    let config: serde_json::Value = serde_json::from_slice(data).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let canon = |host: &str| -> String {
        let host = host
            .strip_prefix("https://")
            .or_else(|| host.strip_prefix("http://"))
            .unwrap_or(host);
        let host = host.split('/').next().unwrap_or_default();
        match host {
            "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
                "docker.io".to_string()
            }
            h => h.to_string(),
        }
    };
    let want = canon(registry);
    let engine = base64::engine::general_purpose::STANDARD;
    auths
        .iter()
        .filter(|(key, _)| canon(key) == want)
        .find_map(|(_, entry)| {
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
                let auth = auth.trim();
                let decoded = engine.decode(auth).ok()?;
                if decoded.contains(&b':') {
                    return Some(auth.to_string());
                }
            }
            let user = entry.get("username")?.as_str()?;
            let pass = entry.get("password")?.as_str()?;
            Some(engine.encode(format!("{user}:{pass}")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_split() {
        let t = Target::parse("debian").unwrap();
        assert_eq!(t.registry, "docker.io");
        assert_eq!(t.host, "registry-1.docker.io");
        assert_eq!(t.repository, "library/debian");
        assert_eq!(t.reference, "latest");
        assert_eq!(t.name, "docker.io/library/debian:latest");

        let t = Target::parse("127.0.0.1:5000/lwt/foo:1").unwrap();
        assert_eq!(t.registry, "127.0.0.1:5000");
        assert_eq!(t.host, "127.0.0.1:5000");
        assert_eq!(t.repository, "lwt/foo");
        assert_eq!(t.reference, "1");

        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let t = Target::parse(&format!("quay.io/frr/frr:9@{d}")).unwrap();
        assert_eq!(t.host, "quay.io");
        assert_eq!(t.repository, "frr/frr");
        assert_eq!(t.reference, d);
        assert_eq!(t.name, format!("quay.io/frr/frr:9@{d}"));

        assert!(Target::parse("a@sha256:short").is_err());
        assert!(Target::parse("localhost/a b").is_err());
        assert!(Target::parse("").is_err());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry-1.docker.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn challenges_are_parsed() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull,push""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                ("scope".into(), "repository:library/debian:pull,push".into()),
            ]
        );
        let (s, p) = parse_challenge(r#"Basic realm="basic-realm""#);
        assert_eq!(s, "Basic");
        assert_eq!(p, vec![("realm".into(), "basic-realm".into())]);
        let (s, p) = parse_challenge("Bearer realm=https://x/t, service=x");
        assert_eq!(s, "Bearer");
        assert_eq!(p[0].1, "https://x/t");
        assert_eq!(p[1], ("service".into(), "x".into()));
    }

    #[test]
    fn docker_config_credentials() {
        let cfg = br#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
            "127.0.0.1:5000": {"username": "a", "password": "b"},
            "quay.io": {"auth": ""}
        }}"#;
        assert_eq!(
            credentials_from_config(cfg, "docker.io").as_deref(),
            Some("dXNlcjpwYXNz")
        );
        assert_eq!(
            credentials_from_config(cfg, "127.0.0.1:5000").as_deref(),
            Some("YTpi")
        );
        assert_eq!(credentials_from_config(cfg, "quay.io"), None);
        assert_eq!(credentials_from_config(cfg, "ghcr.io"), None);
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            url_encode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
