//! Kafka-style cluster ids: a random UUID as 22 characters of URL-safe base64, no padding
//! (what `kafka-storage random-uuid` prints).

use uuid::Uuid;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A fresh random cluster id.
pub fn random_cluster_id() -> String {
    encode_base64_url(Uuid::new_v4().as_bytes())
}

/// URL-safe base64 without padding; small enough that a crate is not worth it.
fn encode_base64_url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // A chunk of k bytes carries 8k bits, i.e. k + 1 significant sextets.
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc4648_vectors() {
        assert_eq!(encode_base64_url(b""), "");
        assert_eq!(encode_base64_url(b"f"), "Zg");
        assert_eq!(encode_base64_url(b"fo"), "Zm8");
        assert_eq!(encode_base64_url(b"foo"), "Zm9v");
        assert_eq!(encode_base64_url(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode_base64_url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn cluster_ids_are_22_url_safe_chars() {
        let id = random_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(id, random_cluster_id());
    }
}
