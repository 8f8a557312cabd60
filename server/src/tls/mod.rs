//! Built-in TLS: HTTPS, WSS and SSE on the server's one port, with rustls (ring provider).
//!
//! Reads the `tls` settings ([`TlsSettings`], defined in [`crate::config::tls`]); owns loading and checking the certificate/key pair
//! ([`certs`]), handing every new handshake the pair in force ([`CurrentCert`]), reloading it on
//! SIGHUP and when either file changes ([`reload`]), and the accept loop that serves the warp
//! filter over TLS connections ([`serve`]).
//!
//! Never: route logic (the filter tree is [`crate::app::filters`], the same as over plain
//! HTTP), nor touching an open connection on reload (a connection keeps the session it
//! negotiated; only handshakes after a reload see the new pair). Plain HTTP stays the default:
//! nothing here runs unless both `tls.certFile` and `tls.keyFile` are set.

pub mod certs;
pub mod reload;
pub mod serve;

pub use crate::config::TlsSettings;
pub use certs::CurrentCert;
pub use reload::TlsReloader;
