//! Playbook webhooks from the relay: the JSON POST the threats component
//! sends through `wasi:http`, here with `ureq` on a blocking thread. Spin
//! refuses any origin but the component's allowed one; the relay refuses
//! the same way (`VIGIL_WEBHOOK_ORIGIN`), and signs the same way
//! (`VIGIL_WEBHOOK_SECRET`). A connection failure or a 5xx is retried.

use std::time::Duration;

use vigil_core::time::now_millis;
use vigil_ingest::playbook::{SIGNATURE_HEADER, origin, webhook_signature};

/// Connect, send and receive, all told, per attempt.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per webhook, and the pause before each retry.
const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(3)];

/// Where webhooks may go and how they are signed.
#[derive(Clone, Debug, Default)]
pub struct WebhookConfig {
    /// `VIGIL_WEBHOOK_ORIGIN`: the one origin allowed (the app's `webhook_origin`).
    pub origin: Option<String>,
    /// `VIGIL_WEBHOOK_SECRET`: when set, each request carries its HMAC signature.
    pub secret: Option<String>,
}

/// POST `body` to `url`, retrying a failure to connect or a 5xx; the last
/// response status, or why it could not be sent (with the attempts made).
pub async fn post_json(config: &WebhookConfig, url: &str, body: &[u8]) -> Result<u16, String> {
    let allowed = config.origin.as_deref().and_then(origin);
    if allowed.is_none() || origin(url) != allowed {
        return Err("denied: the URL's origin is not the configured webhook origin".into());
    }
    let mut last = Err(String::new());
    for attempt in 0..=BACKOFF.len() {
        if attempt > 0 {
            tokio::time::sleep(BACKOFF[attempt - 1]).await;
        }
        let (config, url, body) = (config.clone(), url.to_string(), body.to_vec());
        last = tokio::task::spawn_blocking(move || send(&config, &url, body))
            .await
            .unwrap_or_else(|e| Err(format!("the sender stopped: {e}")));
        match &last {
            Ok(status) if *status < 500 => return last,
            _ => {}
        }
    }
    last.map_err(|why| format!("{why} (after {} attempts)", BACKOFF.len() + 1))
}

fn send(config: &WebhookConfig, url: &str, body: Vec<u8>) -> Result<u16, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let mut request = agent
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "vigil-playbook");
    if let Some(secret) = &config.secret {
        let signature = webhook_signature(secret, now_millis() / 1000, &body);
        request = request.header(SIGNATURE_HEADER, signature);
    }
    request
        .send(&body[..])
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}
