//! `COPY ... FROM STDIN (FORMAT binary)` payloads: PostgreSQL's binary copy
//! format (a header, then per row its field count and each field as a
//! length and big-endian bytes, -1 for NULL, then a trailer).

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// The type id of `text` (the elements of a `text[]`).
const TEXT_OID: i32 = 25;

/// One payload being built, row after row.
pub struct CopyBinary {
    buf: Vec<u8>,
}

impl CopyBinary {
    /// An empty payload (the header), with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes + 21);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension
        Self { buf }
    }

    /// Start a row of `fields` fields.
    pub fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    /// A field's raw bytes in the column type's binary form, or NULL.
    pub fn field(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            None => self.buf.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                self.buf.extend_from_slice(&(b.len() as i32).to_be_bytes());
                self.buf.extend_from_slice(b);
            }
        }
    }

    pub fn text(&mut self, s: Option<&str>) {
        self.field(s.map(str::as_bytes));
    }

    pub fn int2(&mut self, v: Option<i16>) {
        self.field(v.map(i16::to_be_bytes).as_ref().map(|b| &b[..]));
    }

    pub fn int8(&mut self, v: Option<i64>) {
        self.field(v.map(i64::to_be_bytes).as_ref().map(|b| &b[..]));
    }

    pub fn float8(&mut self, v: Option<f64>) {
        self.field(
            v.map(|f| f.to_bits().to_be_bytes())
                .as_ref()
                .map(|b| &b[..]),
        );
    }

    /// A `timestamptz` given in microseconds since the Unix epoch.
    pub fn timestamptz(&mut self, unix_us: Option<i64>) {
        self.int8(unix_us.map(|u| u - PG_EPOCH_US));
    }

    /// A one-dimensional `text[]` without NULLs.
    pub fn text_array<'a>(&mut self, items: impl Iterator<Item = &'a str>) {
        let items: Vec<&str> = items.collect();
        let mut b = Vec::with_capacity(20 + items.iter().map(|i| 4 + i.len()).sum::<usize>());
        let dims: i32 = if items.is_empty() { 0 } else { 1 };
        b.extend_from_slice(&dims.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // no NULLs
        b.extend_from_slice(&TEXT_OID.to_be_bytes());
        if !items.is_empty() {
            b.extend_from_slice(&(items.len() as i32).to_be_bytes());
            b.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        }
        for i in items {
            b.extend_from_slice(&(i.len() as i32).to_be_bytes());
            b.extend_from_slice(i.as_bytes());
        }
        self.field(Some(&b));
    }

    /// A `jsonb` from JSON text.
    pub fn jsonb(&mut self, json: &[u8]) {
        let mut b = Vec::with_capacity(1 + json.len());
        b.push(1); // the binary format's version
        b.extend_from_slice(json);
        self.field(Some(&b));
    }

    /// The payload, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_framed_as_postgres_reads_them() {
        let mut c = CopyBinary::with_capacity(0);
        c.row(3);
        c.text(Some("ab"));
        c.int8(None);
        c.timestamptz(Some(PG_EPOCH_US + 1));
        let p = c.finish();
        let mut want = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        want.extend_from_slice(&[0, 3, 0, 0, 0, 2, b'a', b'b', 0xff, 0xff, 0xff, 0xff]);
        want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
        assert_eq!(p, want);
    }

    #[test]
    fn arrays_and_jsonb_are_in_their_binary_forms() {
        let mut c = CopyBinary::with_capacity(0);
        c.row(3);
        c.text_array(["a", "bc"].into_iter());
        c.text_array(std::iter::empty());
        c.jsonb(b"{}");
        let p = c.finish();
        let mut want = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        want.extend_from_slice(&[0, 3]);
        // ndim 1, no NULLs, text, 2 elements from 1, then "a" and "bc".
        want.extend_from_slice(&[0, 0, 0, 31, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25]);
        want.extend_from_slice(&[
            0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, b'a', 0, 0, 0, 2, b'b', b'c',
        ]);
        // An empty array: no dimensions.
        want.extend_from_slice(&[0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25]);
        // jsonb: version 1, then the text.
        want.extend_from_slice(&[0, 0, 0, 3, 1, b'{', b'}', 0xff, 0xff]);
        assert_eq!(p, want);
    }
}
