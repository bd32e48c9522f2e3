//! `hoist iam-policy`: the least-privilege IAM policies hoist needs, as JSON.
//!
//! - `--for host`: a host's instance profile (read-only): HEAD and GET of the keys of
//!   the services it runs, any version (`--key` repeated; default `releases/*`).
//!   Nothing else in the bucket.
//! - `--for release`: one service's release role (CI running `hoist release`,
//!   `history`, `rollback`): the host's rights plus PUT (release, and CopyObject for
//!   rollback) on that service's key, aborting its failed multipart uploads, listing
//!   that key's versions and reading the bucket's versioning status.
//!
//! Whoever can write the agent's key (`--agent-key`, default
//! `releases/hoist-agent.deb`) is root on every host of the fleet. So a release policy
//! whose keys cover the agent key — exactly or through a wildcard — is refused, unless
//! it is the agent's own release policy (`--key` is exactly the agent key, alone).
//!
//! `--kms-key ARN` (buckets with SSE-KMS default encryption) adds `kms:Decrypt` on that
//! key for hosts, and `kms:GenerateDataKey` plus `kms:Decrypt` for releasing (S3 needs
//! both to upload under a KMS key, Decrypt also for multipart uploads).

use anyhow::bail;
use serde_json::json;

/// The agent's release key unless `--agent-key` says otherwise.
pub const DEFAULT_AGENT_KEY: &str = "releases/hoist-agent.deb";

/// Whose policy to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyFor {
    /// Hosts running hoist-agent (read-only).
    Host,
    /// Whoever releases and rolls back one service.
    Release,
}

/// Arguments of `hoist iam-policy`.
#[derive(Debug, clap::Args)]
pub struct IamPolicyArgs {
    /// Bucket holding the releases.
    #[arg(long, env = "HOIST_S3_BUCKET", value_name = "NAME")]
    pub bucket: String,

    /// Release key, repeated for each service a host runs (e.g. `--key
    /// releases/hello.deb --key releases/hoist-agent.deb`); a host policy may use a
    /// prefix ending in `*` [host default: releases/*]. A release policy needs the
    /// one service's key.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,

    /// Whose policy.
    #[arg(long = "for", value_enum, default_value_t = PolicyFor::Host)]
    pub for_whom: PolicyFor,

    /// The agent's own release key: no other service's release policy may write it.
    #[arg(long, value_name = "KEY", default_value = DEFAULT_AGENT_KEY)]
    pub agent_key: String,

    /// ARN of the KMS key the bucket encrypts with (SSE-KMS): adds kms:Decrypt (and
    /// kms:GenerateDataKey for releasing) on that key.
    #[arg(long, value_name = "ARN")]
    pub kms_key: Option<String>,
}

/// Runs `hoist iam-policy`.
pub fn run(args: IamPolicyArgs) -> anyhow::Result<()> {
    let policy = policy(&Request {
        bucket: &args.bucket,
        keys: &args.keys,
        for_whom: args.for_whom,
        agent_key: &args.agent_key,
        kms_key: args.kms_key.as_deref(),
    })?;
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(())
}

/// What to make a policy for.
#[derive(Debug, Clone, Copy)]
struct Request<'a> {
    bucket: &'a str,
    keys: &'a [String],
    for_whom: PolicyFor,
    agent_key: &'a str,
    kms_key: Option<&'a str>,
}

/// The policy document for `request`.
fn policy(request: &Request<'_>) -> anyhow::Result<serde_json::Value> {
    let bucket = request.bucket;
    if bucket.is_empty() || bucket.contains(['/', '*', '?']) {
        bail!("`{bucket}` is not a bucket name: pass --bucket NAME (no slashes, no wildcards)");
    }
    let mut keys: Vec<String> = request
        .keys
        .iter()
        .map(|k| k.trim().trim_start_matches('/').to_owned())
        .collect();
    if keys.iter().any(String::is_empty) {
        bail!("an empty --key: pass the release key, e.g. --key releases/hello.deb");
    }
    if keys.is_empty() {
        match request.for_whom {
            PolicyFor::Host => keys.push("releases/*".to_owned()),
            PolicyFor::Release => bail!(
                "a release policy is for one service: pass its key, e.g. --key releases/hello.deb"
            ),
        }
    }
    keys.sort();
    keys.dedup();
    let agent_key = request.agent_key.trim().trim_start_matches('/');
    if request.for_whom == PolicyFor::Release {
        check_release_keys(&keys, agent_key)?;
    }
    if let Some(arn) = request.kms_key
        && !(arn.starts_with("arn:") && arn.contains(":kms:") && !arn.contains(char::is_whitespace))
    {
        bail!(
            "`{arn}` is not a KMS key ARN: pass --kms-key arn:aws:kms:REGION:ACCOUNT:key/ID (the key the bucket encrypts with)"
        );
    }

    let objects: Vec<String> = keys
        .iter()
        .map(|key| format!("arn:aws:s3:::{bucket}/{key}"))
        .collect();
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let mut statements = vec![json!({
        "Sid": "HoistReadRelease",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": objects,
    })];
    if request.for_whom == PolicyFor::Release {
        statements.push(json!({
            "Sid": "HoistWriteRelease",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": objects,
        }));
        let (operator, prefixes): (&str, Vec<&str>) = if keys.iter().any(|k| is_pattern(k)) {
            ("StringLike", keys.iter().map(String::as_str).collect())
        } else {
            ("StringEquals", keys.iter().map(String::as_str).collect())
        };
        statements.push(json!({
            "Sid": "HoistListReleaseVersions",
            "Effect": "Allow",
            "Action": ["s3:ListBucketVersions", "s3:ListBucket"],
            "Resource": [bucket_arn],
            "Condition": { operator: { "s3:prefix": prefixes } },
        }));
        statements.push(json!({
            "Sid": "HoistCheckVersioning",
            "Effect": "Allow",
            "Action": ["s3:GetBucketVersioning"],
            "Resource": [bucket_arn],
        }));
    }
    if let Some(arn) = request.kms_key {
        let actions = match request.for_whom {
            PolicyFor::Host => json!(["kms:Decrypt"]),
            PolicyFor::Release => json!(["kms:Decrypt", "kms:GenerateDataKey"]),
        };
        statements.push(json!({
            "Sid": "HoistReleaseKmsKey",
            "Effect": "Allow",
            "Action": actions,
            "Resource": [arn],
        }));
    }
    Ok(json!({ "Version": "2012-10-17", "Statement": statements }))
}

/// A release policy may write the agent's key only when it is the agent's own
/// (exactly that key, alone); no other key or wildcard may cover it.
fn check_release_keys(keys: &[String], agent_key: &str) -> anyhow::Result<()> {
    if keys.len() == 1 && keys[0] == agent_key {
        return Ok(());
    }
    if let Some(key) = keys.iter().find(|k| glob_matches(k, agent_key)) {
        if key == agent_key {
            bail!(
                "this release policy would write the agent's key `{agent_key}` together with other keys: whoever can release the agent is root on every host, so give the agent a release role of its own (`--for release --key {agent_key}`) and each service another"
            );
        }
        bail!(
            "`{key}` covers the agent's key `{agent_key}`: a role with this policy could replace hoist-agent and so run anything as root on every host; name the service's own key (e.g. --key releases/hello.deb), or set --agent-key if the agent is released elsewhere"
        );
    }
    Ok(())
}

/// Whether `key` has IAM wildcards (`*`, `?`).
fn is_pattern(key: &str) -> bool {
    key.contains(['*', '?'])
}

/// IAM resource matching: `*` matches any run of characters (`/` included), `?` one.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every action hoist's policies may contain, as spelled in the AWS Service
    /// Authorization Reference ("Actions defined by Amazon S3", "… by AWS Key
    /// Management Service"). Written out independently of the code above: a typo in
    /// the code (`s3:GetObjectVersions`, `kms:decrypt`) is not in this list.
    const REAL_ACTIONS: &[&str] = &[
        "s3:AbortMultipartUpload",
        "s3:GetBucketVersioning",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ];

    fn make(for_whom: PolicyFor, keys: &[&str], kms: Option<&str>) -> anyhow::Result<Value> {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        policy(&Request {
            bucket: "acme",
            keys: &keys,
            for_whom,
            agent_key: DEFAULT_AGENT_KEY,
            kms_key: kms,
        })
    }

    fn statements(p: &Value) -> &Vec<Value> {
        assert_eq!(p["Version"], "2012-10-17");
        p["Statement"].as_array().unwrap()
    }

    fn strings(v: &Value) -> Vec<&str> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect()
    }

    /// All (action, resource) pairs the policy allows.
    fn grants(p: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for s in statements(p) {
            assert_eq!(s["Effect"], "Allow");
            for action in strings(&s["Action"]) {
                for resource in strings(&s["Resource"]) {
                    out.push((action.to_owned(), resource.to_owned()));
                }
            }
        }
        out
    }

    fn assert_real_actions(p: &Value) {
        for (action, _) in grants(p) {
            assert!(
                REAL_ACTIONS.contains(&action.as_str()),
                "not an IAM action: {action}"
            );
        }
    }

    #[test]
    fn host_policy_reads_exactly_the_services_it_runs() {
        let p = make(
            PolicyFor::Host,
            &["releases/hoist-agent.deb", "/releases/hello.deb"],
            None,
        )
        .unwrap();
        assert_real_actions(&p);
        let mut expected = Vec::new();
        for action in ["s3:GetObject", "s3:GetObjectVersion"] {
            for key in ["releases/hello.deb", "releases/hoist-agent.deb"] {
                expected.push((action.to_owned(), format!("arn:aws:s3:::acme/{key}")));
            }
        }
        let mut got = grants(&p);
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
        // The default is every release key, still read-only.
        let p = make(PolicyFor::Host, &[], None).unwrap();
        assert_eq!(
            strings(&statements(&p)[0]["Resource"]),
            ["arn:aws:s3:::acme/releases/*"]
        );
        assert!(grants(&p).iter().all(|(a, _)| a.starts_with("s3:Get")));
    }

    #[test]
    fn release_policy_writes_one_key_and_lists_only_its_versions() {
        let p = make(PolicyFor::Release, &["releases/hello.deb"], None).unwrap();
        assert_real_actions(&p);
        let object = "arn:aws:s3:::acme/releases/hello.deb";
        let got = grants(&p);
        for action in [
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
        ] {
            assert!(
                got.contains(&(action.to_owned(), object.to_owned())),
                "{action}: {got:?}"
            );
        }
        for action in ["s3:ListBucketVersions", "s3:GetBucketVersioning"] {
            assert!(
                got.contains(&(action.to_owned(), "arn:aws:s3:::acme".to_owned())),
                "{action}"
            );
        }
        // Objects: only this key; listing: only this key's versions.
        assert!(
            got.iter()
                .all(|(_, r)| r == object || r == "arn:aws:s3:::acme"),
            "{got:?}"
        );
        let list = statements(&p)
            .iter()
            .find(|s| strings(&s["Action"]).contains(&"s3:ListBucketVersions"))
            .unwrap();
        assert_eq!(
            list["Condition"]["StringEquals"]["s3:prefix"],
            serde_json::json!(["releases/hello.deb"])
        );
        assert!(!p.to_string().contains("hoist-agent"), "{p}");
        assert!(!p.to_string().contains("Delete"));
    }

    #[test]
    fn no_release_policy_of_another_service_can_write_the_agent_key() {
        // The agent's own release role is fine.
        let p = make(PolicyFor::Release, &["releases/hoist-agent.deb"], None).unwrap();
        assert!(grants(&p).contains(&(
            "s3:PutObject".to_owned(),
            "arn:aws:s3:::acme/releases/hoist-agent.deb".to_owned()
        )));
        for keys in [
            &["releases/*"][..],
            &["*"],
            &["releases/hoist-*"],
            &["releases/hoist-agent.de?"],
            &["releases/hello.deb", "releases/hoist-agent.deb"],
        ] {
            let err = make(PolicyFor::Release, keys, None)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("releases/hoist-agent.deb") && err.contains("root"),
                "{keys:?}: {err}"
            );
        }
        // Not refused: a wildcard that does not cover the agent key; another agent key.
        make(PolicyFor::Release, &["releases/hello*"], None).unwrap();
        let keys = vec!["releases/*".to_owned()];
        policy(&Request {
            bucket: "acme",
            keys: &keys,
            for_whom: PolicyFor::Release,
            agent_key: "agent/hoist-agent.deb",
            kms_key: None,
        })
        .unwrap();
        let err = make(PolicyFor::Release, &[], None).unwrap_err().to_string();
        assert!(err.contains("--key releases/hello.deb"), "{err}");
    }

    #[test]
    fn kms_key_adds_decrypt_and_for_releases_generate_data_key() {
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let host = make(PolicyFor::Host, &["releases/hello.deb"], Some(arn)).unwrap();
        assert_real_actions(&host);
        let kms: Vec<_> = grants(&host)
            .into_iter()
            .filter(|(a, _)| a.starts_with("kms:"))
            .collect();
        assert_eq!(kms, [("kms:Decrypt".to_owned(), arn.to_owned())]);
        let release = make(PolicyFor::Release, &["releases/hello.deb"], Some(arn)).unwrap();
        assert_real_actions(&release);
        let mut kms: Vec<_> = grants(&release)
            .into_iter()
            .filter(|(a, _)| a.starts_with("kms:"))
            .collect();
        kms.sort();
        assert_eq!(
            kms,
            [
                ("kms:Decrypt".to_owned(), arn.to_owned()),
                ("kms:GenerateDataKey".to_owned(), arn.to_owned())
            ]
        );
        // Without --kms-key: no KMS rights at all.
        let plain = make(PolicyFor::Release, &["releases/hello.deb"], None).unwrap();
        assert!(!plain.to_string().contains("kms:"));
        assert!(make(PolicyFor::Host, &[], Some("1234abcd")).is_err());
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(glob_matches("releases/*", "releases/hoist-agent.deb"));
        assert!(glob_matches("*", "a/b"));
        assert!(glob_matches("re?eases/*.deb", "releases/x/y.deb"));
        assert!(glob_matches(
            "releases/hoist-agent.deb",
            "releases/hoist-agent.deb"
        ));
        assert!(!glob_matches("releases/hello*", "releases/hoist-agent.deb"));
        assert!(!glob_matches("releases/*.tar", "releases/hoist-agent.deb"));
        assert!(!glob_matches(
            "releases/hoist-agent.deb",
            "releases/hoist-agent.deb2"
        ));
    }

    #[test]
    fn refuses_a_bucket_with_a_path() {
        let keys = vec!["k".to_owned()];
        let err = policy(&Request {
            bucket: "acme/releases",
            keys: &keys,
            for_whom: PolicyFor::Host,
            agent_key: DEFAULT_AGENT_KEY,
            kms_key: None,
        });
        assert!(err.is_err());
    }
}
