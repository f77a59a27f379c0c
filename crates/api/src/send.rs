//! Handing a response to the runtime so that it can leave in one write.
//!
//! spin-sdk's `http_component` sets the response (status and headers) first
//! and writes the body after it, so the runtime may send the headers on their
//! own; Spin 4.0.2 does not set `TCP_NODELAY`, so the body then waits for the
//! client's delayed ACK (about 40 ms on Linux) on a keep-alive connection.
//! Measured with one client: 22 req/s, p50 46 ms, for a 404 whose work takes
//! a millisecond. Here a body that fits the runtime's body buffer (one chunk
//! of 1 MiB in wasmtime-wasi-http) is written and finished before the response
//! is set, so the runtime has headers, body and end together; a larger body
//! is streamed after the response, as spin-sdk does.
//!
//! A handler may also stream its body ([`crate::Ctx::stream`]): then the
//! headers go first and the body follows piece by piece as it is produced.

use spin_sdk::http::{OutgoingBody, OutgoingResponse, Response, ResponseOutparam};
use vigil_core::ApiError;

/// The largest body written before the response is set: the runtime buffers
/// one chunk of at most this much for a response it has not started sending.
const BUFFERED: usize = 1 << 20;

/// Most bytes handed to the runtime's body stream in one call (WASI's
/// `blocking-write-and-flush` takes at most 4,096).
const PIECE: usize = 4096;

/// What writes a streamed body ([`crate::Ctx::stream`]).
pub type Producer = Box<dyn FnOnce(&mut Chunks<'_>) -> Result<(), ApiError>>;

/// A handled request: the response, and the producer of its body when it
/// is streamed.
pub struct Served {
    pub response: Response,
    pub stream: Option<Producer>,
}

impl From<Response> for Served {
    fn from(response: Response) -> Served {
        Served {
            response,
            stream: None,
        }
    }
}

/// Where a streamed body goes: each write reaches the client before it
/// returns (so a slow client slows the producer, and nothing piles up).
pub struct Chunks<'a> {
    write: &'a mut dyn FnMut(&[u8]) -> Result<(), String>,
}

impl<'a> Chunks<'a> {
    pub fn new(write: &'a mut dyn FnMut(&[u8]) -> Result<(), String>) -> Chunks<'a> {
        Chunks { write }
    }

    /// Send `bytes`; an error means the client is gone (a 499-like end,
    /// logged by [`send`]).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        (self.write)(bytes).map_err(|why| {
            ApiError::new(499, "client-closed", "Client closed the connection").with_detail(why)
        })
    }

    /// Send what `buffer` holds and empty it.
    pub fn drain(&mut self, buffer: &mut Vec<u8>) -> Result<(), ApiError> {
        self.write(buffer)?;
        buffer.clear();
        Ok(())
    }
}

/// Send a handled request's answer through `out` (the components'
/// `http_component` entry).
pub async fn send(served: impl Into<Served>, out: ResponseOutparam) {
    let Served {
        mut response,
        stream,
    } = served.into();
    if let Some(produce) = stream {
        return send_streamed(response, produce, out);
    }
    let body = std::mem::take(response.body_mut());
    let outgoing = match OutgoingResponse::try_from(response) {
        Ok(outgoing) => outgoing,
        Err(e) => {
            return crate::log::line(
                serde_json::json!({"level": "error", "msg": "response not sent", "error": e.to_string()}),
            );
        }
    };
    if body.len() > BUFFERED {
        if let Err(e) = out.set_with_body(outgoing, body).await {
            crate::log::line(
                serde_json::json!({"level": "error", "msg": "response body not sent", "error": e.to_string()}),
            );
        }
        return;
    }
    if let Err(why) = write_whole(&outgoing, &body) {
        crate::log::line(
            serde_json::json!({"level": "error", "msg": "response body not sent", "error": why}),
        );
    }
    out.set(outgoing);
}

/// Set the response, then let `produce` write the body; finish it when the
/// producer succeeds, and abort the transfer when it fails (the client sees
/// a response cut short, never a truncated body that looks whole).
fn send_streamed(response: Response, produce: Producer, out: ResponseOutparam) {
    let log_failure = |why: &str| {
        crate::log::line(
            serde_json::json!({"level": "error", "msg": "streamed response cut short", "error": why}),
        )
    };
    let outgoing = match OutgoingResponse::try_from(response) {
        Ok(outgoing) => outgoing,
        Err(e) => return log_failure(&e.to_string()),
    };
    let Ok(body) = outgoing.body() else {
        return log_failure("the body was taken");
    };
    out.set(outgoing);
    let result = {
        let Ok(stream) = body.write() else {
            return log_failure("the body stream was taken");
        };
        let mut write = |bytes: &[u8]| -> Result<(), String> {
            for piece in bytes.chunks(PIECE) {
                stream
                    .blocking_write_and_flush(piece)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        };
        produce(&mut Chunks::new(&mut write))
        // The stream is dropped before the body is finished, as WASI requires.
    };
    match result {
        Ok(()) => {
            if let Err(e) = OutgoingBody::finish(body, None) {
                log_failure(&e.to_string());
            }
        }
        // Dropping the body unfinished tells the runtime the response failed.
        Err(e) => log_failure(&e.detail.clone().unwrap_or(e.title.to_string())),
    }
}

/// Write all of `body` into the response's body and finish it, without
/// waiting: it fits what the runtime buffers before sending.
fn write_whole(response: &OutgoingResponse, body: &[u8]) -> Result<(), String> {
    let outgoing = response.body().map_err(|()| "the body was taken")?;
    {
        let stream = outgoing.write().map_err(|()| "the body stream was taken")?;
        let mut rest = body;
        while !rest.is_empty() {
            let room = stream.check_write().map_err(|e| e.to_string())? as usize;
            if room == 0 {
                return Err("the runtime took no body before the response".into());
            }
            let (now, later) = rest.split_at(room.min(rest.len()));
            stream.write(now).map_err(|e| e.to_string())?;
            rest = later;
        }
        // The stream is dropped before the body is finished, as WASI requires.
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| e.to_string())
}
