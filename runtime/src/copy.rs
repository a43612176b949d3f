//! `COPY ... FROM STDIN (FORMAT binary)` payloads: PostgreSQL's binary copy
//! format (a header, then per row its field count and each field as a
//! length and big-endian bytes, -1 for NULL, then a trailer).

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

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
}
