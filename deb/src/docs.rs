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

/// A plain-text copyright file stating holder and license.
pub(crate) fn copyright(spec: &PackageSpec, copyright: &Copyright) -> Vec<u8> {
    let homepage = spec
        .homepage
        .as_deref()
        .map(|h| format!("Upstream: {h}\n"))
        .unwrap_or_default();
    format!(
        "{name}: {synopsis}\n{homepage}\nCopyright: {holder}\nLicense: {license}\n",
        name = spec.name,
        synopsis = spec.description.lines().next().unwrap_or("").trim(),
        holder = copyright.holder.trim(),
        license = copyright.license.trim(),
    )
    .into_bytes()
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
