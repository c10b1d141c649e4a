//! Typed R4 structs for what the client reads. Every field optional; unknown
//! fields kept in `extra` so a read-modify-write never drops another system's data.
