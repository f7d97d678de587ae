//! A writer for the "newc" cpio format the kernel unpacks an initramfs from. Several archives
//! concatenated are one initramfs to the kernel, so a node's own files can follow a shared part.

use std::io::{self, Write};

/// An initramfs under construction.
#[derive(Default)]
pub struct Archive {
    buf: Vec<u8>,
    ino: u32,
}

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, (0, 0), &[]);
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | (mode & 0o7777), (0, 0), data);
    }

    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120_777, (0, 0), target.as_bytes());
    }

    pub fn char_device(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020_600, (major, minor), &[]);
    }

    /// Close the archive and write it out.
    pub fn finish(mut self, w: &mut impl Write) -> io::Result<()> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        w.write_all(&self.buf)
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Archive;

    #[test]
    fn newc_entries_are_aligned_and_terminated() {
        let mut a = Archive::new();
        a.dir("etc");
        a.file("/etc/x", 0o644, b"hello");
        let mut out = Vec::new();
        a.finish(&mut out).unwrap();
        assert_eq!(&out[..6], b"070701");
        assert_eq!(out.len() % 4, 0);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("etc/x\0"));
        assert!(text.contains("hello"));
        assert!(text.contains("TRAILER!!!\0"));
        // Second header starts on a 4-byte boundary right after the first (a directory).
        let second = text[6..].find("070701").unwrap() + 6;
        assert_eq!(second % 4, 0);
    }
}
