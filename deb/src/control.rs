//! The `control` file: rendering it from a [`PackageSpec`] and parsing one back.

use std::fmt::Write as _;

use crate::PackageSpec;

/// Renders the binary control paragraph, fields in dpkg-gencontrol's order.
pub(crate) fn render(spec: &PackageSpec, installed_size_kib: u64) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: &str| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{name}: {value}");
    };
    field("Package", &spec.name);
    field("Version", &spec.version);
    field("Architecture", &spec.architecture);
    field("Maintainer", &spec.maintainer);
    field("Installed-Size", &installed_size_kib.to_string());
    for (name, entries) in spec.relations.fields() {
        if !entries.is_empty() {
            let entries: Vec<&str> = entries.iter().map(|e| e.trim()).collect();
            field(name, &entries.join(", "));
        }
    }
    if let Some(section) = &spec.section {
        field("Section", section);
    }
    if let Some(priority) = &spec.priority {
        field("Priority", priority);
    }
    if let Some(homepage) = &spec.homepage {
        field("Homepage", homepage);
    }
    field("Description", &format_description(&spec.description));
    out
}

/// The Description value: the synopsis, then each extended line indented by one space,
/// empty lines written as ` .` (policy 5.6.13). Trailing empty lines are dropped.
fn format_description(description: &str) -> String {
    let mut lines = description.lines();
    let mut out = lines.next().unwrap_or("").trim().to_owned();
    let extended: Vec<&str> = lines.map(str::trim_end).collect();
    let end = extended
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    for line in &extended[..end] {
        out.push_str("\n ");
        out.push_str(if line.is_empty() { "." } else { line });
    }
    out
}

/// Parses a control paragraph into `(field, value)` pairs in file order.
///
/// Continuation lines are kept in the value after a newline, with their leading space,
/// as `dpkg-deb --field` prints them. Returns the offending line on a syntax error.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = fields.last_mut() else {
                return Err(format!("continuation line before any field: `{line}`"));
            };
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("line without `Field: value`: `{line}`"));
        };
        fields.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_in_order_with_extended_description() {
        let mut spec = PackageSpec {
            name: "hello".into(),
            version: "1.0".into(),
            architecture: "amd64".into(),
            maintainer: "Ops <ops@example.com>".into(),
            description: "says hello\nIt answers.\n\nTwice.  \n\n".into(),
            section: Some("net".into()),
            priority: Some("optional".into()),
            ..PackageSpec::default()
        };
        spec.relations.depends = vec!["libc6 (>= 2.36)".into(), "procps".into()];
        spec.relations.conflicts = vec!["hello-old".into()];
        let text = render(&spec, 42);
        assert_eq!(
            text,
            "Package: hello\nVersion: 1.0\nArchitecture: amd64\nMaintainer: Ops <ops@example.com>\n\
             Installed-Size: 42\nDepends: libc6 (>= 2.36), procps\nConflicts: hello-old\n\
             Section: net\nPriority: optional\n\
             Description: says hello\n It answers.\n .\n Twice.\n"
        );
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed[0], ("Package".into(), "hello".into()));
        assert_eq!(
            parsed.last().unwrap().1,
            "says hello\n It answers.\n .\n Twice."
        );
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(parse(" starts with a continuation").is_err());
        assert!(parse("no colon here").is_err());
    }
}
