//! The protobuf wire format: a bounds-checked reader that never panics, and a writer. The checks
//! and their wording follow the Go code gogo-protobuf generates for Kubernetes (`generated.pb.go`).

/// Wire types.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

/// A malformed encoding. The text is Go's (`unexpected EOF`, `proto: integer overflow`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireError {
    UnexpectedEof,
    IntOverflow,
    InvalidLength,
    IllegalTag { field: u64, wire: u8 },
    EndGroup,
    /// Groups (wire types 3/4) are proto2 features no Kubernetes message uses.
    Group,
    BadWireType(u8),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::UnexpectedEof => f.write_str("unexpected EOF"),
            WireError::IntOverflow => f.write_str("integer overflow"),
            WireError::InvalidLength => f.write_str("negative length found during unmarshaling"),
            WireError::IllegalTag { field, wire } => write!(f, "illegal tag {field} (wire type {wire})"),
            WireError::EndGroup => f.write_str("wiretype end group for non-group"),
            WireError::Group => f.write_str("unsupported wire type 3 (group)"),
            WireError::BadWireType(w) => write!(f, "illegal wireType {w}"),
        }
    }
}

/// A cursor over one message's bytes.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// A base-128 varint. Like Go, at most 10 bytes are read and high bits past 64 are dropped.
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            if shift >= 64 {
                return Err(WireError::IntOverflow);
            }
            let b = *self.data.get(self.pos).ok_or(WireError::UnexpectedEof)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    /// A field key: (field number, wire type).
    pub fn key(&mut self) -> Result<(u32, u8), WireError> {
        let k = self.varint()?;
        let field = k >> 3;
        let wire = (k & 7) as u8;
        if wire == 4 {
            return Err(WireError::EndGroup);
        }
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(WireError::IllegalTag { field, wire });
        }
        Ok((field as u32, wire))
    }

    /// A length-delimited payload.
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        let len = usize::try_from(len).ok().filter(|l| isize::try_from(*l).is_ok()).ok_or(WireError::InvalidLength)?;
        let end = self.pos.checked_add(len).ok_or(WireError::InvalidLength)?;
        let out = self.data.get(self.pos..end).ok_or(WireError::UnexpectedEof)?;
        self.pos = end;
        Ok(out)
    }

    pub fn fixed64(&mut self) -> Result<u64, WireError> {
        let end = self.pos.checked_add(8).ok_or(WireError::UnexpectedEof)?;
        let b = self.data.get(self.pos..end).ok_or(WireError::UnexpectedEof)?;
        self.pos = end;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn fixed32(&mut self) -> Result<u32, WireError> {
        let end = self.pos.checked_add(4).ok_or(WireError::UnexpectedEof)?;
        let b = self.data.get(self.pos..end).ok_or(WireError::UnexpectedEof)?;
        self.pos = end;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    /// Skips the value of a field this decoder does not know (Go's `skipGenerated`, minus groups).
    pub fn skip(&mut self, wire: u8) -> Result<(), WireError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.fixed32().map(drop),
            3 => Err(WireError::Group),
            w => Err(WireError::BadWireType(w)),
        }
    }
}

/// Appends to a buffer.
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn key(&mut self, tag: u32, wire: u8) {
        self.varint((u64::from(tag) << 3) | u64::from(wire));
    }

    pub fn bytes_field(&mut self, tag: u32, b: &[u8]) {
        self.key(tag, LEN);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub fn varint_field(&mut self, tag: u32, v: u64) {
        self.key(tag, VARINT);
        self.varint(v);
    }

    pub fn fixed64_field(&mut self, tag: u32, v: u64) {
        self.key(tag, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_overflow() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, (-1i64) as u64, u64::MAX] {
            let mut w = Writer::new();
            w.varint(v);
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.varint(), Ok(v));
            assert!(r.at_end());
        }
        assert_eq!(Reader::new(&[0xff; 11]).varint(), Err(WireError::IntOverflow));
        assert_eq!(Reader::new(&[0x80, 0x80]).varint(), Err(WireError::UnexpectedEof));
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(Reader::new(&[0x05, 1, 2]).bytes(), Err(WireError::UnexpectedEof));
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&huge).bytes(), Err(WireError::InvalidLength));
        assert_eq!(Reader::new(&[0x00]).key(), Err(WireError::IllegalTag { field: 0, wire: 0 }));
        assert_eq!(Reader::new(&[0x0c]).key(), Err(WireError::EndGroup));
        assert_eq!(Reader::new(&[0x01, 0x02]).fixed64(), Err(WireError::UnexpectedEof));
    }
}
