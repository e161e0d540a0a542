//! Why the emulator could not start.

/// Why the emulator could not start.
#[derive(Debug)]
pub enum Error {
    /// The seed document is not valid.
    Seed(String),
    /// Binding a listener or writing the CA file failed.
    Io(std::io::Error),
    /// Generating the certificate or the TLS configuration failed.
    Tls(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Seed(msg) => write!(f, "invalid seed: {msg}"),
            Error::Io(err) => write!(f, "I/O error: {err}"),
            Error::Tls(msg) => write!(f, "TLS setup failed: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Io(err)
    }
}
