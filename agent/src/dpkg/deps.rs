//! Whether a `.deb`'s `Depends` and `Pre-Depends` are satisfied by what is installed,
//! answered with dpkg alone (fast, no apt cache): `dpkg-deb --field`, one
//! `dpkg-query -W` of every package, `dpkg --compare-versions` for versioned
//! relations. Anything it cannot decide counts as unsatisfied, so the caller asks apt.

use std::collections::HashMap;
use std::path::Path;

use super::{Dpkg, DpkgError};

/// An installed package: its version and what it provides (`name` → versions; an
/// unversioned `Provides` has `None`).
#[derive(Debug, Default)]
struct Installed {
    versions: HashMap<String, String>,
    provides: HashMap<String, Vec<Option<String>>>,
}

/// One alternative of a relation: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Alternative {
    name: String,
    constraint: Option<(String, String)>,
}

/// The relation groups of `Depends` and `Pre-Depends` of `deb` that no installed
/// package satisfies, as written in the package (e.g. `jq`, `libfoo (>= 2) | libbar`).
pub(super) async fn unsatisfied(dpkg: &Dpkg, deb: &Path) -> Result<Vec<String>, DpkgError> {
    let mut command = dpkg.command("dpkg-deb");
    command
        .arg("--field")
        .arg(deb)
        .args(["Depends", "Pre-Depends"]);
    let fields = dpkg.run(command, "dpkg-deb --field").await?;
    let groups = relation_groups(&fields);
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let installed = installed(dpkg).await?;
    let mut missing = Vec::new();
    for group in groups {
        let mut satisfied = false;
        for alternative in parse_group(&group) {
            if satisfies(dpkg, &installed, &alternative).await? {
                satisfied = true;
                break;
            }
        }
        if !satisfied {
            missing.push(group);
        }
    }
    Ok(missing)
}

/// Every fully installed package (`dpkg-query -W`), with its `Provides`.
async fn installed(dpkg: &Dpkg) -> Result<Installed, DpkgError> {
    let mut command = dpkg.command("dpkg-query");
    command.args([
        "-W",
        "-f=${Package}\t${Version}\t${db:Status-Status}\t${Provides}\n",
    ]);
    let listing = dpkg.run(command, "dpkg-query -W").await?;
    Ok(parse_installed(&listing))
}

fn parse_installed(listing: &str) -> Installed {
    let mut installed = Installed::default();
    for line in listing.lines() {
        let mut parts = line.split('\t');
        let (Some(name), Some(version), Some("installed")) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        installed
            .versions
            .insert(name.to_owned(), version.to_owned());
        for provided in parts.next().unwrap_or_default().split(',') {
            if let Some(alt) = parse_alternative(provided) {
                let version = alt.constraint.filter(|(op, _)| op == "=").map(|(_, v)| v);
                installed
                    .provides
                    .entry(alt.name)
                    .or_default()
                    .push(version);
            }
        }
    }
    installed
}

/// Whether an installed package (or a `Provides`) satisfies `alt`.
async fn satisfies(
    dpkg: &Dpkg,
    installed: &Installed,
    alt: &Alternative,
) -> Result<bool, DpkgError> {
    let Some((op, wanted)) = &alt.constraint else {
        return Ok(installed.versions.contains_key(&alt.name)
            || installed.provides.contains_key(&alt.name));
    };
    let mut candidates: Vec<&String> = installed.versions.get(&alt.name).into_iter().collect();
    if let Some(provided) = installed.provides.get(&alt.name) {
        candidates.extend(provided.iter().flatten());
    }
    for version in candidates {
        if compare(dpkg, version, op, wanted).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `dpkg --compare-versions A OP B` (exit 0: true, 1: false).
async fn compare(dpkg: &Dpkg, a: &str, op: &str, b: &str) -> Result<bool, DpkgError> {
    let op = match op {
        "<<" => "lt",
        "<=" => "le",
        "=" => "eq",
        ">=" => "ge",
        ">>" => "gt",
        // Anything else is not a valid relation: not satisfied, apt decides.
        _ => return Ok(false),
    };
    let mut command = dpkg.command("dpkg");
    command.args(["--compare-versions", a, op, b]);
    let status = command.status().await.map_err(|source| DpkgError::Spawn {
        program: "dpkg".to_owned(),
        source,
    })?;
    Ok(status.success())
}

/// The comma-separated groups of the `Depends:` and `Pre-Depends:` lines that
/// `dpkg-deb --field DEB Depends Pre-Depends` prints (continuation lines joined).
fn relation_groups(fields: &str) -> Vec<String> {
    let mut values = Vec::new();
    for line in fields.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = values.last_mut() {
                let last: &mut String = last;
                last.push(' ');
                last.push_str(line.trim());
            }
        } else if let Some((_, value)) = line.split_once(':') {
            values.push(value.trim().to_owned());
        }
    }
    values
        .iter()
        .flat_map(|value| value.split(','))
        .map(|group| group.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|group| !group.is_empty())
        .collect()
}

fn parse_group(group: &str) -> Vec<Alternative> {
    group.split('|').filter_map(parse_alternative).collect()
}

/// `name[:arch] [(op version)]`; `None` for an empty text.
fn parse_alternative(text: &str) -> Option<Alternative> {
    let text = text.trim();
    let (name_part, constraint) = match text.split_once('(') {
        Some((name, rest)) => {
            let inner = rest.trim_end().trim_end_matches(')').trim();
            let op_len = inner
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .unwrap_or(inner.len());
            let (op, version) = inner.split_at(op_len);
            (
                name,
                Some((op.trim().to_owned(), version.trim().to_owned())),
            )
        }
        None => (text, None),
    };
    // Architecture restrictions (`[amd64]`) and profiles (`<!nocheck>`) do not occur
    // in binary packages' Depends; the `:any` / `:native` qualifiers are dropped.
    let name = name_part.trim().split(':').next()?.trim();
    (!name.is_empty()).then(|| Alternative {
        name: name.to_owned(),
        constraint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DpkgSettings;

    #[test]
    fn relations_are_split_into_groups_and_alternatives() {
        let fields = "Depends: libc6 (>= 2.36), jq | gojq,\n procps\nPre-Depends: init-system-helpers (>= 1.54~)\n";
        assert_eq!(
            relation_groups(fields),
            [
                "libc6 (>= 2.36)",
                "jq | gojq",
                "procps",
                "init-system-helpers (>= 1.54~)"
            ]
        );
        assert_eq!(
            parse_group("python3:any (>=3.11) | foo"),
            [
                Alternative {
                    name: "python3".into(),
                    constraint: Some((">=".into(), "3.11".into()))
                },
                Alternative {
                    name: "foo".into(),
                    constraint: None
                }
            ]
        );
    }

    #[test]
    fn installed_packages_and_provides_are_read() {
        let listing = "procps\t2:4.0.2-3\tinstalled\t\n\
                       exim4\t4.96\tinstalled\tmail-transport-agent, libfoo (= 1.2)\n\
                       gone\t1.0\tconfig-files\t\n";
        let installed = parse_installed(listing);
        assert!(installed.versions.contains_key("procps"));
        assert!(!installed.versions.contains_key("gone"));
        assert_eq!(installed.provides["mail-transport-agent"], [None]);
        assert_eq!(installed.provides["libfoo"], [Some("1.2".to_owned())]);
    }

    #[tokio::test]
    async fn versions_are_compared_by_dpkg() {
        let dpkg = Dpkg::new(&DpkgSettings::default());
        let installed = parse_installed("libc6\t2.36-9\tinstalled\tvirt (= 3)\n");
        let check = |text: &str| parse_alternative(text).unwrap();
        for (relation, expected) in [
            ("libc6", true),
            ("libc6 (>= 2.34)", true),
            ("libc6 (>= 2.41)", false),
            ("libc6 (<< 2.36-10)", true),
            ("virt (>= 2)", true),
            ("virt (>> 3)", false),
            ("absent", false),
        ] {
            assert_eq!(
                satisfies(&dpkg, &installed, &check(relation))
                    .await
                    .unwrap(),
                expected,
                "{relation}"
            );
        }
    }
}
