//! Hand-written Avro binary encoder/decoder for the v1 and v2 `AgentEvent`
//! schemas (v2 = v1 + four optional strings at the end).
//!
//! The generic apache-avro path (serde → `Value` → resolve → datum) allocates a
//! tree per event; this writes and reads the v1 layout directly and is what the
//! hot paths use. Property tests prove it byte-compatible with apache-avro in
//! both directions, so the `.avsc` file stays the source of truth.

use std::collections::HashMap;

use crate::event::AgentEvent;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("avro datum is truncated or malformed at byte {0}")]
pub struct Malformed(pub usize);

fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: &Option<String>) {
    match s {
        None => put_long(out, 0),
        Some(s) => {
            put_long(out, 1);
            put_str(out, s);
        }
    }
}

fn put_opt_long(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => put_long(out, 0),
        Some(v) => {
            put_long(out, 1);
            put_long(out, v);
        }
    }
}

/// Append the Avro datum of `e` in the v2 schema to `out`.
pub fn encode_v2(e: &AgentEvent, out: &mut Vec<u8>) {
    encode_v1(e, out);
    put_opt_str(out, &e.project_id);
    put_opt_str(out, &e.machine_id);
    put_opt_str(out, &e.workspace_id);
    put_opt_str(out, &e.session_id);
}

/// Append the Avro datum of `e` in the v1 schema to `out` (the hierarchy
/// fields are not written).
pub fn encode_v1(e: &AgentEvent, out: &mut Vec<u8>) {
    put_str(out, &e.event_id);
    put_str(out, &e.org_id);
    put_long(out, e.timestamp);
    put_str(out, &e.agent_id);
    put_opt_str(out, &e.workflow_id);
    put_opt_str(out, &e.run_id);
    put_str(out, &e.event_type);
    put_opt_str(out, &e.status);
    put_opt_long(out, e.latency_ms);
    put_opt_str(out, &e.provider);
    put_opt_str(out, &e.model);
    put_opt_long(out, e.input_tokens);
    put_opt_long(out, e.output_tokens);
    put_opt_long(out, e.cache_read_tokens);
    put_opt_long(out, e.cache_write_tokens);
    put_opt_long(out, e.reasoning_tokens);
    match e.cost_usd {
        None => put_long(out, 0),
        Some(c) => {
            put_long(out, 1);
            out.extend_from_slice(&c.to_le_bytes());
        }
    }
    put_opt_str(out, &e.cost_source);
    put_opt_str(out, &e.tool_name);
    put_opt_str(out, &e.error_type);
    put_opt_str(out, &e.error_message);
    put_opt_str(out, &e.trace_id);
    put_opt_str(out, &e.span_id);
    if !e.attributes.is_empty() {
        put_long(out, e.attributes.len() as i64);
        for (k, v) in &e.attributes {
            put_str(out, k);
            put_str(out, v);
        }
    }
    put_long(out, 0);
    put_opt_long(out, e.ingested_at);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn long(&mut self) -> Result<i64, Malformed> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(Malformed(self.pos))?;
            self.pos += 1;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(Malformed(self.pos))
    }

    fn string(&mut self) -> Result<String, Malformed> {
        let len = usize::try_from(self.long()?).map_err(|_| Malformed(self.pos))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or(Malformed(self.pos))?;
        let s = std::str::from_utf8(&self.buf[self.pos..end]).map_err(|_| Malformed(self.pos))?;
        self.pos = end;
        Ok(s.to_owned())
    }

    fn branch(&mut self) -> Result<bool, Malformed> {
        match self.long()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed(self.pos)),
        }
    }

    fn opt_string(&mut self) -> Result<Option<String>, Malformed> {
        if self.branch()? {
            self.string().map(Some)
        } else {
            Ok(None)
        }
    }

    fn opt_long(&mut self) -> Result<Option<i64>, Malformed> {
        if self.branch()? {
            self.long().map(Some)
        } else {
            Ok(None)
        }
    }

    fn opt_double(&mut self) -> Result<Option<f64>, Malformed> {
        if !self.branch()? {
            return Ok(None);
        }
        let bytes = self
            .buf
            .get(self.pos..self.pos + 8)
            .ok_or(Malformed(self.pos))?;
        self.pos += 8;
        Ok(Some(f64::from_le_bytes(
            bytes.try_into().map_err(|_| Malformed(self.pos))?,
        )))
    }

    fn map(&mut self) -> Result<HashMap<String, String>, Malformed> {
        let mut out = HashMap::new();
        loop {
            let mut n = self.long()?;
            if n == 0 {
                return Ok(out);
            }
            if n < 0 {
                n = n.checked_neg().ok_or(Malformed(self.pos))?;
                self.long()?; // block size in bytes, unused
            }
            if n as usize > self.buf.len() {
                return Err(Malformed(self.pos));
            }
            for _ in 0..n {
                let k = self.string()?;
                let v = self.string()?;
                out.insert(k, v);
            }
        }
    }
}

/// Decode a v1 datum (the whole slice must be consumed).
pub fn decode_v1(buf: &[u8]) -> Result<AgentEvent, Malformed> {
    decode(buf, false)
}

/// Decode a v2 datum (the whole slice must be consumed).
pub fn decode_v2(buf: &[u8]) -> Result<AgentEvent, Malformed> {
    decode(buf, true)
}

fn decode(buf: &[u8], v2: bool) -> Result<AgentEvent, Malformed> {
    let mut r = Reader { buf, pos: 0 };
    let mut e = AgentEvent {
        event_id: r.string()?,
        org_id: r.string()?,
        timestamp: r.long()?,
        agent_id: r.string()?,
        workflow_id: r.opt_string()?,
        run_id: r.opt_string()?,
        event_type: r.string()?,
        status: r.opt_string()?,
        latency_ms: r.opt_long()?,
        provider: r.opt_string()?,
        model: r.opt_string()?,
        input_tokens: r.opt_long()?,
        output_tokens: r.opt_long()?,
        cache_read_tokens: r.opt_long()?,
        cache_write_tokens: r.opt_long()?,
        reasoning_tokens: r.opt_long()?,
        cost_usd: r.opt_double()?,
        cost_source: r.opt_string()?,
        tool_name: r.opt_string()?,
        error_type: r.opt_string()?,
        error_message: r.opt_string()?,
        trace_id: r.opt_string()?,
        span_id: r.opt_string()?,
        attributes: r.map()?,
        ingested_at: r.opt_long()?,
        ..Default::default()
    };
    if v2 {
        e.project_id = r.opt_string()?;
        e.machine_id = r.opt_string()?;
        e.workspace_id = r.opt_string()?;
        e.session_id = r.opt_string()?;
    }
    if r.pos != buf.len() {
        return Err(Malformed(r.pos));
    }
    Ok(e)
}
