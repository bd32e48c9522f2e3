//! Renders the cloud-init user-data (`cloud-init/user-data.yaml`) that bootstraps a host.
//!
//! The template is compiled into the binary. Values are inserted so that no content can
//! change the YAML or the shell script around them: the agent config goes in as base64
//! (`write_files` with `encoding: b64`, so any bytes — CRLF line ends, tabs, `#`,
//! quotes, a line that looks like YAML — reach `/etc/hoist/agent.toml` unchanged), and
//! the URL, region and SHA-256 are checked (one line, no control characters) and
//! single-quoted for the script, which is itself a YAML literal block.

use base64::Engine as _;
use thiserror::Error;

/// The user-data template, from `cloud-init/user-data.yaml`.
const TEMPLATE: &str = include_str!("../../cloud-init/user-data.yaml");

/// How the host gets the agent package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSource<'a> {
    /// A plain GET of this URL (presigned, or hosted somewhere public).
    Url {
        /// The URL.
        url: &'a str,
        /// What to say about it in the user-data's header comment (e.g. its expiry).
        note: &'a str,
    },
    /// A GET of this unsigned object URL, signed on the host (`curl --aws-sigv4`)
    /// with the instance's own credentials from IMDSv2: nothing in the user-data
    /// expires.
    InstanceCredentials {
        /// The object's URL, `?versionId=…` included, without any signature.
        url: &'a str,
        /// The region requests are signed for.
        region: &'a str,
    },
}

/// What a host needs to join the loop.
#[derive(Debug, Clone)]
pub struct Bootstrap<'a> {
    /// The agent's config, written byte for byte to `/etc/hoist/agent.toml`.
    pub agent_config: &'a [u8],
    /// Where the `hoist-agent` package comes from.
    pub source: AgentSource<'a>,
    /// SHA-256 of that package, hex; the host refuses anything else.
    pub agent_sha256: &'a str,
}

/// A value that cannot be put into user-data as given.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RenderError {
    /// The SHA-256 is not 64 hex digits.
    #[error("`{0}` is not a SHA-256 (64 hex digits): pass the package's `sha256sum`")]
    BadSha256(String),
    /// The URL is not http(s) or contains a line break or space.
    #[error("`{0}` is not an http:// or https:// URL on one line")]
    BadUrl(String),
    /// The region is not a region name.
    #[error("`{0}` is not an AWS region name (letters, digits and `-`), e.g. eu-west-1")]
    BadRegion(String),
}

/// Renders `#cloud-config` user-data for `bootstrap`.
///
/// Errors when a value could not be embedded faithfully; the output otherwise always
/// starts with `#cloud-config` and carries the config byte for byte.
pub fn render(bootstrap: &Bootstrap<'_>) -> Result<String, RenderError> {
    let sha = bootstrap.agent_sha256.trim().to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RenderError::BadSha256(bootstrap.agent_sha256.to_owned()));
    }
    let (mode, url, region, note) = match &bootstrap.source {
        AgentSource::Url { url, note } => ("url", *url, "", one_line(note)),
        AgentSource::InstanceCredentials { url, region } => {
            if region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(RenderError::BadRegion((*region).to_owned()));
            }
            (
                "instance",
                *url,
                *region,
                format!(
                    "from S3 with this host's own instance credentials (IMDSv2, SigV4 for {region})"
                ),
            )
        }
    };
    let trimmed = url.trim();
    if !(trimmed.starts_with("https://") || trimmed.starts_with("http://"))
        || trimmed.chars().any(|c| c.is_control() || c == ' ')
    {
        return Err(RenderError::BadUrl(url.to_owned()));
    }
    // An empty value would read as YAML null: write the empty string explicitly.
    let config = match bootstrap.agent_config {
        [] => "''".to_owned(),
        bytes => base64::engine::general_purpose::STANDARD.encode(bytes),
    };
    Ok(TEMPLATE
        .replace("{{AGENT_CONFIG_B64}}", &config)
        .replace("{{SOURCE_NOTE}}", &note)
        .replace("{{MODE}}", &shell_quote(mode))
        .replace("{{AGENT_URL}}", &shell_quote(trimmed))
        .replace("{{REGION}}", &shell_quote(region))
        .replace("{{AGENT_SHA256}}", &shell_quote(&sha)))
}

/// `text` with control characters (line breaks) replaced by spaces, for a comment line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Quotes `s` for a POSIX shell: single quotes, with `'` written as `'\''`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn presigned(config: &[u8]) -> Result<String, RenderError> {
        render(&Bootstrap {
            agent_config: config,
            source: AgentSource::Url {
                url: "https://bucket.example/hoist-agent.deb?X-Amz-Signature=a'b",
                note: "from a presigned URL\nvalid until tomorrow",
            },
            agent_sha256: SHA,
        })
    }

    fn instance(config: &[u8]) -> Result<String, RenderError> {
        render(&Bootstrap {
            agent_config: config,
            source: AgentSource::InstanceCredentials {
                url: "https://b.s3.eu-west-1.amazonaws.com/releases/hoist-agent.deb?versionId=3%2FL4k",
                region: "eu-west-1",
            },
            agent_sha256: SHA,
        })
    }

    /// The base64 `content:` of the agent config, decoded.
    fn embedded_config(user_data: &str) -> Vec<u8> {
        let line = user_data
            .lines()
            .skip_while(|l| !l.contains("path: /etc/hoist/agent.toml"))
            .find_map(|l| l.trim().strip_prefix("content: "))
            .unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(line.trim_matches('\''))
            .unwrap()
    }

    #[test]
    fn any_config_survives_byte_for_byte() {
        for config in [
            &b"state_dir = \"/var/lib/hoist\"\r\n\r\n[[watch]]\r\nname = \"hello\"\r\n"[..],
            b"",
            b"# only a comment\n  indented = 1\n\t\ttabs = \"x\"\n- not: yaml\n'\"|>{{AGENT_URL}}\n",
            b"no trailing newline",
        ] {
            let out = instance(config).unwrap();
            assert!(out.starts_with("#cloud-config\n"));
            assert_eq!(embedded_config(&out), config);
            assert!(!out.contains("{{"), "a placeholder was left: {out}");
        }
    }

    #[test]
    fn instance_mode_quotes_values_and_embeds_no_signature() {
        let out = instance(b"x = 1").unwrap();
        assert!(out.contains("mode='instance'\n"), "{out}");
        assert!(out.contains(
            "url='https://b.s3.eu-west-1.amazonaws.com/releases/hoist-agent.deb?versionId=3%2FL4k'\n"
        ));
        assert!(out.contains("region='eu-west-1'\n"));
        assert!(out.contains(&format!("sha256='{SHA}'\n")));
        assert!(!out.contains("X-Amz-"), "{out}");
    }

    #[test]
    fn url_mode_quotes_the_url_for_the_shell_and_keeps_the_note_on_one_line() {
        let out = presigned(b"x = 1").unwrap();
        assert!(out.contains("mode='url'\n"));
        assert!(
            out.contains(r"url='https://bucket.example/hoist-agent.deb?X-Amz-Signature=a'\''b'")
        );
        assert!(out.contains("region=''\n"));
        assert!(out.contains("from a presigned URL valid until tomorrow,\n"));
    }

    #[test]
    fn refuses_bad_values() {
        let render_url = |url: &str| {
            render(&Bootstrap {
                agent_config: b"",
                source: AgentSource::Url { url, note: "" },
                agent_sha256: SHA,
            })
        };
        assert!(matches!(
            render_url("file:///etc/passwd"),
            Err(RenderError::BadUrl(_))
        ));
        assert!(matches!(
            render_url("https://x/y\nrm -rf /"),
            Err(RenderError::BadUrl(_))
        ));
        let bad_sha = render(&Bootstrap {
            agent_config: b"",
            source: AgentSource::Url {
                url: "https://x/y",
                note: "",
            },
            agent_sha256: "abc",
        });
        assert_eq!(bad_sha, Err(RenderError::BadSha256("abc".into())));
        let bad_region = render(&Bootstrap {
            agent_config: b"",
            source: AgentSource::InstanceCredentials {
                url: "https://x/y",
                region: "eu-west-1'; rm -rf /",
            },
            agent_sha256: SHA,
        });
        assert!(matches!(bad_region, Err(RenderError::BadRegion(_))));
    }
}
