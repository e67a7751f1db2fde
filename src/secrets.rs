//! Secrets kept out of logs and messages: the secret key a mount URI may
//! carry. Used wherever a mount URI is shown (configuration dump, start-up
//! errors, the readiness page, mount specs in debug output).

/// A password or token: its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "(empty)" } else { "***" })
    }
}

/// The URI with its secret replaced, for logs and error messages.
pub fn redact(uri: &str) -> String {
    match uri.split_once("secret_key=") {
        Some((head, tail)) => {
            let rest = tail
                .split_once('&')
                .map(|(_, r)| format!("&{r}"))
                .unwrap_or_default();
            format!("{head}secret_key=***{rest}")
        }
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            redact("s3://b?access_key=AK&secret_key=SK&region=r"),
            "s3://b?access_key=AK&secret_key=***&region=r"
        );
        assert_eq!(redact("s3://b?secret_key=SK"), "s3://b?secret_key=***");
    }
}
