//! Files Debian policy wants in every package, generated when the package does not
//! ship its own: the changelog, the copyright file and hoist's lintian overrides.

use std::io::Write as _;

use flate2::GzBuilder;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::{Copyright, DebError, PackageSpec};

/// Where the changelog goes: `changelog.gz` for a native version (no Debian revision),
/// `changelog.Debian.gz` otherwise (policy 12.7).
pub(crate) fn changelog_path(spec: &PackageSpec) -> String {
    let upstream_and_revision = spec
        .version
        .split_once(':')
        .map_or(spec.version.as_str(), |(_, v)| v);
    let file = if upstream_and_revision.contains('-') {
        "changelog.Debian.gz"
    } else {
        "changelog.gz"
    };
    format!("/usr/share/doc/{}/{file}", spec.name)
}

/// The copyright file's path (policy 12.5).
pub(crate) fn copyright_path(spec: &PackageSpec) -> String {
    format!("/usr/share/doc/{}/copyright", spec.name)
}

/// The lintian override file's path.
pub(crate) fn lintian_overrides_path(spec: &PackageSpec) -> String {
    format!("/usr/share/lintian/overrides/{}", spec.name)
}

/// A one-entry Debian changelog for the package's version, dated `epoch`, compressed
/// like `gzip -9n` (no name, no timestamp) so it is reproducible.
pub(crate) fn changelog_gz(spec: &PackageSpec, epoch: u64) -> Result<Vec<u8>, DebError> {
    let date = i64::try_from(epoch)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| t.format(&Rfc2822).ok())
        .ok_or_else(|| {
            DebError::invalid(
                "SOURCE_DATE_EPOCH",
                &epoch.to_string(),
                "it is not a representable date: use seconds since 1970, e.g. `date +%s`",
            )
        })?;
    let text = format!(
        "{name} ({version}) unstable; urgency=medium\n\n  \
         * Release {version}, packaged by hoist.\n\n -- {maintainer}  {date}\n",
        name = spec.name,
        version = spec.version,
        maintainer = spec.maintainer,
    );
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(text.as_bytes())
        .and_then(|()| encoder.finish())
        .map_err(|e| DebError::Compression {
            compression: "gzip",
            reason: e.to_string(),
        })
}

/// Licenses whose full text Debian ships in `/usr/share/common-licenses/`.
const COMMON_LICENSES: &[&str] = &[
    "Apache-2.0",
    "Artistic",
    "BSD",
    "CC0-1.0",
    "GFDL-1.2",
    "GFDL-1.3",
    "GPL-1",
    "GPL-2",
    "GPL-3",
    "LGPL-2",
    "LGPL-2.1",
    "LGPL-3",
    "MPL-1.1",
    "MPL-2.0",
];

/// The MIT (Expat) license text, as DEP-5 wants it in full (Debian does not ship it).
const EXPAT: &str = "Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the \"Software\"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.";

/// The copyright notice: the given holder, or `YEAR MAINTAINER` with the year of
/// `epoch` (the package's SOURCE_DATE_EPOCH), so the default is reproducible.
pub(crate) fn copyright_notice(spec: &PackageSpec, copyright: &Copyright, epoch: u64) -> String {
    match &copyright.holder {
        Some(holder) => holder.trim().to_owned(),
        None => {
            let year = i64::try_from(epoch)
                .ok()
                .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                .map_or(1970, |t| t.year());
            format!("{year} {}", spec.maintainer.trim())
        }
    }
}

/// The copyright file in Debian's machine-readable format (DEP-5): one `Files: *`
/// paragraph with the notice and the license, and the license text — in full for
/// MIT/Expat, as a pointer for those in `/usr/share/common-licenses`, else a line
/// saying where the terms are.
pub(crate) fn copyright(spec: &PackageSpec, copyright: &Copyright, epoch: u64) -> Vec<u8> {
    let license = copyright.license.trim();
    let mut out = format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: {name}\nUpstream-Contact: {maintainer}\n",
        name = spec.name,
        maintainer = spec.maintainer.trim(),
    );
    if let Some(homepage) = &spec.homepage {
        out.push_str(&format!("Source: {homepage}\n"));
    }
    out.push_str(&format!(
        "\nFiles: *\nCopyright: {notice}\nLicense: {license}\n",
        notice = copyright_notice(spec, copyright, epoch),
    ));
    let text = if matches!(license, "MIT" | "Expat") {
        EXPAT.to_owned()
    } else if COMMON_LICENSES.contains(&license) {
        format!(
            "On Debian systems, the full text of the {license} license can be found in\n\
             /usr/share/common-licenses/{license}."
        )
    } else {
        format!(
            "The {license} terms are distributed with {name} by its publisher, {maintainer}.",
            name = spec.name,
            maintainer = spec.maintainer.trim()
        )
    };
    for line in text.lines() {
        out.push(' ');
        out.push_str(if line.is_empty() { "." } else { line });
        out.push('\n');
    }
    out.into_bytes()
}

/// Overrides for lintian tags that hoist's design triggers on purpose, each with the
/// reason as a comment (lintian shows it).
pub(crate) fn lintian_overrides(spec: &PackageSpec) -> String {
    format!(
        "# hoist's maintainer scripts call systemctl themselves instead of deb-systemd-invoke\n\
         # and deb-systemd-helper: an upgrade must never restart the running service\n\
         # (hoist-agent reloads it without downtime), and every call is guarded for hosts\n\
         # without systemd.\n\
         {name}: maintainer-script-calls-systemctl\n",
        name = spec.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn spec(version: &str) -> PackageSpec {
        PackageSpec {
            name: "hello".into(),
            version: version.into(),
            maintainer: "Ops <ops@example.com>".into(),
            description: "says hello".into(),
            ..PackageSpec::default()
        }
    }

    #[test]
    fn copyright_is_dep5_with_a_dated_default_notice() {
        let facts = Copyright {
            holder: None,
            license: "MIT".into(),
        };
        let text = String::from_utf8(copyright(&spec("1.0"), &facts, 1_700_000_000)).unwrap();
        assert!(
            text.starts_with(
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\nFiles: *\nCopyright: 2023 Ops <ops@example.com>\nLicense: MIT\n"),
            "{text}"
        );
        assert!(text.contains("\n .\n THE SOFTWARE IS PROVIDED"), "{text}");
        let given = Copyright {
            holder: Some("2026 Acme Ops".into()),
            license: "Apache-2.0".into(),
        };
        let text = String::from_utf8(copyright(&spec("1.0"), &given, 0)).unwrap();
        assert!(text.contains("Copyright: 2026 Acme Ops\n"), "{text}");
        assert!(
            text.contains(" /usr/share/common-licenses/Apache-2.0."),
            "{text}"
        );
    }

    #[test]
    fn changelog_name_follows_nativeness() {
        assert_eq!(
            changelog_path(&spec("1.0")),
            "/usr/share/doc/hello/changelog.gz"
        );
        assert_eq!(
            changelog_path(&spec("1:1.0-2")),
            "/usr/share/doc/hello/changelog.Debian.gz"
        );
    }

    #[test]
    fn changelog_is_reproducible_and_dated() {
        let a = changelog_gz(&spec("1.0"), 1_700_000_000).unwrap();
        let b = changelog_gz(&spec("1.0"), 1_700_000_000).unwrap();
        assert_eq!(a, b);
        let mut text = String::new();
        flate2::read::GzDecoder::new(a.as_slice())
            .read_to_string(&mut text)
            .unwrap();
        assert!(
            text.starts_with("hello (1.0) unstable; urgency=medium\n"),
            "{text}"
        );
        assert!(
            text.contains(" -- Ops <ops@example.com>  Tue, 14 Nov 2023 22:13:20 +0000"),
            "{text}"
        );
    }
}
