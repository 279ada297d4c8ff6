//! Resumed sessions: a session (TLS 1.3 ticket, TLS 1.2 session ID or ticket) a server handed
//! to a connection it then refused, offered again by a client without a certificate, and a
//! gRPC call made on what it opens. A resumption carries the identity of the session it resumes
//! and exchanges no certificate: a server that hands sessions to clients it has not verified,
//! and honours them later, lets the unauthenticated in (Envoy CVE-2022-21654 is that class).
//! The valid client's own session, offered the same way, is the control: it must resume and be
//! served, or a refused resumption proves nothing.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{CallError, GrpcError, GrpcTarget, health_check};
use crate::probe::{Resume, Session};

/// A call without a certificate that offered a session handed out before.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResumedCall {
    /// The attempt the session was handed to, in words (identity, version, door).
    pub origin: String,
    /// What was handed out: `a TLS 1.3 session ticket`, ...
    pub session: String,
    /// The TLS version the session resumes (`tls1.3`).
    pub version: String,
    /// Whether the server resumed it (else it made a full handshake, or refused).
    pub resumed: bool,
    /// Health/Check's answer (`SERVING`, or the gRPC status), or how the call failed.
    pub answer: Result<String, CallError>,
}

impl ResumedCall {
    /// Whether the call reached gRPC: a message, or a gRPC status of the application.
    pub fn reached_grpc(&self) -> bool {
        self.answer.is_ok()
    }
}

/// Sessions handed to the refused connections of a run, and the calls that offered them again.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Resumption {
    /// Attempts the server refused.
    pub refused: usize,
    /// How many of them the server handed a session.
    pub handed: usize,
    /// One call per refused attempt that was handed a session (at most [`MAX_TRIES`]: the first
    /// of each identity and version before a second of any).
    pub tries: Vec<ResumedCall>,
    /// The control: the valid client's own session offered without a certificate, per version
    /// of the tries.
    pub controls: Vec<ResumedCall>,
}

/// The most refused attempts whose sessions are offered again.
pub const MAX_TRIES: usize = 24;

/// Calls Health/Check without a certificate at `target`, offering `session`.
pub async fn resumed_call(target: &GrpcTarget, origin: String, session: Session) -> ResumedCall {
    let words = session.kind_words().to_owned();
    let version = session.version();
    let mut target = target.clone();
    target.identity = None;
    target.version = version;
    target.resume = Resume::Offer(Arc::new(Mutex::new(Some(session))));
    let (resumed, answer) = match health_check(&target).await {
        Ok(a) => (a.connection.resumed, Ok(a.status.to_string())),
        Err(e @ GrpcError::Status { .. }) => (false, Ok(e.to_string())),
        Err(e @ (GrpcError::Connect(_) | GrpcError::Refused(_))) => {
            let resumed = matches!(&e, GrpcError::Connect(o) | GrpcError::Refused(o) if o.resumed);
            (resumed, Err(CallError::from(e)))
        }
        Err(e) => (false, Err(CallError::from(e))),
    };
    ResumedCall {
        origin,
        session: words,
        version: version.id().to_owned(),
        resumed,
        answer,
    }
}
