//! A bzImage's kernel as the ELF file inside it, for VMMs that boot an ELF directly (QEMU's PVH
//! entry): the guest then skips decompressing itself, which under TCG — every instruction
//! emulated — is the longest part of a boot (Debian's kernels are xz-compressed). Owns reading the
//! bzImage's payload, decompressing it on the host and caching the result in the image store;
//! never changes the kernel file it reads.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::PathBuf;

use crate::error::{io_err, Result};
use crate::kernel::Kernel;
use crate::lock::FileLock;
use crate::store::Store;

/// The ELF note QEMU looks for to boot an ELF kernel (Xen's PVH 32-bit entry point).
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

impl Store {
    /// The kernel of `kernel.image` as a PVH-bootable ELF, decompressed once and cached beside
    /// the disks; None when the file is not a bzImage, its payload is in a compression labwire
    /// does not read, or the ELF inside has no PVH entry (the VMM then boots the bzImage).
    pub fn pvh_kernel(&self, kernel: &Kernel) -> Result<Option<PathBuf>> {
        let meta = fs::metadata(&kernel.image).map_err(io_err(&kernel.image))?;
        let dir = self.root().join("disks");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let key = format!(
            "{}-{:x}-{:x}-{:x}",
            kernel.version,
            meta.ino(),
            meta.size(),
            meta.mtime() as u64 ^ (meta.dev() << 20)
        );
        let path = dir.join(format!("vmlinux-{key}.elf"));
        // A kernel found to have no usable ELF leaves a marker, so the next deploy does not
        // decompress it again to learn that.
        let none = dir.join(format!("vmlinux-{key}.none"));
        if path.is_file() {
            return Ok(Some(path));
        }
        if none.is_file() {
            return Ok(None);
        }
        let _lock = FileLock::exclusive(
            &self
                .root()
                .join("locks")
                .join(format!("vmlinux-{key}.lock")),
        )?;
        if path.is_file() {
            return Ok(Some(path));
        }
        let data = fs::read(&kernel.image).map_err(io_err(&kernel.image))?;
        let elf = match payload(&data) {
            Some(p) => decompress(p).filter(|elf| has_pvh_entry(elf)),
            None => None,
        };
        let Some(elf) = elf else {
            fs::write(&none, b"").map_err(io_err(&none))?;
            return Ok(None);
        };
        let tmp = dir.join(format!(".vmlinux-{key}.{}", std::process::id()));
        fs::write(&tmp, &elf).map_err(io_err(&tmp))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok(Some(path))
    }
}

/// The compressed kernel inside a bzImage (boot protocol 2.08 and later: `payload_offset` and
/// `payload_length`, counted from the protected-mode code after the setup sectors).
fn payload(data: &[u8]) -> Option<&[u8]> {
    if data.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let version = u16::from_le_bytes([data[0x206], data[0x207]]);
    if version < 0x208 {
        return None;
    }
    let setup_sects = match data[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let u32_at = |o: usize| -> Option<usize> {
        Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?) as usize)
    };
    let start = (setup_sects + 1) * 512 + u32_at(0x248)?;
    let len = u32_at(0x24c)?;
    data.get(start..start.checked_add(len)?)
}

/// The payload decompressed, by its magic: xz (with the host's `xz` when installed, much faster
/// than the pure-Rust decoder), gzip or zstd. None for another compression or a broken stream.
fn decompress(p: &[u8]) -> Option<Vec<u8>> {
    let out = if p.starts_with(b"\xfd7zXZ\x00") {
        xz_with_tool(p).or_else(|| {
            let mut out = Vec::new();
            lzma_rs::xz_decompress(&mut std::io::Cursor::new(p), &mut out).ok()?;
            Some(out)
        })?
    } else if p.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(p).read_to_end(&mut out).ok()?;
        out
    } else if p.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::decode_all(p).ok()?
    } else {
        return None;
    };
    out.starts_with(b"\x7fELF").then_some(out)
}

fn xz_with_tool(p: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    crate::find_tool("xz")?;
    let mut child = Command::new("xz")
        .args(["-dc", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = p.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).is_ok());
    let out = child.wait_with_output().ok()?;
    let wrote = writer.join().unwrap_or(false);
    (wrote && out.status.success()).then_some(out.stdout)
}

/// Whether a 64-bit little-endian ELF carries the Xen PVH entry note QEMU boots it by.
fn has_pvh_entry(elf: &[u8]) -> bool {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // ELFCLASS64, little-endian.
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).any(|i| {
        let ph = phoff as usize + i * phentsize;
        // PT_NOTE
        if u32_at(ph) != Some(4) {
            return false;
        }
        let (Some(off), Some(size)) = (u64_at(ph + 8), u64_at(ph + 32)) else {
            return false;
        };
        let (mut at, end) = (off as usize, (off + size) as usize);
        while at + 12 <= end {
            let (Some(namesz), Some(descsz), Some(kind)) =
                (u32_at(at), u32_at(at + 4), u32_at(at + 8))
            else {
                return false;
            };
            let name = elf
                .get(at + 12..at + 12 + namesz as usize)
                .unwrap_or_default();
            if kind == XEN_ELFNOTE_PHYS32_ENTRY && name.starts_with(b"Xen") {
                return true;
            }
            let pad = |n: u32| (n as usize).div_ceil(4) * 4;
            at += 12 + pad(namesz) + pad(descsz);
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with one PT_NOTE segment holding one note.
    fn elf_with_note(name: &[u8], kind: u32) -> Vec<u8> {
        let mut e = vec![0u8; 0x40 + 56];
        e[..4].copy_from_slice(b"\x7fELF");
        e[4] = 2;
        e[5] = 1;
        e[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let note_off = e.len() as u64;
        let mut note = Vec::new();
        note.extend_from_slice(&(name.len() as u32).to_le_bytes());
        note.extend_from_slice(&4u32.to_le_bytes());
        note.extend_from_slice(&kind.to_le_bytes());
        note.extend_from_slice(name);
        while note.len() % 4 != 0 {
            note.push(0);
        }
        note.extend_from_slice(&[0, 0, 0, 1]);
        let ph = 0x40;
        e[ph..ph + 4].copy_from_slice(&4u32.to_le_bytes());
        e[ph + 8..ph + 16].copy_from_slice(&note_off.to_le_bytes());
        e[ph + 32..ph + 40].copy_from_slice(&(note.len() as u64).to_le_bytes());
        e.extend_from_slice(&note);
        e
    }

    #[test]
    fn the_pvh_note_is_found_and_only_it() {
        assert!(has_pvh_entry(&elf_with_note(
            b"Xen\0",
            XEN_ELFNOTE_PHYS32_ENTRY
        )));
        assert!(!has_pvh_entry(&elf_with_note(b"Xen\0", 6)));
        assert!(!has_pvh_entry(&elf_with_note(
            b"GNU\0",
            XEN_ELFNOTE_PHYS32_ENTRY
        )));
        assert!(!has_pvh_entry(b"\x7fELF"));
    }

    #[test]
    fn a_gzip_payload_of_a_bzimage_is_read() {
        use std::io::Write as _;
        let elf = elf_with_note(b"Xen\0", XEN_ELFNOTE_PHYS32_ENTRY);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&elf).unwrap();
        let gz = gz.finish().unwrap();
        // Two setup sectors after the boot sector, then the payload 16 bytes into the
        // protected-mode code.
        let mut bz = vec![0u8; 3 * 512 + 16];
        bz[0x1f1] = 2;
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        bz[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        bz[0x24c..0x250].copy_from_slice(&(gz.len() as u32).to_le_bytes());
        bz.extend_from_slice(&gz);
        bz.extend_from_slice(b"trailing bytes after the payload");
        let p = payload(&bz).expect("payload");
        assert_eq!(decompress(p).as_deref(), Some(elf.as_slice()));
        assert!(payload(b"not a kernel").is_none());
    }
}
