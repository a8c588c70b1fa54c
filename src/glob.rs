//! Redis's glob-style pattern matching (`*`, `?`, `[...]`, `[^...]`, `\x`), as
//! used by KEYS, SCAN MATCH, CONFIG GET and PSUBSCRIBE. Byte-oriented, like
//! Redis's `stringmatchlen`.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    match_from(pattern, text, false)
}

/// Case-insensitive match (CONFIG GET).
pub fn matches_nocase(pattern: &[u8], text: &[u8]) -> bool {
    match_from(pattern, text, true)
}

enum Token<'a> {
    Star,
    Any,
    Literal(u8),
    /// A `[...]` class: its raw body (between the brackets) and negation.
    Class(&'a [u8], bool),
}

fn tokenize(mut p: &[u8]) -> Vec<Token<'_>> {
    let mut out = Vec::with_capacity(p.len());
    while let Some(&c) = p.first() {
        match c {
            b'*' => {
                if !matches!(out.last(), Some(Token::Star)) {
                    out.push(Token::Star);
                }
                p = &p[1..];
            }
            b'?' => {
                out.push(Token::Any);
                p = &p[1..];
            }
            b'\\' if p.len() >= 2 => {
                out.push(Token::Literal(p[1]));
                p = &p[2..];
            }
            b'[' => {
                let mut body = &p[1..];
                let negate = body.first() == Some(&b'^');
                if negate {
                    body = &body[1..];
                }
                // Find the closing bracket, skipping escaped characters.
                let mut i = 0;
                while i < body.len() && body[i] != b']' {
                    i += if body[i] == b'\\' && i + 1 < body.len() {
                        2
                    } else {
                        1
                    };
                }
                let consumed = (p.len() - body.len()) + (i + 1).min(body.len());
                out.push(Token::Class(&body[..i.min(body.len())], negate));
                p = &p[consumed.min(p.len())..];
            }
            _ => {
                out.push(Token::Literal(c));
                p = &p[1..];
            }
        }
    }
    out
}

fn class_matches(body: &[u8], negate: bool, c: u8, nocase: bool) -> bool {
    let mut matched = false;
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' && i + 1 < body.len() {
            matched |= eq(body[i + 1], c, nocase);
            i += 2;
        } else if i + 2 < body.len() && body[i + 1] == b'-' {
            let (mut lo, mut hi) = (body[i], body[i + 2]);
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            matched |= if nocase {
                let l = c.to_ascii_lowercase();
                (l >= lo.to_ascii_lowercase() && l <= hi.to_ascii_lowercase())
                    || (c >= lo && c <= hi)
            } else {
                c >= lo && c <= hi
            };
            i += 3;
        } else {
            matched |= eq(body[i], c, nocase);
            i += 1;
        }
    }
    matched != negate
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// Greedy matching with one backtrack point (the last `*`): O(len(p) * len(s))
/// in the worst case, so no pattern can make it run away.
fn match_from(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let tokens = tokenize(pattern);
    let (mut ti, mut si) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while si < s.len() {
        let step = match tokens.get(ti) {
            Some(Token::Star) => {
                backtrack = Some((ti, si));
                ti += 1;
                continue;
            }
            Some(Token::Any) => true,
            Some(Token::Literal(c)) => eq(*c, s[si], nocase),
            Some(Token::Class(body, negate)) => class_matches(body, *negate, s[si], nocase),
            None => false,
        };
        if step {
            ti += 1;
            si += 1;
        } else if let Some((star, from)) = backtrack {
            ti = star + 1;
            si = from + 1;
            backtrack = Some((star, from + 1));
        } else {
            return false;
        }
    }
    tokens[ti..].iter().all(|t| matches!(t, Token::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_examples() {
        assert!(matches(b"h?llo", b"hello"));
        assert!(matches(b"h*llo", b"heeeello"));
        assert!(matches(b"h*llo", b"hllo"));
        assert!(matches(b"h[ae]llo", b"hallo"));
        assert!(!matches(b"h[ae]llo", b"hillo"));
        assert!(matches(b"h[^e]llo", b"hallo"));
        assert!(!matches(b"h[^e]llo", b"hello"));
        assert!(matches(b"h[a-b]llo", b"hbllo"));
        assert!(matches(b"h[b-a]llo", b"hallo"));
        assert!(matches(b"*", b""));
        assert!(matches(b"*", b"anything"));
        assert!(!matches(b"?", b""));
        assert!(matches(b"a\\*b", b"a*b"));
        assert!(!matches(b"a\\*b", b"axb"));
        assert!(matches(b"user:*:name", b"user:42:name"));
        assert!(!matches(b"user:*:name", b"user:42:age"));
        assert!(matches(b"a**", b"a"));
    }

    #[test]
    fn nocase() {
        assert!(matches_nocase(b"MAX*", b"maxclients"));
        assert!(!matches(b"MAX*", b"maxclients"));
    }

    #[test]
    fn pathological_pattern_terminates() {
        let p = b"*a*a*a*a*a*a*a*a*a*a*a*a*b".to_vec();
        let s = vec![b'a'; 40];
        assert!(!matches(&p, &s));
    }
}
