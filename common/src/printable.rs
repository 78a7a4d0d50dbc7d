//! Text from outside (mapping files, message bodies, registry answers) made safe to show on
//! a terminal: control characters and the bidirectional overrides that can make a line read
//! differently from what it holds are written as escapes; everything else is kept.

use std::borrow::Cow;

/// Unicode's bidirectional formatting characters (embeddings, overrides, isolates, marks).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// `s` with control and bidi characters escaped (`\u{1b}`, `\u{202e}`); borrowed when
/// there is nothing to escape.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_the_rest_kept() {
        assert!(matches!(printable("quay.io/a/b:1 \"é\""), Cow::Borrowed(_)));
        assert_eq!(printable("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(printable("tag\u{202e}1"), "tag\\u{202e}1");
        assert_eq!(printable("x\ny"), "x\\u{a}y");
    }
}
