//! Renders the cloud-init user-data (`cloud-init/user-data.yaml`) that bootstraps a host.
//!
//! The template is compiled into the binary. Values are inserted in two ways that are
//! safe for any content: the agent config goes into a YAML literal block (indented, so
//! no line of it can end the block), and the URL and SHA-256 are single-quoted for the
//! shell script they land in (and that script is itself a literal block).

use thiserror::Error;

/// The user-data template, from `cloud-init/user-data.yaml`.
const TEMPLATE: &str = include_str!("../../cloud-init/user-data.yaml");

/// Indentation of the agent config inside its `content: |` block.
const CONFIG_INDENT: &str = "      ";

/// What a host needs to join the loop.
#[derive(Debug, Clone)]
pub struct Bootstrap<'a> {
    /// The agent's config, written verbatim to `/etc/hoist/agent.toml`.
    pub agent_config: &'a str,
    /// Where the host downloads the `hoist-agent` package (presigned or public URL).
    pub agent_url: &'a str,
    /// SHA-256 of that package, lower-case hex; the host refuses anything else.
    pub agent_sha256: &'a str,
}

/// A value that cannot be put into user-data as given.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RenderError {
    /// The SHA-256 is not 64 hex digits.
    #[error("`{0}` is not a SHA-256 (64 hex digits): pass the package's `sha256sum`")]
    BadSha256(String),
    /// The URL is not http(s) or contains a line break.
    #[error("`{0}` is not an http:// or https:// URL on one line")]
    BadUrl(String),
    /// The agent config contains a character YAML cannot carry in a block.
    #[error(
        "the agent config contains a control character (byte {0:#04x}); save it as plain UTF-8 text"
    )]
    BadConfig(u32),
}

/// Renders `#cloud-config` user-data for `bootstrap`.
///
/// Errors when a value could not be embedded faithfully; the output otherwise always
/// starts with `#cloud-config` and embeds the config byte for byte (modulo indentation).
pub fn render(bootstrap: &Bootstrap<'_>) -> Result<String, RenderError> {
    let sha = bootstrap.agent_sha256.trim().to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RenderError::BadSha256(bootstrap.agent_sha256.to_owned()));
    }
    let url = bootstrap.agent_url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.chars().any(|c| c.is_control() || c == ' ')
    {
        return Err(RenderError::BadUrl(bootstrap.agent_url.to_owned()));
    }
    if let Some(c) = bootstrap
        .agent_config
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(RenderError::BadConfig(c as u32));
    }
    let config = indent(bootstrap.agent_config, CONFIG_INDENT);
    Ok(TEMPLATE
        .replace("{{AGENT_CONFIG}}\n", &config)
        .replace("{{AGENT_URL}}", &shell_quote(url))
        .replace("{{AGENT_SHA256}}", &shell_quote(&sha)))
}

/// Indents every line of `text` (an empty config still yields one comment line, so the
/// YAML block is never empty) and ends it with a newline.
fn indent(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    if text.trim().is_empty() {
        out.push_str(prefix);
        out.push_str("# (empty)\n");
        return out;
    }
    for line in text.lines() {
        if !line.is_empty() {
            out.push_str(prefix);
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Quotes `s` for a POSIX shell: single quotes, with `'` written as `'\''`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn sample(config: &str) -> Result<String, RenderError> {
        render(&Bootstrap {
            agent_config: config,
            agent_url: "https://bucket.example/hoist-agent.deb?X-Amz-Signature=a'b",
            agent_sha256: SHA,
        })
    }

    #[test]
    fn embeds_config_indented_inside_its_block() {
        let out =
            sample("state_dir = \"/var/lib/hoist\"\n\n[[watch]]\nname = \"hello\"\n").unwrap();
        assert!(out.starts_with("#cloud-config\n"));
        assert!(out.contains("    content: |\n      state_dir = \"/var/lib/hoist\"\n\n      [[watch]]\n      name = \"hello\"\n  - path: /usr/local/sbin/hoist-bootstrap"));
        assert!(!out.contains("{{"), "a placeholder was left: {out}");
    }

    #[test]
    fn quotes_url_for_the_shell() {
        let out = sample("x = 1").unwrap();
        assert!(
            out.contains(r"url='https://bucket.example/hoist-agent.deb?X-Amz-Signature=a'\''b'")
        );
        assert!(out.contains(&format!("sha256='{SHA}'")));
    }

    #[test]
    fn refuses_bad_values() {
        let bad_sha = render(&Bootstrap {
            agent_config: "",
            agent_url: "https://x/y",
            agent_sha256: "abc",
        });
        assert_eq!(bad_sha, Err(RenderError::BadSha256("abc".into())));
        let bad_url = render(&Bootstrap {
            agent_config: "",
            agent_url: "file:///etc/passwd",
            agent_sha256: SHA,
        });
        assert!(matches!(bad_url, Err(RenderError::BadUrl(_))));
        let multi_line = render(&Bootstrap {
            agent_config: "",
            agent_url: "https://x/y\nrm -rf /",
            agent_sha256: SHA,
        });
        assert!(matches!(multi_line, Err(RenderError::BadUrl(_))));
        assert_eq!(sample("a\u{7}b"), Err(RenderError::BadConfig(7)));
    }

    #[test]
    fn empty_config_keeps_the_block_valid() {
        let out = sample("").unwrap();
        assert!(out.contains("    content: |\n      # (empty)\n"));
    }
}
