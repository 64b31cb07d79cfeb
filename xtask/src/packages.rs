//! The Debian packages the workspace needs, in one list, and their installation.
//!
//! `cargo xtask ci` and `cargo xtask demo` both call [`ensure_installed`]; a package added for a
//! new crate or test belongs here and nowhere else.

use std::process::Command;

/// Packages needed to build the workspace (codecs, TLS, X11 capture, key maps).
const BUILD: &[&str] = &[
    "pkg-config",
    "nasm",
    "clang",
    "libclang-dev",
    "libssl-dev",
    "libaom-dev",
    "libdav1d-dev",
    "libxcb1-dev",
    "libxcb-shm0-dev",
    "libxcb-randr0-dev",
    "libxkbcommon-dev",
];

/// Packages needed to run windows and an X server without a display.
const RUN: &[&str] = &[
    "xvfb",
    "libvulkan1",
    "mesa-vulkan-drivers",
    "libx11-xcb1",
    "libxcursor1",
    "libxi6",
    "libxrandr2",
    "libxkbcommon-x11-0",
];

/// Real peers and tools the tests check against: X clients, a STUN/TURN server, a reference
/// decoder, a browser (`cargo xtask interop`), Python's venv for the aiortc controller, and
/// nftables for the NAT routers of `cargo xtask nat`.
const TEST: &[&str] = &[
    "xdotool",
    "x11-utils",
    "x11-apps",
    "imagemagick",
    "coturn",
    "dav1d",
    "chromium",
    "python3-venv",
    "nftables",
];

/// Installs whichever listed packages are missing; does nothing when all are present.
pub fn ensure_installed() -> Result<(), String> {
    let missing: Vec<&str> = BUILD
        .iter()
        .chain(RUN)
        .chain(TEST)
        .copied()
        .filter(|package| !is_installed(package))
        .collect();
    if missing.is_empty() {
        println!("==> system packages: all present");
        return Ok(());
    }
    println!("==> installing system packages: {}", missing.join(" "));
    let sudo = if is_root() { None } else { Some("sudo") };
    run_apt(sudo, &["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(&missing);
    run_apt(sudo, &install)
}

fn run_apt(sudo: Option<&str>, args: &[&str]) -> Result<(), String> {
    let mut command = match sudo {
        Some(sudo) => {
            let mut c = Command::new(sudo);
            c.arg("apt-get");
            c
        }
        None => Command::new("apt-get"),
    };
    let status = command
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("apt-get {}: could not start: {e}", args[0]))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed ({status})", args[0]))
    }
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
}

/// Whether this process runs as root: apt-get needs sudo otherwise, network namespaces need it.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}
