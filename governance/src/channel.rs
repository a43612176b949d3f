//! Notification channels: their kinds and webhook signing keys.

use rand::RngCore;

use crate::vocabulary::vocabulary;

vocabulary! {
    /// Where a channel posts (the `notification_channels.kind` column).
    pub enum ChannelKind ("channel kind") {
        Slack = "slack",
        Discord = "discord",
        Webhook = "webhook",
    }
}

/// A fresh HMAC-SHA256 key for a `webhook` channel: 32 random bytes, hex.
pub fn new_webhook_secret() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    hex::encode(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secrets_are_32_random_bytes() {
        let a = new_webhook_secret();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_webhook_secret());
    }
}
