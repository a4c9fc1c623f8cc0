//! The one integration test binary: spawns the whole app on free ports and talks to it the
//! way exporters and users do.

mod compare;
mod fixtures;
mod helpers;

mod backpressure;
mod bad_input;
mod exporters_python;
mod exporters_rust;
mod restart;
