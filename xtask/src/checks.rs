//! Checks on the shape of the workspace that no compiler run catches: which program links which
//! library, and whether the declared `rust-version` covers what the locked dependencies need.

use std::path::Path;
use std::process::Command;

use crate::{cargo, step, workspace_root};

/// What a program must not link (DESIGN.md's table): the controller injects nothing, so no
/// enigo and not rtcdesk-input's injecting side; the puppet has a window of its own (code,
/// consent, chat) but never the controller's key capture, rtcdesk-input's `window` feature.
/// rtcdesk-input keeps each side behind a feature (`inject`, `window`) so that this holds.
/// Each entry is a crate name, or a `CRATE feature "NAME"` line of `cargo tree -e features`.
pub const FORBIDDEN_LINKS: &[(&str, &str)] = &[
    ("rtcdesk-puppet", "rtcdesk-input feature \"window\""),
    ("rtcdesk-controller", "enigo"),
    ("rtcdesk-controller", "rtcdesk-input feature \"inject\""),
];

/// Fails when a program's normal dependency tree (what its binary links; dev-dependencies
/// excluded) holds a library, or a library's feature, it must not link.
pub fn check_sides() -> Result<(), String> {
    for (package, forbidden) in FORBIDDEN_LINKS {
        let output = cargo()
            .args([
                "tree",
                "--locked",
                "-p",
                package,
                "-e",
                "normal,features",
                "--prefix",
                "none",
            ])
            .output()
            .map_err(|e| format!("cargo tree: could not start: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo tree -p {package} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let tree = String::from_utf8_lossy(&output.stdout);
        if let Some(line) = linked(&tree, forbidden) {
            return Err(format!(
                "{package} links {forbidden} ({line}); see `cargo tree -p {package} -e normal,features -i rtcdesk-input` \
                 and keep the other side's feature of rtcdesk-input off"
            ));
        }
        println!("    {package} does not link {forbidden}");
    }
    Ok(())
}

/// The line of a `cargo tree --prefix none` listing that names `item` (a crate, or a crate's
/// `feature "NAME"` line), if any.
fn linked<'a>(tree: &'a str, item: &str) -> Option<&'a str> {
    tree.lines()
        .map(str::trim)
        .find(|line| *line == item || (!item.contains(' ') && line.split(' ').next() == Some(item)))
}

/// A Rust version as `rust-version` writes it: major, minor, patch (0 when left out).
type RustVersion = (u64, u64, u64);

fn parse_version(text: &str) -> Option<RustVersion> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    parts.next().is_none().then_some((major, minor, patch))
}

fn show((major, minor, patch): RustVersion) -> String {
    if patch == 0 {
        format!("{major}.{minor}")
    } else {
        format!("{major}.{minor}.{patch}")
    }
}

/// The `rust-version` of `[workspace.package]` in the root manifest.
fn declared_rust_version(manifest: &str) -> Option<RustVersion> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[workspace.package]";
        } else if let (true, Some(rest)) = (in_package, line.strip_prefix("rust-version")) {
            let value = rest
                .trim_start()
                .strip_prefix('=')?
                .trim()
                .trim_matches('"');
            return parse_version(value);
        }
    }
    None
}

/// The dependencies (name, version, rust-version) in the resolved graph for this host, from
/// `cargo metadata`'s JSON; packages that declare no rust-version are left out.
fn dependency_rust_versions(metadata: &str) -> Result<Vec<(String, String, RustVersion)>, String> {
    let value: serde_json::Value =
        serde_json::from_str(metadata).map_err(|e| format!("cargo metadata: {e}"))?;
    let members: Vec<&str> = value["workspace_members"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|id| id.as_str()).collect())
        .unwrap_or_default();
    let resolved: Vec<&str> = value["resolve"]["nodes"]
        .as_array()
        .map(|nodes| nodes.iter().filter_map(|n| n["id"].as_str()).collect())
        .ok_or("cargo metadata gave no resolve graph")?;
    let packages = value["packages"]
        .as_array()
        .ok_or("cargo metadata gave no packages")?;
    let mut found = Vec::new();
    for package in packages {
        let id = package["id"].as_str().unwrap_or_default();
        if members.contains(&id) || !resolved.contains(&id) {
            continue;
        }
        if let Some(version) = package["rust_version"].as_str().and_then(parse_version) {
            let name = package["name"].as_str().unwrap_or("?").to_owned();
            let release = package["version"].as_str().unwrap_or("?").to_owned();
            found.push((name, release, version));
        }
    }
    Ok(found)
}

/// Checks the workspace's `rust-version`: no locked dependency may need a newer compiler (cargo
/// would refuse to build it with the declared one), and when that toolchain is installed the
/// whole workspace is compiled with it. Std APIs newer than it in our own code are caught by
/// clippy's `incompatible_msrv`, which reads the same field.
pub fn check_rust_version() -> Result<(), String> {
    let root = workspace_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("reading Cargo.toml: {e}"))?;
    let declared = declared_rust_version(&manifest)
        .ok_or("the root Cargo.toml has no rust-version in [workspace.package]")?;
    let host = host_triple()?;
    let output = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
        ])
        .arg(&host)
        .output()
        .map_err(|e| format!("cargo metadata: could not start: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let dependencies = dependency_rust_versions(&String::from_utf8_lossy(&output.stdout))?;
    let newest = dependencies
        .iter()
        .map(|(_, _, v)| *v)
        .max()
        .unwrap_or((1, 0, 0));
    let needing: Vec<String> = dependencies
        .iter()
        .filter(|(_, _, v)| *v == newest)
        .map(|(name, release, _)| format!("{name} {release}"))
        .collect();
    let too_new: Vec<String> = dependencies
        .iter()
        .filter(|(_, _, v)| *v > declared)
        .map(|(name, release, v)| format!("{name} {release} needs {}", show(*v)))
        .collect();
    if !too_new.is_empty() {
        return Err(format!(
            "rust-version is {} but {}: raise rust-version in Cargo.toml, or pin older versions",
            show(declared),
            too_new.join(", ")
        ));
    }
    println!(
        "    rust-version {}; the most a locked dependency needs is {} ({})",
        show(declared),
        show(newest),
        needing.join(", ")
    );
    if declared > newest {
        println!(
            "    (above every dependency's: our own code must need it; clippy's incompatible_msrv \
             holds std APIs to it, but cannot tell whether an older compiler would do)"
        );
    }
    compile_with(declared, &root)
}

/// Compiles the workspace with the toolchain `rust-version` names, when rustup has it.
fn compile_with(version: RustVersion, root: &Path) -> Result<(), String> {
    let (major, minor, patch) = version;
    let candidates = [show(version), format!("{major}.{minor}.{patch}")];
    let installed = candidates.iter().find(|toolchain| {
        Command::new("rustup")
            .args(["run", toolchain, "rustc", "--version"])
            .output()
            .is_ok_and(|out| out.status.success())
    });
    let Some(toolchain) = installed else {
        println!(
            "    no Rust {} toolchain installed, so not compiled with it \
             (`rustup toolchain install {}` makes this check compile the workspace)",
            show(version),
            show(version)
        );
        return Ok(());
    };
    let mut command = Command::new("rustup");
    command
        .current_dir(root)
        .args([
            "run",
            toolchain,
            "cargo",
            "check",
            "--workspace",
            "--all-targets",
            "--locked",
        ])
        // Its own target dir: another compiler's artefacts would evict the usual ones.
        .env("CARGO_TARGET_DIR", target_dir(root).join("msrv"))
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC");
    step(&format!("cargo check with Rust {toolchain}"), &mut command)
}

fn target_dir(root: &Path) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> Result<String, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host:"))
        .map(|host| host.trim().to_owned())
        .ok_or_else(|| "rustc -vV named no host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_listing_links_a_library_only_when_a_line_names_it() {
        let tree = "rtcdesk-puppet v0.1.0 (/w/crates/puppet)\nenigo v0.6.1\nwinit-helper v1.0.0\nx11rb v0.13.2 (*)\n";
        assert_eq!(linked(tree, "enigo"), Some("enigo v0.6.1"));
        assert_eq!(
            linked(tree, "winit"),
            None,
            "a longer name is another crate"
        );
        assert_eq!(linked(tree, "x11rb"), Some("x11rb v0.13.2 (*)"));
        let features = "rtcdesk-input feature \"inject\"\nrtcdesk-input v0.1.0 (/w/crates/input)\n";
        assert_eq!(linked(features, "rtcdesk-input feature \"window\""), None);
        assert_eq!(
            linked(features, "rtcdesk-input feature \"inject\""),
            Some("rtcdesk-input feature \"inject\"")
        );
    }

    #[test]
    fn rust_versions_compare_with_their_patch_left_out() {
        assert_eq!(parse_version("1.90"), Some((1, 90, 0)));
        assert_eq!(parse_version("1.88.0"), Some((1, 88, 0)));
        assert_eq!(parse_version("1.x"), None);
        assert_eq!(parse_version("1.2.3.4"), None);
        assert!(parse_version("1.90").unwrap() > parse_version("1.88.1").unwrap());
        assert_eq!(show((1, 90, 0)), "1.90");
    }

    #[test]
    fn the_declared_version_is_read_from_the_workspace_package_table() {
        let manifest = "[package]\nrust-version = \"1.60\"\n\n[workspace.package]\nedition = \"2021\"\n# note\nrust-version = \"1.90\"\n";
        assert_eq!(declared_rust_version(manifest), Some((1, 90, 0)));
        assert_eq!(declared_rust_version("[workspace.package]\n"), None);
    }

    #[test]
    fn dependencies_without_a_rust_version_and_members_are_left_out() {
        let metadata = r#"{
            "workspace_members": ["path+file:///w#app@0.1.0"],
            "resolve": {"nodes": [{"id": "path+file:///w#app@0.1.0"}, {"id": "reg#a@1.0.0"}, {"id": "reg#b@2.0.0"}]},
            "packages": [
                {"id": "path+file:///w#app@0.1.0", "name": "app", "version": "0.1.0", "rust_version": "1.99"},
                {"id": "reg#a@1.0.0", "name": "a", "version": "1.0.0", "rust_version": "1.87"},
                {"id": "reg#b@2.0.0", "name": "b", "version": "2.0.0", "rust_version": null},
                {"id": "reg#c@3.0.0", "name": "c", "version": "3.0.0", "rust_version": "1.95"}
            ]
        }"#;
        assert_eq!(
            dependency_rust_versions(metadata).unwrap(),
            vec![("a".to_owned(), "1.0.0".to_owned(), (1, 87, 0))]
        );
    }
}
