//! `hoist iam-policy`: the least-privilege IAM policies hoist needs, as JSON.
//!
//! - `--for host`: what every host's instance profile needs (read-only): HEAD and GET
//!   of the release key, any version of it. Nothing else in the bucket.
//! - `--for release`: what CI (or whoever runs `hoist release`/`history`/`rollback`)
//!   needs: the host's rights plus PUT (release, and CopyObject for rollback) on the
//!   key, listing that key's versions, and reading the bucket's versioning status.

use serde_json::json;

/// Whose policy to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyFor {
    /// Hosts running hoist-agent (read-only).
    Host,
    /// Whoever releases and rolls back.
    Release,
}

/// Arguments of `hoist iam-policy`.
#[derive(Debug, clap::Args)]
pub struct IamPolicyArgs {
    /// Bucket holding the releases.
    #[arg(long, env = "HOIST_S3_BUCKET", value_name = "NAME")]
    pub bucket: String,

    /// Release key, or a prefix ending in `*` to cover several services
    /// (e.g. `releases/*`).
    #[arg(
        long,
        env = "HOIST_S3_KEY",
        value_name = "KEY",
        default_value = "releases/*"
    )]
    pub key: String,

    /// Whose policy.
    #[arg(long = "for", value_enum, default_value_t = PolicyFor::Host)]
    pub for_whom: PolicyFor,
}

/// Runs `hoist iam-policy`.
pub fn run(args: IamPolicyArgs) -> anyhow::Result<()> {
    let policy = policy(&args.bucket, &args.key, args.for_whom)?;
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(())
}

/// The policy document for `key` in `bucket`.
fn policy(bucket: &str, key: &str, for_whom: PolicyFor) -> anyhow::Result<serde_json::Value> {
    if bucket.is_empty() || bucket.contains(['/', '*']) {
        anyhow::bail!(
            "`{bucket}` is not a bucket name: pass --bucket NAME (no slashes, no wildcards)"
        );
    }
    let key = key.trim_start_matches('/');
    let object = format!("arn:aws:s3:::{bucket}/{key}");
    let mut statements = vec![json!({
        "Sid": "HoistReadRelease",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": [object],
    })];
    if for_whom == PolicyFor::Release {
        let prefix = key.trim_end_matches('*');
        statements.push(json!({
            "Sid": "HoistWriteRelease",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [object],
        }));
        statements.push(json!({
            "Sid": "HoistListReleaseVersions",
            "Effect": "Allow",
            "Action": ["s3:ListBucketVersions", "s3:ListBucket"],
            "Resource": [format!("arn:aws:s3:::{bucket}")],
            "Condition": { "StringLike": { "s3:prefix": [format!("{prefix}*")] } },
        }));
        statements.push(json!({
            "Sid": "HoistCheckVersioning",
            "Effect": "Allow",
            "Action": ["s3:GetBucketVersioning"],
            "Resource": [format!("arn:aws:s3:::{bucket}")],
        }));
    }
    Ok(json!({ "Version": "2012-10-17", "Statement": statements }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_policy_is_read_only_on_the_key() {
        let p = policy("acme", "releases/hello.deb", PolicyFor::Host).unwrap();
        let statements = p["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(
            statements[0]["Resource"][0],
            "arn:aws:s3:::acme/releases/hello.deb"
        );
        let text = p.to_string();
        assert!(!text.contains("PutObject") && !text.contains("Delete"));
    }

    #[test]
    fn release_policy_adds_put_list_and_versioning() {
        let p = policy("acme", "releases/*", PolicyFor::Release).unwrap();
        let text = p.to_string();
        for action in [
            "s3:PutObject",
            "s3:ListBucketVersions",
            "s3:GetBucketVersioning",
        ] {
            assert!(text.contains(action), "{action} missing: {text}");
        }
        assert!(text.contains(r#""s3:prefix":["releases/*"]"#), "{text}");
        assert!(!text.contains("Delete"));
    }

    #[test]
    fn refuses_a_bucket_with_a_path() {
        assert!(policy("acme/releases", "k", PolicyFor::Host).is_err());
    }
}
