//! Release signatures: ed25519 in the minisign format.
//!
//! Keys are minisign key files, made by `hoist keygen` or by `minisign -G` (also
//! `minisign -G -W`, unencrypted). An encrypted key's password comes from
//! `HOIST_SIGN_PASSWORD`, or is asked for on the terminal.
//!
//! What is signed: a one-line statement ([`hoist_s3::statement`]) naming package,
//! version, sha256, bucket, key and time, signed as data with itself as trusted comment
//! ([`Signer::sign_statement`]); that is what agents check, from the object's metadata,
//! before downloading. The `.deb` bytes are signed too, with the release statement as
//! trusted comment ([`Signer::sign_package`]), so `minisign -Vm FILE.deb -p KEY.pub`
//! verifies the file written next to the package and shows the statement.
//!
//! Where a key comes from: [`resolve_key`].

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine as _;
use minisign::{PublicKey, SecretKey, SecretKeyBox};

/// Key derivation id of an unencrypted minisign secret key.
const KDF_NONE: [u8; 2] = [0, 0];

/// Environment variable holding the password of an encrypted secret key.
pub const PASSWORD_ENV: &str = "HOIST_SIGN_PASSWORD";

/// A loaded secret key with its public half (to check each signature right away).
pub struct Signer {
    secret: SecretKey,
    public: PublicKey,
    path: PathBuf,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A signature written for a package.
#[derive(Debug, Clone)]
pub struct Signature {
    /// Where the `.minisig` file was written (next to the package).
    pub path: PathBuf,
    /// The `.minisig` file's text.
    pub text: String,
}

/// Where the password of an encrypted key comes from.
fn password(prompt: &str) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "the signing key is encrypted and there is no terminal to ask for its password: set \
             {PASSWORD_ENV}, or use an unencrypted key (`minisign -G -W`)"
        );
    }
    rpassword::prompt_password(prompt).context("cannot read the password from the terminal")
}

impl Signer {
    /// Loads a minisign secret key file. Unencrypted keys load as they are; for an
    /// encrypted key the password comes from `HOIST_SIGN_PASSWORD` or the terminal.
    ///
    /// Errors: unreadable or malformed file, wrong password, no way to get a password.
    pub fn load(path: &Path) -> anyhow::Result<Signer> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the signing key {}: fix --sign-key (make one with `hoist keygen`)",
                path.display()
            )
        })?;
        let not_a_key = || {
            format!(
                "{} is not a minisign secret key: pass the `.key` file written by `hoist keygen` \
                 or `minisign -G`",
                path.display()
            )
        };
        if !text.starts_with("untrusted comment:") {
            bail!(not_a_key());
        }
        let raw = text
            .lines()
            .nth(1)
            .and_then(|line| {
                base64::engine::general_purpose::STANDARD
                    .decode(line.trim())
                    .ok()
            })
            .ok_or_else(|| anyhow::anyhow!(not_a_key()))?;
        // Bytes 2..4 name the key derivation; zero = not encrypted (`minisign -G -W`),
        // whose checksum field minisign leaves empty, so it is read as it is.
        let secret = if raw.get(2..4) == Some(&KDF_NONE[..]) {
            SecretKey::from_bytes(&raw).with_context(not_a_key)?
        } else {
            let pw = password(&format!("Password for {}: ", path.display()))?;
            SecretKeyBox::from_string(&text)
                .with_context(not_a_key)?
                .into_secret_key(Some(pw))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot unlock the signing key {}: {e} (check {PASSWORD_ENV} or the password typed)",
                        path.display()
                    )
                })?
        };
        let public = PublicKey::from_secret_key(&secret)
            .with_context(|| format!("cannot derive the public key of {}", path.display()))?;
        Ok(Signer {
            secret,
            public,
            path: path.to_path_buf(),
        })
    }

    /// The public key in the one-line base64 form (`minisign -P`, agent config).
    pub fn public_key_base64(&self) -> String {
        self.public.to_base64()
    }

    /// Signs the package at `deb` and writes `DEB.minisig` next to it; `statement`
    /// (the release statement) is the trusted comment.
    pub fn sign_package(&self, deb: &Path, statement: &str) -> anyhow::Result<Signature> {
        let file = std::fs::File::open(deb)
            .with_context(|| format!("cannot read {} to sign it", deb.display()))?;
        let untrusted = "hoist signature of a .deb; the trusted comment says what was released";
        let signature = minisign::sign(
            Some(&self.public),
            &self.secret,
            std::io::BufReader::new(file),
            Some(statement),
            Some(untrusted),
        )
        .with_context(|| format!("cannot sign {} with {}", deb.display(), self.path.display()))?;
        let text = signature.into_string();
        let mut path = deb.as_os_str().to_owned();
        path.push(hoist_s3::signature::MINISIG_SUFFIX);
        let path = PathBuf::from(path);
        std::fs::write(&path, &text)
            .with_context(|| format!("cannot write the signature {}", path.display()))?;
        Ok(Signature { path, text })
    }

    /// Signs `statement` (its bytes are the data, and it is the trusted comment too) and
    /// returns the signature in the compact metadata form
    /// ([`hoist_s3::statement::compact_signature`]).
    pub fn sign_statement(&self, statement: &str) -> anyhow::Result<String> {
        let signature = minisign::sign(
            Some(&self.public),
            &self.secret,
            std::io::Cursor::new(statement.as_bytes()),
            Some(statement),
            Some("hoist signed statement"),
        )
        .with_context(|| format!("cannot sign with {}", self.path.display()))?;
        Ok(hoist_s3::statement::compact_signature(
            &signature.into_string(),
            statement,
        )?)
    }

    /// Checks that `compact` (metadata form) is a signature of `statement` by this key.
    pub fn verify_statement(&self, statement: &str, compact: &str) -> anyhow::Result<()> {
        let text = hoist_s3::statement::minisig_text(statement, compact)?;
        let signature = minisign::SignatureBox::from_string(&text)
            .context("the stored statement signature is not a minisign signature")?;
        minisign::verify(
            &self.public,
            &signature,
            std::io::Cursor::new(statement.as_bytes()),
            true,
            false,
            false,
        )
        .context("the statement's signature does not verify with this signing key")
    }
}

/// Where `hoist release` and `hoist rollback` get the signing key: `--sign-key`, else
/// the `HOIST_SIGN_KEY` environment variable (both in `flag`, clap reads the variable),
/// else `[sign] key` of hoist.toml (in `manifest`). With none of them the command refuses
/// unless `unsigned`, naming the three ways and the flag.
pub fn resolve_key(
    flag: Option<&Path>,
    manifest: Option<&Path>,
    unsigned: bool,
    what: &str,
) -> anyhow::Result<Option<PathBuf>> {
    if let Some(path) = flag.or(manifest) {
        if unsigned {
            bail!(
                "--unsigned was given but a signing key is configured ({}): remove --unsigned to sign, or unset the key (--sign-key, HOIST_SIGN_KEY, [sign] key in hoist.toml)",
                path.display()
            );
        }
        return Ok(Some(path.to_path_buf()));
    }
    if unsigned {
        // The command's summary says UNSIGNED once it succeeded.
        return Ok(None);
    }
    bail!(
        "refusing to {what} without a signature: agents refuse unsigned releases. Configure a signing key with --sign-key PATH, the HOIST_SIGN_KEY environment variable, or `[sign]` with `key = \"PATH\"` in hoist.toml (make a key with `hoist keygen`), or pass --unsigned to publish unsigned anyway (only watches with allow_unsigned = true install it)"
    )
}

/// Generates an encrypted key pair in the minisign format, as `minisign -G` does.
/// Returns (public key file text, secret key file text).
pub fn generate_key_pair(password: String) -> anyhow::Result<(String, String)> {
    if password.is_empty() {
        bail!(
            "an empty password would write a key that `minisign` cannot read; choose a password, \
             or make an unencrypted key with `minisign -G -W`"
        );
    }
    let pair = minisign::KeyPair::generate_encrypted_keypair(Some(password))
        .context("cannot generate a key pair")?;
    let public = pair
        .pk
        .to_box()
        .context("cannot encode the public key")?
        .into_string();
    let secret = pair
        .sk
        .to_box(Some("minisign encrypted secret key (hoist keygen)"))
        .context("cannot encode the secret key")?
        .into_string();
    Ok((public, secret))
}

/// The password for a new key: `HOIST_SIGN_PASSWORD`, or asked twice on the terminal.
pub fn new_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    let first = password("Password for the new key: ")?;
    let second = password("Password (again): ")?;
    if first != second {
        bail!("the two passwords differ; run `hoist keygen` again");
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_the_signature_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (public, secret) = generate_key_pair("pw".into()).unwrap();
        assert!(public.starts_with("untrusted comment:"));
        let key = dir.path().join("k.key");
        std::fs::write(&key, &secret).unwrap();
        let deb = dir.path().join("p.deb");
        std::fs::write(&deb, b"package bytes").unwrap();

        let secret_key = SecretKeyBox::from_string(&secret)
            .unwrap()
            .into_secret_key(Some("pw".into()))
            .unwrap();
        let signer = Signer {
            public: PublicKey::from_secret_key(&secret_key).unwrap(),
            secret: secret_key,
            path: key.clone(),
        };
        let statement = format!("hoist package=p version=1.0 sha256={}", "ab".repeat(32));
        let sig = signer.sign_package(&deb, &statement).unwrap();
        assert_eq!(sig.path, dir.path().join("p.deb.minisig"));
        assert_eq!(std::fs::read_to_string(&sig.path).unwrap(), sig.text);

        let pk =
            PublicKey::from_box(minisign::PublicKeyBox::from_string(&public).unwrap()).unwrap();
        let sig_box = minisign::SignatureBox::from_string(&sig.text).unwrap();
        let trusted = sig_box.trusted_comment().unwrap();
        minisign::verify(
            &pk,
            &sig_box,
            std::fs::File::open(&deb).unwrap(),
            true,
            false,
            false,
        )
        .unwrap();
        assert_eq!(trusted, statement);
        let compact = signer.sign_statement(&statement).unwrap();
        signer.verify_statement(&statement, &compact).unwrap();
        assert!(
            signer
                .verify_statement(&format!("{statement}x"), &compact)
                .is_err()
        );

        std::fs::write(&deb, b"other bytes").unwrap();
        assert!(
            minisign::verify(
                &pk,
                &sig_box,
                std::fs::File::open(&deb).unwrap(),
                true,
                false,
                false
            )
            .is_err()
        );
    }

    #[test]
    fn empty_passwords_are_refused() {
        assert!(generate_key_pair(String::new()).is_err());
    }

    #[test]
    fn a_non_key_file_is_rejected_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.key");
        std::fs::write(&path, "hello").unwrap();
        let err = Signer::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a minisign secret key"), "{err}");
    }
}
