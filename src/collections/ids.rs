//! Ids the reference derives from names instead of drawing at random:
//! field ids (`<type><crc32(name)>`, e.g. `text3208210256` for `id`) and
//! default collection ids (`pbc_<crc32(type + name)>`). Keeping the same
//! scheme means a field defined twice without an id gets the same id twice,
//! which is how the reference recognises it as the same field.
//!
//! Never used for anything secret: CRC-32 is a checksum, not a hash.

/// CRC-32/IEEE lookup table (reflected polynomial 0xEDB88320), built at
/// compile time so no runtime initialisation is needed.
const CRC32_TABLE: [u32; 256] = build_crc32_table();

const fn build_crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

/// CRC-32/IEEE of `bytes` (the checksum of zip, PNG and Go's `crc32.ChecksumIEEE`).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc = CRC32_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The id a field gets when none is given: its type followed by the decimal
/// CRC-32 of its name.
pub fn field_id(type_name: &str, name: &str) -> String {
    format!("{type_name}{}", crc32(name.as_bytes()))
}

/// The id a new collection gets when none is given.
pub fn collection_id(type_name: &str, name: &str) -> String {
    format!("pbc_{}", crc32(format!("{type_name}{name}").as_bytes()))
}

/// `base` if it is free, else `base2`, `base3`, ... up to `base999`, the
/// way the reference resolves clashes of derived ids. Returns `base` again
/// if every candidate is taken; the duplicate is then reported by validation.
pub fn first_free(base: &str, is_taken: impl Fn(&str) -> bool) -> String {
    if !is_taken(base) {
        return base.to_string();
    }
    (2..1000)
        .map(|n| format!("{base}{n}"))
        .find(|candidate| !is_taken(candidate))
        .unwrap_or_else(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn field_ids_match_the_reference() {
        assert_eq!(field_id("text", "id"), "text3208210256");
        assert_eq!(field_id("autodate", "created"), "autodate2990389176");
        assert_eq!(field_id("autodate", "updated"), "autodate3332085495");
        assert_eq!(field_id("password", "password"), "password901924565");
        assert_eq!(field_id("email", "email"), "email3885137012");
    }

    #[test]
    fn collection_ids_match_the_reference() {
        // observed on the reference: `kinds` (base) and `tgt` (base)
        assert_eq!(collection_id("base", "kinds"), "pbc_796712748");
        assert_eq!(collection_id("base", "tgt"), "pbc_3729476522");
    }

    #[test]
    fn clashes_get_a_numeric_suffix() {
        let taken = ["a", "a2"];
        assert_eq!(first_free("a", |c| taken.contains(&c)), "a3");
        assert_eq!(first_free("b", |c| taken.contains(&c)), "b");
    }
}
