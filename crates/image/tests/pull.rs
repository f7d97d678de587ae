//! Pulling from a real registry: Debian's `docker-registry` (CNCF distribution) serving on a free
//! 127.0.0.1 port with a temporary storage directory, seeded by speaking the registry API from the
//! test (blob uploads, then manifest PUTs). Nothing but 127.0.0.1 is ever contacted.
//!
//! The registry is installed with `apt-get install -y docker-registry` when /usr/bin/docker-registry
//! is missing; if it cannot be installed or started the tests fail, saying so.

mod common;
#[path = "common/registry.rs"]
mod registry;

use std::io::Read;
use std::path::PathBuf;

use common::*;
use registry::*;

fn insecure() -> image::PullOptions {
    image::PullOptions {
        insecure: true,
        progress: false,
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn other_arch() -> &'static str {
    if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    }
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn pull_gzip_image_then_again_without_refetching() {
    let t = TestDir::new();
    let reg = Registry::start();
    let (manifest, config, layer) = reg.push_image(
        "lwt/base",
        Some("1"),
        &[
            ("etc/os-release", b"ID=lwt\n"),
            ("usr/bin/hello", b"#!/bin/sh\necho hi\n"),
        ],
        "gzip",
        host_arch(),
        false,
    );
    let store = t.store();
    let reference = format!("{}/lwt/base:1", reg.host());
    let report = image::pull_report(&store, &reference, &insecure()).unwrap();
    let img = &report.image;
    assert_eq!(img.manifest, manifest);
    assert_eq!(img.id, config);
    assert_eq!(img.layers, vec![layer.clone()]);
    assert_eq!(img.names, vec![reference.clone()]);
    assert_eq!(img.config.entrypoint, vec!["/usr/lib/frr/docker-start"]);
    assert_eq!(img.config.working_dir.as_deref(), Some("/etc/frr"));
    assert_eq!(report.fetched, vec![config.clone(), layer.clone()]);
    assert!(report.present.is_empty());
    assert!(report.bytes > 0);
    assert_eq!(reg.blob_gets("lwt/base"), 2, "{}", reg.log_text());

    // The store resolves it by name and by digest, and its layer unpacks.
    let found = store
        .resolve(&reference)
        .unwrap()
        .expect("resolves by name");
    assert_eq!(found.manifest, manifest);
    let dirs = store.layer_dirs(&found).unwrap();
    assert_eq!(dirs.len(), 1);
    assert_eq!(read(dirs[0].join("etc/os-release")), "ID=lwt\n");
    assert_eq!(read(dirs[0].join("usr/bin/hello")), "#!/bin/sh\necho hi\n");

    // A second pull fetches no blob: the registry serves only the manifest again.
    let again = image::pull_report(&store, &reference, &insecure()).unwrap();
    assert!(again.fetched.is_empty(), "refetched {:?}", again.fetched);
    assert_eq!(again.present, vec![config.clone(), layer.clone()]);
    assert_eq!(again.bytes, 0);
    assert_eq!(again.image.manifest, manifest);
    assert_eq!(
        reg.blob_gets("lwt/base"),
        2,
        "no blob GET on the second pull:\n{}",
        reg.log_text()
    );

    // Resumable by blob: with the layer gone from the store, only the layer is fetched again.
    std::fs::remove_file(store.root().join("blobs/sha256").join(hex_of(&layer))).unwrap();
    let resumed = image::pull_report(&store, &reference, &insecure()).unwrap();
    assert_eq!(resumed.fetched, vec![layer.clone()]);
    assert_eq!(resumed.present, vec![config]);
    assert_eq!(reg.blob_gets("lwt/base"), 3);
}

#[test]
fn missing_tag_and_missing_repository_are_clear_errors() {
    let t = TestDir::new();
    let reg = Registry::start();
    reg.push_image(
        "lwt/base",
        Some("1"),
        &[("a", b"a")],
        "gzip",
        host_arch(),
        false,
    );
    let store = t.store();
    let err = image::pull(
        &store,
        &format!("{}/lwt/base:nope", reg.host()),
        &insecure(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!(
            "registry {} answered 404 for manifest lwt/base:nope",
            reg.host()
        )),
        "{err}"
    );
    let err = image::pull(&store, &format!("{}/lwt/absent", reg.host()), &insecure())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("answered 404 for manifest lwt/absent:latest"),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());

    // Without --insecure a plain-HTTP registry is not used, and the error says what to do.
    let err = image::pull(
        &store,
        &format!("{}/lwt/base:1", reg.host()),
        &image::PullOptions::default(),
    )
    .unwrap_err();
    let chain = format!("{err}");
    assert!(
        chain.contains(&format!("registry {}", reg.host())),
        "{chain}"
    );
    assert!(chain.contains("--insecure"), "{chain}");

    // A digest that is not there.
    let d = sha(b"nothing");
    let err = image::pull(&store, &format!("{}/lwt/base@{d}", reg.host()), &insecure())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("answered 404 for manifest lwt/base@{d}")),
        "{err}"
    );
}

#[test]
fn docker_manifest_list_picks_the_host_platform() {
    let t = TestDir::new();
    let reg = Registry::start();
    let repo = "lwt/multi";
    let (other, _, _) = reg.push_image(
        repo,
        None,
        &[("arch", other_arch().as_bytes())],
        "gzip",
        other_arch(),
        true,
    );
    let (mine, mine_config, _) = reg.push_image(
        repo,
        None,
        &[("arch", host_arch().as_bytes())],
        "gzip",
        host_arch(),
        true,
    );
    let size = |d: &str| {
        let path = format!("/v2/{repo}/manifests/{d}");
        let r = reg
            .agent
            .head(reg.url(&path))
            .header("Accept", MEDIA_DOCKER_MANIFEST)
            .call()
            .unwrap();
        r.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    // The other platform first, so taking the first entry would be wrong.
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_DOCKER_LIST,
        "manifests": [
            {"mediaType": MEDIA_DOCKER_MANIFEST, "digest": other, "size": size(&other),
             "platform": {"architecture": other_arch(), "os": "linux"}},
            {"mediaType": MEDIA_DOCKER_MANIFEST, "digest": mine, "size": size(&mine),
             "platform": {"architecture": host_arch(), "os": "linux"}}
        ]
    }))
    .unwrap();
    reg.push_manifest(repo, "multi", MEDIA_DOCKER_LIST, &list);

    let store = t.store();
    let img = image::pull(&store, &format!("{}/{repo}:multi", reg.host()), &insecure()).unwrap();
    assert_eq!(img.manifest, mine);
    assert_eq!(img.id, mine_config);
    let dirs = store.layer_dirs(&img).unwrap();
    assert_eq!(read(dirs[0].join("arch")), host_arch());
    // Only the chosen platform's blobs were fetched.
    assert_eq!(reg.blob_gets(repo), 2, "{}", reg.log_text());
}

#[test]
fn oci_index_with_zstd_layer_and_pull_by_digest() {
    let t = TestDir::new();
    let reg = Registry::start();
    let repo = "lwt/zstd";
    let (other, _, _) = reg.push_image(
        repo,
        None,
        &[("arch", other_arch().as_bytes())],
        "zstd",
        other_arch(),
        false,
    );
    let (mine, mine_config, mine_layer) = reg.push_image(
        repo,
        None,
        &[("etc/zstd", b"compressed with zstd\n")],
        "zstd",
        host_arch(),
        false,
    );
    let manifest_size = |d: &str| -> u64 {
        let mut r = reg
            .agent
            .get(reg.url(&format!("/v2/{repo}/manifests/{d}")))
            .header("Accept", MEDIA_OCI_MANIFEST)
            .call()
            .unwrap();
        let mut v = Vec::new();
        r.body_mut().as_reader().read_to_end(&mut v).unwrap();
        v.len() as u64
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": [
            {"mediaType": MEDIA_OCI_MANIFEST, "digest": other, "size": manifest_size(&other),
             "platform": {"architecture": other_arch(), "os": "linux"}},
            {"mediaType": MEDIA_OCI_MANIFEST, "digest": mine, "size": manifest_size(&mine),
             "platform": {"architecture": host_arch(), "os": "linux"}}
        ]
    }))
    .unwrap();
    let index_digest = reg.push_manifest(repo, "v1", MEDIA_OCI_INDEX, &index);

    let store = t.store();
    let img = image::pull(&store, &format!("{}/{repo}:v1", reg.host()), &insecure()).unwrap();
    assert_eq!(img.manifest, mine);
    assert_eq!(img.id, mine_config);
    assert_eq!(img.layers, vec![mine_layer]);
    let blob = std::fs::read(
        store
            .root()
            .join("blobs/sha256")
            .join(hex_of(&img.layers[0])),
    )
    .unwrap();
    assert!(
        blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "the layer is zstd"
    );
    let dirs = store.layer_dirs(&img).unwrap();
    assert_eq!(read(dirs[0].join("etc/zstd")), "compressed with zstd\n");

    // By digest, the index's and the platform manifest's: both name the image with the digest.
    for digest in [&index_digest, &mine] {
        let reference = format!("{}/{repo}@{digest}", reg.host());
        let img = image::pull(&store, &reference, &insecure()).unwrap();
        assert_eq!(img.manifest, mine);
        assert!(img.names.contains(&reference), "{:?}", img.names);
        let found = store
            .resolve(&reference)
            .unwrap()
            .expect("resolves by digest name");
        assert_eq!(found.manifest, mine);
    }
    // Still two blob GETs: the digest pulls found everything in the store.
    assert_eq!(reg.blob_gets(repo), 2, "{}", reg.log_text());
}

/// A token service for the registry's `token` auth: answers every GET with a JWT (RS256, signed by
/// `openssl` with a self-signed certificate the registry trusts) granting pull and push on `repo`,
/// and records each request line.
struct TokenService {
    port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn openssl(args: &[&str], dir: &std::path::Path) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the bearer-token test needs the openssl command: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl TokenService {
    fn start(repo: &str) -> TokenService {
        let dir = tempfile::Builder::new()
            .prefix("lwt-token-")
            .tempdir_in("/tmp")
            .unwrap();
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-subj",
                "/CN=lwt-token",
            ],
            dir.path(),
        );
        let der = openssl(&["x509", "-in", "cert.pem", "-outform", "DER"], dir.path());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let cert = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&der)
        };
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [cert]});
        let claims = serde_json::json!({
            "iss": "lwt-issuer", "sub": "", "aud": "lwt-service",
            "exp": now + 600, "nbf": now - 60, "iat": now, "jti": "lwt-1",
            "access": [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        std::fs::write(dir.path().join("input"), &signing_input).unwrap();
        let sig = openssl(
            &["dgst", "-sha256", "-sign", "key.pem", "input"],
            dir.path(),
        );
        let token = format!("{signing_input}.{}", b64url(&sig));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            for stream in listener.incoming().take(100) {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                seen.lock().unwrap().push(line.trim().to_string());
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let body = serde_json::json!({"token": token, "expires_in": 600}).to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenService {
            port,
            requests,
            dir,
        }
    }

    fn registry_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: lwt-service\n    \
             issuer: lwt-issuer\n    rootcertbundle: {}\n",
            self.port,
            self.dir.path().join("cert.pem").display()
        )
    }

    fn token(&self) -> String {
        // Ask it like a client would, for the seeding requests.
        let mut r = ureq::Agent::config_builder()
            .proxy(None)
            .build()
            .new_agent()
            .get(format!("http://127.0.0.1:{}/token", self.port))
            .call()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
        v["token"].as_str().unwrap().to_string()
    }
}

#[test]
fn bearer_token_challenge_is_answered() {
    let t = TestDir::new();
    let repo = "lwt/tok";
    let tokens = TokenService::start(repo);
    let mut reg = Registry::start_with(&tokens.registry_config());
    reg.auth = Some(format!("Bearer {}", tokens.token()));
    let (manifest, _, _) = reg.push_image(
        repo,
        Some("1"),
        &[("tok", b"token\n")],
        "gzip",
        host_arch(),
        false,
    );
    // Anonymously, the registry refuses: the challenge is real.
    let anon = reg
        .agent
        .get(reg.url(&format!("/v2/{repo}/manifests/1")))
        .call()
        .unwrap();
    assert_eq!(anon.status(), 401);
    let challenge = anon.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");

    let seen_before = tokens.requests.lock().unwrap().len();
    let store = t.store();
    let img = image::pull(&store, &format!("{}/{repo}:1", reg.host()), &insecure()).unwrap();
    assert_eq!(img.manifest, manifest);
    let dirs = store.layer_dirs(&img).unwrap();
    assert_eq!(read(dirs[0].join("tok")), "token\n");
    // One token, asked for with the service and scope of the challenge, served every request.
    let requests = tokens.requests.lock().unwrap();
    assert_eq!(requests.len() - seen_before, 1, "{requests:?}");
    let asked = requests.last().unwrap();
    assert!(
        asked.contains("service=lwt-service")
            && asked.contains("scope=repository%3Alwt%2Ftok%3Apull"),
        "{asked}"
    );
}
