//! The code under benchmark: a routine that allocates a known amount.

/// Splits `text` into owned words: one `Vec` and one `String` per word.
pub fn words(text: &str) -> Vec<String> {
    text.split(' ').map(String::from).collect()
}
