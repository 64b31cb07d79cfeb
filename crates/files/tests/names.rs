//! Every hostile name a sender could offer lands as one safe file inside the download folder.

use std::path::{Component, Path};
use std::time::Instant;

use rtcdesk_files::name::{safe_name, MAX_NAME};
use rtcdesk_files::{DownloadFolder, Limits, SeekSource, TransferEvent, Transfers};

/// (offered name, expected safe name). `None`: only the invariants are checked.
fn table() -> Vec<(String, Option<&'static str>)> {
    let long_stem = "a".repeat(300);
    let long_utf8 = "é".repeat(200);
    let cases: Vec<(String, Option<&'static str>)> = vec![
        ("report.pdf".into(), Some("report.pdf")),
        ("../../etc/passwd".into(), Some("passwd")),
        ("..".into(), Some("file")),
        (".".into(), Some("file")),
        ("...".into(), Some("file")),
        ("".into(), Some("file")),
        ("   ".into(), Some("file")),
        ("/".into(), Some("file")),
        ("/etc/shadow".into(), Some("shadow")),
        ("//server/share/x.doc".into(), Some("x.doc")),
        (
            "..\\..\\Windows\\System32\\evil.dll".into(),
            Some("evil.dll"),
        ),
        ("C:\\Users\\x\\boot.ini".into(), Some("boot.ini")),
        ("C:evil.exe".into(), Some("evil.exe")),
        ("c:".into(), Some("file")),
        ("dir/".into(), Some("dir")),
        ("a/../b.txt".into(), Some("b.txt")),
        ("x/..".into(), Some("file")),
        ("nul\0byte.txt".into(), Some("nul_byte.txt")),
        ("\0".into(), Some("_")),
        ("tab\tnew\nline\r.txt".into(), Some("tab_new_line_.txt")),
        (
            "bell\u{7}\u{1b}[31mred.txt".into(),
            Some("bell__[31mred.txt"),
        ),
        ("c1\u{85}\u{9b}.txt".into(), Some("c1__.txt")),
        ("invoice\u{202e}fdp.exe".into(), Some("invoice_fdp.exe")),
        ("\u{2066}x\u{2069}.txt".into(), Some("_x_.txt")),
        ("CON".into(), Some("_CON")),
        ("con.txt".into(), Some("_con.txt")),
        ("Prn.tar.gz".into(), Some("_Prn.tar.gz")),
        ("AUX".into(), Some("_AUX")),
        ("NUL.".into(), Some("_NUL")),
        ("nul .txt".into(), Some("_nul .txt")),
        ("COM1".into(), Some("_COM1")),
        ("com9.log".into(), Some("_com9.log")),
        ("LPT1".into(), Some("_LPT1")),
        ("lpt9.txt".into(), Some("_lpt9.txt")),
        ("COM¹.txt".into(), Some("_COM¹.txt")),
        ("CONIN$".into(), Some("_CONIN$")),
        ("COM10".into(), Some("COM10")),
        ("CONSOLE.txt".into(), Some("CONSOLE.txt")),
        (".bashrc".into(), Some("bashrc")),
        ("..hidden".into(), Some("hidden")),
        (". .ssh".into(), Some("ssh")),
        ("trailing.".into(), Some("trailing")),
        ("trailing. . ".into(), Some("trailing")),
        ("spaces   ".into(), Some("spaces")),
        ("a<b>c:d\"e|f?g*h.txt".into(), Some("a_b_c_d_e_f_g_h.txt")),
        ("file.txt:stream".into(), Some("file.txt_stream")),
        ("~/.ssh/authorized_keys".into(), Some("authorized_keys")),
        ("\\\\?\\C:\\x.txt".into(), Some("x.txt")),
        ("%2e%2e%2fpasswd".into(), Some("%2e%2e%2fpasswd")),
        ("日本語のファイル.txt".into(), Some("日本語のファイル.txt")),
        ("x.part".into(), Some("x.part")),
        (format!("{long_stem}.txt"), None),
        (format!("{long_utf8}.jpeg"), None),
        (long_stem.clone(), None),
        (format!("{}.{long_stem}", "b"), None),
        ("é".repeat(128), None),
        (format!(".{}", ".".repeat(300)), Some("file")),
        (format!("{}/x", "../".repeat(1000)), Some("x")),
    ];
    cases
}

fn assert_safe(offered: &str, safe: &str) {
    let why = format!("{offered:?} -> {safe:?}");
    assert!(!safe.is_empty(), "{why}");
    assert!(safe.len() <= MAX_NAME, "{why}: {} bytes", safe.len());
    assert!(!safe.contains(['/', '\\', '\0']), "{why}");
    assert!(!safe.chars().any(char::is_control), "{why}");
    assert!(!safe.starts_with('.') && !safe.starts_with(' '), "{why}");
    assert!(!safe.ends_with('.') && !safe.ends_with(' '), "{why}");
    let components: Vec<_> = Path::new(safe).components().collect();
    assert!(
        matches!(components.as_slice(), [Component::Normal(_)]),
        "{why}: {components:?}"
    );
    let stem = safe
        .split('.')
        .next()
        .unwrap()
        .trim_end()
        .to_ascii_uppercase();
    let device = ["CON", "PRN", "AUX", "NUL"].contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    assert!(!device, "{why}");
}

#[test]
fn every_hostile_name_reduces_to_a_safe_base_name() {
    for (offered, expected) in table() {
        let safe = safe_name(&offered);
        assert_safe(&offered, &safe);
        if let Some(expected) = expected {
            assert_eq!(safe, expected, "offered {offered:?}");
        }
    }
}

#[test]
fn long_names_are_cut_on_a_character_boundary_keeping_the_extension() {
    let safe = safe_name(&format!("{}.jpeg", "é".repeat(200)));
    assert!(safe.ends_with(".jpeg"), "{safe}");
    assert!(
        safe.len() <= MAX_NAME && safe.len() >= MAX_NAME - 1,
        "{}",
        safe.len()
    );
    let safe = safe_name(&"a".repeat(300));
    assert_eq!(safe.len(), MAX_NAME);
}

/// Given a download folder, when each hostile name is offered, accepted and received through the
/// book, then each file lands directly inside the folder, and a name offered twice gets
/// `name (1).ext` instead of replacing the first.
#[test]
fn every_hostile_name_lands_inside_the_download_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("downloads");
    let folder = DownloadFolder::new(&dir).unwrap();
    let now = Instant::now();
    let mut sender = Transfers::new(Limits::default());
    let mut receiver = Transfers::new(Limits::default());
    let mut names: Vec<String> = table().into_iter().map(|(name, _)| name).collect();
    names.push("report.pdf".into());
    names.push("report.pdf".into());
    let mut landed = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let content = format!("file number {n}").into_bytes();
        let sha256 = rtcdesk_files::hash_source(
            &mut SeekSource(std::io::Cursor::new(&content)),
            content.len() as u64,
        )
        .unwrap();
        let size = content.len() as u64;
        sender
            .send_file(
                name,
                size,
                sha256,
                Box::new(SeekSource(std::io::Cursor::new(content))),
                now,
            )
            .unwrap();
        receiver
            .handle_control(&sender.poll_control().unwrap(), now)
            .unwrap();
        let Some(TransferEvent::Offered { offer, safe_name }) = receiver.poll_event() else {
            panic!("no offer for {name:?}");
        };
        assert_eq!(safe_name, rtcdesk_files::name::safe_name(name));
        receiver
            .accept(offer.id, folder.prepare(&offer).unwrap(), now)
            .unwrap();
        sender
            .handle_control(&receiver.poll_control().unwrap(), now)
            .unwrap();
        let mut message = Vec::new();
        while sender.poll_file(&mut message) {
            receiver.handle_file_message(&message, now).unwrap();
        }
        let Some(TransferEvent::Completed {
            path: Some(path), ..
        }) = receiver.poll_event()
        else {
            panic!("{name:?} not completed");
        };
        assert_eq!(path.parent(), Some(dir.as_path()), "{name:?} -> {path:?}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            format!("file number {n}").into_bytes(),
            "{name:?} -> {path:?}: another file was overwritten"
        );
        sender
            .handle_control(&receiver.poll_control().unwrap(), now)
            .unwrap();
        landed.push(path);
    }
    // Nothing outside the folder, nothing left over inside it.
    let outside: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("downloads")]);
    let inside = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(inside, landed.len(), "part files or sidecars left behind");
    let reports: Vec<_> = landed
        .iter()
        .filter_map(|p| p.file_name()?.to_str())
        .filter(|n| n.starts_with("report"))
        .collect();
    assert_eq!(reports, ["report.pdf", "report (1).pdf", "report (2).pdf"]);
}
