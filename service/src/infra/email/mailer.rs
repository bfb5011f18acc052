//! Where messages go: an SMTP server through a pooled lettre transport
//! (`SMTP_URL`: `smtp://host:port` plain, `smtp://…?tls=required`
//! STARTTLS, `smtps://` TLS), or `.eml` files in the outbox folder (the
//! embedded default).
use std::path::PathBuf;

use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How a send went wrong: worth retrying, or not.
#[derive(Debug)]
pub enum SendError {
    /// 4xx replies, connection and TLS errors: try again later.
    Transient(String),
    /// 5xx replies: the server refused for good.
    Permanent(String),
}

pub enum Mailer {
    /// The transport and its number of pooled connections.
    Smtp(AsyncSmtpTransport<Tokio1Executor>, u32),
    Outbox(PathBuf),
}

impl Mailer {
    pub fn smtp(url: &str, pool_size: u32) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("SMTP_URL: {e}"))?
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(pool_size))
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Mailer::Smtp(transport, pool_size))
    }

    /// Whether `url` is an SMTP URL the transport takes (nothing is
    /// connected or spawned, so this runs anywhere).
    pub fn check_url(url: &str) -> Result<(), String> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub fn outbox(dir: PathBuf) -> Self {
        Mailer::Outbox(dir)
    }

    /// How many messages to have in flight at once: one per pooled SMTP
    /// connection (lettre opens, and closes again, a connection for each
    /// message beyond its pool); file writes are cheap, 16.
    pub fn parallelism(&self) -> usize {
        match self {
            Mailer::Smtp(_, pool_size) => (*pool_size).max(1) as usize,
            Mailer::Outbox(_) => 16,
        }
    }

    /// Sends one message; `file_name` names its `.eml` in the outbox.
    pub async fn send(&self, msg: Message, file_name: &str) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(t, _) => t.send(msg).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            }),
            Mailer::Outbox(dir) => {
                let bytes = msg.formatted();
                let tmp = dir.join(format!(".{file_name}.tmp"));
                let path = dir.join(format!("{file_name}.eml"));
                let written = async {
                    tokio::fs::create_dir_all(dir).await?;
                    tokio::fs::write(&tmp, bytes).await?;
                    tokio::fs::rename(&tmp, &path).await
                };
                written
                    .await
                    .map_err(|e| SendError::Transient(format!("outbox {}: {e}", dir.display())))
            }
        }
    }
}
