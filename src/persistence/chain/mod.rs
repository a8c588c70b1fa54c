//! Incremental snapshots: a save writes what changed since the last one.
//!
//! With `incremental-snapshots yes` the server keeps the keyspace clone its
//! last save wrote (the *saved version*). It costs only what later writes
//! copy: everything unchanged is shared, pointer for pointer, with the live
//! keyspace. The next save diffs its own clone against the saved version by
//! pointer equality ([`crate::keyspace::Db::diff`]), skipping shared subtrees
//! unread, and writes a [`delta`] file of the keys set or changed and the keys
//! gone. On disk the data set is then the dump file (the *base*, an ordinary
//! snapshot) plus a chain of deltas, named by a [`manifest`] beside the dump.
//!
//! # Crash consistency
//!
//! Every file is written to a temp file, fsynced, renamed into place, and the
//! directory fsynced. The manifest is replaced last, so:
//! - a crash while a delta is written leaves the old manifest, which names
//!   only complete files: the previous save loads;
//! - a delta renamed into place but not yet in the manifest is an orphan the
//!   load ignores and the next save removes;
//! - a full save renames the new base over the dump before it writes a
//!   manifest naming it; a crash in between leaves a manifest whose base
//!   length and CRC no longer match the dump, so the load takes the dump
//!   alone, which already holds everything (deltas only ever add to a base).
//!
//! Loading reads the base, then verifies and decodes every delta the manifest
//! names (length, trailer CRC, chain links) before any is applied; nothing is
//! installed until all of them are good.
//!
//! A save rewrites the whole base instead (compaction) when there is no
//! saved version (first save, after a start-up from a Redis RDB, after the
//! saved version was dropped to free memory), when the deltas already exceed
//! `incremental-snapshot-max-delta-ratio` of the base's bytes, when the
//! changes exceed that ratio of the keys, on `BGSAVE FULL`, and when the dump
//! path changed.

pub mod delta;
pub mod manifest;

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use crate::keyspace::encodings::Encodings;
use crate::keyspace::Keyspace;
use crate::persistence::loader::{self, Loaded};
use crate::persistence::writer::{self, Progress, SaveError, SaveStats};
use delta::{Changes, Link};
pub use manifest::{FileRef, Manifest};

/// The saved version kept for the next delta, and the chain it is on disk.
#[derive(Debug, Clone)]
pub struct Saved {
    pub keyspace: Keyspace,
    pub chain: Manifest,
    /// The dump path the chain belongs to.
    pub dump: PathBuf,
}

/// How a save is to be written.
pub struct SavePlan {
    /// The saved version to diff against; `None` writes a full base.
    pub saved: Option<Saved>,
    /// Keep the chain (incremental snapshots on): write a manifest and hand
    /// back the new saved version.
    pub incremental: bool,
    pub max_delta_ratio: f64,
}

/// What a save did.
#[derive(Debug)]
pub struct SaveDone {
    pub stats: SaveStats,
    /// Whether it wrote a delta rather than a whole base.
    pub delta: bool,
    /// The new saved version, when incremental snapshots are on.
    pub saved: Option<Saved>,
}

/// The manifest beside a dump file.
pub fn manifest_path(dump: &Path) -> PathBuf {
    let mut name = dump.file_name().unwrap_or_default().to_os_string();
    name.push(".chain");
    dump.with_file_name(name)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Saves `snapshot` to `dump`: a delta when the plan allows and pays, a full
/// base otherwise. The files of the previous chain stay valid until the
/// manifest naming the new one is in place.
pub fn save(
    snapshot: &Keyspace,
    dump: &Path,
    now_ms: i64,
    progress: &Progress,
    mut plan: SavePlan,
) -> Result<SaveDone, SaveError> {
    if plan.incremental && file_name(dump).contains(['\n', '\r']) {
        // A manifest line could not name it.
        tracing::warn!(
            "incremental snapshots need a dump file name without line breaks; saving in full"
        );
        plan.incremental = false;
    }
    if plan.incremental {
        let intact = |s: &&Saved| s.dump == dump && chain_intact(dump, &s.chain);
        if let Some(saved) = plan.saved.as_ref().filter(intact) {
            let base_too_big = saved.chain.delta_bytes() as f64
                >= plan.max_delta_ratio * saved.chain.base.len as f64;
            if !base_too_big {
                let changes = Changes::between(snapshot, &saved.keyspace);
                let limit = plan.max_delta_ratio * saved.keyspace.key_count().max(1) as f64;
                if (changes.len() as f64) <= limit {
                    return save_delta(snapshot, dump, now_ms, progress, saved, &changes);
                }
            }
        }
    }
    save_full(snapshot, dump, now_ms, progress, plan.incremental)
}

fn save_full(
    snapshot: &Keyspace,
    dump: &Path,
    now_ms: i64,
    progress: &Progress,
    incremental: bool,
) -> Result<SaveDone, SaveError> {
    let stats = writer::save_to(snapshot, dump, now_ms, progress)?;
    let manifest_file = manifest_path(dump);
    let saved = if incremental {
        let (len, crc) = read_trailer(dump).map_err(|source| SaveError::Write {
            path: dump.to_path_buf(),
            source,
        })?;
        let chain = Manifest {
            base: FileRef {
                name: file_name(dump),
                len,
                crc,
            },
            deltas: Vec::new(),
        };
        write_manifest(&manifest_file, &chain)?;
        Some(Saved {
            keyspace: snapshot.clone(),
            chain,
            dump: dump.to_path_buf(),
        })
    } else {
        // The dump alone is the data set now; an old chain must not be
        // applied to it (its base CRC no longer matches, but say so plainly).
        match fs::remove_file(&manifest_file) {
            Ok(()) => sync_dir(&dir_of(dump)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot remove {}: {e}", manifest_file.display()),
        }
        None
    };
    remove_stale_deltas(dump, saved.as_ref().map(|s| &s.chain));
    Ok(SaveDone {
        stats,
        delta: false,
        saved,
    })
}

fn save_delta(
    snapshot: &Keyspace,
    dump: &Path,
    now_ms: i64,
    progress: &Progress,
    saved: &Saved,
    changes: &Changes,
) -> Result<SaveDone, SaveError> {
    let seq = saved.chain.deltas.len() as u32 + 1;
    let link = Link {
        seq,
        base_len: saved.chain.base.len,
        base_crc: saved.chain.base.crc,
        prev_crc: saved.chain.deltas.last().map_or(0, |d| d.crc),
    };
    let name = format!("{}.{:08x}.{seq}.delta", file_name(dump), link.base_crc);
    let path = dump.with_file_name(&name);
    let (len, crc) = write_durably(&path, |file| {
        delta::write(
            changes,
            link,
            now_ms,
            progress,
            BufWriter::with_capacity(256 * 1024, file),
        )
    })?;
    let mut chain = saved.chain.clone();
    chain.deltas.push(FileRef { name, len, crc });
    write_manifest(&manifest_path(dump), &chain)?;
    tracing::info!(
        "Incremental save: delta {seq} of {} keys set or changed and {} removed, {len} bytes (chain: {} files, {} bytes)",
        changes.set.key_count(),
        changes.removed.len(),
        chain.deltas.len() + 1,
        chain.total_bytes()
    );
    Ok(SaveDone {
        stats: SaveStats {
            keys: snapshot.key_count() as u64,
            bytes: len,
        },
        delta: true,
        saved: Some(Saved {
            keyspace: snapshot.clone(),
            chain,
            dump: dump.to_path_buf(),
        }),
    })
}

/// Writes `path` through a temp file in its directory: written, fsynced,
/// renamed into place, directory fsynced. On error the temp file is removed
/// and `path` is untouched. `write` returns the length and trailer CRC.
fn write_durably(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<(u64, u32), SaveError>,
) -> Result<(u64, u32), SaveError> {
    let temp = path.with_file_name(format!("temp-{}-{}", std::process::id(), file_name(path)));
    let result = (|| {
        let mut file = File::create(&temp).map_err(|source| SaveError::Create {
            path: temp.clone(),
            source,
        })?;
        let out = write(&mut file).map_err(|e| match e {
            SaveError::Write { source, .. } => SaveError::Write {
                path: temp.clone(),
                source,
            },
            other => other,
        })?;
        file.sync_all().map_err(|source| SaveError::Write {
            path: temp.clone(),
            source,
        })?;
        fs::rename(&temp, path).map_err(|source| SaveError::Rename {
            from: temp.clone(),
            to: path.to_path_buf(),
            source,
        })?;
        sync_dir(&dir_of(path));
        Ok(out)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_manifest(path: &Path, chain: &Manifest) -> Result<(), SaveError> {
    let text = chain.encode();
    write_durably(path, |file| {
        use std::io::Write;
        file.write_all(text.as_bytes())
            .map_err(|source| SaveError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        Ok((text.len() as u64, 0))
    })
    .map(|_| ())
}

fn sync_dir(dir: &Path) {
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!("could not fsync directory {}: {e}", dir.display());
    }
}

/// Removes delta files of this dump that `keep` does not name (those of an
/// older chain, or orphans a crash left behind).
fn remove_stale_deltas(dump: &Path, keep: Option<&Manifest>) {
    let prefix = format!("{}.", file_name(dump));
    let Ok(entries) = fs::read_dir(dir_of(dump)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_delta = name.starts_with(&prefix) && name.ends_with(".delta");
        let kept = keep.is_some_and(|m| m.deltas.iter().any(|d| d.name == name));
        if is_delta && !kept {
            if let Err(e) = fs::remove_file(entry.path()) {
                tracing::warn!("cannot remove stale delta {name}: {e}");
            }
        }
    }
}

/// Whether the chain's files are still on disk as the chain says (the base
/// with its length and CRC, each delta with its length). A directory removed
/// or a dump replaced behind the server's back makes the next save a full one.
fn chain_intact(dump: &Path, chain: &Manifest) -> bool {
    let base_ok = read_trailer(dump).is_ok_and(|t| t == (chain.base.len, chain.base.crc));
    let deltas_ok = chain
        .deltas
        .iter()
        .all(|d| fs::metadata(dump.with_file_name(&d.name)).is_ok_and(|m| m.len() == d.len));
    let manifest_ok = Manifest::read(&manifest_path(dump)).is_ok_and(|m| m.as_ref() == Some(chain));
    if !(base_ok && deltas_ok && manifest_ok) {
        tracing::warn!(
            "The snapshot chain of {} changed on disk; saving in full",
            dump.display()
        );
    }
    base_ok && deltas_ok && manifest_ok
}

/// A file's length and the CRC32 its trailer holds (the last four bytes).
fn read_trailer(path: &Path) -> io::Result<(u64, u32)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len < 4 {
        return Ok((len, 0));
    }
    file.seek(SeekFrom::End(-4))?;
    let mut crc = [0u8; 4];
    file.read_exact(&mut crc)?;
    Ok((len, u32::from_le_bytes(crc)))
}

/// A loaded data set and the chain it came from.
pub struct LoadedChain {
    pub loaded: Loaded,
    /// The chain on disk (base only when there is no manifest or it named
    /// another base).
    pub chain: Manifest,
    /// Deltas applied.
    pub deltas: usize,
}

/// Applies the chain the manifest beside `dump` names to `loaded` (the base,
/// already read from `dump`). Every delta is verified before any is applied;
/// an error names the file, the offset and the reason, and changes nothing.
pub fn apply_chain(
    dump: &Path,
    mut loaded: Loaded,
    databases: usize,
    limits: Encodings,
    now_ms: i64,
) -> Result<LoadedChain, String> {
    let (len, crc) =
        read_trailer(dump).map_err(|e| format!("cannot read {}: {e}", dump.display()))?;
    let base = FileRef {
        name: file_name(dump),
        len,
        crc,
    };
    let base_only = |loaded| LoadedChain {
        loaded,
        chain: Manifest {
            base: base.clone(),
            deltas: Vec::new(),
        },
        deltas: 0,
    };
    let manifest_file = manifest_path(dump);
    let Some(manifest) = Manifest::read(&manifest_file)? else {
        return Ok(base_only(loaded));
    };
    if manifest.base != base {
        tracing::warn!(
            "Chain manifest {} names another base than {} (a full save replaced it, or the file was replaced); loading the dump alone",
            manifest_file.display(),
            dump.display()
        );
        return Ok(base_only(loaded));
    }
    let mut deltas = Vec::with_capacity(manifest.deltas.len());
    let mut prev_crc = 0;
    for (i, file) in manifest.deltas.iter().enumerate() {
        let path = dump.with_file_name(&file.name);
        let refuse = |why: String| format!("cannot load delta {}: {why}", path.display());
        let d = delta::read(&path, databases, limits).map_err(|e| refuse(e.to_string()))?;
        let (actual_len, actual_crc, _) =
            delta::trailer_check(&path).map_err(|e| refuse(e.to_string()))?;
        if (actual_len, actual_crc) != (file.len, file.crc) {
            return Err(refuse(format!(
                "length {actual_len} and CRC {actual_crc:08x} differ from the manifest's {} and {:08x}",
                file.len, file.crc
            )));
        }
        let expected = Link {
            seq: i as u32 + 1,
            base_len: base.len,
            base_crc: base.crc,
            prev_crc,
        };
        if d.link != expected {
            return Err(refuse(format!(
                "chain link {:?} where {:?} was expected (offset 12)",
                d.link, expected
            )));
        }
        prev_crc = file.crc;
        deltas.push(d);
    }
    let applied = deltas.len();
    for d in deltas {
        apply(&mut loaded, d, now_ms);
    }
    Ok(LoadedChain {
        loaded,
        chain: manifest,
        deltas: applied,
    })
}

/// Applies one verified delta: removed keys go, set keys replace their old
/// version (or go, if their time has run out).
fn apply(loaded: &mut Loaded, d: delta::Delta, now_ms: i64) {
    let ks = &mut loaded.keyspace;
    for (db, key) in &d.removed {
        if ks.db_mut(*db as usize).delete(key) {
            loaded.keys_loaded = loaded.keys_loaded.saturating_sub(1);
        }
    }
    for (i, db) in d.set.dbs().iter().enumerate() {
        for record in db.records() {
            let target = ks.db_mut(i);
            if target.delete(record.key()) {
                loaded.keys_loaded = loaded.keys_loaded.saturating_sub(1);
            }
            if record.is_expired(now_ms) {
                loaded.keys_expired += 1;
            } else {
                target.insert_record(record.clone());
                loaded.keys_loaded += 1;
            }
        }
    }
    ks.set_functions(d.set.functions().to_vec());
}

/// Loads the dump at `path` and the chain beside it (DEBUG RELOAD, tests).
pub fn load_file(
    path: &Path,
    databases: usize,
    limits: Encodings,
    now_ms: i64,
) -> Result<LoadedChain, String> {
    let loaded = loader::load_file_with(path, Some(databases), now_ms, limits)
        .map_err(|e| format!("cannot load snapshot {}: {e}", path.display()))?;
    apply_chain(path, loaded, databases, limits, now_ms)
}

#[cfg(test)]
mod tests;
