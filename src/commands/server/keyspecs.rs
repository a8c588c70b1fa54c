//! Key specs, tips and subcommand descriptions as Redis 7.0 reports them,
//! for the commands whose COMMAND INFO the generic derivation (read or
//! write flags, index-based key positions) does not give right: the stream
//! commands. XREAD and XREADGROUP find their keys after the STREAMS keyword;
//! the key-spec flags name what each command does to its key (XDEL
//! deletes, XGROUP CREATE inserts, XLEN only reads metadata); XGROUP's and
//! XINFO's subcommands carry their own flags and key position.

use super::super::flags::{ADMIN, DENYOOM, LOADING, NOSCRIPT, READONLY, STALE, WRITE};

/// Where the key search starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// At this argument index.
    Index(i64),
    /// After this keyword, searched from `startfrom`.
    Keyword(&'static str, i64),
}

/// One key spec: `begin_search` then a `range` find-keys step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub notes: Option<&'static str>,
    pub flags: &'static [&'static str],
    pub begin: Begin,
    pub lastkey: i64,
    pub keystep: i64,
    pub limit: i64,
}

const fn at(index: i64, flags: &'static [&'static str]) -> KeySpec {
    KeySpec {
        notes: None,
        flags,
        begin: Begin::Index(index),
        lastkey: 0,
        keystep: 1,
        limit: 0,
    }
}

const fn after_streams(startfrom: i64) -> KeySpec {
    KeySpec {
        notes: None,
        flags: &["RO", "access"],
        begin: Begin::Keyword("STREAMS", startfrom),
        lastkey: -1,
        keystep: 1,
        // The keys are the first half of what follows STREAMS.
        limit: 2,
    }
}

/// A key right after `keyword`, searched from `startfrom` (STORE key).
const fn after_keyword(
    keyword: &'static str,
    startfrom: i64,
    flags: &'static [&'static str],
) -> KeySpec {
    KeySpec {
        notes: None,
        flags,
        begin: Begin::Keyword(keyword, startfrom),
        lastkey: 0,
        keystep: 1,
        limit: 0,
    }
}

const RW_UPDATE: &[&str] = &["RW", "update"];
const OW_UPDATE: &[&str] = &["OW", "update"];
const RW_DELETE: &[&str] = &["RW", "delete"];
const RW_INSERT: &[&str] = &["RW", "insert"];
const RO_ACCESS: &[&str] = &["RO", "access"];

/// The key spec of `name` (`xgroup|create` for a subcommand), where
/// Redis's differs from the generic one.
pub fn key_spec(name: &str) -> Option<KeySpec> {
    Some(match name {
        "xadd" => KeySpec {
            notes: Some("UPDATE instead of INSERT because of the optional trimming feature"),
            ..at(1, RW_UPDATE)
        },
        "xack" | "xclaim" | "xsetid" => at(1, RW_UPDATE),
        "xautoclaim" | "xdel" | "xtrim" => at(1, RW_DELETE),
        "xlen" => at(1, &["RO"]),
        "geoadd" => at(1, RW_UPDATE),
        "xpending" | "xrange" | "xrevrange" => at(1, RO_ACCESS),
        "xread" => after_streams(1),
        "xreadgroup" => after_streams(4),
        "xgroup|create" | "xgroup|createconsumer" => at(2, RW_INSERT),
        "xgroup|delconsumer" | "xgroup|destroy" => at(2, RW_DELETE),
        "xgroup|setid" => at(2, RW_UPDATE),
        "xinfo|stream" | "xinfo|groups" | "xinfo|consumers" => at(2, RO_ACCESS),
        _ => return None,
    })
}

/// GEORADIUS's source, then its STORE and STOREDIST destinations.
const GEORADIUS_SPECS: &[KeySpec] = &[
    at(1, RO_ACCESS),
    after_keyword("STORE", 6, OW_UPDATE),
    after_keyword("STOREDIST", 6, OW_UPDATE),
];
const GEORADIUSBYMEMBER_SPECS: &[KeySpec] = &[
    at(1, RO_ACCESS),
    after_keyword("STORE", 5, OW_UPDATE),
    after_keyword("STOREDIST", 5, OW_UPDATE),
];
/// GEOSEARCHSTORE's destination, then its source.
const GEOSEARCHSTORE_SPECS: &[KeySpec] = &[at(1, OW_UPDATE), at(2, RO_ACCESS)];

/// The key specs of the commands that have more than one.
pub fn several_key_specs(name: &str) -> Option<&'static [KeySpec]> {
    Some(match name {
        "georadius" => GEORADIUS_SPECS,
        "georadiusbymember" => GEORADIUSBYMEMBER_SPECS,
        "geosearchstore" => GEOSEARCHSTORE_SPECS,
        _ => return None,
    })
}

/// Whether a key spec of `name` is found by keyword, so the legacy
/// (first, last, step) cannot give its keys (COMMAND INFO's `movablekeys`).
pub fn movable(name: &str) -> bool {
    several_key_specs(name)
        .is_some_and(|specs| specs.iter().any(|k| matches!(k.begin, Begin::Keyword(..))))
}

/// The keys `specs` find in a command line, each with its spec's flags, as
/// Redis's `getKeysUsingKeySpecs`: a keyword is searched from `startfrom`
/// up to (not including) the last argument, and its first match gives the
/// key after it; keys past the end of the line are left out.
pub fn find_keys(
    specs: &[KeySpec],
    line: &[bytes::Bytes],
) -> Vec<(usize, &'static [&'static str])> {
    let argc = line.len() as i64;
    let mut keys = Vec::new();
    for k in specs {
        let first = match k.begin {
            Begin::Index(i) => i,
            Begin::Keyword(word, from) => {
                let found = (from.max(1)..argc - 1)
                    .find(|&i| line[i as usize].eq_ignore_ascii_case(word.as_bytes()));
                match found {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
        };
        let last = first + k.lastkey.max(0);
        let mut i = first;
        while i <= last && i < argc {
            keys.push((i as usize, k.flags));
            i += k.keystep.max(1);
        }
    }
    keys
}

/// Redis's command tips for `name`.
pub fn tips(name: &str) -> &'static [&'static str] {
    match name {
        "xadd" | "xautoclaim" | "xclaim" | "xpending" | "xtrim" | "xinfo|consumers" => {
            &["nondeterministic_output"]
        }
        _ => &[],
    }
}

/// A subcommand's own flags and key position (0: no key), for the
/// containers whose subcommands differ from one another.
pub fn subcommand(container: &str, sub: &str) -> Option<(u32, i32)> {
    Some(match (container, sub) {
        ("xgroup", "create" | "createconsumer") => (WRITE | DENYOOM, 2),
        ("xgroup", "delconsumer" | "destroy" | "setid") => (WRITE, 2),
        ("xinfo", "stream" | "groups" | "consumers") => (READONLY, 2),
        ("xgroup" | "xinfo" | "cluster" | "module", "help") => (LOADING | STALE, 0),
        (
            "cluster",
            "slots" | "nodes" | "shards" | "info" | "keyslot" | "links" | "myid" | "getkeysinslot"
            | "countkeysinslot",
        ) => (STALE, 0),
        ("cluster", "reset") => (ADMIN | NOSCRIPT | STALE, 0),
        ("cluster", _) => (ADMIN | STALE, 0),
        ("module", _) => (ADMIN | NOSCRIPT, 0),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_subcommand_is_described() {
        for (container, subs) in [
            ("xgroup", crate::commands::streams::XGROUP_SUBS),
            ("xinfo", crate::commands::streams::XINFO_SUBS),
        ] {
            for sub in subs {
                let (flags, key) = subcommand(container, sub.name).expect(sub.name);
                let name = format!("{container}|{}", sub.name);
                assert_eq!(key_spec(&name).is_some(), key > 0, "{name}");
                assert_ne!(flags, 0, "{name}");
            }
        }
    }
}
