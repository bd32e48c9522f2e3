//! The commands around the service: `check-config` (errors name the field), `once`
//! (one sync; the exit code says whether it worked), `status` (`--json`), and a corrupt
//! state file being reported and rebuilt without reinstalling.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{World, agent_bin, hello_deb};

fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run hoist-agent")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn check_config(toml: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, toml).unwrap();
    let mut cmd = Command::new(agent_bin());
    cmd.env_remove("HOIST_AGENT_CONFIG")
        .arg("check-config")
        .arg("--config")
        .arg(&path);
    run(cmd)
}

const WATCH: &str =
    "[[watch]]\nname = \"hello\"\npackage = \"hello\"\ns3 = { bucket = \"b\", key = \"k.deb\" }\n";

#[test]
fn check_config_accepts_a_good_file_and_names_the_bad_field() {
    const KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    let ok = check_config(&format!(
        "state_dir = \"/var/lib/hoist-agent\"\n{WATCH}public_key = \"{KEY}\"\n"
    ));
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("OK (1 watch)"), "{}", text(&ok));
    assert!(text(&ok).contains("hello: signed"), "{}", text(&ok));

    // Signed by default: no key and no allow_unsigned fails, naming both fixes; with
    // allow_unsigned the watch is listed as unsigned.
    let keyless = check_config(WATCH);
    assert_eq!(keyless.status.code(), Some(1), "{}", text(&keyless));
    for needle in [
        "`hello` has no public key",
        "public_key",
        "allow_unsigned = true",
    ] {
        assert!(
            text(&keyless).contains(needle),
            "{needle}: {}",
            text(&keyless)
        );
    }
    let second = WATCH.replace("\"hello\"", "\"web\"");
    let unsigned = check_config(&format!(
        "{WATCH}allow_unsigned = true\n{second}public_key = \"{KEY}\"\n"
    ));
    assert!(unsigned.status.success(), "{}", text(&unsigned));
    assert!(
        text(&unsigned).contains("hello: UNSIGNED (allow_unsigned = true)")
            && text(&unsigned).contains("web: signed"),
        "{}",
        text(&unsigned)
    );

    let cases = [
        (
            format!("{WATCH}colour = \"red\"\n"),
            vec!["colour", "line 5"],
        ),
        (
            format!("interval = \"soon\"\n{WATCH}"),
            vec!["interval", "soon", "line 1"],
        ),
        (
            format!("{WATCH}public_key = \"RWQnotakey\"\n"),
            vec!["watch[0] (hello).public_key"],
        ),
        (
            format!("{WATCH}health = {{ kind = \"http\", url = \"ftp://x/\" }}\n"),
            vec!["watch[0] (hello).health.url"],
        ),
        (
            format!("{WATCH}signal = {{ kind = \"pidfile\" }}\n"),
            vec!["path", "line 5"],
        ),
        (
            WATCH.replace(
                "s3 = { bucket = \"b\", key = \"k.deb\" }",
                "s3 = { bucket = \"b\" }",
            ),
            vec!["key", "line 4"],
        ),
        ("interval = \"5s\"\n".to_owned(), vec!["[[watch]]"]),
    ];
    for (toml, needles) in cases {
        let out = check_config(&toml);
        assert_eq!(out.status.code(), Some(1), "{toml}: {}", text(&out));
        let message = text(&out);
        for needle in needles {
            assert!(
                message.contains(needle),
                "{toml}\nmessage should mention {needle:?}: {message}"
            );
        }
    }

    let mut missing = Command::new(agent_bin());
    missing
        .env("HOIST_AGENT_CONFIG", "/nonexistent/agent.toml")
        .arg("check-config");
    let out = run(missing);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("/nonexistent/agent.toml"),
        "{}",
        text(&out)
    );
}

#[test]
fn once_status_and_a_corrupt_state_file() {
    let world = World::new();
    let v1 = hello_deb(&world, "1.0.0", None);
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");

    // Nothing released yet: `once` fails and says which object is missing.
    let out = run(world.agent_command(&config, &["once"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("hello/hello.deb"), "{}", text(&out));

    let v1_id = world.release(&v1, None);
    let out = run(world.agent_command(&config, &["once"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("1.0.0")
    );

    let status = run(world.agent_command(&config, &["status", "--json"]));
    assert!(status.status.success(), "{}", text(&status));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["watches"]["hello"]["installed"]["version"], "1.0.0");
    assert_eq!(
        json["watches"]["hello"]["installed"]["version_id"],
        v1_id.as_str()
    );
    let human = run(world.agent_command(&config, &["status"]));
    let human = String::from_utf8_lossy(&human.stdout).into_owned();
    assert!(
        human.contains("installed:      1.0.0") && human.contains(&v1_id),
        "{human}"
    );

    // A corrupt state file: reported, set aside, rebuilt from dpkg-query and the cached
    // package; the object is recognised by its sha256 metadata, so nothing is
    // downloaded or reinstalled.
    let state_file = world.state_dir().join("state.json");
    std::fs::write(&state_file, b"{\"format\": 1, \"watches\": {\"hel").unwrap();
    let dpkg_status = world.sandbox.path("/var/lib/dpkg/status");
    let mtime = std::fs::metadata(&dpkg_status).unwrap().modified().unwrap();
    world.proxy.reset_counts();
    let out = run(world.agent_command(&config, &["once"]));
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(
        log.contains("state file is corrupt") && log.contains("ERROR"),
        "{log}"
    );
    assert!(
        log.contains("state rebuilt: hello 1.0.0 is installed"),
        "{log}"
    );
    assert!(world.state_dir().join("state.json.corrupt").is_file());
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    assert_eq!(
        std::fs::metadata(&dpkg_status).unwrap().modified().unwrap(),
        mtime,
        "no reinstall"
    );
    let installed = world.state_installed();
    assert_eq!(installed["version"], "1.0.0");
    assert_eq!(
        installed["version_id"],
        v1_id.as_str(),
        "identity recorded again"
    );

    // `once` while `run` holds the state directory is refused.
    let agent = world.start_agent(&config);
    agent.wait_for_log("running", 1, Duration::from_secs(30));
    let out = run(world.agent_command(&config, &["once"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(&format!("pid {}", agent.pid())),
        "{}",
        text(&out)
    );
}
