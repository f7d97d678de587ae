//! Kernels for VM nodes: a bzImage file (its modules found beside it, as Debian's kernel package
//! lays them out, or under /lib/modules), or an image holding `/boot/vmlinuz*` and
//! `/lib/modules/<version>`; and the kernel's modules, read without modprobe or depmod (the host
//! may have neither): each module's `.modinfo` ELF section gives its dependencies and aliases.
//! Modules compressed as distributions ship them (`.ko.xz`, `.ko.zst`, `.ko.gz`) are read through
//! [`read_module`], which decompresses them, so the guest only ever gets plain `.ko` files.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use crate::error::{io_err, Error, Result};

/// A guest kernel and its modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The bzImage (`vmlinuz-*`) or uncompressed `vmlinux`.
    pub image: PathBuf,
    /// Its release (`6.1.0-57-amd64`), as `uname -r` prints it in the guest.
    pub version: String,
    /// `lib/modules/<version>`, when the kernel has modules available.
    pub modules: Option<PathBuf>,
}

impl Kernel {
    /// A kernel file. Its modules are looked for in `../lib/modules/<version>` and
    /// `../usr/lib/modules/<version>` relative to the file's directory, then in the host's
    /// `/lib/modules/<version>`.
    pub fn from_file(path: &Path) -> Result<Kernel> {
        let meta = fs::metadata(path).map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(Error::Format {
                path: path.to_path_buf(),
                reason: "not a regular file (want a vmlinuz/bzImage kernel)".into(),
            });
        }
        let version = kernel_version(path)?;
        let modules = module_dirs_for_file(path, &version)
            .into_iter()
            .find(|d| is_module_tree(d));
        Ok(Kernel {
            image: path.to_path_buf(),
            version,
            modules,
        })
    }

    /// The kernel in an image's unpacked layers (bottom first): the newest `boot/vmlinuz-*` (or
    /// `boot/vmlinux*`) of the topmost layer holding one, with `lib/modules/<version>` from the
    /// topmost layer holding that. `None` when no layer has a kernel.
    pub fn from_layers(layers: &[PathBuf]) -> Result<Option<Kernel>> {
        let mut found = None;
        for layer in layers.iter().rev() {
            let boot = layer.join("boot");
            let Ok(entries) = fs::read_dir(&boot) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("vmlinuz") || n.starts_with("vmlinux"))
                .collect();
            names.sort_by(|a, b| version_order(a, b));
            if let Some(n) = names.pop() {
                found = Some(boot.join(n));
                break;
            }
        }
        let Some(image) = found else {
            return Ok(None);
        };
        let version = kernel_version(&image)?;
        let modules = module_dirs_in_layers(layers, &version)
            .into_iter()
            .find(|d| is_module_tree(d));
        Ok(Some(Kernel {
            image,
            version,
            modules,
        }))
    }
}

/// Where the modules of kernel file `path` (release `version`) are looked for, in order:
/// `../lib/modules/<version>` and `../usr/lib/modules/<version>` from the file's directory (as
/// Debian's package lays them out beside `boot/`), then the host's `/lib/modules/<version>`.
pub fn module_dirs_for_file(path: &Path, version: &str) -> Vec<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    vec![
        dir.join("../lib/modules").join(version),
        dir.join("../usr/lib/modules").join(version),
        Path::new("/lib/modules").join(version),
    ]
}

/// Where the modules of an image's kernel are looked for: `lib/modules/<version>` and
/// `usr/lib/modules/<version>` of each layer, topmost first.
pub fn module_dirs_in_layers(layers: &[PathBuf], version: &str) -> Vec<PathBuf> {
    layers
        .iter()
        .rev()
        .flat_map(|l| ["lib/modules", "usr/lib/modules"].map(|m| l.join(m).join(version)))
        .collect()
}

/// Whether `dir` is a kernel's module tree: it has the `kernel/` directory `make
/// modules_install` writes, or (a kernel with everything built in) its `modules.builtin`.
fn is_module_tree(dir: &Path) -> bool {
    dir.join("kernel").is_dir() || dir.join("modules.builtin").is_file()
}

/// Compare kernel file names so that `vmlinuz-6.10` sorts after `vmlinuz-6.9`.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(s: &str) -> Vec<(u64, String)> {
        s.split(['.', '-', '_'])
            .map(|p| (p.parse().unwrap_or(0), p.to_string()))
            .collect()
    }
    key(a).cmp(&key(b))
}

/// The release string of a kernel file: from the x86 boot header of a bzImage, or from the file
/// name (`vmlinuz-<release>`, `vmlinux-<release>`) for other formats.
pub fn kernel_version(path: &Path) -> Result<String> {
    let f = File::open(path).map_err(io_err(path))?;
    let mut hdr = [0u8; 0x210];
    let from_header = f.read_exact_at(&mut hdr, 0).ok().and_then(|()| {
        // "HdrS" at 0x202; the version string's offset (from 0x200) at 0x20e.
        if &hdr[0x202..0x206] != b"HdrS" {
            return None;
        }
        let off = u16::from_le_bytes([hdr[0x20e], hdr[0x20f]]) as u64;
        if off == 0 {
            return None;
        }
        let mut s = [0u8; 256];
        f.read_exact_at(&mut s, 0x200 + off).ok()?;
        let end = s.iter().position(|&b| b == 0 || b == b' ')?;
        std::str::from_utf8(&s[..end])
            .ok()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    });
    if let Some(v) = from_header {
        return Ok(v);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.strip_prefix("vmlinuz-")
        .or_else(|| name.strip_prefix("vmlinux-"))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| Error::Format {
            path: path.to_path_buf(),
            reason: "not an x86 bzImage and no release in the file name (want vmlinuz-<release>)"
                .into(),
        })
}

/// A kernel's module tree, indexed by module name (`-` and `_` are the same, as for modprobe).
#[derive(Debug)]
pub struct Modules {
    dir: PathBuf,
    /// Module name → path relative to `dir`.
    files: BTreeMap<String, PathBuf>,
    builtin: HashSet<String>,
}

/// A module name as the kernel spells it (`crc32c-intel` → `crc32c_intel`).
pub fn module_name(s: &str) -> String {
    s.replace('-', "_")
}

impl Modules {
    /// Index `lib/modules/<version>`.
    pub fn scan(dir: &Path) -> Result<Modules> {
        let mut files = BTreeMap::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let abs = dir.join(&rel);
            for e in fs::read_dir(&abs).map_err(io_err(&abs))? {
                let e = e.map_err(io_err(&abs))?;
                let t = e.file_type().map_err(io_err(e.path()))?;
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if t.is_dir() {
                    stack.push(rel.join(name));
                } else if let Some(stem) = module_stem(name) {
                    files.insert(module_name(stem), rel.join(name));
                }
            }
        }
        let builtin = fs::read_to_string(dir.join("modules.builtin"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.rsplit('/').next().and_then(module_stem))
            .map(module_name)
            .collect();
        Ok(Modules {
            dir: dir.to_path_buf(),
            files,
            builtin,
        })
    }

    /// The module tree's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether any module file is compressed (`.ko.xz`, `.ko.zst`, `.ko.gz`).
    pub fn has_compressed(&self) -> bool {
        self.files.values().any(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.ends_with(".ko"))
        })
    }

    /// Whether a module is compiled into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&module_name(name))
    }

    /// The file of a module, relative to [`Modules::dir`].
    pub fn file(&self, name: &str) -> Option<&Path> {
        self.files.get(&module_name(name)).map(PathBuf::as_path)
    }

    /// The modules to load, in load order (dependencies first), for `wanted`: their
    /// dependencies and `softdep pre:` modules included. Built-in modules are skipped; a wanted
    /// module that is neither built in nor present is an error.
    pub fn load_order(&self, wanted: &[&str]) -> Result<Vec<PathBuf>> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        for w in wanted {
            let name = module_name(w);
            if self.is_builtin(&name) {
                continue;
            }
            if !self.files.contains_key(&name) {
                return Err(Error::Format {
                    path: self.dir.clone(),
                    reason: format!(
                        "the kernel has no module `{name}` (neither built in nor a file)"
                    ),
                });
            }
            self.visit(&name, &mut seen, &mut order, 0)?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        name: &str,
        seen: &mut HashSet<String>,
        order: &mut Vec<PathBuf>,
        depth: usize,
    ) -> Result<()> {
        if depth > 64 || !seen.insert(name.to_string()) {
            return Ok(());
        }
        let Some(rel) = self.files.get(name) else {
            return Ok(());
        };
        let info = modinfo(&self.dir.join(rel))?;
        for dep in info.depends.iter().chain(&info.softdep_pre) {
            self.visit(&module_name(dep), seen, order, depth + 1)?;
        }
        order.push(rel.clone());
        Ok(())
    }

    /// `modules.dep`, `modules.alias` and `modules.softdep` as depmod writes them (the text
    /// forms, which modprobe reads when the binary indexes are absent).
    pub fn index_files(&self) -> Result<Vec<(&'static str, String)>> {
        let mut dep = String::new();
        let mut alias = String::new();
        let mut softdep = String::new();
        for (name, rel) in &self.files {
            let info = modinfo(&self.dir.join(rel))?;
            let deps: Vec<String> = info
                .depends
                .iter()
                .filter_map(|d| self.files.get(&module_name(d)))
                .map(|p| p.display().to_string())
                .collect();
            dep.push_str(&format!("{}: {}\n", rel.display(), deps.join(" ")));
            for a in &info.aliases {
                alias.push_str(&format!("alias {a} {name}\n"));
            }
            if !info.softdep_pre.is_empty() {
                softdep.push_str(&format!(
                    "softdep {name} pre: {}\n",
                    info.softdep_pre.join(" ")
                ));
            }
        }
        Ok(vec![
            ("modules.dep", dep),
            ("modules.alias", alias),
            ("modules.softdep", softdep),
        ])
    }
}

fn module_stem(file: &str) -> Option<&str> {
    file.strip_suffix(".ko")
        .or_else(|| file.strip_suffix(".ko.xz"))
        .or_else(|| file.strip_suffix(".ko.zst"))
        .or_else(|| file.strip_suffix(".ko.gz"))
}

/// The name a module file has once decompressed (`virtio_net.ko.xz` → `virtio_net.ko`); other
/// names are returned as they are.
pub fn plain_module_name(file: &str) -> String {
    match module_stem(file) {
        Some(stem) => format!("{stem}.ko"),
        None => file.to_string(),
    }
}

/// Whether a file name is a compressed kernel module.
pub fn is_compressed_module(file: &str) -> bool {
    module_stem(file).is_some() && !file.ends_with(".ko")
}

/// A module file's content, decompressed when its name says it is compressed (`.ko.xz`,
/// `.ko.zst`, `.ko.gz`, as the kernel's `make modules_install` names them).
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let bad = |e: std::io::Error| Error::Format {
        path: path.to_path_buf(),
        reason: format!("cannot decompress the module: {e}"),
    };
    if name.ends_with(".ko.xz") {
        let f = File::open(path).map_err(io_err(path))?;
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut std::io::BufReader::new(f), &mut out).map_err(|e| {
            Error::Format {
                path: path.to_path_buf(),
                reason: format!("cannot decompress the module (xz): {e}"),
            }
        })?;
        Ok(out)
    } else if name.ends_with(".ko.zst") {
        let f = File::open(path).map_err(io_err(path))?;
        zstd::stream::decode_all(f).map_err(bad)
    } else if name.ends_with(".ko.gz") {
        let f = File::open(path).map_err(io_err(path))?;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(f)
            .read_to_end(&mut out)
            .map_err(bad)?;
        Ok(out)
    } else {
        fs::read(path).map_err(io_err(path))
    }
}

/// What a module's `.modinfo` section says about loading it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ModInfo {
    pub depends: Vec<String>,
    pub softdep_pre: Vec<String>,
    pub aliases: Vec<String>,
}

/// Read a module's `.modinfo` ELF section (of a plain or compressed module file).
pub fn modinfo(path: &Path) -> Result<ModInfo> {
    let data = read_module(path)?;
    modinfo_of(&data).map_err(|reason| Error::Format {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    })
}

/// The `.modinfo` section of a module's ELF image.
fn modinfo_of(elf: &[u8]) -> std::result::Result<ModInfo, &'static str> {
    let read = |off: u64, len: usize| -> std::result::Result<&[u8], &'static str> {
        usize::try_from(off)
            .ok()
            .and_then(|o| elf.get(o..o.checked_add(len)?))
            .ok_or("truncated ELF module")
    };
    let h = read(0, 64)?;
    if &h[..4] != b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return Err("not a 64-bit little-endian ELF module");
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4"));
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8"));
    let shoff = u64_at(h, 0x28);
    let shentsize = u16_at(h, 0x3a);
    let shnum = u16_at(h, 0x3c);
    let shstrndx = u16_at(h, 0x3e);
    if shentsize < 64 || shnum == 0 || shnum > 65_000 || shstrndx >= shnum {
        return Err("bad ELF section table");
    }
    let table = read(shoff, shentsize * shnum)?;
    let section = |i: usize| {
        let s = &table[i * shentsize..];
        (u32_at(s, 0) as usize, u64_at(s, 24), u64_at(s, 32))
    };
    let (_, str_off, str_size) = section(shstrndx);
    if str_size > 1 << 20 {
        return Err("bad ELF section name table");
    }
    let names = read(str_off, str_size as usize)?;
    let modinfo = (0..shnum).map(section).find(|(name, _, _)| {
        names
            .get(*name..)
            .is_some_and(|n| n.starts_with(b".modinfo\0"))
    });
    let Some((_, off, size)) = modinfo else {
        return Ok(ModInfo::default());
    };
    if size > 1 << 20 {
        return Err("oversized .modinfo section");
    }
    let data = read(off, size as usize)?;
    let mut info = ModInfo::default();
    for entry in data.split(|&b| b == 0) {
        let Ok(entry) = std::str::from_utf8(entry) else {
            continue;
        };
        let Some((k, v)) = entry.split_once('=') else {
            continue;
        };
        match k {
            "depends" => info
                .depends
                .extend(v.split(',').filter(|d| !d.is_empty()).map(str::to_string)),
            "alias" => info.aliases.push(v.to_string()),
            "softdep" => {
                // "pre: a b post: c"
                let mut pre = false;
                for w in v.split_whitespace() {
                    match w {
                        "pre:" => pre = true,
                        "post:" => pre = false,
                        m if pre => info.softdep_pre.push(m.to_string()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// Resolve a kernel file path relative to `base` (the topology file's directory).
pub fn resolve_path(spec: &str, base: &Path) -> PathBuf {
    let p = Path::new(spec);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Whether a `kernel:` value names a file rather than an image: it contains a `/` or names an
/// existing file.
pub fn is_file_spec(spec: &str) -> bool {
    spec.contains('/') || Path::new(spec).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn compressed_modules_read_back_as_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut plain.as_slice(), &mut xz).expect("xz");
        let zst = zstd::stream::encode_all(plain.as_slice(), 3).expect("zstd");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).expect("gzip");
        let gz = gz.finish().expect("gzip");
        for (name, bytes) in [
            ("m.ko", plain.clone()),
            ("m.ko.xz", xz),
            ("m.ko.zst", zst),
            ("m.ko.gz", gz),
        ] {
            let p = dir.path().join(name);
            fs::write(&p, &bytes).expect("write");
            assert_eq!(read_module(&p).expect(name), plain, "{name}");
            assert_eq!(plain_module_name(name), "m.ko");
            assert_eq!(is_compressed_module(name), name != "m.ko");
        }
        // A corrupt file names itself and the format.
        let p = dir.path().join("bad.ko.xz");
        fs::write(&p, b"not xz").expect("write");
        let e = read_module(&p).expect_err("corrupt xz").to_string();
        assert!(e.contains("bad.ko.xz") && e.contains("xz"), "{e}");
        assert_eq!(plain_module_name("modules.dep"), "modules.dep");
    }

    #[test]
    fn module_dirs_are_looked_for_beside_the_kernel_then_on_the_host() {
        let dirs = module_dirs_for_file(Path::new("/k/boot/vmlinuz-6.12.1"), "6.12.1");
        assert_eq!(
            dirs,
            [
                PathBuf::from("/k/boot/../lib/modules/6.12.1"),
                PathBuf::from("/k/boot/../usr/lib/modules/6.12.1"),
                PathBuf::from("/lib/modules/6.12.1"),
            ]
        );
    }
}
