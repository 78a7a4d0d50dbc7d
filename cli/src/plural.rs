//! Counts as people write them: "1 tag", "2 tags", "0 files". Every summary line of both
//! binaries counts through here, so none says "1 tags".

/// `n` with `noun` (its singular) as English wants it after that number: singular for
/// exactly one, plural (the singular plus "s") otherwise. A noun of several words gets the
/// "s" on its last one ("1 parked job", "3 parked jobs").
pub fn plural<N>(n: N, noun: &str) -> String
where
    N: std::fmt::Display + PartialEq + From<u8>,
{
    if n == N::from(1) {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(plural(1usize, "tag"), "1 tag");
        assert_eq!(plural(2u64, "tag"), "2 tags");
        assert_eq!(plural(0u32, "file"), "0 files");
        assert_eq!(plural(1u64, "parked job"), "1 parked job");
    }
}
