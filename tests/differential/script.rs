//! The corpus line syntax: one command per line, redis-cli-like words with
//! quoting for binary data, optionally preceded by one comparison directive.
//!
//! ```text
//! # comment
//! SET "k\x00\r\n" 'single quoted'      exact comparison (the default)
//! SET big $rep(1048576,ab)             a word of `ab` repeated to 1048576 bytes
//! @unordered SMEMBERS s                elements compared as a multiset
//! @pairs HGETALL h                     flat field/value pairs as a multiset
//!                                      (for a scan page: cursor exact, then
//!                                      the page's elements as a multiset)
//! @scan SSCAN s 0 COUNT 2              full iteration; the union is compared
//! @random SPOP s 2                     properties only, then state resynced
//! @approx 1 TTL k                      integers within 1 (negatives exact)
//! @shape HELLO 3                       same reply types and map keys only
//! @differs scan-cursor SCAN 7 COUNT 2
//!                                      a documented difference: must differ
//! @sleep 50                            both servers' clocks move on
//! @send BLPOP q 5                      send without reading (it blocks)
//! @other RPUSH q a                     run on a second connection, compare
//! @recv                                read and compare the @send's reply
//! @requires swapdb                     (file level) skip the file unless the
//!                                      command table has these commands
//! ```

/// How a line's two replies are compared.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Exact,
    Unordered,
    Pairs,
    Scan,
    Random,
    Approx(i64),
    Shape,
    Differs(String),
}

#[derive(Debug, Clone)]
pub enum Step {
    Command {
        mode: Mode,
        args: Vec<Vec<u8>>,
    },
    Sleep(u64),
    /// Sends without reading the reply (a command that blocks).
    Send(Vec<Vec<u8>>),
    /// Reads the reply to the last `Send` and compares it.
    Recv,
    /// Runs a command on a second connection to each server.
    Other {
        mode: Mode,
        args: Vec<Vec<u8>>,
    },
}

#[derive(Debug, Clone)]
pub struct Line {
    pub step: Step,
    /// `file:line` for messages.
    pub at: String,
    pub text: String,
}

#[derive(Debug)]
pub struct Script {
    pub name: String,
    pub requires: Vec<String>,
    pub lines: Vec<Line>,
}

/// Parses a whole file; errors name the line.
pub fn parse(name: &str, text: &str) -> Result<Script, String> {
    let mut script = Script {
        name: name.to_string(),
        requires: Vec::new(),
        lines: Vec::new(),
    };
    for (i, raw) in text.lines().enumerate() {
        let at = format!("{name}:{}", i + 1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = split(line).map_err(|e| format!("{at}: {e}"))?;
        let first = String::from_utf8_lossy(&words[0]).into_owned();
        let take_arg = |words: &mut Vec<Vec<u8>>| -> Result<String, String> {
            if words.len() < 2 {
                return Err(format!("{at}: {first} needs an argument"));
            }
            Ok(String::from_utf8_lossy(&words.remove(1)).into_owned())
        };
        let mode = match first.as_str() {
            "@requires" => {
                script.requires.extend(
                    words[1..]
                        .iter()
                        .map(|w| String::from_utf8_lossy(w).to_lowercase()),
                );
                continue;
            }
            "@sleep" => {
                let ms = take_arg(&mut words)?
                    .parse()
                    .map_err(|_| format!("{at}: bad @sleep"))?;
                script.lines.push(Line {
                    step: Step::Sleep(ms),
                    at,
                    text: line.to_string(),
                });
                continue;
            }
            "@send" | "@recv" | "@other" => {
                words.remove(0);
                let step = match first.as_str() {
                    "@send" if !words.is_empty() => Step::Send(words),
                    "@recv" if words.is_empty() => Step::Recv,
                    "@other" if !words.is_empty() => Step::Other {
                        mode: Mode::Exact,
                        args: words,
                    },
                    _ => return Err(format!("{at}: bad {first}")),
                };
                script.lines.push(Line {
                    step,
                    at,
                    text: line.to_string(),
                });
                continue;
            }
            "@unordered" => Mode::Unordered,
            "@pairs" => Mode::Pairs,
            "@scan" => Mode::Scan,
            "@random" => Mode::Random,
            "@shape" => Mode::Shape,
            "@approx" => Mode::Approx(
                take_arg(&mut words)?
                    .parse()
                    .map_err(|_| format!("{at}: bad @approx"))?,
            ),
            "@differs" => Mode::Differs(take_arg(&mut words)?),
            d if d.starts_with('@') => return Err(format!("{at}: unknown directive {d}")),
            _ => Mode::Exact,
        };
        if mode != Mode::Exact {
            words.remove(0);
        }
        if words.is_empty() {
            return Err(format!("{at}: no command"));
        }
        script.lines.push(Line {
            step: Step::Command { mode, args: words },
            at,
            text: line.to_string(),
        });
    }
    Ok(script)
}

/// Splits a line into words: bare, "double quoted" with redis-cli escapes
/// (`\xHH \n \r \t \a \b \" \\`), 'single quoted' (only `\'`), or
/// `$rep(N,text)` for `text` repeated to N bytes.
pub fn split(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut word = Vec::new();
        match b[i] {
            b'"' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("unterminated \"".into()),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            let c = *b.get(i + 1).ok_or("dangling \\")?;
                            i += 1;
                            match c {
                                b'n' => word.push(b'\n'),
                                b'r' => word.push(b'\r'),
                                b't' => word.push(b'\t'),
                                b'a' => word.push(7),
                                b'b' => word.push(8),
                                b'x' => {
                                    let hex = line.get(i + 1..i + 3).ok_or("short \\x")?;
                                    word.push(
                                        u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?,
                                    );
                                    i += 2;
                                }
                                c => word.push(c),
                            }
                        }
                        Some(&c) => word.push(c),
                    }
                    i += 1;
                }
                i += 1;
            }
            b'\'' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("unterminated '".into()),
                        Some(b'\'') => break,
                        Some(b'\\') if b.get(i + 1) == Some(&b'\'') => {
                            word.push(b'\'');
                            i += 1;
                        }
                        Some(&c) => word.push(c),
                    }
                    i += 1;
                }
                i += 1;
            }
            _ => {
                let start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                let bare = &line[start..i];
                word = match bare.strip_prefix("$rep(").and_then(|r| r.strip_suffix(')')) {
                    Some(spec) => {
                        let (n, text) = spec.split_once(',').ok_or("bad $rep")?;
                        let n: usize = n.parse().map_err(|_| "bad $rep count")?;
                        text.bytes().cycle().take(n).collect()
                    }
                    None => bare.as_bytes().to_vec(),
                };
            }
        }
        if i < b.len() && !b[i].is_ascii_whitespace() {
            return Err(format!("garbage after a quoted word at byte {i}"));
        }
        out.push(word);
    }
    Ok(out)
}

/// The corpus form of a command (inverse of [`split`] for printing).
pub fn render(mode: &Mode, args: &[Vec<u8>]) -> String {
    let prefix = match mode {
        Mode::Exact => String::new(),
        Mode::Unordered => "@unordered ".into(),
        Mode::Pairs => "@pairs ".into(),
        Mode::Scan => "@scan ".into(),
        Mode::Random => "@random ".into(),
        Mode::Shape => "@shape ".into(),
        Mode::Approx(n) => format!("@approx {n} "),
        Mode::Differs(t) => format!("@differs {t} "),
    };
    let words: Vec<String> = args.iter().map(|a| super::resp::quote(a)).collect();
    prefix + &words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        assert_eq!(
            split(r#"SET "a\x00\r\n b" 'it\'s' plain "" "#).unwrap(),
            vec![
                b"SET".to_vec(),
                b"a\0\r\n b".to_vec(),
                b"it's".to_vec(),
                b"plain".to_vec(),
                b"".to_vec()
            ]
        );
        assert_eq!(split("$rep(5,ab)").unwrap(), vec![b"ababa".to_vec()]);
        assert!(split("\"open").is_err());
        let args = split(r#"SET "\xff\"\\" x"#).unwrap();
        assert_eq!(split(&render(&Mode::Exact, &args)).unwrap(), args);
    }
}
