//! Safe file names: whatever name the other side offers, what lands on disk is one plain file
//! name inside the download folder.
//!
//! [`safe_name`] keeps only the last path component and removes or replaces everything that could
//! escape the folder, hide the file, or mean something special on Windows or to a terminal:
//! `/`, `\`, `..`, absolute paths, drive letters, NUL and control characters, bidirectional
//! overrides (which make `exe.txt` look like `txt.exe`), Windows device names with or without an
//! extension, leading dots, trailing dots and spaces, and characters Windows refuses. The result
//! is at most [`MAX_NAME`] bytes, cut on a UTF-8 boundary with the extension kept, and never
//! empty ([`DEFAULT_NAME`]).
//!
//! [`variant`] builds `name (1).ext`, `name (2).ext`… and part-file names within the same limit.
//!
//! ```
//! use rtcdesk_files::name::safe_name;
//! assert_eq!(safe_name("../../etc/passwd"), "passwd");
//! assert_eq!(safe_name("C:\\Windows\\CON.txt"), "_CON.txt");
//! assert_eq!(safe_name(".bashrc"), "bashrc");
//! ```

/// Longest file name written, in bytes (the limit of ext4, NTFS, APFS and most others).
pub const MAX_NAME: usize = 255;

/// The name used when nothing of the offered name survives.
pub const DEFAULT_NAME: &str = "file";

/// Longest extension kept whole when a name is cut; a longer "extension" is just part of the name.
const MAX_KEPT_EXTENSION: usize = 32;

/// Reduces any offered name to a safe base name (see the module doc for the rules).
pub fn safe_name(offered: &str) -> String {
    // The last path component, whichever separator the sender's system uses.
    let last = offered
        .rsplit(['/', '\\'])
        .find(|part| !part.trim().is_empty())
        .unwrap_or("");
    let last = strip_drive(last);
    let mut name: String = last.chars().map(replace_char).collect();
    name = trim_ends(&name).to_owned();
    if is_device_name(&name) {
        name.insert(0, '_');
    }
    let name = fit(&name, MAX_NAME);
    if name.is_empty() {
        DEFAULT_NAME.to_owned()
    } else {
        name
    }
}

/// The `n`th variant of a safe name with `suffix` appended, at most `max` bytes: `n == 0` is the
/// name itself, `n >= 1` is `stem (n).ext`. The stem is cut (never the extension or the suffix)
/// to make room.
pub fn variant(safe: &str, n: u32, suffix: &str, max: usize) -> String {
    let (stem, ext) = split_extension(safe);
    let tag = if n == 0 {
        String::new()
    } else {
        format!(" ({n})")
    };
    let tail = format!("{tag}{ext}{suffix}");
    let stem = cut(stem, max.saturating_sub(tail.len()));
    let stem = if stem.is_empty() { DEFAULT_NAME } else { stem };
    format!("{stem}{tail}")
}

/// `name` cut to `max` bytes with its extension kept, then its ends trimmed again.
fn fit(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    let stem = trim_ends(cut(stem, max.saturating_sub(ext.len())));
    let fitted = format!("{stem}{ext}");
    trim_ends(&fitted).to_owned()
}

/// `(stem, ".ext")`, with an empty extension when there is none worth keeping.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_KEPT_EXTENSION => name.split_at(dot),
        _ => (name, ""),
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Without a leading `C:` drive letter.
fn strip_drive(name: &str) -> &str {
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        &name[2..]
    } else {
        name
    }
}

/// Leading dots and spaces (which hide a file or are lost by Windows) and trailing dots and
/// spaces (which Windows drops, so two names would meet) removed.
fn trim_ends(name: &str) -> &str {
    name.trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' '])
}

/// Characters that are unsafe in a file name anywhere, replaced by `_`.
fn replace_char(c: char) -> char {
    let unsafe_char = c.is_control()
        || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*' | '/' | '\\')
        || is_bidi_control(c);
    if unsafe_char {
        '_'
    } else {
        c
    }
}

/// Unicode marks that reorder how a name is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether Windows would open a device instead of a file for this name: `CON`, `PRN`, `AUX`,
/// `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9` (also with superscript digits), in any case, with any
/// extension, and with spaces before the extension.
fn is_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end();
    let upper = stem.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) {
        return true;
    }
    let mut chars = upper.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let rest: Vec<char> = chars.collect();
    (prefix == "COM" || prefix == "LPT")
        && rest.len() == 1
        && (rest[0].is_ascii_digit() || matches!(rest[0], '¹' | '²' | '³'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_count_up_and_stay_within_the_limit() {
        assert_eq!(variant("report.pdf", 0, "", MAX_NAME), "report.pdf");
        assert_eq!(variant("report.pdf", 2, "", MAX_NAME), "report (2).pdf");
        assert_eq!(variant("archive", 1, ".part", MAX_NAME), "archive (1).part");
        let long = format!("{}.txt", "é".repeat(125));
        assert_eq!(long.len(), 254);
        let v = variant(&long, 12, ".part", MAX_NAME);
        assert!(v.len() <= MAX_NAME, "{}", v.len());
        assert!(v.ends_with(" (12).txt.part"), "{v}");
    }
}
