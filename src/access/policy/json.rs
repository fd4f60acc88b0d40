//! JSON as Go's `encoding/json` sees it when dockerd decodes a body: keys
//! in order with duplicates kept, matched to struct fields case-insensitively.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value that keeps object keys in order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub enum GoJson {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<GoJson>),
    Object(Vec<(String, GoJson)>),
}

impl GoJson {
    /// Go's zero value: what a field holds when the body does not set it.
    pub fn is_zero(&self) -> bool {
        match self {
            GoJson::Null | GoJson::Bool(false) => true,
            GoJson::Number(n) => *n == 0.0,
            GoJson::String(s) => s.is_empty(),
            GoJson::Array(items) => items.is_empty(),
            GoJson::Object(entries) => entries.iter().all(|(_, v)| v.is_zero()),
            GoJson::Bool(true) => false,
        }
    }
}

impl<'de> Deserialize<'de> for GoJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GoJson, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GoJson;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<GoJson, E> {
                Ok(GoJson::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<GoJson, E> {
                Ok(GoJson::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<GoJson, E> {
                Ok(GoJson::Number(n as f64))
            }
            fn visit_u64<E>(self, n: u64) -> Result<GoJson, E> {
                Ok(GoJson::Number(n as f64))
            }
            fn visit_f64<E>(self, n: f64) -> Result<GoJson, E> {
                Ok(GoJson::Number(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<GoJson, E> {
                Ok(GoJson::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<GoJson, E> {
                Ok(GoJson::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GoJson, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element()? {
                    items.push(v);
                }
                Ok(GoJson::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GoJson, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, GoJson>()? {
                    entries.push((k, v));
                }
                Ok(GoJson::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// An upper bound on the number of values in a JSON text, from one pass
/// over its bytes before any tree is built: one for the root, one per
/// object member (its `:`), and one per array element (the `[` that may
/// open the first, and each `,` inside an array).
pub fn values_bound(text: &[u8]) -> usize {
    let mut count = 1;
    let mut in_string = false;
    let mut escaped = false;
    // Whether each open container is an array; what a `,` separates.
    let mut arrays: Vec<bool> = Vec::new();
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => arrays.push(false),
            b'[' => {
                arrays.push(true);
                count += 1;
            }
            b'}' | b']' => {
                arrays.pop();
            }
            b':' => count += 1,
            b',' if arrays.last() == Some(&true) => count += 1,
            _ => {}
        }
    }
    count
}

/// Go's case folding for struct field names: ASCII case, plus the two
/// non-ASCII letters whose fold orbit reaches ASCII (KELVIN SIGN, LONG S).
pub fn fold_eq(key: &str, field: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212A}' => 'k',
        '\u{17F}' => 's',
        c => c.to_ascii_lowercase(),
    };
    key.chars().map(fold).eq(field.chars().map(fold))
}

/// A key folded as `fold_eq` folds it, into `buf`: `None` when it cannot
/// name any field (field names are ASCII, and none is this long). Looking a
/// folded key up costs a length check per field, not a character walk.
pub fn fold_key<'b>(key: &str, buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    let mut len = 0;
    for c in key.chars() {
        let folded = match c {
            '\u{212A}' => 'k',
            '\u{17F}' => 's',
            c => c.to_ascii_lowercase(),
        };
        if !folded.is_ascii() || len == buf.len() {
            return None;
        }
        buf[len] = folded as u8;
        len += 1;
    }
    Some(&buf[..len])
}

/// All values of struct field `name` in every object of `values`, in order:
/// Go merges repeated objects into one struct, so each may set the field.
pub fn field<'a>(values: &[&'a GoJson], name: &str) -> Vec<&'a GoJson> {
    let mut out = Vec::new();
    for v in values {
        if let GoJson::Object(entries) = v {
            out.extend(entries.iter().filter(|(k, _)| fold_eq(k, name)).map(|(_, v)| v));
        }
    }
    out
}

/// Go decodes a repeated array into the elements already there, so element
/// `i` is every occurrence's element `i` taken together. `None`: not arrays.
pub fn elements<'a>(values: &[&'a GoJson]) -> Option<Vec<Vec<&'a GoJson>>> {
    let mut by_index: Vec<Vec<&GoJson>> = Vec::new();
    for v in values {
        match v {
            GoJson::Null => {}
            GoJson::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if by_index.len() <= i {
                        by_index.push(Vec::new());
                    }
                    by_index[i].push(item);
                }
            }
            _ => return None,
        }
    }
    Some(by_index)
}

/// The strings of a Go `[]string`, or of a `strslice.StrSlice` (which also
/// takes a single string) when `single` is set. `None`: another type.
pub fn strings<'a>(values: &[&'a GoJson], single: bool) -> Option<Vec<&'a str>> {
    let mut out = Vec::new();
    for v in values {
        match v {
            GoJson::Null => {}
            GoJson::String(s) if single => out.push(s.as_str()),
            GoJson::Array(items) => {
                for item in items {
                    let GoJson::String(s) = item else { return None };
                    out.push(s.as_str());
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The values of a Go `string` field (null leaves it unset). `None`: another type.
pub fn texts<'a>(values: &[&'a GoJson]) -> Option<Vec<&'a str>> {
    let mut out = Vec::new();
    for v in values {
        match v {
            GoJson::Null => {}
            GoJson::String(s) => out.push(s.as_str()),
            _ => return None,
        }
    }
    Some(out)
}

/// The entries of a Go `map[string]T`, every occurrence. `None`: not objects.
pub fn entries<'a>(values: &[&'a GoJson]) -> Option<Vec<(&'a str, &'a GoJson)>> {
    let mut out = Vec::new();
    for v in values {
        match v {
            GoJson::Null => {}
            GoJson::Object(items) => out.extend(items.iter().map(|(k, v)| (k.as_str(), v))),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> GoJson {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn zero_values_are_gos() {
        for zero in [
            "null",
            "false",
            "0",
            "-0.0",
            "\"\"",
            "[]",
            "{}",
            r#"{"Type":"","Config":{}}"#,
        ] {
            assert!(parse(zero).is_zero(), "{zero}");
        }
        for set in ["true", "1", "\" \"", "[0]", r#"{"a":[0]}"#] {
            assert!(!parse(set).is_zero(), "{set}");
        }
    }

    #[test]
    fn values_are_bounded_before_parsing() {
        for text in [r#"{"a":[1,2,{"b":"x,y:[z"}]}"#, "[[[[]]]]", r#""\\",""#, "7"] {
            let parsed: Result<GoJson, _> = serde_json::from_str(text);
            let Ok(v) = parsed else { continue };
            fn count(v: &GoJson) -> usize {
                1 + match v {
                    GoJson::Array(items) => items.iter().map(count).sum(),
                    GoJson::Object(entries) => entries.iter().map(|(_, v)| count(v)).sum(),
                    _ => 0,
                }
            }
            assert!(values_bound(text.as_bytes()) >= count(&v), "{text}");
        }
        assert_eq!(values_bound(br#"{"k":"[,:]"}"#), 2);
        assert_eq!(values_bound(br#"{"a":0,"b":0,"c":[1,2]}"#), 6);
    }

    #[test]
    fn folding_matches_go() {
        let mut buf = [0; 64];
        assert_eq!(fold_key("Ho\u{17F}t\u{212A}", &mut buf), Some(&b"hostk"[..]));
        assert_eq!(fold_key("Privıleged", &mut buf), None);
        assert_eq!(fold_key(&"a".repeat(65), &mut buf), None);
        assert!(fold_eq("HOSTCONFIG", "HostConfig"));
        assert!(fold_eq("\u{212A}ey", "key"));
        assert!(!fold_eq("Privıleged", "Privileged"));
    }

    #[test]
    fn repeated_arrays_merge_by_index() {
        let a = parse(r#"[{"Source":"/etc"}]"#);
        let b = parse(r#"[{"Type":"bind"},{"Type":"tmpfs"}]"#);
        let by_index = elements(&[&a, &b]).unwrap();
        assert_eq!(by_index.len(), 2);
        assert_eq!(by_index[0].len(), 2);
        assert!(elements(&[&parse("{}")]).is_none());
    }
}
