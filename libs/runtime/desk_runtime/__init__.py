"""Runtime shared by every service: settings, logging, metrics, Mongo, bus, outbox, HTTP."""
