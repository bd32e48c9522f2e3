//! Debian policy checks on control field values (policy chapter 5).
//!
//! Each check returns [`DebError::InvalidField`] whose message says what rule was
//! broken and what a valid value looks like. [`build`](crate::build) runs all of them; they
//! are public so that front ends can check a value (e.g. a `--version` flag) early.

use crate::DebError;

/// Architectures dpkg knows on Debian (release and ports), plus `all`.
const KNOWN_ARCHITECTURES: &[&str] = &[
    "all",
    "amd64",
    "arm64",
    "armel",
    "armhf",
    "i386",
    "mips64el",
    "mipsel",
    "ppc64el",
    "riscv64",
    "s390x",
    "alpha",
    "hppa",
    "ia64",
    "loong64",
    "m68k",
    "powerpc",
    "ppc64",
    "sh4",
    "sparc64",
    "x32",
    "hurd-i386",
    "hurd-amd64",
    "kfreebsd-amd64",
    "kfreebsd-i386",
];

const PRIORITIES: &[&str] = &["required", "important", "standard", "optional", "extra"];

/// Longest synopsis (first description line) lintian accepts without a warning.
pub const MAX_SYNOPSIS_LEN: usize = 80;

/// Checks a package name: `^[a-z0-9][a-z0-9+.-]+$` (policy 5.6.1).
pub fn check_package_name(name: &str) -> Result<(), DebError> {
    let field = "package name";
    if name.len() < 2 {
        return Err(DebError::invalid(
            field,
            name,
            "it must be at least two characters long (policy 5.6.1), e.g. `hello`",
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first_ok {
        return Err(DebError::invalid(
            field,
            name,
            "it must start with a lowercase letter or a digit (policy 5.6.1)",
        ));
    }
    if let Some(bad) = name.chars().find(|c| !is_name_char(*c)) {
        return Err(DebError::invalid(
            field,
            name,
            format!(
                "`{bad}` is not allowed: use only lowercase letters, digits and `+ - .` \
                 (policy 5.6.1), e.g. `{}`",
                suggest_name(name)
            ),
        ));
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
}

fn suggest_name(name: &str) -> String {
    name.chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if is_name_char(c) { c } else { '-' })
        .collect()
}

/// Checks a version: `[epoch:]upstream_version[-debian_revision]` (policy 5.6.12).
///
/// The epoch is digits; the upstream version starts with a digit and holds only
/// alphanumerics and `. + ~ -` (a hyphen only when a revision follows); the revision,
/// after the last hyphen, holds only alphanumerics and `. + ~`.
pub fn check_version(version: &str) -> Result<(), DebError> {
    let field = "version";
    let err = |reason: &str| {
        Err(DebError::invalid(
            field,
            version,
            format!(
                "{reason} (policy 5.6.12: [epoch:]upstream[-revision], e.g. `1.4.0` or `2:1.4.0-1`)"
            ),
        ))
    };
    if version.is_empty() {
        return err("it is empty");
    }
    if let Some(c) = version
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return err(&format!(
            "it contains whitespace or a control character {c:?}"
        ));
    }
    let rest = match version.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.chars().all(|c| c.is_ascii_digit()) {
                return err("the epoch before `:` must be a number");
            }
            rest
        }
        None => version,
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => (upstream, Some(revision)),
        None => (rest, None),
    };
    if upstream.is_empty() {
        return err("the upstream version is empty");
    }
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return err("the upstream version must start with a digit");
    }
    if let Some(bad) = upstream
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | '-')))
    {
        return err(&format!(
            "`{bad}` is not allowed in the upstream version (only alphanumerics and `. + ~ -`)"
        ));
    }
    if let Some(revision) = revision {
        if revision.is_empty() {
            return err("the revision after the last `-` is empty");
        }
        if let Some(bad) = revision
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~')))
        {
            return err(&format!(
                "`{bad}` is not allowed in the revision (only alphanumerics and `. + ~`)"
            ));
        }
    }
    Ok(())
}

/// Checks a binary package architecture: a Debian architecture name or `all`.
pub fn check_architecture(arch: &str) -> Result<(), DebError> {
    if KNOWN_ARCHITECTURES.contains(&arch) {
        return Ok(());
    }
    Err(DebError::invalid(
        "architecture",
        arch,
        format!(
            "not a Debian architecture: use the target's `dpkg --print-architecture` \
             (one of {}) or `all` for architecture-independent packages",
            KNOWN_ARCHITECTURES[1..].join(", ")
        ),
    ))
}

/// Checks the maintainer: `Full Name <address@example.com>` (policy 5.6.2).
pub fn check_maintainer(maintainer: &str) -> Result<(), DebError> {
    let fail = || {
        Err(DebError::invalid(
            "maintainer",
            maintainer,
            "it must look like `Full Name <address@example.com>` (policy 5.6.2)",
        ))
    };
    if maintainer.chars().any(char::is_control) {
        return fail();
    }
    let Some((name, rest)) = maintainer.split_once('<') else {
        return fail();
    };
    let Some(address) = rest.strip_suffix('>') else {
        return fail();
    };
    let address_ok = address.split_once('@').is_some_and(|(user, host)| {
        !user.is_empty() && (host.contains('.') || host == "localhost")
    });
    if name.trim().is_empty()
        || !name.ends_with(' ')
        || !address_ok
        || address.contains(['<', '>', ' '])
    {
        return fail();
    }
    Ok(())
}

/// Checks a description: a non-empty synopsis of at most [`MAX_SYNOPSIS_LEN`]
/// characters on the first line; further lines form the extended description.
pub fn check_description(description: &str) -> Result<(), DebError> {
    let synopsis = description.lines().next().unwrap_or("").trim();
    if synopsis.is_empty() {
        return Err(DebError::invalid(
            "description",
            description,
            "the first line (the synopsis) is empty: start with a one-line summary",
        ));
    }
    if synopsis.chars().count() > MAX_SYNOPSIS_LEN {
        return Err(DebError::invalid(
            "description",
            synopsis,
            format!(
                "the first line (the synopsis) is longer than {MAX_SYNOPSIS_LEN} characters: \
                 shorten it and move details to the following lines"
            ),
        ));
    }
    if description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(DebError::invalid(
            "description",
            description,
            "it contains a control character: use plain text",
        ));
    }
    Ok(())
}

/// Checks a section name such as `net` or `contrib/admin`.
pub fn check_section(section: &str) -> Result<(), DebError> {
    let ok = section.starts_with(|c: char| c.is_ascii_lowercase())
        && section.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | '/')
        });
    if ok {
        Ok(())
    } else {
        Err(DebError::invalid(
            "section",
            section,
            "use a lowercase Debian section such as `net`, `admin` or `misc`",
        ))
    }
}

/// Checks a priority: `required`, `important`, `standard`, `optional` or `extra`.
pub fn check_priority(priority: &str) -> Result<(), DebError> {
    if PRIORITIES.contains(&priority) {
        Ok(())
    } else {
        Err(DebError::invalid(
            "priority",
            priority,
            "use one of required, important, standard, optional (the usual one) or extra",
        ))
    }
}

/// Checks a homepage: an `http://` or `https://` URL without whitespace.
pub fn check_homepage(homepage: &str) -> Result<(), DebError> {
    let ok = (homepage.starts_with("https://") || homepage.starts_with("http://"))
        && !homepage
            .chars()
            .any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(DebError::invalid(
            "homepage",
            homepage,
            "use a full http:// or https:// URL",
        ))
    }
}

/// Checks one entry of a relation field (`Depends`, `Conflicts`, ...): alternatives
/// separated by `|`, each `name[:archqual] [(op version)]` with op one of
/// `<< <= = >= >>` (policy 7.1).
pub fn check_relation(field: &'static str, relation: &str) -> Result<(), DebError> {
    let fail = |reason: String| Err(DebError::invalid(field, relation, reason));
    if relation.contains(',') {
        return fail("it contains `,`: give each relation as its own list entry".to_owned());
    }
    for alternative in relation.split('|') {
        let alternative = alternative.trim();
        let (name_part, constraint) = match alternative.split_once('(') {
            Some((name, rest)) => (name.trim(), Some(rest)),
            None => (alternative, None),
        };
        let name = match name_part.split_once(':') {
            Some((name, qualifier)) => {
                if qualifier.is_empty()
                    || !qualifier
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                {
                    return fail(format!("bad architecture qualifier `:{qualifier}`"));
                }
                name
            }
            None => name_part,
        };
        if check_package_name(name).is_err() {
            return fail(format!(
                "`{name}` is not a valid package name; write relations like `libc6 (>= 2.36)` or `foo | bar`"
            ));
        }
        if let Some(constraint) = constraint {
            let Some(inner) = constraint.trim_end().strip_suffix(')') else {
                return fail("the version constraint is missing its closing `)`".to_owned());
            };
            let inner = inner.trim();
            let op_len = ["<<", "<=", ">=", ">>", "="]
                .iter()
                .find(|op| inner.starts_with(**op))
                .map(|op| op.len());
            let Some(op_len) = op_len else {
                return fail("the version constraint needs one of `<< <= = >= >>`".to_owned());
            };
            let version = inner[op_len..].trim();
            if version.is_empty() {
                return fail("the version constraint has no version, e.g. `(>= 1.0)`".to_owned());
            }
            if let Err(DebError::InvalidField { reason, .. }) = check_version(version) {
                return fail(format!("version `{version}`: {reason}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_follow_policy() {
        for good in ["hello", "a0", "lib+foo.bar-2", "0ad"] {
            assert!(check_package_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "Hello",
            "-hello",
            "hello_world",
            "héllo",
            "hello world",
        ] {
            assert!(check_package_name(bad).is_err(), "{bad}");
        }
        let msg = check_package_name("Hello_World").unwrap_err().to_string();
        assert!(msg.contains("lowercase letter"), "{msg}");
        let msg = check_package_name("hello_world").unwrap_err().to_string();
        assert!(msg.contains("hello-world"), "suggests a fix: {msg}");
    }

    #[test]
    fn versions_follow_policy() {
        for good in [
            "1.0",
            "1:1.0",
            "1.0-1",
            "1.0-rc1-2",
            "2:1.0~rc1+dfsg-1ubuntu1",
            "0",
            "10.1.2+git20250101",
        ] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in [
            "", "v1.0", "1.0-", "a:1.0", ":1.0", "1.0 beta", "1.0_1", "1:2:3", "1.0-a_b", "-1",
        ] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
        let msg = check_version("v1.0").unwrap_err().to_string();
        assert!(msg.contains("start with a digit"), "{msg}");
    }

    #[test]
    fn architectures_are_known_names() {
        assert!(check_architecture("amd64").is_ok());
        assert!(check_architecture("all").is_ok());
        for bad in ["any", "x86_64", "AMD64", ""] {
            let msg = check_architecture(bad).unwrap_err().to_string();
            assert!(msg.contains("dpkg --print-architecture"), "{msg}");
        }
    }

    #[test]
    fn maintainer_needs_name_and_address() {
        assert!(check_maintainer("Ops Team <ops@example.com>").is_ok());
        for bad in [
            "ops@example.com",
            "<ops@example.com>",
            "Ops <ops>",
            "Ops<ops@example.com>",
            "Ops <ops@example.com",
        ] {
            assert!(check_maintainer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn description_needs_a_short_synopsis() {
        assert!(check_description("hello service\nIt says hello.").is_ok());
        assert!(check_description("").is_err());
        assert!(check_description("\nbody").is_err());
        assert!(check_description(&"x".repeat(81)).is_err());
    }

    #[test]
    fn relations_are_parsed() {
        for good in [
            "libc6",
            "libc6 (>= 2.36)",
            "foo | bar (<< 2:1.0-1)",
            "python3:any",
        ] {
            assert!(check_relation("Depends", good).is_ok(), "{good}");
        }
        for bad in [
            "libc6, procps",
            "libc6 (>= )",
            "libc6 (~ 1)",
            "Libc6",
            "libc6 (>= 1",
        ] {
            assert!(check_relation("Depends", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn small_fields() {
        assert!(check_section("net").is_ok());
        assert!(check_section("contrib/admin").is_ok());
        assert!(check_section("Net").is_err());
        assert!(check_priority("optional").is_ok());
        assert!(check_priority("high").is_err());
        assert!(check_homepage("https://example.com/x").is_ok());
        assert!(check_homepage("example.com").is_err());
    }
}
