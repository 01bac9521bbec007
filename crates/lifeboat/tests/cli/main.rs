//! End-to-end tests of the `lifeboat` binary: real repositories on disk, real files with every
//! kind of metadata, real faults (a full tmpfs, signals, kill -9, flipped bytes). Tests that
//! need root (device nodes, chown, tmpfs) run as root here and in CI.

mod bad_input;
mod components;
mod copy;
mod crash;
mod forget;
mod galera;
mod keys;
mod mariadb;
mod metadata;
mod nodes;
mod pacemaker;
mod postgres;
mod prune;
mod rabbitmq;
mod redis;
mod remote;
mod repair;
mod streams;
mod support;
mod usage;
