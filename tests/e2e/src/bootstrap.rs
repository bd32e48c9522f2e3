//! What a new host boots with: the agent's configuration, the rendered cloud-init
//! user-data, and what the "image" has before cloud-init runs (the stand-in for an
//! instance profile, and the service port of this host).

use std::net::SocketAddr;
use std::time::Duration;

use hoist_testkit::container::{ContainerError, Host, HostSpec, Suite};
use hoist_testkit::s3server::S3Server;

use crate::releases::{AGENT_KEY, Bucket, HELLO_KEY};

/// How often the agents of the tests poll (the default of 10 s would make every
/// step of the tests wait for it).
pub const TEST_POLL_INTERVAL: &str = "2s";
/// Jitter of the agents of the tests.
pub const TEST_POLL_JITTER: &str = "500ms";

/// How the host's agent polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polling {
    /// Every [`TEST_POLL_INTERVAL`] ± [`TEST_POLL_JITTER`].
    Test,
    /// The agent's defaults (no `interval`/`jitter` in its config): what a real host
    /// does, for benchmarks.
    AgentDefaults,
}

/// One host of a test: its name and the port its `hello` listens on (hosts share the
/// machine's network, so each has its own).
#[derive(Debug, Clone)]
pub struct HostPlan {
    /// Machine name and hostname.
    pub name: String,
    /// `hello`'s port on 127.0.0.1.
    pub port: u16,
    /// How its agent polls.
    pub polling: Polling,
    /// The Debian release it runs.
    pub suite: Suite,
}

impl HostPlan {
    /// A host called `name` with a free port, polling at the tests' pace, running
    /// Debian 12 ([`Suite::default`]).
    pub fn new(name: &str) -> HostPlan {
        HostPlan {
            name: name.to_owned(),
            port: hoist_testkit::hello::free_port(),
            polling: Polling::Test,
            suite: Suite::default(),
        }
    }

    /// The same host running `suite`.
    pub fn suite(mut self, suite: Suite) -> HostPlan {
        self.suite = suite;
        self
    }

    /// The same host with `polling`.
    pub fn polling(mut self, polling: Polling) -> HostPlan {
        self.polling = polling;
        self
    }

    /// Where the test reaches this host's `hello`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `/etc/hoist/agent.toml` for this host: watch `hello` (reload the unit, health
    /// check on this host's port) and the agent itself, in `bucket`, each accepting
    /// only releases signed with the bucket's key.
    pub fn agent_config(&self, bucket: &Bucket<'_>) -> String {
        let s3 = |key: &str| {
            format!(
                "{{ bucket = \"{}\", key = \"{key}\", region = \"us-east-1\", endpoint = \"{}\", path_style = true }}",
                bucket.name(),
                bucket.endpoint()
            )
        };
        let polling = match self.polling {
            Polling::Test => {
                format!("interval = \"{TEST_POLL_INTERVAL}\"\njitter = \"{TEST_POLL_JITTER}\"\n")
            }
            Polling::AgentDefaults => "# interval and jitter: the agent's defaults\n".to_owned(),
        };
        format!(
            r#"# hoist-agent configuration of end-to-end test host {name}
{polling}
[[watch]]
name = "hello"
package = "hello"
s3 = {hello_s3}
public_key = "{public_key}"
signal = {{ kind = "systemd", unit = "hello.service" }}
health = {{ kind = "http", url = "http://127.0.0.1:{port}/healthz", within = "10s" }}

[[watch]]
name = "hoist-agent"
package = "hoist-agent"
s3 = {agent_s3}
public_key = "{public_key}"
"#,
            name = self.name,
            hello_s3 = s3(HELLO_KEY),
            agent_s3 = s3(AGENT_KEY),
            public_key = bucket.public_key(),
            port = self.port,
        )
    }

    /// The host to boot: user-data rendered by `hoist cloud-init` for this host's
    /// agent config (the agent package as released to the bucket), plus what the
    /// image carries before cloud-init runs:
    ///
    /// - S3 credentials for every service through systemd's `DefaultEnvironment`
    ///   (what an instance profile gives a real host; instance metadata is disabled
    ///   so nothing probes 169.254.169.254);
    /// - a drop-in that makes `hello` listen on this host's port.
    pub fn spec(&self, server: &S3Server, bucket: &Bucket<'_>) -> HostSpec {
        let (user_data, _command) = bucket.cloud_init(&self.agent_config(bucket));
        self.spec_with_user_data(server, &user_data)
    }

    /// [`HostPlan::spec`] with user-data rendered by the caller.
    pub fn spec_with_user_data(&self, server: &S3Server, user_data: &str) -> HostSpec {
        let creds = server.credentials();
        let environment = format!(
            "# Stand-in for an instance profile: credentials for moto.\n[Manager]\n\
             DefaultEnvironment=\"AWS_ACCESS_KEY_ID={}\" \"AWS_SECRET_ACCESS_KEY={}\" \
             \"AWS_REGION={}\" \"AWS_EC2_METADATA_DISABLED=true\"\n",
            creds.access_key_id, creds.secret_access_key, creds.region
        );
        let listen = format!(
            "# This host's port (hosts share the machine's network).\n[Service]\n\
             ExecStart=\nExecStart=/usr/bin/hello --listen 127.0.0.1:{}\n",
            self.port
        );
        HostSpec::new(&self.name, user_data)
            .suite(self.suite)
            .file(
                "/etc/systemd/system.conf.d/hoist-e2e-aws.conf",
                environment,
                0o600,
            )
            .file(
                "/etc/systemd/system/hello.service.d/hoist-e2e-port.conf",
                listen,
                0o644,
            )
            .boot_timeout(Duration::from_secs(120))
    }
}

/// Boots the host of every plan at once (as an autoscaling group would), with
/// user-data rendered for each by [`HostPlan::spec`]; the hosts in plan order.
///
/// # Errors
/// The first host that did not boot (the others are powered off and removed as their
/// guards drop).
pub fn boot_all(
    plans: &[HostPlan],
    server: &S3Server,
    bucket: &Bucket<'_>,
) -> Result<Vec<Host>, ContainerError> {
    std::thread::scope(|scope| {
        let booting: Vec<_> = plans
            .iter()
            .map(|plan| {
                let spec = plan.spec(server, bucket);
                scope.spawn(move || spec.boot())
            })
            .collect();
        booting
            .into_iter()
            .map(|boot| match boot.join() {
                Ok(booted) => booted,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}
