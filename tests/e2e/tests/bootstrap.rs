//! The cloud-init bootstrap on a real host (systemd-nspawn, Debian 12 with systemd and
//! cloud-init) in the default mode: `hoist cloud-init` verified the signed agent
//! release and pinned it; the host fetches it with its own instance credentials
//! (IMDSv2 stand-in on 127.0.0.1, reached through `AWS_EC2_METADATA_SERVICE_ENDPOINT`)
//! and a SigV4-signed `curl`, so nothing in the user-data expires. S3 is garage, which
//! checks that signature; the host's key (read-only) is not the one that rendered the
//! user-data. One host, two boots:
//!
//! 1. first boot with the agent object missing (deleted after rendering): every
//!    download attempt fails, the cloud-init log says so, nothing is installed, and
//!    `hoist-bootstrap.service` stays armed for the next boot;
//! 2. the object is put back (same bytes) and the host rebooted: while a stand-in for
//!    apt-daily holds the dpkg lock for 30 s the bootstrap waits for it, then installs
//!    the agent and starts it.
//!
//! (Refusing a tampered or unsigned agent object at render time is shown by
//! `packager/tests/s3_cloud_init.rs`; tampered and expired presigned URLs and wrong
//! secrets by `packager/tests/s3_garage_bootstrap.rs`.)

use std::time::{Duration, SystemTime};

use hoist_e2e::artifacts;
use hoist_e2e::instance::{
    DPKG_LOCK_SECONDS, delete_object, hoist, instance_host, release_keypair,
};
use hoist_e2e::packages::agent_deb;
use hoist_e2e::probe::{diagnostics, installed_version};
use hoist_e2e::releases::AGENT_KEY;
use hoist_testkit::container::Host;
use hoist_testkit::imds::{Imds, RoleCredentials};
use hoist_testkit::s3server::S3Server;

const BUCKET: &str = "hoist-e2e-boot";

/// The cloud-init log of the host, where the bootstrap reports.
fn cloud_init_log(host: &Host) -> String {
    String::from_utf8_lossy(
        &host
            .read_file("/var/log/cloud-init-output.log")
            .unwrap_or_default(),
    )
    .into_owned()
}

#[test]
fn instance_credential_bootstrap_survives_a_missing_object_and_a_held_dpkg_lock() {
    // garage checks every signature: the host's SigV4 GET must be right.
    let server = S3Server::garage();
    server.create_bucket(BUCKET, false);
    let dir = artifacts::scratch_dir("e2e-bootstrap");
    let (secret, _public, public_key) = release_keypair(&dir);
    let agent = agent_deb(&artifacts::hoist_agent(), "0.1.0", &dir);
    let secret = secret.display().to_string();
    let release = || {
        hoist(
            &server,
            BUCKET,
            "release",
            &[
                "--allow-unversioned",
                "--key",
                AGENT_KEY,
                "--sign-key",
                &secret,
                "--deb",
            ]
            .into_iter()
            .chain([agent.path.to_str().unwrap_or_default()])
            .collect::<Vec<_>>(),
        )
    };
    release();

    // The host's agent watches itself, with the release key: cloud-init takes the key
    // to verify the object from this watch.
    let region = server.credentials().region.clone();
    let agent_config = format!(
        "[[watch]]\nname = \"hoist-agent\"\npackage = \"hoist-agent\"\n\
         s3 = {{ bucket = \"{BUCKET}\", key = \"{AGENT_KEY}\", region = \"{region}\", endpoint = \"{}\", path_style = true }}\n\
         public_key = \"{public_key}\"\n",
        server.endpoint()
    );
    let config_path = dir.join("agent.toml");
    std::fs::write(&config_path, &agent_config).expect("write agent.toml");
    let (user_data, said) = hoist(
        &server,
        BUCKET,
        "cloud-init",
        &[
            "--key",
            AGENT_KEY,
            "--agent-config",
            config_path.to_str().unwrap_or_default(),
        ],
    );
    assert!(
        said.contains("verified s3://hoist-e2e-boot/releases/hoist-agent.deb"),
        "{said}"
    );
    assert!(user_data.contains("mode='instance'"), "{user_data}");
    assert!(user_data.contains(&format!("sha256='{}'", agent.sha256)));
    // No URL signature, no expiry, no credentials: valid for as long as it is kept.
    for needle in [
        "X-Amz-",
        &server.credentials().secret_access_key,
        &server.credentials().access_key_id,
    ] {
        assert!(
            !user_data.contains(needle),
            "`{needle}` in the user-data:\n{user_data}"
        );
    }
    let rendered_at = SystemTime::now();

    // The instance role's credentials are not the ones that rendered the user-data:
    // a read-only key of its own, handed out by IMDS at boot, whenever that is.
    let role = server.read_only_key("hoist-e2e-instance-role", BUCKET);
    let imds = Imds::start(Some((
        "hoist-e2e-host",
        RoleCredentials {
            access_key_id: role.access_key_id.clone(),
            secret_access_key: role.secret_access_key.clone(),
            token: "instance-role-session-token".into(),
            expiration: SystemTime::now() + Duration::from_secs(6 * 3600),
        },
    )));

    // --- first boot: the object is gone ----------------------------------------------
    delete_object(&server, BUCKET, AGENT_KEY);
    let spec = instance_host("e2e-bootstrap", &user_data, &imds.endpoint(), &region)
        .boot_timeout(Duration::from_secs(180));
    let mut host = spec.boot().expect("boot the host");
    let first_boot = host.boot_time();
    let log = cloud_init_log(&host);
    assert!(
        log.contains(
            "hoist-bootstrap: download attempt 5 of 5 failed: GET answered HTTP 404 NoSuchKey"
        ),
        "the cloud-init log does not say why:\n{log}"
    );
    assert!(
        log.contains("hoist-bootstrap: FAILED: cannot download the hoist-agent package")
            && log.contains("tries again at the next boot"),
        "{log}"
    );
    assert_eq!(installed_version(&host, "hoist-agent"), None);
    assert_eq!(
        host.unit_property("hoist-bootstrap.service", "UnitFileState")
            .expect("systemctl show"),
        "enabled",
        "the bootstrap is not armed for the next boot:\n{log}"
    );
    let imds_requests = imds.requests();
    assert!(
        imds_requests
            .iter()
            .any(|r| r == "PUT /latest/api/token 200")
            && imds_requests
                .iter()
                .any(|r| r == "GET /latest/meta-data/iam/security-credentials/hoist-e2e-host 200"),
        "the host did not take its credentials from IMDSv2: {imds_requests:?}"
    );

    // --- second boot: the object is back, the dpkg lock is held for 30 s ----------------
    release();
    host.reboot().expect("reboot the host");
    let second_boot = host.boot_time();
    let log = cloud_init_log(&host);
    let context = || format!("{log}\n{}", diagnostics(&host));
    assert_eq!(
        installed_version(&host, "hoist-agent").as_deref(),
        Some("0.1.0"),
        "{}",
        context()
    );
    assert!(
        log.contains("hoist-bootstrap: the dpkg lock is held by another process; waiting for it"),
        "the bootstrap did not meet the held lock:\n{}",
        context()
    );
    assert!(
        log.contains(&format!("hoist-agent installed (sha256 {})", agent.sha256)),
        "{}",
        context()
    );
    let holder = host
        .journal("hoist-e2e-dpkg-lock.service")
        .unwrap_or_default();
    assert!(
        holder.contains("released /var/lib/dpkg/lock-frontend"),
        "{holder}"
    );
    assert!(
        second_boot >= Duration::from_secs(u64::from(DPKG_LOCK_SECONDS)),
        "the second boot took {second_boot:?}, less than the lock was held"
    );
    assert_eq!(
        host.unit_property("hoist-agent.service", "ActiveState")
            .expect("systemctl show"),
        "active",
        "{}",
        context()
    );
    assert!(
        host.exec(&["test", "-e", "/var/lib/hoist-bootstrap/done"])
            .expect("test")
            .success()
    );
    println!(
        "first boot (object missing) {first_boot:.1?}, second boot (dpkg lock held {DPKG_LOCK_SECONDS} s) {second_boot:.1?}; rendered {:.0?} before the second boot",
        rendered_at.elapsed().unwrap_or_default()
    );
    host.shutdown().expect("shut the host down");
}
