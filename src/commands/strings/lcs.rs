//! LCS: the longest common subsequence of two strings, as Redis 7.0 answers
//! it: the subsequence itself, its LEN, or with IDX the matching ranges
//! (newest first, as found walking back from the strings' ends), filtered by
//! MINMATCHLEN and with WITHMATCHLEN their lengths.

use bytes::Bytes;

use super::super::args;
use super::super::Ctx;
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::Value;
use crate::reply::Reply;

/// The largest dynamic-programming table LCS builds (Redis tries to allocate
/// any size and answers an error when it cannot; a bound keeps an operator's
/// typo from exhausting memory).
const MAX_TABLE_BYTES: u64 = 4 << 30;

struct Options {
    idx: bool,
    len: bool,
    with_match_len: bool,
    min_match_len: u64,
}

fn parse_options(opts: &[Bytes]) -> Result<Options, CommandError> {
    let mut o = Options {
        idx: false,
        len: false,
        with_match_len: false,
        min_match_len: 0,
    };
    let mut i = 0;
    while i < opts.len() {
        let opt = &opts[i];
        if args::is(opt, "idx") {
            o.idx = true;
        } else if args::is(opt, "len") {
            o.len = true;
        } else if args::is(opt, "withmatchlen") {
            o.with_match_len = true;
        } else if args::is(opt, "minmatchlen") && i + 1 < opts.len() {
            let n = args::parse_i64_strict(&opts[i + 1]).ok_or(CommandError::NotInteger)?;
            o.min_match_len = n.max(0) as u64;
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if o.idx && o.len {
        return Err(CommandError::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    Ok(o)
}

/// A string key's bytes: empty when missing.
fn string_of(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Bytes, CommandError> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now).map(|e| &e.value) {
        None => Ok(Bytes::new()),
        Some(Value::Str(s)) => Ok(s.clone()),
        Some(_) => Err(CommandError::err(
            "The specified keys must contain string values",
        )),
    }
}

/// `table[i][j]`: the LCS length of `a[..i]` and `b[..j]`, row-major.
struct Table {
    cols: usize,
    cells: Vec<u32>,
}

impl Table {
    fn build(a: &[u8], b: &[u8]) -> Result<Table, CommandError> {
        let (rows, cols) = (a.len() + 1, b.len() + 1);
        let cells = (rows as u64) * (cols as u64);
        let mut v = Vec::new();
        if cells * 4 > MAX_TABLE_BYTES || v.try_reserve_exact(cells as usize).is_err() {
            return Err(CommandError::err(
                "Insufficient memory, failed allocating transient memory for LCS",
            ));
        }
        v.resize(cells as usize, 0u32);
        let mut t = Table { cols, cells: v };
        for i in 1..rows {
            for j in 1..cols {
                let here = if a[i - 1] == b[j - 1] {
                    t.at(i - 1, j - 1) + 1
                } else {
                    t.at(i - 1, j).max(t.at(i, j - 1))
                };
                t.cells[i * cols + j] = here;
            }
        }
        Ok(t)
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.cols + j]
    }
}

/// One matching range: positions in `a` and in `b`, inclusive.
struct Range {
    a: (usize, usize),
    b: (usize, usize),
}

impl Range {
    fn len(&self) -> usize {
        self.a.1 - self.a.0 + 1
    }
}

/// Walks back from both ends: the subsequence and its maximal runs of
/// positions adjacent in both strings, last run first.
fn walk(t: &Table, a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<Range>) {
    let (mut i, mut j) = (a.len(), b.len());
    let mut seq = vec![0u8; t.at(i, j) as usize];
    let mut k = seq.len();
    let mut ranges = Vec::new();
    let mut run: Option<Range> = None;
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            k -= 1;
            seq[k] = a[i - 1];
            match run.as_mut() {
                // The walk moves diagonally: the run grows backwards.
                Some(r) => {
                    r.a.0 = i - 1;
                    r.b.0 = j - 1;
                }
                None => {
                    run = Some(Range {
                        a: (i - 1, i - 1),
                        b: (j - 1, j - 1),
                    })
                }
            }
            i -= 1;
            j -= 1;
            if i == 0 || j == 0 {
                ranges.extend(run.take());
            }
        } else {
            if t.at(i - 1, j) > t.at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
            ranges.extend(run.take());
        }
    }
    (seq, ranges)
}

pub fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Both keys are read (and their type checked) before the options, as in Redis.
    let a = string_of(ctx, &args[1]);
    let b = string_of(ctx, &args[2]);
    let (a, b) = (a?, b?);
    let o = parse_options(&args[3..])?;
    let t = Table::build(&a, &b)?;
    let total = t.at(a.len(), b.len()) as i64;
    if o.len {
        return Ok(Reply::Integer(total));
    }
    let (seq, ranges) = walk(&t, &a, &b);
    if !o.idx {
        return Ok(Reply::Bulk(Bytes::from(seq)));
    }
    let matches = ranges
        .iter()
        .filter(|r| o.min_match_len == 0 || r.len() as u64 >= o.min_match_len)
        .map(|r| {
            let pair = |p: (usize, usize)| {
                Reply::Array(vec![Reply::Integer(p.0 as i64), Reply::Integer(p.1 as i64)])
            };
            let mut item = vec![pair(r.a), pair(r.b)];
            if o.with_match_len {
                item.push(Reply::Integer(r.len() as i64));
            }
            Reply::Array(item)
        })
        .collect();
    Ok(Reply::Map(vec![
        (Reply::bulk_str("matches"), Reply::Array(matches)),
        (Reply::bulk_str("len"), Reply::Integer(total)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsequence_and_runs() {
        let (a, b) = (b"ohmytext", b"mynewtext");
        let t = Table::build(a, b).unwrap();
        assert_eq!(t.at(a.len(), b.len()), 6);
        let (seq, ranges) = walk(&t, a, b);
        assert_eq!(seq, b"mytext");
        let got: Vec<_> = ranges.iter().map(|r| (r.a, r.b, r.len())).collect();
        assert_eq!(got, vec![((4, 7), (5, 8), 4), ((2, 3), (0, 1), 2)]);
    }

    #[test]
    fn empty_inputs() {
        let t = Table::build(b"", b"abc").unwrap();
        let (seq, ranges) = walk(&t, b"", b"abc");
        assert!(seq.is_empty() && ranges.is_empty());
    }
}
