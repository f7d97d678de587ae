//! Image names as Docker spells them out: `debian` is `docker.io/library/debian:latest`,
//! `quay.io/frr/frr:9` stays as it is. Pure string work; owns no files.

/// The registry a name without one refers to.
const DEFAULT_DOMAIN: &str = "docker.io";

/// Normalise an image reference the way Docker does: add the `docker.io` registry when the first
/// path component is not a host (`x.y`, `host:port` or `localhost`), the `library/` namespace for a
/// one-component Docker Hub name, and the `latest` tag when neither a tag nor a digest is given.
/// `index.docker.io` is folded to `docker.io`. A `@sha256:…` suffix is kept.
pub fn normalize_reference(r: &str) -> String {
    let r = r.trim();
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    // The tag is after the last ':' of the last path component (a ':' before a '/' is a port).
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    let (domain, path) = match repo.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest.to_string())
        }
        _ => (DEFAULT_DOMAIN, repo.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let mut out = format!("{domain}/{path}");
    match (tag, digest) {
        (Some(t), _) => {
            out.push(':');
            out.push_str(t);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    out
}

/// Whether `r` can name an image: non-empty, no whitespace or control characters, no empty path
/// components. Deliberately looser than Docker's grammar (upper case is tolerated).
pub(crate) fn is_valid_reference(r: &str) -> bool {
    !r.is_empty()
        && !r.chars().any(|c| c.is_whitespace() || c.is_control())
        && !r.starts_with('/')
        && !r.ends_with('/')
        && !r.contains("//")
        && !r.ends_with(':')
        && !r.starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::normalize_reference as n;

    #[test]
    fn docker_hub_short_names() {
        assert_eq!(n("debian"), "docker.io/library/debian:latest");
        assert_eq!(n("debian:12"), "docker.io/library/debian:12");
        assert_eq!(
            n("docker.io/library/debian:latest"),
            "docker.io/library/debian:latest"
        );
        assert_eq!(
            n("index.docker.io/library/debian"),
            "docker.io/library/debian:latest"
        );
        assert_eq!(n("frrouting/frr:v8.4.0"), "docker.io/frrouting/frr:v8.4.0");
        assert_eq!(n("open-nos:latest"), "docker.io/library/open-nos:latest");
    }

    #[test]
    fn registries_ports_and_digests() {
        assert_eq!(n("quay.io/frr/frr"), "quay.io/frr/frr:latest");
        assert_eq!(n("localhost/x"), "localhost/x:latest");
        assert_eq!(n("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b:latest");
        assert_eq!(n("127.0.0.1:5000/a/b:1.2"), "127.0.0.1:5000/a/b:1.2");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            n(&format!("alpine@{d}")),
            format!("docker.io/library/alpine@{d}")
        );
        assert_eq!(
            n(&format!("alpine:3@{d}")),
            format!("docker.io/library/alpine:3@{d}")
        );
    }
}
