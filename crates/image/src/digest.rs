//! Content digests (`sha256:<hex>`): validating them, hashing readers and byte strings, and telling
//! compressed streams (gzip, zstd) from plain ones by their magic bytes. Owns no files.

use std::io::{self, BufRead, Read};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The hex part of a `sha256:<64 lowercase hex>` digest, or an error naming the bad digest.
pub(crate) fn digest_hex(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(is_lower_hex) => Ok(hex),
        _ => Err(Error::InvalidDigest(digest.to_string())),
    }
}

pub(crate) fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// `sha256:<hex>` of a byte string.
pub(crate) fn sha256_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A reader that hashes and counts everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Read what is left (a tar stream's trailing padding, say) so the digest covers all of it,
    /// then return `sha256:<hex>` and the byte count.
    pub(crate) fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// How a stream is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Look at the first bytes of `head`; refuses the compressions this store does not read.
    pub(crate) fn detect(head: &[u8]) -> std::result::Result<Compression, &'static str> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Ok(Compression::Zstd)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Err("xz compression is not supported (use gzip, zstd or none)")
        } else if head.starts_with(b"BZh") {
            Err("bzip2 compression is not supported (use gzip, zstd or none)")
        } else {
            Ok(Compression::None)
        }
    }

    /// The OCI layer media type for a layer blob compressed this way.
    pub(crate) fn layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Detect the compression of `input` and return a reader of its decompressed bytes.
pub(crate) fn decompress<'a, R: BufRead + 'a>(
    mut input: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let kind = Compression::detect(input.fill_buf()?)
        .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
    let reader: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    };
    Ok((kind, reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_validated() {
        let good = sha256_of(b"");
        assert_eq!(
            good,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(digest_hex(&good).is_ok());
        assert!(digest_hex("sha256:abc").is_err());
        assert!(digest_hex(&good.to_uppercase()).is_err());
        assert!(digest_hex("sha512:00").is_err());
        assert!(digest_hex(&format!("{good}/../x")).is_err());
    }
}
