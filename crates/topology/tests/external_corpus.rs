//! Validate a directory of other people's containerlab topologies (not part of this repository):
//! every `*.yml`/`*.yaml`/`*.gotmpl` file with a top-level `topology:` key under
//! `LABWIRE_CLAB_CORPUS`, loaded as `labwire validate` would from the file's own directory, with
//! no variables set (template variables files beside a template are still found). Ignored by
//! default; run it with
//!
//! ```sh
//! LABWIRE_CLAB_CORPUS=/path/to/labs cargo test -p topology --test external_corpus -- --ignored --nocapture
//! ```
//!
//! It prints every rejection with its diagnostics and the count, and fails when any file is
//! rejected.

use std::path::{Path, PathBuf};

use topology::{load, Options, Source};

fn no_env(_: &str) -> Option<String> {
    None
}

fn read_file(p: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(p)
}

fn topology_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            topology_files(&p, out);
            continue;
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let ext_ok = [".yml", ".yaml", ".gotmpl"]
            .iter()
            .any(|x| name.ends_with(x));
        if !ext_ok || name.contains("_vars.") {
            continue;
        }
        let is_topology = std::fs::read_to_string(&p)
            .is_ok_and(|t| t.lines().any(|l| l.trim_end() == "topology:"));
        if is_topology {
            out.push(p);
        }
    }
}

#[test]
#[ignore = "needs LABWIRE_CLAB_CORPUS=DIR of containerlab topologies"]
fn every_topology_in_the_corpus_validates() {
    let dir = std::env::var_os("LABWIRE_CLAB_CORPUS")
        .map(PathBuf::from)
        .expect("set LABWIRE_CLAB_CORPUS to a directory of containerlab topologies");
    let mut files = Vec::new();
    topology_files(&dir, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no topologies under {}", dir.display());
    let opts = Options {
        env: &no_env,
        runtime: None,
        read_file: &read_file,
    };
    let mut rejected = Vec::new();
    for f in &files {
        let src = match Source::from_file(f) {
            Ok(s) => s,
            Err(e) => {
                rejected.push(format!("{}: {e}", f.display()));
                continue;
            }
        };
        if let Err(e) = load(&src, &opts) {
            let errors: Vec<String> =
                e.0.render(false)
                    .lines()
                    .filter(|l| l.contains(": error: "))
                    .map(str::to_string)
                    .collect();
            rejected.push(format!("{}:\n    {}", f.display(), errors.join("\n    ")));
        }
    }
    for r in &rejected {
        println!("rejected {r}");
    }
    println!(
        "{} of {} topologies validate ({} rejected)",
        files.len() - rejected.len(),
        files.len(),
        rejected.len()
    );
    assert!(rejected.is_empty(), "{} rejected", rejected.len());
}
