//! A JSON syntax check that does not recurse, and the byte ranges of a top-level array's
//! elements.
//!
//! serde_json stops at 128 levels of nesting, which is right for building values but makes one
//! deeply nested element fail its whole frame. [`scan`] walks any depth with an explicit stack
//! (bounded by the frame's size), so a frame that is valid JSON can be split into its elements
//! and each element parsed, and refused, on its own.

use std::ops::Range;

/// What a frame is, once known to be valid JSON.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// A top-level array: the byte range of each element.
    Array(Vec<Range<usize>>),
    /// Any other value.
    Other,
}

/// Where and why a text is not JSON.
#[derive(Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset into the text where the scan stopped.
    pub at: usize,
    /// What was wrong there, lowercase (`unterminated string`, `expected a value`).
    pub what: &'static str,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Array,
    Object,
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn err(&self, what: &'static str) -> SyntaxError {
        SyntaxError { at: self.i, what }
    }
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), SyntaxError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }
    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }
    fn string(&mut self) -> Result<(), SyntaxError> {
        self.expect(b'"', "expected a string")?;
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return Err(self.err("bad \\u escape"));
                                }
                                self.i += 1;
                            }
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                Some(c) if c < 0x20 => return Err(self.err("control character in a string")),
                Some(_) => self.i += 1,
            }
        }
    }
    fn number(&mut self) -> Result<(), SyntaxError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        Ok(())
    }
    fn literal(&mut self, word: &'static [u8]) -> Result<(), SyntaxError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("expected a value"))
        }
    }
}

/// Checks that `text` is one JSON value (RFC 8259) at any depth; for a top-level array, returns
/// its elements' byte ranges.
pub fn scan(text: &str) -> Result<Scan, SyntaxError> {
    let mut c = Cursor { b: text.as_bytes(), i: 0 };
    let mut stack: Vec<Open> = Vec::new();
    let mut elements: Vec<Range<usize>> = Vec::new();
    let mut top_is_array = false;
    let mut element_start = 0;
    c.ws();
    'value: loop {
        // A value starts here.
        if stack.len() == 1 && top_is_array {
            element_start = c.i;
        }
        match c.peek() {
            Some(b'[') => {
                c.i += 1;
                if stack.is_empty() {
                    top_is_array = true;
                }
                stack.push(Open::Array);
                c.ws();
                if c.peek() == Some(b']') {
                    c.i += 1;
                    stack.pop();
                } else {
                    continue 'value;
                }
            }
            Some(b'{') => {
                c.i += 1;
                stack.push(Open::Object);
                c.ws();
                if c.peek() == Some(b'}') {
                    c.i += 1;
                    stack.pop();
                } else {
                    c.string()?;
                    c.ws();
                    c.expect(b':', "expected ':'")?;
                    c.ws();
                    continue 'value;
                }
            }
            Some(b'"') => c.string()?,
            Some(b'-' | b'0'..=b'9') => c.number()?,
            Some(b't') => c.literal(b"true")?,
            Some(b'f') => c.literal(b"false")?,
            Some(b'n') => c.literal(b"null")?,
            None => return Err(c.err("expected a value, found the end")),
            Some(_) => return Err(c.err("expected a value")),
        }
        // A value ended here: a separator, a closing bracket or the end follows.
        loop {
            let end = c.i;
            c.ws();
            let Some(&open) = stack.last() else {
                return if c.i == c.b.len() {
                    Ok(if top_is_array { Scan::Array(elements) } else { Scan::Other })
                } else {
                    Err(c.err("trailing characters"))
                };
            };
            let in_top_array = stack.len() == 1 && top_is_array;
            match (open, c.peek()) {
                (_, Some(b',')) => {
                    if in_top_array {
                        elements.push(element_start..end);
                    }
                    c.i += 1;
                    c.ws();
                    if open == Open::Object {
                        c.string()?;
                        c.ws();
                        c.expect(b':', "expected ':'")?;
                        c.ws();
                    }
                    continue 'value;
                }
                (Open::Array, Some(b']')) => {
                    if in_top_array {
                        elements.push(element_start..end);
                    }
                    c.i += 1;
                    stack.pop();
                }
                (Open::Object, Some(b'}')) => {
                    c.i += 1;
                    stack.pop();
                }
                _ => return Err(c.err("expected ',' or a closing bracket")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Vec<&str> {
        match scan(text).unwrap() {
            Scan::Array(r) => r.into_iter().map(|r| &text[r]).collect(),
            Scan::Other => vec!["<other>"],
        }
    }

    #[test]
    fn arrays_split_into_their_elements_at_any_depth() {
        assert_eq!(parts(r#" [ {"text":"a,]"} , 5,"x" ,[1,[2]] ] "#), [r#"{"text":"a,]"}"#, "5", "\"x\"", "[1,[2]]"]);
        assert_eq!(parts("[]"), Vec::<&str>::new());
        assert_eq!(parts(r#"{"a":[1,2]}"#), ["<other>"]);
        let deep = format!("[{}{}, 7]", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parts(&deep).len(), 2, "nesting far beyond serde_json's limit");
    }

    #[test]
    fn what_serde_json_accepts_and_refuses_agrees() {
        let cases = [
            "",
            " ",
            "[",
            "]",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{1:2}",
            "01",
            "-",
            "1.",
            "1e",
            "1e+",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"a\nb\"",
            "[1 2]",
            "{} {}",
            "[\"a\"]x",
            "-0.5e-3",
            "[true,false,null]",
            "{\"a\":{\"b\":[]},\"c\":\"\\u00e9\"}",
            "\"\\ud800\"",
            "1 ",
            "[{}]",
            "[[]]",
        ];
        for text in cases {
            let ours = scan(text).is_ok();
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            assert_eq!(ours, serde, "{text:?}: {:?}", scan(text));
        }
    }
}
