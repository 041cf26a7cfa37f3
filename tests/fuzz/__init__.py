"""Continuous fuzzing: schema language, relationship parser, CEL caveats and every RPC (docs/fuzzing.md)."""
