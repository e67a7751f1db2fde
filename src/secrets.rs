//! Secrets kept out of logs and messages: the secret key a mount URI may
//! carry. Used wherever a mount URI is shown (configuration dump, start-up
//! errors, the readiness page, mount specs in debug output).

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
