//! Pulling from a registry that wants credentials (htpasswd, so a `Basic` challenge), taken from a
//! Docker config file. Alone in its test binary because it sets `DOCKER_CONFIG` for the process.

mod common;
#[path = "common/registry.rs"]
mod registry;

use common::*;
use registry::*;

/// bcrypt of `lwt-secret` (cost 5), for the registry's htpasswd file.
const HTPASSWD: &str = "lwt:$2a$05$cM9BWbyYSA8ukVYmtpaWGub/Ek/bLB4NtM2VCOnZQ3rfWY5X1ojr2\n";
/// Base64 of `lwt:lwt-secret`.
const BASIC: &str = "bHd0Omx3dC1zZWNyZXQ=";

#[test]
fn basic_auth_with_docker_config_credentials() {
    let t = TestDir::new();
    let htpasswd = t.write("htpasswd", HTPASSWD.as_bytes());
    let mut reg = Registry::start_with(&format!(
        "auth:\n  htpasswd:\n    realm: lwt-realm\n    path: {}\n",
        htpasswd.display()
    ));
    reg.auth = Some(format!("Basic {BASIC}"));
    let (manifest, _, _) = reg.push_image(
        "lwt/private",
        Some("1"),
        &[("secret", b"s3cret\n")],
        "gzip",
        "amd64",
        false,
    );
    let store = t.store();
    let reference = format!("{}/lwt/private:1", reg.host());
    let opts = image::PullOptions {
        insecure: true,
        progress: false,
    };

    // No credentials anywhere: a clear 401.
    let empty = t.join("no-docker-config");
    std::fs::create_dir_all(&empty).unwrap();
    // SAFETY: this test binary holds only this test, so no other thread reads the environment.
    unsafe { std::env::set_var("DOCKER_CONFIG", &empty) };
    let err = image::pull(&store, &reference, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "registry {} answered 401 for manifest lwt/private:1",
            reg.host()
        )),
        "{err}"
    );
    assert!(err.contains("log in"), "{err}");

    // Wrong credentials: still a 401, naming the credentials.
    let wrong = t.join("wrong");
    t.write(
        "wrong/config.json",
        format!(
            r#"{{"auths": {{"{}": {{"username": "lwt", "password": "nope"}}}}}}"#,
            reg.host()
        )
        .as_bytes(),
    );
    // SAFETY: this test binary holds this one test, so no other thread reads the environment.
    unsafe { std::env::set_var("DOCKER_CONFIG", &wrong) };
    let err = image::pull(&store, &reference, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("answered 401"), "{err}");
    assert!(err.contains("credentials"), "{err}");

    // The right ones, as `docker login` writes them.
    let good = t.join("good");
    t.write(
        "good/config.json",
        format!(
            r#"{{"auths": {{"http://{}": {{"auth": "{BASIC}"}}}}}}"#,
            reg.host()
        )
        .as_bytes(),
    );
    // SAFETY: as above, no other thread reads the environment.
    unsafe { std::env::set_var("DOCKER_CONFIG", &good) };
    let img = image::pull(&store, &reference, &opts).unwrap();
    assert_eq!(img.manifest, manifest);
    let dirs = store.layer_dirs(&img).unwrap();
    assert_eq!(std::fs::read(dirs[0].join("secret")).unwrap(), b"s3cret\n");
}
