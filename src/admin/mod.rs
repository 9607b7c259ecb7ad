//! Administration: what the `/admin/*` routes do, behind their permission guards.
//!
//! Every change is written in one transaction together with its audit row. Changes that could
//! remove the last enabled admin take the admin-set lock first, so two concurrent requests
//! cannot each remove "the other" admin.

pub mod audit;
pub mod client_settings;
pub mod client_views;
pub mod clients;
pub mod roles;
pub mod users;
