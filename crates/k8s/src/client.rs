//! A thin client for the few Kubernetes API calls labwire makes: server-side apply of a lab's
//! objects, reading its pods, deleting its namespace. It reads the user's kubeconfig (current
//! context: the cluster's server and CA, the user's bearer token or client certificate) and
//! speaks HTTPS through ureq, already in the workspace for image pulls, rather than the `kube`
//! crate's async stack.
//!
//! No API server runs where labwire is developed, so this client has not been run against a
//! real cluster; the objects it sends are `k8s-openapi` types, checked offline against the
//! official schemas.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use crate::Objects;

/// Who applies: the field manager of server-side apply.
pub const FIELD_MANAGER: &str = "labwire";

pub struct Client {
    server: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// One of a lab's pods as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRow {
    pub name: String,
    pub partition: String,
    pub phase: String,
    pub ready: bool,
    pub ip: String,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

impl Client {
    /// A client for the current context of `path` (default `$KUBECONFIG`, else
    /// `~/.kube/config`).
    pub fn from_kubeconfig(path: Option<&Path>) -> Result<Client, String> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => match std::env::var_os("KUBECONFIG") {
                Some(k) => std::env::split_paths(&k)
                    .next()
                    .ok_or("KUBECONFIG is empty")?,
                None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                    .join(".kube/config"),
            },
        };
        let shown = path.display().to_string();
        let body =
            std::fs::read_to_string(&path).map_err(|e| format!("read kubeconfig {shown}: {e}"))?;
        let cfg = topology::yaml::parse(&body)
            .map(|v| topology::read::to_json(&v))
            .map_err(|e| format!("kubeconfig {shown}:{}: {}", e.pos, e.message))?;
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        Client::from_config(&cfg, &dir).map_err(|e| format!("kubeconfig {shown}: {e}"))
    }

    fn from_config(cfg: &Value, dir: &Path) -> Result<Client, String> {
        let current = cfg["current-context"]
            .as_str()
            .ok_or("no current-context")?;
        let named = |list: &str, name: &str| -> Result<Value, String> {
            cfg[list]
                .as_array()
                .and_then(|a| a.iter().find(|e| e["name"] == name))
                .map(|e| e[list.trim_end_matches('s')].clone())
                .ok_or(format!("no {} named {name}", list.trim_end_matches('s')))
        };
        let ctx = named("contexts", current)?;
        let cluster = named(
            "clusters",
            ctx["cluster"].as_str().ok_or("context has no cluster")?,
        )?;
        let user = match ctx["user"].as_str() {
            Some(u) => named("users", u)?,
            None => Value::Null,
        };
        // `*-data` fields are base64; the plain ones name files relative to the kubeconfig.
        let bytes = |v: &Value, data: &str, file: &str| -> Result<Option<Vec<u8>>, String> {
            if let Some(d) = v[data].as_str() {
                return base64::engine::general_purpose::STANDARD
                    .decode(d.trim())
                    .map(Some)
                    .map_err(|e| format!("{data}: {e}"));
            }
            match v[file].as_str() {
                Some(f) => std::fs::read(dir.join(f))
                    .map(Some)
                    .map_err(|e| format!("{file} {f}: {e}")),
                None => Ok(None),
            }
        };
        let server = cluster["server"]
            .as_str()
            .ok_or("the cluster has no server")?
            .trim_end_matches('/')
            .to_string();
        let mut tls = TlsConfig::builder();
        if let Some(ca) = bytes(
            &cluster,
            "certificate-authority-data",
            "certificate-authority",
        )? {
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&ca)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err("the cluster's certificate authority holds no certificate".into());
            }
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        if cluster["insecure-skip-tls-verify"] == true {
            tls = tls.disable_verification(true);
        }
        if let (Some(cert), Some(key)) = (
            bytes(&user, "client-certificate-data", "client-certificate")?,
            bytes(&user, "client-key-data", "client-key")?,
        ) {
            let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&cert)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            let key = PrivateKey::from_pem(&key).map_err(|e| format!("client key: {e}"))?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let token = match (text(&user["token"]), text(&user["tokenFile"])) {
            (Some(t), _) => Some(t),
            (None, Some(f)) => Some(
                std::fs::read_to_string(dir.join(&f))
                    .map_err(|e| format!("tokenFile {f}: {e}"))?
                    .trim()
                    .to_string(),
            ),
            _ => None,
        };
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Client {
            server,
            token,
            agent,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.server);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let what = format!("{method} {path}");
        let resp = match (method, body) {
            ("PATCH", Some(b)) => {
                let mut r = self
                    .agent
                    .patch(&url)
                    .header("Content-Type", "application/apply-patch+yaml");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(b.to_string())
            }
            ("DELETE", _) => {
                let mut r = self.agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            _ => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
        };
        let mut resp = resp.map_err(|e| format!("{what}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{what}: {e}"))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 400 && status != 404 {
            let msg = v["message"]
                .as_str()
                .map_or_else(|| v.to_string(), str::to_string);
            return Err(format!("{what}: HTTP {status}: {msg}"));
        }
        Ok((status, v))
    }

    /// Server-side apply of every object, in order (the namespace first).
    pub fn apply(&self, objs: &Objects) -> Result<(), String> {
        for o in objs.to_json() {
            let path = object_path(&o)?;
            let (status, _) = self.call(
                "PATCH",
                &format!("{path}?fieldManager={FIELD_MANAGER}&force=true"),
                Some(&o),
            )?;
            if status == 404 {
                return Err(format!("apply {path}: HTTP 404"));
            }
        }
        Ok(())
    }

    /// The lab's pods in namespace `ns`.
    pub fn pods(&self, ns: &str) -> Result<Vec<PodRow>, String> {
        let (_, v) = self.call("GET", &format!("/api/v1/namespaces/{ns}/pods"), None)?;
        Ok(v["items"]
            .as_array()
            .map(|items| items.iter().map(pod_row).collect())
            .unwrap_or_default())
    }

    /// Wait until every pod of `objs` is ready (its partition deployed); a pod that failed ends
    /// the wait with its name.
    pub fn wait_ready(&self, objs: &Objects, timeout: Duration) -> Result<(), String> {
        let ns = objs.namespace.metadata.name.clone().unwrap_or_default();
        let deadline = Instant::now() + timeout;
        loop {
            let pods = self.pods(&ns)?;
            if let Some(p) = pods.iter().find(|p| p.phase == "Failed") {
                return Err(format!(
                    "pod {} (partition {}) failed; see `kubectl -n {ns} logs {}`",
                    p.name, p.partition, p.name
                ));
            }
            let ready = pods.iter().filter(|p| p.ready).count();
            if ready == objs.pods.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{ready} of {} pods ready after {} s",
                    objs.pods.len(),
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Delete namespace `ns` (everything of the lab goes with it); an absent one is no error.
    pub fn delete_namespace(&self, ns: &str) -> Result<(), String> {
        self.call("DELETE", &format!("/api/v1/namespaces/{ns}"), None)
            .map(|_| ())
    }
}

/// The API path of an object (core/v1 kinds only: those labwire renders).
pub fn object_path(o: &Value) -> Result<String, String> {
    let name = o["metadata"]["name"]
        .as_str()
        .ok_or("an object without a name")?;
    let ns = o["metadata"]["namespace"].as_str();
    let plural = match o["kind"].as_str() {
        Some("Namespace") => return Ok(format!("/api/v1/namespaces/{name}")),
        Some("ConfigMap") => "configmaps",
        Some("Service") => "services",
        Some("Pod") => "pods",
        k => return Err(format!("labwire does not apply objects of kind {k:?}")),
    };
    let ns = ns.ok_or(format!("{name} has no namespace"))?;
    Ok(format!("/api/v1/namespaces/{ns}/{plural}/{name}"))
}

fn pod_row(p: &Value) -> PodRow {
    let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    PodRow {
        name: text(&p["metadata"]["name"]).unwrap_or_default(),
        partition: text(&p["metadata"]["labels"][crate::PARTITION_LABEL]).unwrap_or_default(),
        phase: text(&p["status"]["phase"]).unwrap_or_default(),
        ready,
        ip: text(&p["status"]["podIP"]).unwrap_or_default(),
    }
}

/// Pods as a table.
pub fn table(pods: &[PodRow]) -> String {
    let mut s = format!(
        "{:<24} {:<20} {:<10} {:<6} {}\n",
        "POD", "PARTITION", "PHASE", "READY", "IP"
    );
    for p in pods {
        s.push_str(&format!(
            "{:<24} {:<20} {:<10} {:<6} {}\n",
            p.name, p.partition, p.phase, p.ready, p.ip
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_the_rendered_kinds() {
        let o = serde_json::json!({"kind": "Pod", "metadata": {"name": "a", "namespace": "n"}});
        assert_eq!(object_path(&o).unwrap(), "/api/v1/namespaces/n/pods/a");
        let o = serde_json::json!({"kind": "Namespace", "metadata": {"name": "n"}});
        assert_eq!(object_path(&o).unwrap(), "/api/v1/namespaces/n");
    }

    #[test]
    fn kubeconfig_current_context_with_token_file() {
        let dir = std::env::temp_dir().join(format!("prt-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tok"), "abc\n").unwrap();
        let cfg = serde_json::json!({
            "current-context": "c",
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443/", "insecure-skip-tls-verify": true}}],
            "users": [{"name": "u", "user": {"tokenFile": "tok"}}],
        });
        let c = Client::from_config(&cfg, &dir).unwrap();
        assert_eq!(c.server, "https://127.0.0.1:6443");
        assert_eq!(c.token.as_deref(), Some("abc"));
        let bad = serde_json::json!({"current-context": "x", "contexts": []});
        assert!(Client::from_config(&bad, &dir)
            .err()
            .unwrap()
            .contains("no context named x"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
