//! The chain manifest: which base and which deltas, in order, make up the
//! saved data set. A small text file, replaced atomically as the last step of
//! every save, so a crash at any point leaves the previous manifest (and the
//! files it names) or the new one.
//!
//! ```text
//! forkless-chain 1
//! base 137000123 1a2b3c4d dump.rdb
//! delta 1400022 0badf00d dump.rdb.1a2b3c4d.1.delta
//! checksum 5e5e5e5e
//! ```
//!
//! Each file line gives the length in bytes, the CRC32 of the file's own
//! trailer in hex, and the name (in the dump's directory; the rest of the
//! line, so it may hold spaces). The checksum line is the CRC32 of every
//! byte before it.

use std::fmt::Write as _;
use std::path::Path;

/// The first line of every manifest.
const HEAD: &str = "forkless-chain 1";

/// One file of the chain: name, length and the CRC32 its trailer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub name: String,
    pub len: u64,
    pub crc: u32,
}

/// A base snapshot and the deltas to apply to it, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub base: FileRef,
    pub deltas: Vec<FileRef>,
}

impl Manifest {
    /// Bytes of the deltas alone.
    pub fn delta_bytes(&self) -> u64 {
        self.deltas.iter().map(|d| d.len).sum()
    }

    /// Bytes of every file of the chain.
    pub fn total_bytes(&self) -> u64 {
        self.base.len + self.delta_bytes()
    }

    pub fn encode(&self) -> String {
        let mut out = format!("{HEAD}\n");
        let mut line = |kind: &str, f: &FileRef| {
            let _ = writeln!(out, "{kind} {} {:08x} {}", f.len, f.crc, f.name);
        };
        line("base", &self.base);
        for d in &self.deltas {
            line("delta", d);
        }
        let crc = crc32fast::hash(out.as_bytes());
        let _ = writeln!(out, "checksum {crc:08x}");
        out
    }

    /// Parses a manifest; the error names the line and what is wrong with it.
    pub fn decode(text: &[u8]) -> Result<Manifest, String> {
        let text = std::str::from_utf8(text)
            .map_err(|e| format!("not text (invalid UTF-8 at offset {})", e.valid_up_to()))?;
        let Some(sum_at) = text.rfind("checksum ") else {
            return Err("no checksum line (truncated?)".into());
        };
        let (body, sum_line) = text.split_at(sum_at);
        let stored = sum_line
            .trim_end_matches('\n')
            .strip_prefix("checksum ")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("bad checksum line at offset {sum_at}"))?;
        let computed = crc32fast::hash(body.as_bytes());
        if stored != computed {
            return Err(format!(
                "checksum mismatch: stored {stored:08x}, computed {computed:08x}"
            ));
        }
        let mut lines = body.lines().enumerate();
        match lines.next() {
            Some((_, HEAD)) => {}
            _ => return Err(format!("line 1 is not `{HEAD}`")),
        }
        let mut base = None;
        let mut deltas = Vec::new();
        for (n, line) in lines {
            let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            let [kind, len, crc, name] = fields[..] else {
                return Err(bad("expected `base|delta LEN CRC NAME`"));
            };
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(bad("file name outside the dump's directory"));
            }
            let file = FileRef {
                name: name.to_string(),
                len: len.parse().map_err(|_| bad("bad length"))?,
                crc: u32::from_str_radix(crc, 16).map_err(|_| bad("bad CRC"))?,
            };
            match (kind, &base) {
                ("base", None) => base = Some(file),
                ("delta", Some(_)) => deltas.push(file),
                _ => return Err(bad("expected one base line first, then delta lines")),
            }
        }
        let base = base.ok_or("no base line")?;
        Ok(Manifest { base, deltas })
    }

    /// Reads the manifest at `path`: `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<Manifest>, String> {
        match std::fs::read(path) {
            Ok(bytes) => Manifest::decode(&bytes)
                .map(Some)
                .map_err(|e| format!("bad chain manifest {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            base: FileRef {
                name: "dump.rdb".into(),
                len: 1000,
                crc: 0x1a2b3c4d,
            },
            deltas: vec![FileRef {
                name: "dump.rdb.1a2b3c4d.1.delta".into(),
                len: 20,
                crc: 7,
            }],
        }
    }

    #[test]
    fn round_trips() {
        let mut m = sample();
        assert_eq!(Manifest::decode(m.encode().as_bytes()).unwrap(), m);
        assert_eq!(m.total_bytes(), 1020);
        m.base.name = "my dump.rdb".into();
        assert_eq!(Manifest::decode(m.encode().as_bytes()).unwrap(), m);
    }

    #[test]
    fn damage_is_named() {
        let text = sample().encode();
        let flipped = text.replace("1000", "1001");
        assert!(Manifest::decode(flipped.as_bytes())
            .unwrap_err()
            .contains("checksum mismatch"));
        let cut = &text[..text.len() - 12];
        assert!(Manifest::decode(cut.as_bytes()).is_err());
        let escaping = Manifest {
            base: FileRef {
                name: "../etc/passwd".into(),
                len: 1,
                crc: 1,
            },
            deltas: vec![],
        };
        assert!(Manifest::decode(escaping.encode().as_bytes())
            .unwrap_err()
            .contains("outside"));
    }
}
