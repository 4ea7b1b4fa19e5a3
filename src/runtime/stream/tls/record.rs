//! TLS record protection once a handshake is done, in place in the caller's buffers: what
//! rustls' own record layer does, minus its one `Vec` per record (rustls 0.23 hands every
//! sealed record and every opened one over in a buffer of its own, even through its
//! unbuffered API). rustls runs the handshake and keeps the key schedule (key updates,
//! tickets: [`rustls::kernel`]); this module only seals and opens records with the traffic
//! keys it hands over, like kTLS would.
//!
//! - TLS 1.3 (RFC 8446 §5.2, §5.3): the outer type is always application data, the real
//!   type is the last non-zero byte of the plaintext, the nonce is the IV XOR the sequence
//!   number, and the additional data is the record header.
//! - TLS 1.2 (RFC 5246 §6.2.3.3): the additional data is sequence number, type, version and
//!   plaintext length; AES-GCM sends an 8-byte explicit nonce before the ciphertext (RFC 5288
//!   §3), ChaCha20-Poly1305 derives it like TLS 1.3 (RFC 7905 §2).
//!
//! Sans-IO: bytes in, bytes out, never a panic on what a peer sends.

use std::ops::Range;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::ConnectionTrafficSecrets;

/// Type, version, length (RFC 8446 §5.1).
pub(crate) const HEADER: usize = 5;
/// The largest plaintext of one record (RFC 8446 §5.1, RFC 5246 §6.2.1).
pub(crate) const MAX_PLAINTEXT: usize = 1 << 14;
/// The largest record a peer may send: TLS 1.2 allows 2048 bytes of expansion (RFC 5246
/// §6.2.3), TLS 1.3 256 (RFC 8446 §5.2).
pub(crate) const MAX_RECORD: usize = HEADER + MAX_PLAINTEXT + 2048;
/// The most a record we seal adds to its plaintext (TLS 1.2 AES-GCM's explicit nonce is the
/// largest addition; TLS 1.3 adds one type byte).
pub(crate) const MAX_OVERHEAD: usize = HEADER + EXPLICIT_NONCE + TAG;
const TAG: usize = 16;
const EXPLICIT_NONCE: usize = 8;
const NONCE: usize = 12;

/// The record content types (RFC 8446 §5.1, RFC 5246 §6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentType {
    ChangeCipherSpec,
    Alert,
    Handshake,
    ApplicationData,
}

impl ContentType {
    fn from_byte(b: u8) -> Option<ContentType> {
        Some(match b {
            20 => ContentType::ChangeCipherSpec,
            21 => ContentType::Alert,
            22 => ContentType::Handshake,
            23 => ContentType::ApplicationData,
            _ => return None,
        })
    }

    fn byte(self) -> u8 {
        match self {
            ContentType::ChangeCipherSpec => 20,
            ContentType::Alert => 21,
            ContentType::Handshake => 22,
            ContentType::ApplicationData => 23,
        }
    }
}

/// Why a record could not be opened or sealed; each names the alert to send
/// (RFC 8446 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// Authentication failed: `bad_record_mac` (20).
    BadMac,
    /// Longer than the version allows: `record_overflow` (22).
    Overflow,
    /// An unknown type, a bad version, a TLS 1.3 record without a type: `unexpected_message`
    /// (10).
    Malformed,
    /// The sequence number would wrap (RFC 8446 §5.3: close instead): `internal_error` (80).
    Exhausted,
    /// A cipher suite this layer has no AEAD for.
    Unsupported,
}

impl RecordError {
    /// The alert description to send for it (RFC 8446 §6).
    pub(crate) fn alert(self) -> u8 {
        match self {
            RecordError::BadMac => 20,
            RecordError::Overflow => 22,
            RecordError::Malformed => 10,
            RecordError::Exhausted | RecordError::Unsupported => 80,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    Tls12,
    Tls13,
}

/// The length of the whole record at the front of `buf` once its header is there
/// (`Ok(None)` before), checked against the largest the version allows.
pub(crate) fn record_len(buf: &[u8], version: Version) -> Result<Option<usize>, RecordError> {
    let Some(&[typ, major, _minor, hi, lo]) = buf.get(..HEADER) else {
        return Ok(None);
    };
    if ContentType::from_byte(typ).is_none() || major != 3 {
        return Err(RecordError::Malformed);
    }
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let max = match version {
        Version::Tls13 => MAX_PLAINTEXT + 256,
        Version::Tls12 => MAX_PLAINTEXT + 2048,
    };
    if len > max {
        return Err(RecordError::Overflow);
    }
    Ok(Some(HEADER + len))
}

/// One direction's keys and sequence number.
pub(crate) struct Direction {
    key: LessSafeKey,
    iv: [u8; NONCE],
    seq: u64,
    version: Version,
    /// TLS 1.2 AES-GCM: the nonce's last 8 bytes travel in the record.
    explicit: bool,
    /// Records after which the keys must change (AES-GCM's confidentiality limit, as rustls
    /// sets it: 2^23 for the 256-bit key, the lower of the two).
    limit: u64,
}

impl Direction {
    pub(crate) fn new(
        version: Version,
        (seq, secrets): (u64, ConnectionTrafficSecrets),
    ) -> Result<Direction, RecordError> {
        let (algorithm, key, iv, limit) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
                (&aead::AES_128_GCM, key, iv, 1 << 23)
            }
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => {
                (&aead::AES_256_GCM, key, iv, 1 << 23)
            }
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv, u64::MAX)
            }
            _ => return Err(RecordError::Unsupported),
        };
        let key = UnboundKey::new(algorithm, key.as_ref()).map_err(|_| RecordError::Unsupported)?;
        let iv: [u8; NONCE] = iv
            .as_ref()
            .try_into()
            .map_err(|_| RecordError::Unsupported)?;
        let gcm = !std::ptr::eq(algorithm, &aead::CHACHA20_POLY1305);
        Ok(Direction {
            key: LessSafeKey::new(key),
            iv,
            seq,
            version,
            explicit: version == Version::Tls12 && gcm,
            limit,
        })
    }

    /// The per-record nonce: the IV XOR the sequence number, left-padded (RFC 8446 §5.3,
    /// RFC 7905 §2; RFC 5288 §3 with rustls' choice of explicit part, the same XOR).
    fn nonce(&self) -> [u8; NONCE] {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// The next sequence number; a wrap is refused (RFC 8446 §5.3).
    fn step(&mut self) -> Result<(), RecordError> {
        self.seq = self.seq.checked_add(1).ok_or(RecordError::Exhausted)?;
        Ok(())
    }

    /// The keys have protected as many records as they safely may.
    pub(crate) fn worn_out(&self) -> bool {
        self.seq >= self.limit
    }

    /// Tests: wear the keys out after `records` more.
    #[cfg(test)]
    pub(crate) fn wear_out_after(&mut self, records: u64) {
        self.limit = self.seq + records;
    }

    /// What sealing `len` bytes of plaintext adds.
    pub(crate) fn overhead(&self) -> usize {
        HEADER
            + TAG
            + match (self.version, self.explicit) {
                (Version::Tls13, _) => 1,
                (Version::Tls12, true) => EXPLICIT_NONCE,
                (Version::Tls12, false) => 0,
            }
    }

    /// TLS 1.2's additional data (RFC 5246 §6.2.3.3).
    fn aad12(&self, typ: ContentType, len: usize) -> [u8; 13] {
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&self.seq.to_be_bytes());
        aad[8] = typ.byte();
        aad[9..11].copy_from_slice(&[3, 3]);
        aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
        aad
    }

    /// Seals `plaintext` as one record of `typ` into the front of `out`, which must hold
    /// `plaintext.len() + overhead()` bytes; returns the record's length.
    pub(crate) fn seal(
        &mut self,
        typ: ContentType,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, RecordError> {
        let total = plaintext.len() + self.overhead();
        if plaintext.len() > MAX_PLAINTEXT || out.len() < total {
            return Err(RecordError::Overflow);
        }
        let nonce = self.nonce();
        let wire_type = match self.version {
            Version::Tls13 => ContentType::ApplicationData,
            Version::Tls12 => typ,
        };
        let fragment = (total - HEADER) as u16;
        out[..3].copy_from_slice(&[wire_type.byte(), 3, 3]);
        out[3..HEADER].copy_from_slice(&fragment.to_be_bytes());
        let mut at = HEADER;
        if self.explicit {
            out[at..at + EXPLICIT_NONCE].copy_from_slice(&nonce[4..]);
            at += EXPLICIT_NONCE;
        }
        let body = at;
        out[at..at + plaintext.len()].copy_from_slice(plaintext);
        at += plaintext.len();
        let aad_bytes: ([u8; 13], usize) = match self.version {
            Version::Tls13 => {
                out[at] = typ.byte();
                at += 1;
                let mut aad = [0u8; 13];
                aad[..HEADER].copy_from_slice(&out[..HEADER]);
                (aad, HEADER)
            }
            Version::Tls12 => (self.aad12(typ, plaintext.len()), 13),
        };
        let aad = Aad::from(&aad_bytes.0[..aad_bytes.1]);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                aad,
                &mut out[body..at],
            )
            .map_err(|_| RecordError::Exhausted)?;
        out[at..at + TAG].copy_from_slice(tag.as_ref());
        self.step()?;
        Ok(at + TAG)
    }

    /// Opens the whole record `record` (as [`record_len`] measured it) in place: its real
    /// type and where its plaintext now lies in `record`.
    pub(crate) fn open(
        &mut self,
        record: &mut [u8],
    ) -> Result<(ContentType, Range<usize>), RecordError> {
        let Some(&[typ, ..]) = record.get(..HEADER) else {
            return Err(RecordError::Malformed);
        };
        let typ = ContentType::from_byte(typ).ok_or(RecordError::Malformed)?;
        let opened = match self.version {
            Version::Tls13 => self.open13(typ, record)?,
            Version::Tls12 => self.open12(typ, record)?,
        };
        self.step()?;
        Ok(opened)
    }

    /// RFC 8446 §5.2: application data outside, the real type inside after the content,
    /// then zero padding.
    fn open13(
        &self,
        typ: ContentType,
        record: &mut [u8],
    ) -> Result<(ContentType, Range<usize>), RecordError> {
        if typ != ContentType::ApplicationData || record.len() < HEADER + TAG + 1 {
            return Err(RecordError::Malformed);
        }
        let (header, body) = record.split_at_mut(HEADER);
        let nonce = Nonce::assume_unique_for_key(self.nonce());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(&header[..]), body)
            .map_err(|_| RecordError::BadMac)?;
        let Some(last) = plain.iter().rposition(|&b| b != 0) else {
            return Err(RecordError::Malformed); // no type at all (§5.4)
        };
        let inner = ContentType::from_byte(plain[last]).ok_or(RecordError::Malformed)?;
        if last > MAX_PLAINTEXT {
            return Err(RecordError::Overflow);
        }
        Ok((inner, HEADER..HEADER + last))
    }

    /// RFC 5246 §6.2.3.3 with RFC 5288 §3 (AES-GCM) or RFC 7905 §2 (ChaCha20-Poly1305).
    fn open12(
        &self,
        typ: ContentType,
        record: &mut [u8],
    ) -> Result<(ContentType, Range<usize>), RecordError> {
        let lead = if self.explicit { EXPLICIT_NONCE } else { 0 };
        let Some(len) = record.len().checked_sub(HEADER + lead + TAG) else {
            return Err(RecordError::Malformed);
        };
        if len > MAX_PLAINTEXT {
            return Err(RecordError::Overflow);
        }
        let mut nonce = self.nonce();
        if self.explicit {
            nonce[4..].copy_from_slice(&record[HEADER..HEADER + EXPLICIT_NONCE]);
        }
        let aad = self.aad12(typ, len);
        let start = HEADER + lead;
        self.key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                &mut record[start..],
            )
            .map_err(|_| RecordError::BadMac)?;
        Ok((typ, start..start + len))
    }
}
