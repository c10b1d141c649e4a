//! Clinic hours and holidays, in the clinic's time zone; due times from
//! SLAs in hours or business days.
