//! Serde helpers for human-readable byte sizes (`"500MiB"`, `"1 GiB"`, `"200MB"`, or a
//! plain number of bytes), parsed with `bytesize`: `KiB`/`MiB`/`GiB` are powers of 1024,
//! `KB`/`MB`/`GB` powers of 1000. Use as `#[serde(deserialize_with = "size::deserialize")]`
//! (or `size::option::deserialize`), like [`crate::duration`].

use serde::{Deserialize, Deserializer};

/// A size as written in TOML: a string with a unit, or an integer number of bytes.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Bytes(u64),
    Text(String),
}

/// Parses a human-readable size; the error names the value and gives examples.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    match Written::deserialize(deserializer)? {
        Written::Bytes(bytes) => Ok(bytes),
        Written::Text(text) => parse(&text).map_err(serde::de::Error::custom),
    }
}

/// `"500MiB"` → 524288000. The error names the value and gives examples.
pub fn parse(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|err| {
            format!("`{text}` is not a size ({err}); write e.g. \"500MiB\", \"2GiB\" or \"100MB\"")
        })
}

/// `bytes` for messages: `1.5 GiB (1610612736 bytes)`.
pub fn describe(bytes: u64) -> String {
    format!(
        "{} ({bytes} bytes)",
        bytesize::ByteSize(bytes).display().iec()
    )
}

/// The same for `Option<u64>` fields (absent → `None`).
pub mod option {
    use super::*;

    /// Parses an optional human-readable size.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        Option::<Written>::deserialize(deserializer)?
            .map(|written| match written {
                Written::Bytes(bytes) => Ok(bytes),
                Written::Text(text) => parse(&text).map_err(serde::de::Error::custom),
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_iec_and_si() {
        assert_eq!(parse("500MiB").unwrap(), 500 << 20);
        assert_eq!(parse(" 1 GiB ").unwrap(), 1 << 30);
        assert_eq!(parse("100MB").unwrap(), 100_000_000);
        assert_eq!(parse("4096").unwrap(), 4096);
        let err = parse("lots").unwrap_err();
        assert!(err.contains("`lots`") && err.contains("500MiB"), "{err}");
        assert_eq!(describe(3 << 20), "3.0 MiB (3145728 bytes)");
    }
}
