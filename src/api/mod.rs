//! The client's only door to the network: a reqwest client for FHIR R4 and the
//! worker that runs the TUI's commands and sends results back as events.
