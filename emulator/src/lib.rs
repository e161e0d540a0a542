//! Local Azure emulator.
