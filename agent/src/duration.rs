//! Serde helpers for human-readable durations (`"10s"`, `"500ms"`, `"1m 30s"`), parsed with
//! `humantime`. Use as `#[serde(deserialize_with = "duration::deserialize")]` (or `duration::option::deserialize`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a human-readable duration string; the error names the value and gives examples.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|err| {
        format!("`{text}` is not a duration ({err}); write e.g. \"10s\", \"500ms\" or \"2m\"")
    })
}

/// The same for `Option<Duration>` fields (absent → `None`).
pub mod option {
    use super::*;

    /// Parses an optional human-readable duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|t| parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
