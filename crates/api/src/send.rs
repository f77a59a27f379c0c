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

use spin_sdk::http::{OutgoingBody, OutgoingResponse, Response, ResponseOutparam};

/// The largest body written before the response is set: the runtime buffers
/// one chunk of at most this much for a response it has not started sending.
const BUFFERED: usize = 1 << 20;

/// Send `response` through `out` (the components' `http_component` entry).
pub async fn send(mut response: Response, out: ResponseOutparam) {
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
