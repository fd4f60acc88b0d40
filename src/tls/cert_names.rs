//! The names a client certificate carries (subject CN and subjectAltName),
//! read from its DER: what `auth.certs` maps to roles.
