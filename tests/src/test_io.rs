//! What a test hands a binary and reads back: writing a mapping (or groups) file, reading a
//! process's output as text.

use std::path::Path;

/// Writes `text` to `dir/name` and returns the path as a string (for command lines).
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p.display().to_string()
}

/// Bytes (a process's stdout or stderr) as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// An image reference the test built from known-good parts.
pub fn image_ref(reference: String) -> mirror_common::reference::ImageRef {
    mirror_common::reference::ImageRef::parse(&reference).expect("test reference parses")
}
