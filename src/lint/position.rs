//! Pure: the line on which each JSON value starts. serde_json keeps no spans, so this small scanner walks the
//! text once and records every value's path, written as the scanner in [`crate::scan`] writes it
//! (`properties.typeProperties.password`, `resources[3].name`).

use std::collections::HashMap;

/// Deeper than serde_json's own recursion limit, so every document it parses is mapped in full.
const MAX_DEPTH: usize = 160;

/// The start line (1-based) of every value in one JSON document.
#[derive(Debug, Default, Clone)]
pub struct Lines {
    starts: HashMap<String, u32>,
}

impl Lines {
    /// Maps a document that serde_json has already parsed; on anything unexpected it keeps what it has.
    pub fn of(text: &str) -> Lines {
        let mut scanner = Scanner {
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            starts: HashMap::new(),
        };
        let mut path = String::new();
        scanner.value(&mut path, 0);
        Lines {
            starts: scanner.starts,
        }
    }

    /// The line of the value at `path`, or of its nearest ancestor that was recorded, or 1.
    pub fn line(&self, path: &str) -> u32 {
        let mut path = path;
        loop {
            if let Some(line) = self.starts.get(path) {
                return *line;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.starts.get("").copied().unwrap_or(1),
            }
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    starts: HashMap<String, u32>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => return,
            }
            self.pos += 1;
        }
    }

    /// Scans one value; returns false when the text is not as expected, to stop.
    fn value(&mut self, path: &mut String, depth: usize) -> bool {
        self.skip_whitespace();
        if depth > MAX_DEPTH {
            return false;
        }
        // A later duplicate key wins in serde_json, so it wins here too.
        self.starts.insert(path.clone(), self.line);
        match self.peek() {
            Some(b'{') => self.object(path, depth),
            Some(b'[') => self.array(path, depth),
            Some(b'"') => self.string().is_some(),
            Some(_) => {
                let start = self.pos;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    self.pos += 1;
                }
                // No scalar here (`[}`): stop rather than loop on the same byte.
                self.pos > start
            }
            None => false,
        }
    }

    fn object(&mut self, path: &mut String, depth: usize) -> bool {
        self.pos += 1;
        let len = path.len();
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return true;
                }
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                Some(b'"') => {}
                _ => return false,
            }
            let Some(key) = self.string() else {
                return false;
            };
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return false;
            }
            self.pos += 1;
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
            let ok = self.value(path, depth + 1);
            path.truncate(len);
            if !ok {
                return false;
            }
        }
    }

    fn array(&mut self, path: &mut String, depth: usize) -> bool {
        self.pos += 1;
        let len = path.len();
        let mut index = 0usize;
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    return true;
                }
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                None => return false,
                Some(_) => {}
            }
            path.push_str(&format!("[{index}]"));
            let ok = self.value(path, depth + 1);
            path.truncate(len);
            if !ok {
                return false;
            }
            index += 1;
        }
    }

    /// Scans a string and returns it decoded (escapes and all), as serde_json would.
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        self.pos += 1;
        while let Some(b) = self.peek() {
            match b {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    let raw = std::str::from_utf8(self.bytes.get(start..self.pos)?).ok()?;
                    return serde_json::from_str(raw).ok();
                }
                b'\n' => return None,
                _ => self.pos += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{
  "name": "SalesSql",
  "properties": {
    "type": "AzureSqlDatabase",
    "typeProperties": {
      "password": {
        "type": "AzureKeyVaultSecret",
        "secretName": "sql-password",
        "secret\"Version": "v1"
      },
      "list": [
        1,
        {"a": 2}
      ]
    }
  }
}"#;

    #[test]
    fn each_value_maps_to_the_line_it_starts_on() {
        let lines = Lines::of(TEXT);
        assert_eq!(lines.line(""), 1);
        assert_eq!(lines.line("name"), 2);
        assert_eq!(lines.line("properties.typeProperties.password"), 6);
        assert_eq!(
            lines.line("properties.typeProperties.password.secretName"),
            8
        );
        assert_eq!(
            lines.line("properties.typeProperties.password.secret\"Version"),
            9
        );
        assert_eq!(lines.line("properties.typeProperties.list[0]"), 12);
        assert_eq!(lines.line("properties.typeProperties.list[1].a"), 13);
    }

    #[test]
    fn an_unknown_path_falls_back_to_its_nearest_ancestor() {
        let lines = Lines::of(TEXT);
        assert_eq!(
            lines.line("properties.typeProperties.password.secretVersion"),
            6
        );
        assert_eq!(lines.line("nowhere.at.all"), 1);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for text in [
            "",
            "{",
            "[[[[",
            "{\"a\"",
            "{\"a\":",
            "\"\\",
            "{\"a\" 1}",
            "[1,,]",
            "[}",
            "{\"a\":}",
        ] {
            let _ = Lines::of(text);
        }
        let deep = "[".repeat(10_000);
        let _ = Lines::of(&deep);
    }
}
